"""Regenerate docs/screenshots/main_window.png and compare_mode.png from the demo volumes.

    .venv/bin/python docs/make_screenshots.py

Runs offscreen: the real MainWindow opens the demo T1w through its normal (threaded) open
path, then compare mode shows the demo T1w beside the demo T2w.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtWidgets import QApplication  # noqa: E402

from mri_style_app import paths  # noqa: E402
from mri_style_app.ui.app import create_application, create_main_window  # noqa: E402

OUT = REPO / "docs" / "screenshots"
SIZE = (1500, 960)
COMPARE_SIZE = (1920, 1000)
# Crosshair through the ventricles and basal ganglia: familiar anatomy in all three views.
CROSSHAIR_MM = (-12.0, 4.0, 10.0)


def wait_for(condition, what: str = "the demo volume", timeout_s: float = 60.0) -> None:
    """Run the event loop until `condition()` holds (the screenshot scripts share this)."""
    deadline = time.time() + timeout_s
    while not condition():
        if time.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        QApplication.processEvents()
        time.sleep(0.01)


def settle(rounds: int = 5) -> None:
    """Let pending repaints and layouts happen before a grab."""
    for _ in range(rounds):
        QApplication.processEvents()
        time.sleep(0.02)


def main() -> int:
    create_application()
    window = create_main_window([paths.demo_t1_path()])
    window.resize(*SIZE)
    wait_for(lambda: window.current_volume is not None)
    settle()
    window.viewer.reset_view()
    window.viewer.set_crosshair_world(CROSSHAIR_MM)
    settle()
    OUT.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(OUT / "main_window.png"))

    from mri_style_app.imaging.volume import load_volume

    t2 = load_volume(paths.demo_t2_path())
    window.show_compare(window.current_volume, t2, "T2w (demo)")
    compare = window.compare
    compare.opacity_slider.setValue(0)
    window.resize(*COMPARE_SIZE)
    settle()
    for view in (compare.left_view, compare.right_view):
        view.reset_view()
    compare.left_view.set_crosshair_world(CROSSHAIR_MM)
    settle()
    window.grab().save(str(OUT / "compare_mode.png"))
    window.close()
    print(f"wrote {OUT / 'main_window.png'} and {OUT / 'compare_mode.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
