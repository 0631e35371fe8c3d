"""How high can any translator score on the demo pair? Upper bounds for the default model's
demo-pair figures.

The demo pair is the real ICBM 2009a T1 template and a T2w simulated from the template's grey and
white matter maps (training/make_demo_data.py). Every score uses the project's protocol
(`mri_style_app.imaging.metrics.evaluate_pair`: each volume scaled by its own 99.5th percentile in
the brain, PSNR over brain voxels, SSIM averaged over brain voxels). None of these is a model: some
are fitted on the demo pair itself, which no honest model may do.

  per-voxel mapping fitted on the demo pair itself (256 and 1024 bins)
      the mean target per source intensity. Its score depends on the bin width, because of the
      own-percentile scaling: with fine bins a few bins of the template's brightest white matter
      become the prediction's brightest 0.5 %, as in the template; with coarse bins the brightest
      bins are flat white matter, as in any simulation, and the scaling puts every tissue a few
      per cent too bright. So the metric rewards a prediction whose brightest 0.5 % stand as far
      above its white matter as the template's do, which nothing in a T2w indicates.
  the same, scored on the reference's scale
      not rescaled by its own 99.5th percentile: the mapping's error without that effect
  T1w by the reference GRE protocol from the demo's own tissue maps
      perfect knowledge of each voxel's grey/white/CSF fractions, then BrainWeb's T1w protocol
      (the target the default model's T2w -> T1w direction is trained towards)
  per-voxel mapping fitted on the training pairs (with --pairs A B; 256 bins)
      what a perfect per-voxel learner of those pairs scores on the demo

    .venv/bin/python training/demo_ceilings.py [--pairs runs/default-data/refs-A-t1w runs/default-data/refs-B-t2w]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mri_style_app.cyclegan.checkpoint import load_model  # noqa: E402
from mri_style_app.cyclegan.data import _head_name, is_volume_file  # noqa: E402  (NAME~TAG variants, as training reads them)
from mri_style_app.cyclegan.translate import normalise_volume  # noqa: E402
from mri_style_app.imaging import simulate  # noqa: E402
from mri_style_app.imaging.intensity import foreground_mask, normalize_unit  # noqa: E402
from mri_style_app.imaging.metrics import evaluate_pair, psnr  # noqa: E402
from mri_style_app.imaging.volume import load_volume  # noqa: E402
from mri_style_app.paths import default_model_path, demo_mask_path, demo_t1_path, demo_t2_path, resources_dir  # noqa: E402

TOP = 1.5  # inputs scaled as the model scales them can exceed 1 (T1w at its 90th percentile)


def model_input(data: np.ndarray, contrast: str, normalisation: dict) -> np.ndarray:
    """The source scaled as the default model scales it (foreground percentile -> 1), not clipped."""
    return data / normalise_volume(data, normalisation, contrast)[1]


class VoxelMapping:
    """Mean target (scaled to [0, 1] in its brain) per source intensity bin, over [0, TOP]; empty
    bins take the nearest filled one, so the mapping extends flat past its data."""

    def __init__(self, bins: int = 256):
        self.n = bins
        self.sums = np.zeros(bins)
        self.counts = np.zeros(bins)

    def _bins(self, source: np.ndarray) -> np.ndarray:
        return np.clip((source * self.n / TOP).astype(int), 0, self.n - 1)

    def add(self, source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> None:
        bins = self._bins(source[mask])
        self.sums += np.bincount(bins, normalize_unit(target, mask)[mask], self.n)
        self.counts += np.bincount(bins, None, self.n)

    def __call__(self, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
        filled = self.counts > 0
        centres = np.arange(self.n)
        table = np.interp(centres, centres[filled], self.sums[filled] / self.counts[filled])
        out = np.zeros(source.shape, dtype=np.float64)
        out[mask] = table[self._bins(source[mask])]
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pairs",
        nargs=2,
        type=Path,
        metavar=("FOLDER_A", "FOLDER_B"),
        help="paired training folders (T1w, T2w; same file names) to fit a mapping on",
    )
    args = parser.parse_args()

    normalisation = load_model(default_model_path()).normalisation
    t1, t2 = load_volume(demo_t1_path()).data, load_volume(demo_t2_path()).data
    mask = load_volume(demo_mask_path()).data > 0
    demo = resources_dir() / "demo"
    gm = load_volume(demo / "icbm152_2009a_gm.nii.gz").data / 255.0
    wm = load_volume(demo / "icbm152_2009a_wm.nii.gz").data / 255.0
    inputs = {"t1-to-t2": model_input(t1, "t1", normalisation), "t2-to-t1": model_input(t2, "t2", normalisation)}
    references = {"t1-to-t2": t2, "t2-to-t1": t1}
    rows: list[tuple[str, dict]] = []

    for direction in ("t1-to-t2", "t2-to-t1"):
        for bins in (256, 1024):
            oracle = VoxelMapping(bins)
            oracle.add(inputs[direction], references[direction], mask)
            prediction = oracle(inputs[direction], mask)
            rows.append(
                (
                    f"{direction}: per-voxel mapping fitted on the demo pair itself, {bins} bins",
                    evaluate_pair(prediction, references[direction], mask),
                )
            )
        rows.append(
            (
                f"{direction}:   the same, scored on the reference's scale",
                {"psnr": psnr(prediction, normalize_unit(references[direction], mask), mask)},
            )
        )
    gre = simulate.spoiled_gradient_echo(simulate.tissue_fractions(gm, wm, mask), **simulate.T1W_1_5T)
    rows.append(("t2-to-t1: reference GRE T1w from the demo's own tissue maps", evaluate_pair(gre, t1, mask)))
    inverted = np.where(mask, 1.0 - normalize_unit(t1, mask), 0.0)
    rows.append(("baseline: 1 - T1w in the brain vs the T2w", evaluate_pair(inverted, t2, mask)))

    if args.pairs:
        learners = {"t1-to-t2": VoxelMapping(), "t2-to-t1": VoxelMapping()}
        heads: dict[str, list[str]] = {}  # head -> its T1w inputs
        for name in sorted(p.name for p in args.pairs[0].iterdir() if is_volume_file(p)):
            heads.setdefault(_head_name(name)[0], []).append(name)
        for names in heads.values():
            names.sort(key=lambda n: _head_name(n)[1])  # the reference scan (no ~TAG) first
        if not heads:
            parser.error(f"{args.pairs[0]} holds no NIfTI volumes")
        for names in heads.values():  # every T1w input is paired with the head's reference T2w
            a_ref = load_volume(args.pairs[0] / names[0]).data
            b = load_volume(args.pairs[1] / names[0]).data
            head_mask = foreground_mask(a_ref) & foreground_mask(b)
            learners["t2-to-t1"].add(model_input(b, "t2", normalisation), a_ref, head_mask)
            for name in names:
                a = a_ref if name == names[0] else load_volume(args.pairs[0] / name).data
                learners["t1-to-t2"].add(model_input(a, "t1", normalisation), b, head_mask)
        for direction, learner in learners.items():
            rows.append(
                (
                    f"{direction}: per-voxel mapping fitted on the pairs in {args.pairs[0].parent.name}/{args.pairs[0].name}",
                    evaluate_pair(learner(inputs[direction], mask), references[direction], mask),
                )
            )

    for label, scores in rows:
        ssim = f"SSIM {scores['ssim']:.3f}" if "ssim" in scores else ""
        print(f"{label:80s} PSNR {scores['psnr']:6.2f} dB  {ssim}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
