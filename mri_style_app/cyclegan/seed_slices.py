"""The seed slices of ../shared/data/seed-t1-t2 as NIfTI volumes on the Colin27 grid (numpy + nibabel).

The seed README fixes the pairing (T1 image_k and T2 image_m are axial slice z of one head, with
z = k + 59 for k <= 40, z = k + 69 for k >= 41, z = m - 1) and the split: train z 69-99 (28
pairs), test z 110-124 (15 pairs, for measuring only). `write_split` writes, per split, a T1w and
a T2w volume holding the split's paired slices, on the grid of Debian's mricron-data `ch2.nii.gz`
(181 x 217 x 181, 1 mm, RAS) cut to the split's slices, and for the test split the brain mask
(`ch2bet.nii.gz > 0` inside the seed protocol's head mask). The train split's slices 69-78 and 82-99 are two volumes
each, so no volume has a gap. Training, scoring and the self-test read the slices from here.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from mri_style_app.cyclegan.data import read_png
from mri_style_app.imaging.metrics import head_mask


def default_seed_dir() -> Path:
    """$MRI_STYLE_SEED_DIR, else ../shared/data/seed-t1-t2 beside a source checkout."""
    if os.environ.get("MRI_STYLE_SEED_DIR"):
        return Path(os.environ["MRI_STYLE_SEED_DIR"])
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "seed-t1-t2"


MRICRON = Path("/usr/share/mricron/templates")
# Colin27 grid of ch2.nii.gz (RAS, 1 mm), the grid the seed slices were cut from
GRID_SHAPE = (181, 217, 181)
GRID_AFFINE = np.array([[1.0, 0, 0, -90], [0, 1, 0, -125], [0, 0, 1, -71], [0, 0, 0, 1]])
SPLITS = {"train": (range(10, 41), range(70, 101)), "test": (range(41, 56), range(111, 126))}
# The test slices' levels with a 10-slice margin: no voxel of Colin27 (ch2, ch2bet, the seed
# slices or anything made from them) in these axial slices enters the training of a shipped model.
COLIN27_TEST_BAND = range(100, 135)


def t1_z(k: int) -> int:
    return k + 59 if k <= 40 else k + 69


def t2_z(m: int) -> int:
    return m - 1


def ras_slice(png_path: Path) -> np.ndarray:
    """A seed PNG as a (181, 217) RAS axial slice, 0-255."""
    return np.ascontiguousarray(np.rot90(read_png(png_path), 3)[:, ::-1])


def split_pairs(split: str, seed_dir: Path | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """z -> (T1w slice, T2w slice) for every pair of the split."""
    seed_dir = seed_dir or default_seed_dir()
    t1_numbers, t2_numbers = SPLITS[split]
    t1 = {t1_z(k): seed_dir / "T1" / f"image_{k:03d}.png" for k in t1_numbers}
    t2 = {t2_z(m): seed_dir / "T2" / f"image_{m:03d}.png" for m in t2_numbers}
    t1 = {z: p for z, p in t1.items() if p.exists()}
    t2 = {z: p for z, p in t2.items() if p.exists()}
    return {z: (ras_slice(t1[z]), ras_slice(t2[z])) for z in sorted(set(t1) & set(t2))}


def runs_of(zs: list[int]) -> list[list[int]]:
    """Consecutive runs of slice numbers: [69..78, 82..99] for the train split."""
    runs: list[list[int]] = []
    for z in zs:
        if runs and z == runs[-1][-1] + 1:
            runs[-1].append(z)
        else:
            runs.append([z])
    return runs


def _grid(z0: int) -> np.ndarray:
    affine = GRID_AFFINE.copy()
    affine[2, 3] += z0  # the volume's first slice is grid slice z0
    return affine


def brain_mask(zs: list[int]) -> np.ndarray:
    """ch2bet.nii.gz > 0 at these slices (the Colin27 brain on the seed grid)."""
    bet = np.asarray(nib.load(str(MRICRON / "ch2bet.nii.gz")).dataobj)
    return bet[:, :, zs] > 0


def split_volumes(split: str, seed_dir: Path | None = None) -> list[dict]:
    """One entry per gap-free run of the split's slices: name, affine, 't1' and 't2' (X, Y, Z)
    arrays and, where mricron-data is installed, the 'brain' mask inside the head mask."""
    pairs = split_pairs(split, seed_dir)
    out = []
    for run in runs_of(list(pairs)):
        entry = {
            "name": f"seed_{split}_z{run[0]:03d}-{run[-1]:03d}",
            "affine": _grid(run[0]),
            "t1": np.stack([pairs[z][0] for z in run], axis=-1),
            "t2": np.stack([pairs[z][1] for z in run], axis=-1),
        }
        if (MRICRON / "ch2bet.nii.gz").exists():
            entry["brain"] = brain_mask(run) & head_mask(entry["t1"], entry["t2"])
        out.append(entry)
    return out


def scoring_volumes(seed_dir: Path | None = None) -> dict:
    """The test split as Volumes: {'t1', 't2'} and 'brain' (a bool array) where available."""
    from mri_style_app.imaging.volume import Volume

    (entry,) = split_volumes("test", seed_dir)
    out = {
        k: Volume(data=entry[k].astype(np.float32), affine=entry["affine"], name=f"{entry['name']}_{k}w")
        for k in ("t1", "t2")
    }
    if "brain" in entry:
        out["brain"] = entry["brain"]
    return out


def write_split(out: Path, split: str, seed_dir: Path | None = None) -> list[str]:
    """Write `out`/t1w/NAME.nii.gz and `out`/t2w/NAME.nii.gz (same names: pairs) for the split,
    and `out`/brain/NAME.nii.gz where there is a brain mask. Returns the names."""
    names = []
    for entry in split_volumes(split, seed_dir):
        for folder, key in (("t1w", "t1"), ("t2w", "t2"), ("brain", "brain")):
            if key in entry and (split == "test" or key != "brain"):
                path = out / folder / f"{entry['name']}.nii.gz"
                path.parent.mkdir(parents=True, exist_ok=True)
                image = nib.Nifti1Image(entry[key].astype(np.float32), entry["affine"])
                image.set_qform(entry["affine"], code=1)
                image.set_sform(entry["affine"], code=1)
                nib.save(image, str(path))
        names.append(entry["name"])
    return names
