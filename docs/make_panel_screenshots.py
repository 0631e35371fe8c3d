"""Regenerate docs/screenshots/translate_panel.png, training_wizard.png, and with --pairs or
--validation the data page (training_wizard_data.png) and the model page (training_wizard_model.png).

    .venv/bin/python docs/make_panel_screenshots.py --model MODEL.safetensors --run RUN_FOLDER \
        [--pairs PAIRED_T1W PAIRED_T2W] [--validation VAL_T1W VAL_T2W] [--domains T1_DIR T2_DIR]

Runs offscreen. The real main window opens the demo T1w, the Translate panel translates it
with MODEL (default: the bundled default model) off the GUI thread and scores it against the
demo T2w inside the demo brain mask; then the training wizard opens RUN (a finished
`mri-style train` run folder) to show its real loss curves, samples and diagnosis.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


from mri_style_app import paths  # noqa: E402
from mri_style_app.ui.app import create_application, create_main_window  # noqa: E402

sys.path.insert(0, str(REPO / "docs"))
import make_screenshots  # noqa: E402  (its wait_for and settle)

OUT = REPO / "docs" / "screenshots"
CROSSHAIR_MM = (-12.0, 4.0, 10.0)


def wait_for(condition, what: str) -> None:
    make_screenshots.wait_for(condition, what, timeout_s=600.0)  # a translation takes a while


def settle() -> None:
    make_screenshots.settle(rounds=10)


def wizard_page_screenshots(domains: list[Path], pairs: list[Path] | None, validation: list[Path] | None) -> None:
    """The wizard's data page with the training folders (and pairs, validation pairs) filled in,
    then its model page with the duration estimate of the first choice."""
    from mri_style_app.ui.training_wizard import TrainingWizard

    wizard = TrainingWizard()
    wizard.resize(1100, 860)
    wizard.show()
    page = wizard.data_page
    for side, folder in zip("ab", domains):
        page.set_folder(side, folder)
    for box, folders in ((page.pairs, pairs), (page.validation, validation)):
        if folders:
            box.set_folders(*folders)
    boxes = (page.pairs, page.validation)
    wait_for(lambda: page.isComplete() or any(b.state == "error" for b in boxes), "the data page")
    settle()
    wizard.grab().save(str(OUT / "training_wizard_data.png"))
    print(f"wrote {OUT / 'training_wizard_data.png'}: {[b.summary.text() for b in boxes]}")
    # The estimate times real iterations in a child process, read through asyncio: run the qasync loop.
    import asyncio

    import qasync
    from PySide6.QtWidgets import QApplication

    loop = qasync.QEventLoop(QApplication.instance(), already_running=False)
    asyncio.set_event_loop(loop)
    wizard.next()
    model_page = wizard.model_page

    async def estimated():
        while model_page._key() not in wizard.estimator.cache:
            await asyncio.sleep(0.05)

    loop.run_until_complete(asyncio.wait_for(estimated(), 600))
    settle()
    wizard.grab().save(str(OUT / "training_wizard_model.png"))
    print(f"wrote {OUT / 'training_wizard_model.png'}: {model_page.estimate_label.text()}")
    wizard.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=paths.default_model_path())
    parser.add_argument("--run", type=Path, required=True, help="a finished training run folder")
    parser.add_argument("--planes", default="axial")
    parser.add_argument(
        "--pairs",
        type=Path,
        nargs=2,
        metavar=("PAIRED_T1W", "PAIRED_T2W"),
        help="the wizard's data page with these co-registered folders",
    )
    parser.add_argument(
        "--validation",
        type=Path,
        nargs=2,
        metavar=("VAL_T1W", "VAL_T2W"),
        help="the wizard's data page with these validation folders",
    )
    seed = REPO.parent / "shared" / "data" / "seed-t1-t2"
    parser.add_argument(
        "--domains",
        type=Path,
        nargs=2,
        metavar=("T1_DIR", "T2_DIR"),
        default=[seed / "T1", seed / "T2"],
        help="the data page's training folders",
    )
    args = parser.parse_args()

    create_application()
    window = create_main_window([paths.demo_t1_path()])
    window.resize(1920, 1000)
    wait_for(lambda: window.current_volume is not None, "the demo volume")
    panel = window.translate_panel
    done = {}
    panel.model_loaded.connect(lambda p: done.setdefault("model", p))
    panel.translation_done.connect(lambda v: done.setdefault("result", v))
    panel.load_model_file(args.model)
    wait_for(lambda: "model" in done or window.last_error_dialog is not None, "the model")
    if "model" not in done:
        print(f"error: {window.last_error_dialog.text()}", file=sys.stderr)
        return 2
    panel.set_reference(paths.demo_t2_path(), mask_path=paths.demo_mask_path())
    wait_for(lambda: panel.reference is not None and panel.mask is not None, "the reference")
    panel.planes_combo.setCurrentText(args.planes)
    panel.translate()
    wait_for(lambda: "result" in done, "the translation")
    wait_for(lambda: panel.metrics is not None, "the metrics")
    settle()
    for view in (window.compare.left_view, window.compare.right_view):
        view.reset_view()
    window.compare.left_view.set_crosshair_world(CROSSHAIR_MM)
    settle()
    OUT.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(OUT / "translate_panel.png"))
    print(f"metrics vs demo T2w in the mask: {panel.metrics}")

    wizard = window.training_panel.open_run(args.run)
    wizard.resize(1400, 860)
    wait_for(lambda: wizard.run_page.view.plot.point_count() > 0, "the run's curves")
    wizard.run_page.view.plot.set_log_scale(True)  # shows the adversarial losses' oscillation
    settle()
    wizard.grab().save(str(OUT / "training_wizard.png"))
    print(f"wrote {OUT / 'translate_panel.png'} and {OUT / 'training_wizard.png'}")
    wizard.hide()
    if args.pairs or args.validation:
        wizard_page_screenshots(args.domains, args.pairs, args.validation)
    window.close_guards.clear()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
