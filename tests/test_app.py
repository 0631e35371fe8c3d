"""The main window driven as a person would: real files, real loads on worker threads,
real clicks, the real error dialog, compare mode, 4D, save, and a cold start without torch."""

from __future__ import annotations

import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication
from viewer_helpers import SHAPE, VOXEL_MM, click, coded_volume, write_image

from mri_style_app.imaging.volume import load_volume
from mri_style_app.ui import compare as compare_mod
from mri_style_app.ui.app import MainWindow

LOAD_TIMEOUT_MS = 20_000


@pytest.fixture
def window(qtbot, tmp_path):
    # Recent files go to a settings file in tmp, never the tester's own settings.
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    if win.last_error_dialog is not None:
        win.last_error_dialog.close()


def open_and_wait(qtbot, window, *paths):
    window.open_files(list(paths))
    qtbot.waitUntil(lambda: not window.busy_bar.isVisible(), timeout=LOAD_TIMEOUT_MS)


def test_open_click_and_readouts(window, qtbot, tmp_path):
    path = write_image(tmp_path / "coded_lia.nii.gz", axcodes="LIA")
    seen = []
    window.volume_changed.connect(seen.append)
    open_and_wait(qtbot, window, path)
    volume = window.current_volume
    assert volume is not None and volume.shape == SHAPE and seen == [volume]
    assert "coded_lia" in window.windowTitle()
    assert str(path.resolve()) in window.recent_files()
    viewer = window.viewer
    o = volume.affine[:3, 3]
    click(qtbot, viewer.views["sagittal"], o[1] + 40 * VOXEL_MM[1], o[2] + 3 * VOXEL_MM[2])
    i = (SHAPE[0] - 1) // 2
    assert viewer.crosshair_index() == (i, 40, 3)
    assert viewer.slice_index("coronal") == 40 and viewer.slice_index("axial") == 3
    text = viewer.crosshair_readout.text()
    assert f"value {int(coded_volume()[i, 40, 3])}" in text
    file_index = volume.source_index((i, 40, 3))
    assert file_index == (SHAPE[0] - 1 - i, SHAPE[2] - 1 - 3, 40)  # LIA: x flipped, z flipped, then y
    assert f"voxel {file_index[0]}, {file_index[1]}, {file_index[2]} (file order)" in text


def test_invalid_file_shows_the_error_and_keeps_the_previous_volume(window, qtbot, tmp_path):
    good = write_image(tmp_path / "good.nii.gz")
    open_and_wait(qtbot, window, good)
    before = window.current_volume
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"this is not a NIfTI file at all")
    window.open_files([bad])
    qtbot.waitUntil(
        lambda: window.last_error_dialog is not None and window.last_error_dialog.isVisible(), timeout=LOAD_TIMEOUT_MS
    )
    dialog = window.last_error_dialog
    assert "broken.nii.gz" in dialog.text() and "gzip" in dialog.text()
    assert window.current_volume is before and window.viewer.volume is before
    assert window.viewer.views["axial"].image_item.image is not None
    dialog.close()


def test_four_d_slider_loads_another_volume_off_the_gui_thread(window, qtbot, tmp_path):
    data = np.stack([np.full((12, 14, 10), 10.0 * (n + 1), np.float32) for n in range(3)], axis=-1)
    data[0, 0, 0, :] = 0  # not constant, so the window is not degenerate
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / "series.nii.gz"))
    open_and_wait(qtbot, window, tmp_path / "series.nii.gz")
    viewer = window.viewer
    assert viewer.volume_row.isVisible()
    viewer.set_crosshair_index((3, 4, 5))
    viewer.volume_slider.setValue(2)
    qtbot.waitUntil(lambda: window.current_volume.volume_index == 2, timeout=LOAD_TIMEOUT_MS)
    assert viewer.crosshair_index() == (3, 4, 5)  # same series: the crosshair stays
    assert "value 30" in viewer.crosshair_readout.text()
    assert "[3/3]" in window.windowTitle()


def test_two_files_open_compare_mode(window, qtbot, tmp_path):
    a = write_image(tmp_path / "a.nii.gz")
    data_b = coded_volume() * 0.5 + 7
    b = write_image(tmp_path / "b.nii.gz", data=data_b, axcodes="PSR")
    open_and_wait(qtbot, window, a, b)
    assert window.in_compare_mode()
    compare = window.compare
    assert window.current_volume.name == "a" and compare.right_volume.name == "b"
    assert window.active_volume is compare.right_volume
    o = compare.left_volume.affine[:3, 3]
    click(qtbot, compare.left_view.views["axial"], o[0] + 9 * VOXEL_MM[0], o[1] + 21 * VOXEL_MM[1])
    assert compare.right_view.crosshair_index()[:2] == (9, 21)
    assert f"value {int(data_b[9, 21, (SHAPE[2] - 1) // 2])}" in compare.right_view.crosshair_readout.text()
    compare.set_mode(compare_mod.SHOW_DIFFERENCE)
    diff = compare.right_view.volume
    np.testing.assert_allclose(diff.data, data_b - coded_volume(), rtol=1e-6)
    assert compare.right_view.colormap_name() == "difference"
    lo, hi = compare.right_view.levels()
    assert lo == pytest.approx(-hi)
    compare.set_mode(compare_mod.SHOW_RIGHT)
    assert compare.right_view.volume is compare.right_volume
    compare.opacity_slider.setValue(60)
    overlay = compare.left_view.views["axial"].overlay_item
    assert overlay.isVisible() and overlay.opacity() == pytest.approx(0.6)
    compare.close_button.click()
    assert not window.in_compare_mode() and window.viewer.volume.name == "a"


