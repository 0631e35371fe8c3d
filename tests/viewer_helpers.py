"""Shared by the viewer tests: real NIfTI files written with nibabel, and real mouse input."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from nibabel import orientations as ornt_lib
from PySide6.QtCore import QPointF, Qt

SHAPE = (40, 50, 30)  # canonical RAS voxel grid of the test image
VOXEL_MM = (1.0, 1.2, 2.5)  # anisotropic on purpose


def coded_volume() -> np.ndarray:
    """Every voxel's value says where it is: 10000*i + 100*j + k (canonical RAS indices)."""
    i, j, k = np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij")
    return (10000 * i + 100 * j + k + 1).astype(np.float32)


def ras_affine() -> np.ndarray:
    affine = np.diag([*VOXEL_MM, 1.0])
    affine[:3, 3] = [-20.0, -30.0, -35.0]
    return affine


def reoriented(data: np.ndarray, affine: np.ndarray, axcodes: str):
    """The same world image stored in another axis order (as FSLeyes's orientation tests do)."""
    transform = ornt_lib.ornt_transform(ornt_lib.io_orientation(affine), ornt_lib.axcodes2ornt(axcodes))
    new_data = ornt_lib.apply_orientation(data, transform)
    new_affine = affine @ ornt_lib.inv_ornt_aff(transform, data.shape)
    return np.ascontiguousarray(new_data), new_affine


def write_image(path, data=None, affine=None, axcodes: str = "RAS"):
    data = coded_volume() if data is None else data
    affine = ras_affine() if affine is None else affine
    if axcodes != "RAS":
        data, affine = reoriented(data, affine, axcodes)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def view_point(slice_view, h: float, v: float):
    """Viewport pixel of a display position (mm) in one SliceView."""
    scene = slice_view.view_box.mapViewToScene(QPointF(h, v))
    return slice_view.mapFromScene(scene)


def click(qtbot, slice_view, h: float, v: float, button=Qt.MouseButton.LeftButton):
    qtbot.mouseClick(slice_view.viewport(), button, pos=view_point(slice_view, h, v))


def drag(qtbot, slice_view, start, end, button, steps: int = 6):
    """Press, move in steps, release: a real drag through the view's viewport."""
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    viewport = slice_view.viewport()

    def send(kind, point, buttons):
        pos = QPointF(point)
        event = QMouseEvent(
            kind, pos, QPointF(viewport.mapToGlobal(point)), button, buttons, Qt.KeyboardModifier.NoModifier
        )
        QApplication.sendEvent(viewport, event)

    send(QMouseEvent.Type.MouseButtonPress, start, button)
    for n in range(1, steps + 1):
        point = QPoint(start.x() + (end.x() - start.x()) * n // steps, start.y() + (end.y() - start.y()) * n // steps)
        send(QMouseEvent.Type.MouseMove, point, button)
        qtbot.wait(5)
    send(QMouseEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)


def hover(slice_view, point) -> None:
    """A mouse move with no button, sent to the view's viewport itself.

    Not QTest.mouseMove: that moves the global cursor, and on the offscreen platform every
    window sits at the same place, so a window another test left behind may get the move.
    """
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    viewport = slice_view.viewport()
    event = QMouseEvent(
        QMouseEvent.Type.MouseMove,
        QPointF(point),
        QPointF(viewport.mapToGlobal(point)),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(viewport, event)
