"""The seed slices of ../shared/data/seed-t1-t2 as NIfTI volumes on the Colin27 grid (numpy + nibabel).

The seed README fixes the pairing (T1 image_k and T2 image_m are axial slice z of one head, with
z = k + 59 for k <= 40, z = k + 69 for k >= 41, z = m - 1) and the split: train z 69-99 (28
pairs), test z 110-124 (15 pairs, for measuring only). `write_split` writes, per split, a T1w and
a T2w volume holding the split's paired slices, on the grid of Debian's mricron-data `ch2.nii.gz`
(181 x 217 x 181, 1 mm, RAS) cut to the split's slices, and for the test split the brain mask
(`ch2bet.nii.gz > 0` inside the head). The train split's slices 69-78 and 82-99 are two volumes
each, so no volume has a gap.

    .venv/bin/python training/seed_split.py --out runs/seed
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mri_style_app.cyclegan.data import read_png  # noqa: E402

SEED_DIR = REPO.parent / "shared" / "data" / "seed-t1-t2"
MRICRON = Path("/usr/share/mricron/templates")
# Colin27 grid of ch2.nii.gz (RAS, 1 mm), the grid the seed slices were cut from
GRID_SHAPE = (181, 217, 181)
GRID_AFFINE = np.array([[1.0, 0, 0, -90], [0, 1, 0, -125], [0, 0, 1, -71], [0, 0, 0, 1]])
SPLITS = {"train": (range(10, 41), range(70, 101)), "test": (range(41, 56), range(111, 126))}


def t1_z(k: int) -> int:
    return k + 59 if k <= 40 else k + 69


def t2_z(m: int) -> int:
    return m - 1


def ras_slice(png_path: Path) -> np.ndarray:
    """A seed PNG as a (181, 217) RAS axial slice, 0-255."""
    return np.ascontiguousarray(np.rot90(read_png(png_path), 3)[:, ::-1])


def split_pairs(split: str, seed_dir: Path = SEED_DIR) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """z -> (T1w slice, T2w slice) for every pair of the split."""
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


def _save(path: Path, data: np.ndarray, z0: int) -> None:
    affine = GRID_AFFINE.copy()
    affine[2, 3] += z0  # the volume's first slice is grid slice z0
    image = nib.Nifti1Image(data.astype(np.float32), affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))


def brain_mask(zs: list[int]) -> np.ndarray:
    """ch2bet.nii.gz > 0 at these slices (the Colin27 brain on the seed grid)."""
    bet = np.asarray(nib.load(str(MRICRON / "ch2bet.nii.gz")).dataobj)
    return bet[:, :, zs] > 0


def write_split(out: Path, split: str, seed_dir: Path = SEED_DIR) -> list[str]:
    """Write `out`/t1w/NAME.nii.gz and `out`/t2w/NAME.nii.gz (same names: pairs) for the split;
    the test split also gets `out`/brain/NAME.nii.gz. Returns the names."""
    pairs = split_pairs(split, seed_dir)
    names = []
    for run in runs_of(list(pairs)):
        name = f"seed_{split}_z{run[0]:03d}-{run[-1]:03d}"
        for folder, k in (("t1w", 0), ("t2w", 1)):
            _save(out / folder / f"{name}.nii.gz", np.stack([pairs[z][k] for z in run], axis=-1), run[0])
        if split == "test" and (MRICRON / "ch2bet.nii.gz").exists():
            _save(out / "brain" / f"{name}.nii.gz", brain_mask(run).astype(np.float32), run[0])
        names.append(name)
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "seed")
    parser.add_argument("--split", choices=("train", "test", "both"), default="both")
    args = parser.parse_args()
    for split in (("train", "test") if args.split == "both" else (args.split,)):
        names = write_split(args.out / split, split)
        print(f"{split}: {', '.join(names)} in {args.out / split}")


if __name__ == "__main__":
    main()
