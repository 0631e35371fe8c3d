"""Score the air that translation keeps around the anatomy (translate.AIR_MARGIN_MM) on data no
run trained on and no figure of docs/default_model.md is measured on:

  - validate_blend.py's held-out cases: synthetic whole heads, the seed train split's brain and
    the demo's ICBM brain under random protocols the sweep does not draw;
  - skull-stripped synthetic heads (make_synthetic_heads.py, seeds no training set, figure or
    validation uses; cut at the brain the way stripping tools cut), reference protocols, scored in
    what the stripping kept: a second anatomy for skull-stripped input, built from Colin27.

Prints mean PSNR per (direction, kind) for each margin, and translate_volume's time on the demo
T1w (median of 3 after a warm-up), in one run.

    .venv/bin/python training/air_margin.py [--model default|fast] [--margins 16 32 48]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_default_model  # noqa: E402
import make_synthetic_heads as synth  # noqa: E402
import validate_blend  # noqa: E402

# make_synthetic_heads.py's training heads draw seed (2025, k), evidence.py's figure head (7, 0),
# validate_blend.py's held-out heads (11, k)
STRIPPED_SEEDS = [(13, k) for k in range(3)]


def stripped_cases() -> list[tuple[str, dict, dict, np.ndarray]]:
    """(kind, source Volume per contrast, reference per contrast, mask) of each stripped head; the
    mask is what the stripping kept (every kept tissue is above 0 in one contrast or both)."""
    from mri_style_app.imaging.volume import Volume

    cases = []
    for t1, t2, affine in synth.reference_heads(STRIPPED_SEEDS, stripped=True):
        arrays = {"t1": t1.astype(np.float32), "t2": t2.astype(np.float32)}
        volumes = {c: Volume(data=a, affine=affine, name=c) for c, a in arrays.items()}
        cases.append(("stripped heads", volumes, arrays, (t1 > 0) | (t2 > 0)))
    return cases


def demo_seconds(model, repeats: int = 3) -> float:
    from mri_style_app import paths
    from mri_style_app.cyclegan.translate import translate_volume
    from mri_style_app.imaging.volume import load_volume

    volume = load_volume(paths.demo_t1_path())
    translate_volume(volume, model, "t1-to-t2", device="cpu")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        translate_volume(volume, model, "t1-to-t2", device="cpu")
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    from mri_style_app.cyclegan import checkpoint as model_files
    from mri_style_app.cyclegan import translate
    from mri_style_app.cyclegan.device import configure_threads

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=tuple(make_default_model.MODELS), default="default")
    parser.add_argument("--margins", type=float, nargs="+", default=[16.0, 32.0, 48.0])
    args = parser.parse_args()
    configure_threads()
    model = model_files.load_model(make_default_model.MODELS[args.model].path)
    cases = validate_blend.held_out_cases() + stripped_cases()
    shipped = translate.AIR_MARGIN_MM
    print(f"{args.model} model; the app's margin: {shipped:g} mm; PSNR (dB), T1w -> T2w / T2w -> T1w")
    try:
        for margin in args.margins:
            translate.AIR_MARGIN_MM = margin
            row = validate_blend.scores(model, cases)
            kinds = dict.fromkeys(kind for kind, *_ in cases)
            text = "; ".join(f"{kind} {row[('t1-to-t2', kind)]:.2f} / {row[('t2-to-t1', kind)]:.2f}" for kind in kinds)
            print(f"{margin:g} mm: {text}; demo T1w {demo_seconds(model):.2f} s", flush=True)
    finally:
        translate.AIR_MARGIN_MM = shipped


if __name__ == "__main__":
    main()