def test_save_as_writes_the_active_volume_and_never_the_source(window, qtbot, tmp_path):
    source = write_image(tmp_path / "src.nii.gz", axcodes="LPS")
    open_and_wait(qtbot, window, source)
    derived = window.current_volume.with_data(window.current_volume.data + 1, "plus_one")
    window.show_compare(window.current_volume, derived, "plus one")
    out = tmp_path / "out.nii.gz"
    window.save_volume_as(path=out)
    qtbot.waitUntil(lambda: out.exists() and not window.busy_bar.isVisible(), timeout=LOAD_TIMEOUT_MS)
    saved = load_volume(out)
    np.testing.assert_array_equal(saved.data, derived.data)
    assert saved.source_axcodes == "LPS"
    before = source.read_bytes()
    window.save_volume_as(window.current_volume, path=source)
    qtbot.waitUntil(
        lambda: window.last_error_dialog is not None and window.last_error_dialog.isVisible(), timeout=LOAD_TIMEOUT_MS
    )
    assert "never" in window.last_error_dialog.text()
    assert source.read_bytes() == before


def test_drop_screenshot_overlay_guards_and_panels(window, qtbot, tmp_path):
    path = write_image(tmp_path / "dropped.nii.gz")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(
        QPoint(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(window, enter)  # a drop only lands where the drag entered
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(window, drop)
    qtbot.waitUntil(lambda: window.current_volume is not None, timeout=LOAD_TIMEOUT_MS)
    assert window.current_volume.name == "dropped"

    shot = window.save_screenshot(tmp_path / "shot.png")
    assert shot.exists() and shot.stat().st_size > 5000

    error_map = window.current_volume.with_data(np.abs(window.current_volume.data - 100), "error")
    window.set_overlay(error_map, colormap="hot", opacity=0.3)
    assert window.viewer.views["coronal"].overlay_item.isVisible()
    window.set_overlay(None)
    assert not window.viewer.views["coronal"].overlay_item.isVisible()

    from PySide6.QtWidgets import QLabel

    dock_a = window.add_side_panel(QLabel("a"), "Panel A")
    dock_b = window.add_side_panel(QLabel("b"), "Panel B")
    assert window.dockWidgetArea(dock_a) == Qt.DockWidgetArea.RightDockWidgetArea
    qtbot.wait(50)
    assert dock_b in window.tabifiedDockWidgets(dock_a)

    window.close_guards.append(lambda: False)
    assert not window.close() and window.isVisible()
    window.close_guards.clear()
    assert window.close()


COLD_START = """
import sys, time
from mri_style_app.ui.app import create_application, create_main_window
app = create_application()
window = create_main_window([sys.argv[1]])
deadline = time.time() + 30
while window.current_volume is None and time.time() < deadline:
    app.processEvents(); time.sleep(0.01)
print("loaded", window.current_volume is not None, "torch", "torch" in sys.modules, flush=True)
"""


def test_window_with_a_volume_does_not_import_torch(tmp_path, repo_root):
    path = write_image(tmp_path / "plain.nii.gz")
    result = subprocess.run(
        [sys.executable, "-c", COLD_START, str(path)], capture_output=True, text=True, cwd=repo_root, timeout=120
    )
    assert "loaded True torch False" in result.stdout, result.stderr


def test_run_gui_opens_the_demo_and_quits_when_the_window_closes(tmp_path, repo_root):
    """The real entry point on its qasync loop: the window closes itself once the demo is loaded."""
    from mri_style_app import paths

    if not paths.demo_t1_path().exists():
        pytest.skip("demo volume missing")
    script = """
import sys
from PySide6.QtCore import QTimer
from mri_style_app.ui import app as app_mod
original = app_mod.create_main_window
def create(files, open_demo=True):
    window = original(files, open_demo)
    def check():
        if window.current_volume is not None:
            print("demo", window.current_volume.name, flush=True)
            window.close()
        else:
            QTimer.singleShot(50, check)
    QTimer.singleShot(50, check)
    return window
app_mod.create_main_window = create
sys.exit(app_mod.run_gui([], open_demo=True))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=repo_root, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "demo icbm152_2009a_t1w" in result.stdout


def test_compare_view_is_built_while_idle_after_start_up(qtbot, tmp_path):
    """Building the compare view's widgets takes a noticeable moment on the GUI thread: the app
    does it after start-up, so the first translation shows its result at once."""
    from mri_style_app.ui.app import create_main_window

    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    window = create_main_window([], open_demo=False)
    qtbot.addWidget(window)
    assert window.compare is None
    qtbot.waitUntil(lambda: window.compare is not None, timeout=10_000)
    assert not window.in_compare_mode()  # built, not shown
    built = window.compare
    a = write_image(tmp_path / "a.nii.gz")
    b = write_image(tmp_path / "b.nii.gz", data=coded_volume() * 0.5)
    open_and_wait(qtbot, window, a, b)
    assert window.in_compare_mode() and window.compare is built
