"""Build the training folders for the default T1w <-> T2w model.

Domain A (T1-weighted) and domain B (T2-weighted) each get:
  - the real seed slices from ../shared/data/seed-t1-t2 (BrainWeb, with scalp), as PNG copies;
  - volumes simulated from the ICBM 2009a tissue maps in resources/demo with RANDOM relaxation
    times (1.5 T or 3 T, each jittered), sequence settings, Rician noise and bias fields, so the
    model learns the contrast, not one simulation. Domain A also holds the real ICBM T1 template.

The two domains are drawn independently (different parameters, and the trainer samples slices
of each domain on its own), so that part of training is unpaired.

Besides, pairs-A-t1w/ and pairs-B-t2w/ hold co-registered simulated pairs (same file name = same
simulated head: one field strength and jittered tissue set, one bias field, independent noise),
for the trainer's optional paired L1 loss. The real ICBM T1 template is never in a pair: the
demo T2w is simulated from the same anatomy, and pairing the two would teach the test.
Deterministic for a given --seed.

    .venv/bin/python training/prepare_default_data.py --out runs/default-data
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np

from mri_style_app.imaging import simulate
from mri_style_app.paths import resources_dir

REPO = Path(__file__).resolve().parents[1]
SEED_DIR = REPO.parent / "shared" / "data" / "seed-t1-t2"


def jitter_tissues(base: dict, rng: np.random.Generator, spread: float = 0.1) -> dict:
    """Each tissue's T1, T2, T2* and PD scaled by an independent factor in [1 - spread, 1 + spread]."""

    def f():
        return float(rng.uniform(1 - spread, 1 + spread))

    return {
        name: replace(t, t1_ms=t.t1_ms * f(), t2_ms=t.t2_ms * f(), t2star_ms=t.t2star_ms * f(), pd=t.pd * f())
        for name, t in base.items()
    }


FIELDS = {1.5: simulate.BRAINWEB_1_5T, 3.0: simulate.RELAXATION_3T}


def random_tissues(rng: np.random.Generator) -> tuple[float, dict]:
    field = float(rng.choice(list(FIELDS)))
    return field, jitter_tissues(FIELDS[field], rng)


def random_t1w_settings(rng) -> dict:
    """Spoiled gradient echo TR/TE/flip for a T1-weighted scan."""
    return {"tr_ms": rng.uniform(12, 30), "te_ms": rng.uniform(3, 10), "flip_deg": rng.uniform(20, 40)}


def random_t2w_settings(rng) -> dict:
    """Spin echo TR/TE for a T2-weighted scan."""
    return {"tr_ms": rng.uniform(2500, 6000), "te_ms": rng.uniform(80, 140)}


def random_t1w(fractions, rng) -> tuple[np.ndarray, dict]:
    field, tissues = random_tissues(rng)
    params = random_t1w_settings(rng)
    return simulate.spoiled_gradient_echo(fractions, tissues=tissues, **params), {"field_T": field, **params}


def random_t2w(fractions, rng) -> tuple[np.ndarray, dict]:
    field, tissues = random_tissues(rng)
    params = random_t2w_settings(rng)
    return simulate.spin_echo(fractions, tissues=tissues, **params), {"field_T": field, **params}


def degrade(signal, mask, rng, bias=None) -> np.ndarray:
    """Bias field up to 30 % (or the given one) and Rician noise up to 3 %, drawn at random."""
    if bias is None:
        bias = simulate.bias_field(signal.shape, float(rng.uniform(0, 0.3)), rng)
    return simulate.add_rician_noise(signal * bias, float(rng.uniform(0, 3)), mask, rng)


def random_pair(fractions, mask, rng) -> tuple[np.ndarray, np.ndarray, dict]:
    """One simulated head scanned twice: T1w spoiled GRE and T2w spin echo with the same tissues."""
    field, tissues = random_tissues(rng)
    t1_params = random_t1w_settings(rng)
    t2_params = random_t2w_settings(rng)
    bias = simulate.bias_field(fractions["gm"].shape, float(rng.uniform(0, 0.3)), rng)
    t1w = degrade(simulate.spoiled_gradient_echo(fractions, tissues=tissues, **t1_params), mask, rng, bias)
    t2w = degrade(simulate.spin_echo(fractions, tissues=tissues, **t2_params), mask, rng, bias)
    return (
        t1w,
        t2w,
        {
            "field_T": field,
            **{f"t1w_{k}": v for k, v in t1_params.items()},
            **{f"t2w_{k}": v for k, v in t2_params.items()},
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "default-data")
    parser.add_argument("--volumes", type=int, default=6, help="simulated volumes per domain")
    parser.add_argument("--pairs", type=int, default=8, help="simulated co-registered T1w/T2w pairs")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    demo = resources_dir() / "demo"
    gm_img = nib.load(demo / "icbm152_2009a_gm.nii.gz")
    gm = np.asarray(gm_img.dataobj, dtype=np.float32) / 255.0
    wm = np.asarray(nib.load(demo / "icbm152_2009a_wm.nii.gz").dataobj, dtype=np.float32) / 255.0
    mask = np.asarray(nib.load(demo / "icbm152_2009a_brain_mask.nii.gz").dataobj) > 0
    fractions = simulate.tissue_fractions(gm, wm, mask)
    rng = np.random.default_rng(args.seed)

    folders = {"A": args.out / "A-t1w", "B": args.out / "B-t2w"}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for png in sorted((SEED_DIR / "T1").glob("*.png")):
        shutil.copyfile(png, folders["A"] / f"seed_{png.name}")
    for png in sorted((SEED_DIR / "T2").glob("*.png")):
        shutil.copyfile(png, folders["B"] / f"seed_{png.name}")
    shutil.copyfile(demo / "icbm152_2009a_t1w.nii.gz", folders["A"] / "icbm_t1_template.nii.gz")

    log = []
    for i in range(args.volumes):
        for domain, make in (("A", random_t1w), ("B", random_t2w)):
            signal, params = make(fractions, rng)
            image = degrade(signal, mask, rng)
            name = f"sim_{domain}_{i:02d}.nii.gz"
            nib.save(nib.Nifti1Image(image.astype(np.float32), gm_img.affine), folders[domain] / name)
            log.append(f"{name}: " + ", ".join(f"{k}={v:.1f}" for k, v in params.items()))
            print(log[-1], flush=True)
    pair_rng = np.random.default_rng(args.seed + 1)  # its own stream: the domains above stay as they were
    pair_folders = [args.out / "pairs-A-t1w", args.out / "pairs-B-t2w"]
    for folder in pair_folders:
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(args.pairs):
        t1w, t2w, params = random_pair(fractions, mask, pair_rng)
        name = f"sim_pair_{i:02d}.nii.gz"
        for folder, image in zip(pair_folders, (t1w, t2w)):
            nib.save(nib.Nifti1Image(image.astype(np.float32), gm_img.affine), folder / name)
        log.append(f"pair {name}: " + ", ".join(f"{k}={v:.1f}" for k, v in params.items()))
        print(log[-1], flush=True)
    (args.out / "simulations.txt").write_text("\n".join(log) + "\n")


if __name__ == "__main__":
    main()
