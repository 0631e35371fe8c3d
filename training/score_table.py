"""Print the default model's score table: a model, the inversion baseline and a per-voxel mapping
fitted on the seed train split, scored by the project's one protocol (imaging.metrics).

Columns: the seed test split (../shared/data/seed-t1-t2, z 110-124), whole head and brain, both
directions; the demo ICBM 2009a pair (brain); the held-out 3 T noisy pair stored as LIA (brain).

    .venv/bin/python training/score_table.py [--model FILE] [--json OUT]

The seed volumes are rebuilt from ../shared under runs/seed (mri_style_app/cyclegan/seed_slices.py); the brain
of the seed slices needs Debian's mricron-data (ch2bet.nii.gz).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "training"))

from mri_style_app.cyclegan import seed_slices  # noqa: E402
from mri_style_app.imaging.intensity import normalize_unit  # noqa: E402
from mri_style_app.imaging.metrics import evaluate_pair, head_mask  # noqa: E402
from mri_style_app.imaging.volume import Volume, load_volume  # noqa: E402

DIRECTIONS = ("t1-to-t2", "t2-to-t1")
MAPPING_BINS = 256


def seed_volumes(folder: Path, split: str) -> dict[str, Volume]:
    """{'t1', 't2', 'brain'} of one split (a single volume per contrast for the test split)."""
    names = seed_slices.write_split(folder / split, split)
    out = {k: load_volume(folder / split / f"{k}w" / f"{names[0]}.nii.gz") for k in ("t1", "t2")}
    if split == "test":
        out["brain"] = load_volume(folder / split / "brain" / f"{names[0]}.nii.gz")
    return out


def score_sets(work: Path) -> list[dict]:
    """The scored sets: name, source/reference volumes per direction and the region masks."""
    from mri_style_app.imaging import simulate
    from mri_style_app.paths import demo_mask_path, demo_t1_path, demo_t2_path, resources_dir

    seed = seed_volumes(work / "seed", "test")
    head = head_mask(seed["t1"].data, seed["t2"].data)
    demo_t1, demo_t2 = load_volume(demo_t1_path()), load_volume(demo_t2_path())
    demo_brain = load_volume(demo_mask_path()).data > 0
    gm = load_volume(resources_dir() / "demo" / "icbm152_2009a_gm.nii.gz").data / 255.0
    wm = load_volume(resources_dir() / "demo" / "icbm152_2009a_wm.nii.gz").data / 255.0
    t1_3t, t2_3t = simulate.simulate_3t_pair(gm, wm, demo_brain, seed=3)
    lia = {
        name: demo_t1.with_data(data, name=f"sim3t_{name}").stored_as("LIA")
        for name, data in (("t1", t1_3t), ("t2", t2_3t))
    }
    return [
        {"name": "seed test, whole head", "t1": seed["t1"], "t2": seed["t2"], "mask": head},
        {"name": "seed test, brain", "t1": seed["t1"], "t2": seed["t2"], "mask": seed["brain"].data > 0},
        {"name": "demo ICBM pair, brain", "t1": demo_t1, "t2": demo_t2, "mask": demo_brain},
        {"name": "3 T noisy LIA pair, brain", "t1": lia["t1"], "t2": lia["t2"], "mask": demo_brain},
    ]


def _unit_in_head(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """The image scaled by its 99.5th percentile inside its own head mask, and that mask."""
    mask = head_mask(volume.data)
    return normalize_unit(volume.data, mask), mask


class VoxelMapping:
    """The best per-voxel intensity mapping of a training set: the mean target of each of 256
    source intensity bins (images scaled by their head's 99.5th percentile)."""

    def __init__(self, sources: list[Volume], targets: list[Volume]):
        sums, counts = np.zeros(MAPPING_BINS), np.zeros(MAPPING_BINS)
        for source, target in zip(sources, targets):
            x, mask = _unit_in_head(source)
            y = normalize_unit(target.data, mask | head_mask(target.data))
            bins = np.minimum((x[mask] * MAPPING_BINS).astype(int), MAPPING_BINS - 1)
            sums += np.bincount(bins, y[mask], MAPPING_BINS)
            counts += np.bincount(bins, minlength=MAPPING_BINS)
        filled = counts > 0
        centres = (np.arange(MAPPING_BINS) + 0.5) / MAPPING_BINS
        self.table = np.interp(centres, centres[filled], sums[filled] / counts[filled])

    def __call__(self, source: Volume) -> np.ndarray:
        x, mask = _unit_in_head(source)
        bins = np.minimum((x * MAPPING_BINS).astype(int), MAPPING_BINS - 1)
        return np.where(mask, self.table[bins], 0.0).astype(np.float32)


def inversion(source: Volume) -> np.ndarray:
    x, mask = _unit_in_head(source)
    return np.where(mask, 1.0 - x, 0.0).astype(np.float32)


def score_table(model_path: Path | None = None, work: Path = REPO / "runs" / "scores") -> dict:
    """{row: {set: {direction: {psnr, ssim, mae}}}} for the model, the inversion and the mapping."""
    from mri_style_app.cyclegan.checkpoint import load_model
    from mri_style_app.cyclegan.translate import translate_volume
    from mri_style_app.paths import default_model_path

    model = load_model(model_path or default_model_path())
    train = seed_volumes(work / "seed", "train")
    mappings = {
        "t1-to-t2": VoxelMapping([train["t1"]], [train["t2"]]),
        "t2-to-t1": VoxelMapping([train["t2"]], [train["t1"]]),
    }
    rows = {"model": {}, "inversion baseline": {}, "per-voxel mapping (seed train split)": {}}
    translated: dict = {}
    for case in score_sets(work):
        for row in rows.values():
            row[case["name"]] = {}
        for direction in DIRECTIONS:
            source_key, target_key = direction.split("-to-")
            source, reference = case[source_key], case[target_key]
            key = (id(source), direction)
            if key not in translated:  # the seed's head and brain score one translation
                translated[key] = translate_volume(source, model, direction).data
            predictions = {
                "model": translated[key],
                "inversion baseline": inversion(source),
                "per-voxel mapping (seed train split)": mappings[direction](source),
            }
            for row, prediction in predictions.items():
                scores = evaluate_pair(prediction, reference.data, case["mask"])
                rows[row][case["name"]][direction] = {k: round(v, 4) for k, v in scores.items()}
    return rows


def print_table(rows: dict) -> None:
    sets = list(next(iter(rows.values())))
    print(f"{'SSIM / PSNR (dB)':38s}" + "".join(f"{s:>30s}" for s in sets))
    for direction in DIRECTIONS:
        for row, by_set in rows.items():
            cells = "".join(
                f"{by_set[s][direction]['ssim']:>22.3f} / {by_set[s][direction]['psnr']:5.2f}" for s in sets
            )
            print(f"{direction + ', ' + row:38s}{cells}")


def markdown(rows: dict) -> str:
    """The table as Markdown: one row per (direction, row), one column per scored set."""
    sets = list(next(iter(rows.values())))
    lines = ["| SSIM / PSNR | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for direction in DIRECTIONS:
        for row, by_set in rows.items():
            cells = " | ".join(
                f"{by_set[s][direction]['ssim']:.3f} / {by_set[s][direction]['psnr']:.2f} dB" for s in sets
            )
            name = f"**{direction}, {row}**" if row == "model" else f"{direction}, {row}"
            lines.append(f"| {name} | {cells} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model file (default: the bundled default model)")
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    args = parser.parse_args()
    rows = score_table(args.model)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(rows))


if __name__ == "__main__":
    main()
