"""`mri-style selftest` (also `--selftest`): prove that this installation works end to end.

Opens the demo T1w volume, renders the three views to a picture, translates it to T2w with the
default model and checks the result against the paired demo T2w volume inside the brain mask.
Where the seed slices are at hand (../shared/data/seed-t1-t2 beside a source checkout, or
$MRI_STYLE_SEED_DIR), it also translates their whole-head test split and checks it in the head.
Exit 0 when every step passes, 1 when a check fails, 2 when the bundled resources are missing.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

# Without figures in the model card, the floor below which the translation is called broken.
MIN_SSIM = 0.85
MIN_PSNR_DB = 23.0
# With them: the card's own demo figures, measured when the model was made, less this much. A
# correct installation reproduces them to float rounding; a damaged one falls far below.
SSIM_TOLERANCE = 0.01
PSNR_TOLERANCE_DB = 0.5


DEMO = "demo ICBM pair, brain"
WHOLE_HEAD = "seed test, whole head"


def quality_floor(card: dict, scored_set: str = DEMO) -> tuple[float, float, str]:
    """(min SSIM, min PSNR dB, where they come from) for the T1w -> T2w translation of a set of
    the card's score table."""
    measured = card.get("metrics", {}).get("table", {}).get("model", {}).get(scored_set, {}).get("t1-to-t2", {})
    if isinstance(measured.get("ssim"), (int, float)) and isinstance(measured.get("psnr"), (int, float)):
        return (
            measured["ssim"] - SSIM_TOLERANCE,
            measured["psnr"] - PSNR_TOLERANCE_DB,
            "the model card's figures less a rounding margin",
        )
    return MIN_SSIM, MIN_PSNR_DB, "the default floor"


def add_arguments(parser) -> None:
    parser.add_argument("--model", help="model file to test (default: the bundled default model)")
    parser.add_argument("--keep", metavar="DIR", help="also write the rendered picture and the translation here")


def _step(name: str):
    print(f"selftest: {name} ...", end=" ", flush=True)
    return time.perf_counter()


def _ok(start: float, detail: str = "") -> None:
    print(f"ok ({time.perf_counter() - start:.1f} s){' ' + detail if detail else ''}", flush=True)


def run(args) -> int:
    from mri_style_app import paths
    from mri_style_app.imaging.metrics import evaluate_pair
    from mri_style_app.imaging.volume import VolumeError, load_volume, save_volume

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    model_path = Path(args.model) if args.model else paths.default_model_path()
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)

    t = _step("open the demo volumes")
    try:
        t1 = load_volume(paths.demo_t1_path())
        t2 = load_volume(paths.demo_t2_path())
        mask = load_volume(paths.demo_mask_path()).data > 0
    except VolumeError as exc:
        print(f"\nerror: the bundled demo data are missing or damaged: {exc}", file=sys.stderr)
        return 2
    _ok(t, f"{t1.shape}, {t1.source_axcodes}")

    t = _step("render the three views")
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QApplication

    from mri_style_app.commands.render import render_volume

    app = QApplication.instance() or QApplication([])  # noqa: F841 - keeps Qt alive for the render
    with tempfile.TemporaryDirectory() as tmp:
        picture = render_volume(t1, (keep or Path(tmp)) / "selftest_views.png")
        image = QImage(str(picture))
    grey = [image.pixelColor(x, y).value() for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)]
    if image.isNull() or max(grey) - min(grey) < 50:
        print("\nerror: the rendered views are blank", file=sys.stderr)
        return 1
    _ok(t, f"{image.width()}x{image.height()} px")

    t = _step(f"load the model {model_path.name}")
    from mri_style_app.cyclegan.checkpoint import ModelError, load_model
    from mri_style_app.cyclegan.translate import translate_volume

    try:
        model = load_model(model_path)
    except ModelError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    _ok(t)

    t = _step("translate the demo T1w to T2w")
    predicted = translate_volume(t1, model, "t1-to-t2")
    _ok(t)
    if keep:
        save_volume(predicted, keep / "selftest_t1_to_t2.nii.gz")

    t = _step("compare with the demo T2w in the brain")
    if not _passes(evaluate_pair(predicted.data, t2.data, mask), model.card, DEMO, t):
        return 1

    from mri_style_app.cyclegan import seed_slices
    from mri_style_app.imaging.metrics import head_mask

    if not (seed_slices.default_seed_dir() / "T1").is_dir():
        print(
            f"selftest: whole-head check skipped: no seed slices at {seed_slices.default_seed_dir()} "
            "(set MRI_STYLE_SEED_DIR)"
        )
    else:
        t = _step("translate the seed test split (whole heads) to T2w")
        seed = seed_slices.scoring_volumes()
        predicted = translate_volume(seed["t1"], model, "t1-to-t2")
        _ok(t)
        t = _step("compare with its T2w in the head")
        head = head_mask(seed["t1"].data, seed["t2"].data)
        if not _passes(evaluate_pair(predicted.data, seed["t2"].data, head), model.card, WHOLE_HEAD, t):
            return 1
    print("selftest: passed")
    return 0


def _passes(scores: dict, card: dict, scored_set: str, started: float) -> bool:
    min_ssim, min_psnr, source = quality_floor(card, scored_set)
    passed = scores["ssim"] >= min_ssim and scores["psnr"] >= min_psnr
    print(
        f"{'ok' if passed else 'FAILED'} ({time.perf_counter() - started:.1f} s) SSIM {scores['ssim']:.3f} "
        f"(floor {min_ssim:.3f}), PSNR {scores['psnr']:.2f} dB (floor {min_psnr:.2f}; {source}), "
        f"MAE {scores['mae']:.3f}"
    )
    if not passed:
        print(
            "error: the translation is below the quality floor: the model file or the installation is broken",
            file=sys.stderr,
        )
    return passed
