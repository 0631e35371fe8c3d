"""TriPlanarView on the offscreen platform, driven with real mouse and key events."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from viewer_helpers import SHAPE, VOXEL_MM, click, coded_volume, drag, hover, view_point, write_image

from mri_style_app.imaging.volume import load_volume
from mri_style_app.ui import display
from mri_style_app.ui.triplanar import TriPlanarView


@pytest.fixture
def viewer(qtbot):
    view = TriPlanarView()
    qtbot.addWidget(view)
    view.resize(1000, 800)
    view.show()
    qtbot.waitExposed(view)
    return view


@pytest.fixture
def las_volume(tmp_path):
    """The coded image stored as LAS (x flipped on disk), so file order differs from RAS."""
    return load_volume(write_image(tmp_path / "las.nii.gz", axcodes="LAS"))


def test_click_in_axial_moves_the_other_views_and_readouts(viewer, las_volume, qtbot):
    viewer.set_volume(las_volume)
    assert viewer.crosshair_index() == tuple((np.array(SHAPE) - 1) // 2)
    layer_origin = las_volume.affine[:3, 3]
    target = (31, 12)  # canonical i (towards patient Right), j (Anterior)
    h = layer_origin[0] + target[0] * VOXEL_MM[0]
    v = layer_origin[1] + target[1] * VOXEL_MM[1]
    click(qtbot, viewer.views["axial"], h, v)
    k = (SHAPE[2] - 1) // 2
    assert viewer.crosshair_index() == (31, 12, k)
    assert viewer.slice_index("sagittal") == 31
    assert viewer.slice_index("coronal") == 12
    assert viewer.slice_index("axial") == k
    # the other views' crosshair lines went to the clicked place
    assert viewer.views["coronal"].v_line.value() == pytest.approx(h)
    assert viewer.views["sagittal"].v_line.value() == pytest.approx(v)
    text = viewer.crosshair_readout.text()
    value = 10000 * 31 + 100 * 12 + k + 1
    assert f"value {value}" in text
    x, y, z = las_volume.world((31, 12, k))
    assert f"x {x:.1f}  y {y:.1f}  z {z:.1f} mm" in text
    # file order: LAS stores x flipped, so the file's first index is 39 - 31
    assert f"voxel {SHAPE[0] - 1 - 31}, 12, {k} (file order)" in text


def test_drag_moves_crosshair_and_hover_reads_the_voxel_under_the_cursor(viewer, las_volume, qtbot):
    viewer.set_volume(las_volume)
    coronal = viewer.views["coronal"]
    o = las_volume.affine[:3, 3]
    start = view_point(coronal, o[0] + 5 * VOXEL_MM[0], o[2] + 5 * VOXEL_MM[2])
    end = view_point(coronal, o[0] + 20 * VOXEL_MM[0], o[2] + 25 * VOXEL_MM[2])
    drag(qtbot, coronal, start, end, Qt.MouseButton.LeftButton)
    i, j, k = viewer.crosshair_index()
    assert (i, k) == (20, 25) and j == (SHAPE[1] - 1) // 2
    hover(coronal, view_point(coronal, o[0] + 3 * VOXEL_MM[0], o[2] + 7 * VOXEL_MM[2]))
    assert f"value {10000 * 3 + 100 * j + 7 + 1}" in viewer.cursor_readout.text()
    assert "Cursor" in viewer.cursor_readout.text()


def test_the_readout_follows_every_mouse_move_even_quick_ones(viewer, las_volume):
    """pyqtgraph's scene drops a move within 10 ms of the last; the readout must not show a stale point."""
    viewer.set_volume(las_volume)
    axial = viewer.views["axial"]
    o = las_volume.affine[:3, 3]
    k = viewer.crosshair_index()[2]
    for i, j in ((4, 6), (9, 13), (17, 2)):  # back to back, well within 10 ms of each other
        hover(axial, view_point(axial, o[0] + i * VOXEL_MM[0], o[1] + j * VOXEL_MM[1]))
    assert f"value {10000 * 17 + 100 * 2 + k + 1}" in viewer.cursor_readout.text()


