"""Reference-protocol pairs for the default model.

The default model (training/make_default_model.py) pairs reference scans only, all at 1.5 T:
`--variants 0 --reference-field 1.5 --folder-prefix refs`.

Every simulated head gets one REFERENCE scan per contrast, the protocols BrainWeb uses (T1w spoiled
gradient echo TR 18 / TE 10 ms / 30 degrees; T2w spin echo TR 3300 / TE 120 ms;
../shared/data/seed-t1-t2/README.md) with the literature relaxation values of the head's field
strength (1.5 T or 3 T), without noise or bias field: a target that depends only on the anatomy and
the field. A T2w of random sequence settings would not do as a target: a T1w does not tell which
TE/TR its partner had, so a model learns the average of many T2w contrasts, flat and blurred. For
the same reason the references keep the literature tissue values. Besides the references, a head
may hold variant scans (`--variants`): its own tissue values (each T1, T2, T2* and PD jittered by up
to 10 %), random sequence settings, Rician noise and a bias field. A variant is only ever an input
(file NAME~TAG, see mri_style_app.cyclegan.data.load_pairs): the model learns to map any T1w or T2w
scan onto the other contrast's reference protocol, a question with one answer.

Heads are the ICBM 2009a tissue maps under a random smooth deformation (affine plus a coarse
displacement field), so no training head is the demo head itself: the demo T2w is the 1.5 T
reference protocol on the undeformed maps and must be predicted, not remembered.

    .venv/bin/python training/prepare_reference_pairs.py --out runs/default-data
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from prepare_default_data import FIELDS, degrade, jitter_tissues, random_t1w_settings, random_t2w_settings

from mri_style_app.imaging import simulate
from mri_style_app.paths import resources_dir

REPO = Path(__file__).resolve().parents[1]


def rotation(degrees) -> np.ndarray:
    """The 3 x 3 rotation about x, then y, then z by the given angles (degrees)."""
    out = np.eye(3)
    for axis, angle in enumerate(np.deg2rad(degrees)):
        c, s = np.cos(angle), np.sin(angle)
        r = np.eye(3)
        i, j = [k for k in range(3) if k != axis]
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        out = out @ r
    return out


def deformed_maps(
    maps: np.ndarray,
    rng: np.random.Generator,
    max_shift_mm: float = 6.0,
    max_degrees: float = 6.0,
    max_scale: float = 0.08,
    warp_mm: float = 4.0,
) -> np.ndarray:
    """(channels, x, y, z) maps resampled under a random affine and a smooth displacement field
    (4 x 4 x 4 control points, up to `warp_mm` each), trilinear. 1 mm voxels assumed."""
    shape = maps.shape[1:]
    linear = rotation(rng.uniform(-max_degrees, max_degrees, 3)) @ np.diag(rng.uniform(1 - max_scale, 1 + max_scale, 3))
    half = (np.array(shape) - 1) / 2.0
    # grid_sample's coordinates are (z, y, x)-ordered in [-1, 1] over the (x, y, z) array's last
    # three axes reversed: work in voxel units, then convert.
    axes = [torch.arange(n, dtype=torch.float64) - h for n, h in zip(shape, half)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # (x, y, z, 3) voxel offsets
    source = grid @ torch.from_numpy(linear).T + torch.from_numpy(rng.uniform(-max_shift_mm, max_shift_mm, 3))
    coarse = torch.from_numpy(rng.uniform(-warp_mm, warp_mm, (1, 3, 4, 4, 4)))
    field = F.interpolate(coarse, size=shape, mode="trilinear", align_corners=True)[0].permute(1, 2, 3, 0)
    source = source + field
    normalised = (source / torch.from_numpy(half)).flip(-1)  # -> [-1, 1], (z, y, x) order
    volume = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))[None]
    warped = F.grid_sample(volume, normalised[None].float(), mode="bilinear", padding_mode="zeros", align_corners=True)
    return warped[0].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "default-data")
    parser.add_argument("--heads", type=int, default=10)
    parser.add_argument("--variants", type=int, default=2, help="random-protocol scans per head and contrast")
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument(
        "--reference-field",
        type=float,
        choices=sorted(FIELDS),
        default=None,
        help="relaxation values of every reference scan (default: each head's own field)",
    )
    parser.add_argument(
        "--dark-csf-variants",
        type=int,
        default=0,
        help="extra T1w inputs per head: the reference protocol with a longer CSF T1 "
        "(3000-4500 ms), so CSF darker than the reference's",
    )
    parser.add_argument(
        "--folder-prefix", default="ref-pairs", help="write PREFIX-A-t1w/ and PREFIX-B-t2w/ under --out"
    )
    args = parser.parse_args()

    demo = resources_dir() / "demo"
    affine = nib.load(demo / "icbm152_2009a_gm.nii.gz").affine
    maps = np.stack(
        [
            np.asarray(nib.load(demo / f"icbm152_2009a_{name}.nii.gz").dataobj, dtype=np.float32)
            for name in ("gm", "wm", "brain_mask")
        ]
    )
    maps[:2] /= 255.0
    maps[2] = maps[2] > 0
    rng = np.random.default_rng(args.seed)
    # its own stream: the heads and their variants are the same with or without dark-CSF inputs
    dark_rng = np.random.default_rng([args.seed, 1])
    folders = [args.out / f"{args.folder_prefix}-A-t1w", args.out / f"{args.folder_prefix}-B-t2w"]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    log = []
    for head in range(args.heads):
        gm, wm, mask = deformed_maps(maps, rng)
        mask = mask > 0.5
        fractions = simulate.tissue_fractions(gm, wm, mask)
        field = float(rng.choice(list(FIELDS)))
        tissues = jitter_tissues(FIELDS[field], rng)  # the variants' (this person's) tissue values
        name = f"head_{head:02d}"
        reference = FIELDS[args.reference_field if args.reference_field else field]
        scans = {
            (0, "ref"): simulate.spoiled_gradient_echo(fractions, tissues=reference, **simulate.T1W_1_5T),
            (1, "ref"): simulate.spin_echo(fractions, tissues=reference, **simulate.T2W_1_5T),
        }
        for k in range(args.variants):
            t1 = random_t1w_settings(rng)
            t2 = random_t2w_settings(rng)
            bias = simulate.bias_field(mask.shape, float(rng.uniform(0, 0.3)), rng)  # one coil, both scans
            scans[(0, f"v{k}")] = degrade(
                simulate.spoiled_gradient_echo(fractions, tissues=tissues, **t1), mask, rng, bias
            )
            scans[(1, f"v{k}")] = degrade(simulate.spin_echo(fractions, tissues=tissues, **t2), mask, rng, bias)
            log.append(
                f"{name}~v{k}: field_T={field}, "
                + ", ".join(f"{p}_{key}={value:.1f}" for p, s in (("t1w", t1), ("t2w", t2)) for key, value in s.items())
            )
        for k in range(args.dark_csf_variants):
            csf_t1 = float(dark_rng.uniform(3000, 4500))
            dark = {**reference, "csf": replace(reference["csf"], t1_ms=csf_t1)}
            scans[(0, f"darkcsf{k}")] = simulate.spoiled_gradient_echo(fractions, tissues=dark, **simulate.T1W_1_5T)
            log.append(f"{name}~darkcsf{k}: reference T1w protocol, CSF T1 {csf_t1:.0f} ms")
        for (domain, tag), image in scans.items():
            file = f"{name}.nii.gz" if tag == "ref" else f"{name}~{tag}.nii.gz"
            nib.save(nib.Nifti1Image(image.astype(np.float32), affine), folders[domain] / file)
        log.append(f"{name}: field_T={field}, reference protocols at {args.reference_field or field} T")
        print(log[-1], flush=True)
    (args.out / f"{args.folder_prefix}.txt").write_text("\n".join(log) + "\n")


if __name__ == "__main__":
    main()
