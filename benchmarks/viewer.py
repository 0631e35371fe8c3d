"""Viewer speed: open to first picture, crosshair move to three views repainted, cold start.

    .venv/bin/python benchmarks/viewer.py [--moves 200] [--skip-cold-start]

Runs offscreen. Figures are wall-clock on this machine; every repaint is forced with
QWidget.repaint() (a synchronous paint of the three views), so nothing is left pending.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402


def synthetic_head(shape, seed=0) -> np.ndarray:
    """A smooth ellipsoid 'head' with noise: realistic histogram and compressibility."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape], indexing="ij")
    r = np.sqrt(sum((g / 0.8) ** 2 for g in grids))
    data = np.where(r < 1, 400 + 300 * np.cos(6 * r), 0).astype(np.float32)
    data += rng.normal(0, 20, size=shape).astype(np.float32) * (r < 1)
    return np.clip(data, 0, None).astype(np.int16)


def write_volume(path: Path, shape) -> Path:
    nib.save(nib.Nifti1Image(synthetic_head(shape), np.diag([1.0, 1.0, 1.2, 1.0])), str(path))
    return path


def open_to_first_picture(path: Path) -> float:
    """ms from asking the main window to open a file until the three views are painted."""
    from PySide6.QtWidgets import QApplication

    from mri_style_app.ui.app import MainWindow, create_application

    create_application()
    window = MainWindow()
    window.resize(1280, 860)
    window.show()
    QApplication.processEvents()
    start = time.perf_counter()
    window.open_files([path])
    while window.current_volume is None:
        QApplication.processEvents()
        time.sleep(0.001)
    for view in window.viewer.views.values():
        view.repaint()
    elapsed = (time.perf_counter() - start) * 1000
    window.close()
    return elapsed


def crosshair_moves(path: Path, moves: int) -> tuple[float, float]:
    """(median, p95) ms for one crosshair move with all three views repainted."""
    from PySide6.QtWidgets import QApplication

    from mri_style_app.imaging.volume import load_volume
    from mri_style_app.ui.triplanar import TriPlanarView

    view = TriPlanarView()
    view.resize(1280, 860)
    view.show()
    view.set_volume(load_volume(path))
    QApplication.processEvents()
    rng = np.random.default_rng(1)
    shape = np.array(view.volume.shape)
    times = []
    for _ in range(moves):
        target = rng.integers(0, shape)  # a new slice in all three views
        start = time.perf_counter()
        view.set_crosshair_index(target)
        for slice_view in view.views.values():
            slice_view.repaint()
        times.append((time.perf_counter() - start) * 1000)
    view.close()
    return float(np.median(times)), float(np.percentile(times, 95))


COLD_START = """
import time, sys
from mri_style_app.ui.app import create_application, create_main_window
app = create_application()
window = create_main_window([], open_demo=False)
app.processEvents()
print("shown", "torch" in sys.modules, flush=True)
"""


def cold_start() -> tuple[float, bool]:
    """Seconds from starting a fresh Python until the main window is shown (the child's first
    line, not its exit); and whether torch was imported by then."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", COLD_START],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    line = child.stdout.readline()
    elapsed = time.perf_counter() - start
    _, err = child.communicate(timeout=120)
    if not line.startswith("shown"):
        raise RuntimeError(f"the window did not show:\n{err}")
    return elapsed, line.split()[1] == "True"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moves", type=int, default=200)
    parser.add_argument("--skip-cold-start", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big = write_volume(Path(tmp) / "head_256x256x180.nii.gz", (256, 256, 180))
        cube = write_volume(Path(tmp) / "head_256cubed.nii.gz", (256, 256, 256))
        print(f"open 256x256x180 .nii.gz to first picture: {open_to_first_picture(big):.0f} ms")
        median, p95 = crosshair_moves(cube, args.moves)
        print(
            f"crosshair move, 3 views repainted (256^3, {args.moves} moves): "
            f"median {median:.1f} ms, p95 {p95:.1f} ms (goal: median < 10 ms)"
        )
    if not args.skip_cold_start:
        runs = [cold_start() for _ in range(5)]
        best = min(t for t, _ in runs)
        print(
            f"cold start to main window shown: {best:.2f} s (best of 5; goal < 2 s); "
            f"torch imported: {any(t for _, t in runs)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