def test_wheel_keys_and_page_keys_step_slices(viewer, las_volume, qtbot):
    viewer.set_volume(las_volume)
    axial = viewer.views["axial"]
    k0 = viewer.slice_index("axial")
    axial.setFocus()
    qtbot.keyClick(axial, Qt.Key.Key_Up)
    assert viewer.slice_index("axial") == k0 + 1
    qtbot.keyClick(axial, Qt.Key.Key_PageDown)
    assert viewer.slice_index("axial") == k0 + 1 - 5
    for _ in range(100):  # clipped at the last slice
        viewer.step_slice("axial", 1)
    assert viewer.slice_index("axial") == SHAPE[2] - 1
    assert viewer.crosshair_index()[:2] == tuple((np.array(SHAPE[:2]) - 1) // 2)


def test_right_drag_changes_window_and_level_like_itk_snap(viewer, las_volume, qtbot):
    viewer.set_volume(las_volume)
    lo, hi = viewer.levels()
    assert (lo, hi) == pytest.approx(display.auto_window(las_volume.data))
    axial = viewer.views["axial"]
    centre = axial.viewport().rect().center()
    # horizontal drag to the right: wider window, same level
    drag(qtbot, axial, centre, centre + type(centre)(120, 0), Qt.MouseButton.RightButton)
    lo2, hi2 = viewer.levels()
    assert hi2 - lo2 > (hi - lo) * 1.05
    assert (lo2 + hi2) / 2 == pytest.approx((lo + hi) / 2, rel=1e-3)
    # vertical drag upwards: lower level (brighter), same width
    drag(qtbot, axial, centre, centre + type(centre)(0, -80), Qt.MouseButton.RightButton)
    lo3, hi3 = viewer.levels()
    assert (lo3 + hi3) / 2 < (lo2 + hi2) / 2
    assert hi3 - lo3 == pytest.approx(hi2 - lo2, rel=1e-3)
    # the three views share the one LUT's levels
    for view in viewer.views.values():
        assert tuple(view.image_item.levels) == pytest.approx((lo3, hi3))
    viewer.auto_window()
    assert viewer.levels() == pytest.approx((lo, hi))


def test_colormaps_reach_all_three_views(viewer, las_volume):
    viewer.set_volume(las_volume)
    for name in display.COLORMAP_NAMES:
        viewer.set_colormap(name)
        expected = display.lookup_table(name)
        for view in viewer.views.values():
            lut = view.image_item.lut
            assert lut.shape[0] == 256
            # ends of the table match the colormap's ends
            assert np.abs(lut[[0, -1], :3].astype(int) - expected[[0, -1], :3].astype(int)).max() <= 2
    assert viewer.colormap_combo.currentText() == "viridis"


def _bright_column_side(slice_view) -> str:
    """Which half of the grabbed view holds the brightest column of pixels."""
    image = slice_view.grab().toImage()
    w, h = image.width(), image.height()
    ptr = image.constBits()
    pixels = np.frombuffer(ptr, dtype=np.uint8).reshape(h, image.bytesPerLine())[:, : w * 4]
    grey = pixels.reshape(h, w, 4)[..., :3].astype(int).sum(axis=2)
    column = int(np.argmax(grey.sum(axis=0)))
    return "left" if column < w / 2 else "right"


def test_radiological_shows_patient_right_on_the_screen_left(viewer, tmp_path, qtbot):
    data = np.zeros(SHAPE, np.float32)
    data[SHAPE[0] - 6 : SHAPE[0] - 2, :, :] = 100.0  # a slab at patient Right (+x, high canonical i)
    data[SHAPE[0] // 2, SHAPE[1] // 2, SHAPE[2] // 2] = 1.0
    volume = load_volume(write_image(tmp_path / "right.nii.gz", data=data, axcodes="LPI"))
    viewer.set_volume(volume)
    viewer.set_crosshair_index((5, 5, 5))  # crosshair lines far from the slab
    axial, coronal = viewer.views["axial"], viewer.views["coronal"]
    qtbot.wait(20)
    assert axial.letters["left"].text() == "R" and axial.letters["right"].text() == "L"
    assert _bright_column_side(axial) == "left"
    assert _bright_column_side(coronal) == "left"
    viewer.set_radiological(False)
    qtbot.wait(20)
    assert axial.letters["left"].text() == "L" and coronal.letters["right"].text() == "R"
    assert _bright_column_side(axial) == "right"
    assert viewer.views["sagittal"].letters["left"].text() == "A"
    assert axial.letters["top"].text() == "A" and coronal.letters["top"].text() == "S"


def test_true_physical_aspect_for_anisotropic_voxels(viewer, las_volume, qtbot):
    viewer.set_volume(las_volume)
    coronal = viewer.views["coronal"]
    image_rect = coronal.image_item.mapRectToView(coronal.image_item.boundingRect())
    top_left = view_point(coronal, image_rect.left(), image_rect.top())
    bottom_right = view_point(coronal, image_rect.right(), image_rect.bottom())
    width, height = abs(bottom_right.x() - top_left.x()), abs(bottom_right.y() - top_left.y())
    # coronal shows x (40 voxels of 1 mm) across and z (30 voxels of 2.5 mm) up: 40 mm x 75 mm
    assert width > 100
    assert height / width == pytest.approx(75 / 40, rel=0.02)


def test_overlay_and_linked_views(qtbot, las_volume):
    left, right = TriPlanarView(), TriPlanarView()
    for view in (left, right):
        qtbot.addWidget(view)
        view.resize(800, 600)
        view.show()
    doubled = las_volume.with_data(las_volume.data * 2, "doubled")
    left.set_volume(las_volume)
    right.set_volume(doubled)
    left.link(right)
    left.set_crosshair_index((3, 4, 5))
    assert right.crosshair_index() == (3, 4, 5)
    right.step_slice("sagittal", 2)
    assert left.crosshair_index() == (5, 4, 5)
    left.views["axial"].view_box.setRange(xRange=(0, 10), yRange=(0, 10), padding=0)
    assert right.views["axial"].view_box.viewRange()[0] == pytest.approx(left.views["axial"].view_box.viewRange()[0])
    left.set_overlay(doubled, colormap="hot", opacity=0.4)
    overlay = left.views["axial"].overlay_item
    assert overlay.isVisible() and overlay.opacity() == pytest.approx(0.4)
    np.testing.assert_array_equal(overlay.image, doubled.data[:, :, 5])
    left.set_overlay(None)
    assert not overlay.isVisible()


def test_coded_volume_is_what_the_views_show(viewer, las_volume):
    viewer.set_volume(las_volume)
    viewer.set_crosshair_index((7, 8, 9))
    np.testing.assert_array_equal(viewer.views["axial"].image_item.image, coded_volume()[:, :, 9])
    np.testing.assert_array_equal(viewer.views["coronal"].image_item.image, coded_volume()[:, 8, :])
    np.testing.assert_array_equal(viewer.views["sagittal"].image_item.image, coded_volume()[7, :, :])


def _wheel(slice_view, steps: int, modifiers=Qt.KeyboardModifier.NoModifier):
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    viewport = slice_view.viewport()
    centre = QPointF(viewport.rect().center())
    event = QWheelEvent(
        centre,
        QPointF(viewport.mapToGlobal(centre.toPoint())),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(viewport, event)


def test_wheel_pages_slices_and_ctrl_wheel_zooms(viewer, las_volume):
    viewer.set_volume(las_volume)
    sagittal = viewer.views["sagittal"]
    i0 = viewer.slice_index("sagittal")
    _wheel(sagittal, 1)
    assert viewer.slice_index("sagittal") == i0 + 1
    _wheel(sagittal, -1)
    _wheel(sagittal, -1)
    assert viewer.slice_index("sagittal") == i0 - 1
    width_before = np.diff(sagittal.view_box.viewRange()[0])[0]
    _wheel(sagittal, 2, Qt.KeyboardModifier.ControlModifier)
    assert np.diff(sagittal.view_box.viewRange()[0])[0] < width_before * 0.95
    assert viewer.slice_index("sagittal") == i0 - 1  # zooming does not page
    viewer.reset_view()
    assert np.diff(sagittal.view_box.viewRange()[0])[0] == pytest.approx(width_before, rel=0.01)
