"""docs/screenshots/compare_laptop_1366x768.png: compare mode with the Translate and Training
panels on a 1366 x 768 screen, under a real X server (Xvfb), to check that the window fits.

    QT_QPA_PLATFORM=xcb xvfb-run -s "-screen 0 1366x768x24" .venv/bin/python docs/make_laptop_screenshot.py

(QT_QPA_PLATFORM=xcb: without it the offscreen platform, an 800 x 800 screen, may be chosen.)
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "docs"))

import make_screenshots  # noqa: E402  (its wait_for and settle)

from mri_style_app import paths  # noqa: E402
from mri_style_app.ui.app import create_application, create_main_window  # noqa: E402

OUT = REPO / "docs" / "screenshots" / "compare_laptop_1366x768.png"


def main() -> int:
    app = create_application()
    screen = app.primaryScreen().availableGeometry()
    window = create_main_window([paths.demo_t1_path(), paths.demo_t2_path()])
    make_screenshots.wait_for(lambda: window.current_volume is not None, "the demo volumes", timeout_s=120)
    window.showMaximized()
    make_screenshots.settle(rounds=20)
    frame = window.frameGeometry()
    fits = screen.contains(frame) or (frame.width() <= screen.width() and frame.height() <= screen.height())
    app.primaryScreen().grabWindow(0).save(str(OUT))
    print(
        f"screen {screen.width()}x{screen.height()}, window {frame.width()}x{frame.height()}, "
        f"least {window.minimumSizeHint().width()}x{window.minimumSizeHint().height()}: "
        f"{'fits' if fits else 'does NOT fit'}; wrote {OUT}"
    )
    window.close_guards.clear()
    window.close()
    return 0 if fits else 1


if __name__ == "__main__":
    sys.exit(main())
