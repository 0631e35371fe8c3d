"""DICOM in the main window, driven as a person would: real series written with pydicom from the
demo head, opened from the menu's code path, by a drop and through the series list; saved as a
series; a folder of volumes translated by the Translate panel with the bundled fast model."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest
from dicom_series import SeriesSpec, write_series
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from mri_style_app import paths
from mri_style_app.imaging.volume import load_volume

TIMEOUT_MS = 30_000
SMALL = (64, 64, 24)


@pytest.fixture(scope="module")
def demo():
    if not paths.demo_t1_path().is_file():
        pytest.skip("demo volumes are missing")
    return load_volume(paths.demo_t1_path())


@pytest.fixture
def series_folder(demo, tmp_path):
    """A small oblique sagittal series (2 mm) of the demo head, its files shuffled."""
    folder = tmp_path / "dicom" / "sag"
    write_series(
        folder,
        demo.data,
        demo.affine,
        SeriesSpec(plane="sagittal", tilt=("y", 12.0), size=SMALL, series_number=5, description="T1w sag"),
    )
    return folder


@pytest.fixture
def window(qtbot, tmp_path):
    from mri_style_app.ui.app import MainWindow, _install_panels

    # Recent files go to a settings file in tmp, never the tester's own settings.
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    win = MainWindow()
    _install_panels(win)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    for dialog in (win.last_error_dialog, win.series_dialog, win.translate_panel.report_dialog):
        if dialog is not None:
            dialog.close()
    win.close()  # cancels a folder run that is still going


def wait_loaded(qtbot, window):
    qtbot.waitUntil(lambda: not window.busy_bar.isVisible(), timeout=TIMEOUT_MS)


def wait_error(qtbot, window):
    qtbot.waitUntil(
        lambda: window.last_error_dialog is not None and window.last_error_dialog.isVisible(), timeout=TIMEOUT_MS
    )
    return window.last_error_dialog


def test_open_a_dicom_folder_and_drop_one(window, qtbot, demo, series_folder, tmp_path):
    window.open_files([series_folder])
    wait_loaded(qtbot, window)
    assert window.last_error_dialog is None
    volume = window.current_volume
    expected = load_volume(series_folder)
    assert volume.shape == expected.shape and np.allclose(volume.affine, expected.affine)
    assert np.array_equal(volume.data, expected.data)
    assert window.viewer.volume is volume
    assert window.windowTitle().startswith("T1w_sag")
    status = window.statusBar().currentMessage()
    assert "DICOM series 5 'T1w sag' (24 slices, oblique (near sagittal), 64 x 64)" in status
    assert str(series_folder.resolve()) in window.recent_files()
    recent = [a.text() for a in window.recent_menu.actions()]
    assert str(series_folder.resolve()) in recent

    # A folder dropped on the window opens the same way.
    other = tmp_path / "dropped"
    write_series(other, demo.data, demo.affine, SeriesSpec(size=SMALL))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(other))])
    enter = QDragEnterEvent(
        QPoint(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(window, drop)
    qtbot.waitUntil(lambda: window.current_volume is not volume, timeout=TIMEOUT_MS)
    assert window.current_volume.name == "T1w_test" and window.current_volume.shape == SMALL


def test_the_command_line_opens_a_folder(qtbot, series_folder, tmp_path):
    """`mri-style FOLDER`: the argument reaches create_main_window, which opens it like a file."""
    from mri_style_app.__main__ import _gui_parser
    from mri_style_app.ui.app import create_main_window

    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    args = _gui_parser().parse_args([str(series_folder), "--no-demo"])
    window = create_main_window(args.files, open_demo=not args.no_demo)
    qtbot.addWidget(window)
    qtbot.waitUntil(
        lambda: window.current_volume is not None or window.last_error_dialog is not None, timeout=TIMEOUT_MS
    )
    assert window.last_error_dialog is None and window.current_volume.shape == load_volume(series_folder).shape
    assert window.windowTitle().startswith("T1w_sag")


def test_a_folder_with_two_series_lists_them_and_opens_the_chosen_one(window, qtbot, demo, tmp_path):
    folder = tmp_path / "study"
    write_series(folder, demo.data, demo.affine, SeriesSpec(size=SMALL, series_number=5, description="T1w axial"))
    coronal = write_series(
        folder,
        demo.data,
        demo.affine,
        SeriesSpec(plane="coronal", size=(48, 40, 30), series_number=7, description="T1w coronal"),
        seed=1,
    )
    window.open_files([folder])
    qtbot.waitUntil(lambda: window.series_dialog is not None and window.series_dialog.isVisible(), timeout=TIMEOUT_MS)
    dialog = window.series_dialog
    assert window.current_volume is None  # nothing is loaded until a series is chosen
    table = dialog.table
    assert table.rowCount() == 2
    rows = [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(2)]
    assert rows == [
        ["5", "T1w axial", "24", "axial", "64 x 64", "MR"],
        ["7", "T1w coronal", "30", "coronal", "48 x 40", "MR"],
    ]
    dialog.select_row(1)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Open).click()
    wait_loaded(qtbot, window)
    qtbot.waitUntil(lambda: window.current_volume is not None, timeout=TIMEOUT_MS)
    assert not dialog.isVisible() and window.last_error_dialog is None
    volume = window.current_volume
    expected = load_volume(folder, series=coronal.series_uid)
    assert volume.shape == expected.shape == (48, 30, 40)  # coronal slices: y runs along the slices
    assert np.allclose(volume.affine, expected.affine) and np.array_equal(volume.data, expected.data)
    assert window.windowTitle().startswith("T1w_coronal")

    # Cancel leaves the window as it was.
    window.open_files([folder])
    qtbot.waitUntil(lambda: window.series_dialog is not dialog and window.series_dialog.isVisible(), timeout=TIMEOUT_MS)
    window.series_dialog.reject()
    assert window.current_volume is volume and "Nothing opened" in window.statusBar().currentMessage()


def test_junk_and_a_broken_series_show_the_reason(window, qtbot, series_folder, tmp_path):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "README.txt").write_text("not an image")
    (junk / "data.bin").write_bytes(bytes(range(256)) * 10)
    window.open_files([junk])
    dialog = wait_error(qtbot, window)
    assert f"{junk}: is a folder with no DICOM images (2 other files)" in dialog.text()
    assert "Traceback" not in dialog.text() and window.current_volume is None
    dialog.close()

    # One file of the series cut short: the series would miss a slice, so it is refused.
    victim = sorted(series_folder.iterdir())[3]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    window.open_files([series_folder])
    qtbot.waitUntil(lambda: window.last_error_dialog is not dialog, timeout=TIMEOUT_MS)
    text = wait_error(qtbot, window).text()
    assert str(victim) in text and "truncated or damaged" in text
    assert window.current_volume is None


def test_save_as_dicom_series_keeps_the_geometry(window, qtbot, series_folder, demo_nifti, tmp_path):
    window.open_files([series_folder])
    wait_loaded(qtbot, window)
    source = window.current_volume
    out = tmp_path / "export"
    task = window.save_dicom_series_as(folder=out)
    assert task.wait(30)
    qtbot.waitUntil(lambda: "Saved the DICOM series" in window.statusBar().currentMessage(), timeout=TIMEOUT_MS)
    back = load_volume(out)
    assert back.shape == source.shape and np.allclose(back.affine, source.affine, atol=1e-4)
    assert np.abs(back.data - source.data).max() <= 1e-3 * np.abs(source.data).max()
    header = pydicom.dcmread(sorted(out.iterdir())[0], stop_before_pixels=True)
    assert header.SeriesDescription == "MRI Style export"
    assert header.DerivationDescription == "Exported by MRI Style"
    assert header.PatientID == "MRISTYLE-0001"  # a derived series in the source's study

    # The folder is not empty now: refused, with the reason, and nothing changes.
    window.save_dicom_series_as(folder=out)
    assert "not empty" in wait_error(qtbot, window).text()
    window.last_error_dialog.close()

    # A NIfTI volume becomes a series of its own.
    window.open_files([demo_nifti])
    wait_loaded(qtbot, window)
    task = window.save_dicom_series_as(folder=tmp_path / "from-nifti")
    assert task.wait(30)
    back = load_volume(tmp_path / "from-nifti")
    nifti = window.current_volume
    assert back.shape == nifti.shape and np.allclose(back.affine, nifti.affine, atol=1e-4)


def test_a_translation_saved_as_dicom_says_it_is_synthetic(window, qtbot, series_folder, tmp_path):
    window.open_files([series_folder])
    wait_loaded(qtbot, window)
    panel = window.translate_panel
    panel.model_combo.setCurrentIndex(panel.model_combo.findData(str(paths.fast_model_path())))
    with qtbot.waitSignal(panel.translation_done, timeout=60_000):
        panel.translate()  # the bundled model loads first, then translates
    assert window.active_volume is panel.result
    out = tmp_path / "synthetic"
    assert window.save_dicom_series_as(folder=out).wait(30)
    header = pydicom.dcmread(sorted(out.iterdir())[0], stop_before_pixels=True)
    assert header.SeriesDescription == "Synthetic T2w (MRI Style, t1_t2_fast.safetensors)"
    assert "from the T1w image 'T1w_sag'" in header.DerivationDescription
    assert header.SeriesNumber == 1005 and header.ImageType == ["DERIVED", "SECONDARY"]
    back = load_volume(out)
    assert back.shape == panel.result.shape and np.allclose(back.affine, panel.result.affine, atol=1e-4)


@pytest.fixture
def demo_nifti(demo, tmp_path):
    """A small crop of the demo T1w as NIfTI."""
    image = nib.load(str(paths.demo_t1_path()))
    box = (slice(40, 150), slice(40, 190), slice(80, 100))
    affine = image.affine.copy()
    affine[:3, 3] = image.affine[:3, :3] @ [s.start for s in box] + image.affine[:3, 3]
    path = tmp_path / "crop_T1w.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj)[box], affine), str(path))
    return path


def _use_fast_model(panel):
    panel.model_combo.setCurrentIndex(panel.model_combo.findData(str(paths.fast_model_path())))


def test_translate_a_folder_writes_results_and_a_report(window, qtbot, series_folder, demo_nifti, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.move(series_folder, inputs / "sag")
    shutil.move(demo_nifti, inputs / demo_nifti.name)
    (inputs / "broken.nii.gz").write_bytes(b"this is not a NIfTI file at all")
    out = tmp_path / "results"
    panel = window.translate_panel
    _use_fast_model(panel)
    panel.dicom_checkbox.setChecked(True)
    assert panel.folder_button.isEnabled()
    panel.translate_folder(inputs, out)  # loads the bundled model first, then runs
    qtbot.waitUntil(lambda: panel.report_dialog is not None and panel.report_dialog.isVisible(), timeout=60_000)
    assert len(panel.models) == 1 and panel.task is None
    statuses = {item.source.name: item.status for item in panel.batch_items}
    assert statuses == {"broken.nii.gz": "failed", "crop_T1w.nii.gz": "done", "sag": "done"}
    report = panel.report_dialog.text.toPlainText()
    assert report.splitlines()[-1] == "2 done, 1 failed"
    assert "gzip" in report and str(out / "sag_t2w-synth") in report
    assert "2 done, 1 failed" in panel.status_label.text() and panel.progress_bar.value() == 1000
    for name, source in (("sag_t2w-synth", inputs / "sag"), ("crop_T1w_t2w-synth", inputs / demo_nifti.name)):
        result, original = load_volume(out / name), load_volume(source)
        assert result.shape == original.shape and np.allclose(result.affine, original.affine, atol=1e-4)
        header = pydicom.dcmread(sorted((out / name).iterdir())[0], stop_before_pixels=True)
        assert header.SeriesDescription.startswith("Synthetic T2w")

    # A second run skips what exists, with the same loaded model.
    panel.report_dialog.close()
    panel.translate_folder(inputs, out)
    qtbot.waitUntil(lambda: panel.task is None and panel.report_dialog.isVisible(), timeout=60_000)
    assert [item.status for item in panel.batch_items] == ["failed", "skipped", "skipped"]

    # A folder with nothing to translate says so.
    empty = tmp_path / "empty"
    empty.mkdir()
    panel.translate_folder(empty, out)
    assert "holds no NIfTI files and no DICOM series" in wait_error(qtbot, window).text()


def test_cancel_a_folder_run(window, qtbot, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for n in range(3):
        shutil.copy(paths.demo_t1_path(), inputs / f"sub-0{n}_T1w.nii.gz")
    out = tmp_path / "results"
    panel = window.translate_panel
    _use_fast_model(panel)
    panel.planes_combo.setCurrentText("tri")
    panel.translate_folder(inputs, out)
    qtbot.waitUntil(lambda: panel.task is not None and panel.task.name == "translate folder", timeout=30_000)
    qtbot.waitUntil(lambda: panel.progress_bar.value() > 0, timeout=60_000)
    assert panel.cancel_button.isEnabled() and not panel.folder_button.isEnabled()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: panel.task is None, timeout=30_000)
    statuses = [item.status for item in panel.batch_items]
    assert statuses[-1] == "cancelled" and "done" not in statuses[1:]
    for item in panel.batch_items:
        assert item.output.exists() == (item.status == "done")
    assert "cancelled" in panel.status_label.text()
    assert panel.report_dialog.isVisible() and "cancelled" in panel.report_dialog.text.toPlainText()
    assert panel.folder_button.isEnabled() and not panel.cancel_button.isEnabled()
