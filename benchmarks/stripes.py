"""Slice-to-slice consistency of translation: the stripe index (imaging.metrics.stripe_index) of
each bundled model's T1w -> T2w translation of the real whole-head ch2.nii.gz, with
translate_volume's time, per mode, side by side in one run:

- per slice: axial slices as the network makes them (`smooth_slices=False`), the baseline;
- axial: the default, the same slices evened out across slices (translate.smooth_across_slices);
- tri: axial, coronal and sagittal, voxel-wise median (`--planes tri`).

    .venv/bin/python benchmarks/stripes.py [--volume FILE] [--repeats 3]

1.0 is as smooth across axial slices as the scan itself; a model that translates axial slices one
at a time shows each slice as its own band in the sagittal and coronal views. The demo T1w's
times follow (translate_volume's speed goal is set on it). Each time is the median of the
repeats, the modes interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mri_style_app.cyclegan import checkpoint as model_files  # noqa: E402
from mri_style_app.cyclegan.seed_slices import MRICRON  # noqa: E402
from mri_style_app.cyclegan.translate import translate_volume  # noqa: E402
from mri_style_app.imaging.metrics import stripe_index  # noqa: E402
from mri_style_app.imaging.volume import load_volume  # noqa: E402
from mri_style_app.paths import bundled_models, demo_t1_path  # noqa: E402

MODES = {
    "per slice": {"planes": "axial", "smooth_slices": False},
    "axial": {"planes": "axial"},
    "tri": {"planes": "tri"},
}


def timed_modes(source, model, repeats: int) -> dict[str, tuple[float, object]]:
    """{mode: (median seconds, last result)}, the modes interleaved repeat by repeat."""
    translate_volume(source, model, "t1-to-t2")  # warm-up
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    results = {}
    for _ in range(repeats):
        for mode, options in MODES.items():
            began = time.perf_counter()
            results[mode] = translate_volume(source, model, "t1-to-t2", **options)
            times[mode].append(time.perf_counter() - began)
    return {mode: (statistics.median(times[mode]), results[mode]) for mode in MODES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volume", type=Path, default=MRICRON / "ch2.nii.gz")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    source, demo = load_volume(args.volume), load_volume(demo_t1_path())
    print(f"stripe index of the T1w -> T2w translation of {args.volume.name} {source.data.shape};")
    print(f"seconds of translate_volume on it and on the demo T1w {demo.data.shape} (x: against per slice)")
    print(f"{'model':<28} {'mode':<10} {'stripe index':>13} {'seconds':>8} {'x':>6} {'demo s':>7} {'x':>6}")
    for path in bundled_models().values():
        model = model_files.load_model(path)
        on_volume, on_demo = timed_modes(source, model, args.repeats), timed_modes(demo, model, args.repeats)
        base, demo_base = on_volume["per slice"][0], on_demo["per slice"][0]
        for mode in MODES:
            seconds, result = on_volume[mode]
            demo_seconds = on_demo[mode][0]
            print(
                f"{path.name:<28} {mode:<10} {stripe_index(source.data, result.data):>13.3f} {seconds:>8.2f} "
                f"{seconds / base:>6.2f} {demo_seconds:>7.2f} {demo_seconds / demo_base:>6.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
