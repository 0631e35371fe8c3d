"""Slice-to-slice consistency of translation: the stripe index (imaging.metrics.stripe_index) of
each bundled model's T1w -> T2w translation of the real whole-head ch2.nii.gz, per plane mode,
with translate_volume's time beside it, in one run.

    .venv/bin/python benchmarks/stripes.py [--planes axial tri]

1.0 is as smooth across axial slices as the scan itself; a model that translates axial slices one
at a time shows each slice as its own band in the sagittal and coronal views.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mri_style_app.cyclegan import checkpoint as model_files  # noqa: E402
from mri_style_app.cyclegan.seed_slices import MRICRON  # noqa: E402
from mri_style_app.cyclegan.translate import translate_volume  # noqa: E402
from mri_style_app.imaging.metrics import stripe_index  # noqa: E402
from mri_style_app.imaging.volume import load_volume  # noqa: E402
from mri_style_app.paths import bundled_models  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--planes", nargs="+", default=["axial", "tri"])
    parser.add_argument("--volume", type=Path, default=MRICRON / "ch2.nii.gz")
    args = parser.parse_args()
    source = load_volume(args.volume)
    print(f"volume: {args.volume.name} {source.data.shape}; stripe index of the T1w -> T2w translation")
    print(f"{'model':<28} {'planes':<7} {'seconds':>8} {'stripe index':>13}")
    for path in bundled_models().values():
        model = model_files.load_model(path)
        translate_volume(source, model, "t1-to-t2")  # warm-up
        for planes in args.planes:
            began = time.perf_counter()
            result = translate_volume(source, model, "t1-to-t2", planes=planes)
            seconds = time.perf_counter() - began
            index = stripe_index(source.data, result.data)
            print(f"{path.name:<28} {planes:<7} {seconds:>8.2f} {index:>13.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
