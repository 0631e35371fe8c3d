"""TriPlanarView: axial, coronal and sagittal views of one volume with a linked crosshair,
one shared histogram/LUT, orientation letters and readouts.

Mouse and keys (in every view):
  left click / drag            move the crosshair (the other two views follow)
  right drag                   window/level as in ITK-SNAP: horizontal = window width,
                               vertical = level (up = brighter)
  middle drag, shift+left drag pan
  ctrl+wheel, ctrl+right drag  zoom
  wheel, Up/Down, Left/Right   previous/next slice;  Page Up/Down: 5 slices
  Home                         reset the view (fit the image)
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from mri_style_app.imaging.volume import Volume
from mri_style_app.ui import display
from mri_style_app.ui.display import PLANES, Plane

CROSSHAIR_PEN = (60, 220, 90, 170)
# Translucent backing keeps the text readable over bright tissue.
LETTER_STYLE = (
    "color: #ffcf40; font-weight: bold; font-size: 14px; padding: 0px 3px;"
    "background: rgba(0, 0, 0, 120); border-radius: 3px;"
)
TITLE_STYLE = "color: #e0e0e0; font-size: 12px; padding: 1px 4px; background: rgba(0, 0, 0, 150);"
PAGE_STEP = 5


class SliceViewBox(pg.ViewBox):
    """A ViewBox whose mouse bindings are the viewer's, not pyqtgraph's defaults."""

    pointed = Signal(float, float)  # left click/drag at display (h, v) mm
    window_dragged = Signal(float, float, bool)  # right drag: dx, dy screen px from the start; is_start
    stepped = Signal(int)  # wheel: +1 / -1 slice

    def __init__(self):
        super().__init__(lockAspect=True, invertY=False, enableMenu=False)

    def mouseClickEvent(self, ev):
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            point = self.mapToView(ev.pos())
            self.pointed.emit(point.x(), point.y())
        else:
            ev.accept()  # no context menu: right is window/level

    def mouseDragEvent(self, ev, axis=None):
        button, mods = ev.button(), ev.modifiers()
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and shift):
            # pyqtgraph pans with the left/middle button in PanMode
            super().mouseDragEvent(ev, axis)
        elif button == Qt.MouseButton.LeftButton:
            ev.accept()
            point = self.mapToView(ev.pos())
            self.pointed.emit(point.x(), point.y())
        elif button == Qt.MouseButton.RightButton and ctrl:
            super().mouseDragEvent(ev, axis)  # pyqtgraph zooms with the right button
        elif button == Qt.MouseButton.RightButton:
            ev.accept()
            delta = ev.screenPos() - ev.buttonDownScreenPos(button)
            self.window_dragged.emit(delta.x(), delta.y(), ev.isStart())
        else:
            ev.ignore()

    def wheelEvent(self, ev, axis=None):
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        ev.accept()
        if ev.delta():
            self.stepped.emit(1 if ev.delta() > 0 else -1)


class SliceView(pg.GraphicsView):
    """One plane: the slice image, an optional overlay, the crosshair and edge letters."""

    stepped = Signal(int)
    reset_requested = Signal()
    # Scene position under the mouse, for every move. Not the scene's sigMouseMoved: pyqtgraph
    # rate-limits that one and drops a move that follows another within 10 ms, so the readout
    # could stay on the previous point when the mouse comes to rest.
    hovered = Signal(object)

    def __init__(self, plane: Plane, parent=None):
        super().__init__(parent, background="k")
        self.plane = plane
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.view_box = SliceViewBox()
        self.setCentralItem(self.view_box)
        self.image_item = pg.ImageItem(axisOrder="col-major")
        self.overlay_item = pg.ImageItem(axisOrder="col-major")
        self.overlay_item.setZValue(1)
        self.overlay_item.hide()
        self.view_box.addItem(self.image_item)
        self.view_box.addItem(self.overlay_item)
        pen = pg.mkPen(CROSSHAIR_PEN, width=1)
        self.v_line = pg.InfiniteLine(angle=90, movable=False, pen=pen)
        self.h_line = pg.InfiniteLine(angle=0, movable=False, pen=pen)
        for line in (self.v_line, self.h_line):
            line.setZValue(10)
            self.view_box.addItem(line, ignoreBounds=True)
        self.view_box.stepped.connect(self.stepped)

        self.letters: dict[str, QLabel] = {}
        for edge in ("left", "right", "top", "bottom"):
            self.letters[edge] = self._overlay_label(LETTER_STYLE)
        self.title = self._overlay_label(TITLE_STYLE)

    def _overlay_label(self, style: str) -> QLabel:
        label = QLabel(self)
        label.setStyleSheet(style)
        label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        return label

    def set_letters(self, letters: dict[str, str]) -> None:
        for edge, text in letters.items():
            self.letters[edge].setText(text)
            self.letters[edge].adjustSize()
        self._place_labels()

    def set_title(self, text: str) -> None:
        if text != self.title.text():
            self.title.setText(text)
            self.title.adjustSize()
            self._place_labels()

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self._place_labels()

    def mouseMoveEvent(self, ev):
        self.hovered.emit(self.mapToScene(ev.position().toPoint()))
        super().mouseMoveEvent(ev)

    def _place_labels(self) -> None:
        if not hasattr(self, "title"):  # pyqtgraph resizes during __init__
            return
        w, h, m = self.width(), self.height(), 4
        for edge, label in self.letters.items():
            lw, lh = label.width(), label.height()
            x = {"left": m, "right": w - lw - m}.get(edge, (w - lw) // 2)
            y = {"top": m, "bottom": h - lh - m}.get(edge, (h - lh) // 2)
            label.move(x, y)
        title_y = h - self.title.height() - m
        bottom = self.letters["bottom"]
        if m + self.title.width() > bottom.x() - m:  # narrow view: lift the title above the letter
            title_y = bottom.y() - self.title.height() - 2
        self.title.move(m, title_y)

    def keyPressEvent(self, ev):
        steps = {
            Qt.Key.Key_Up: 1,
            Qt.Key.Key_Right: 1,
            Qt.Key.Key_Down: -1,
            Qt.Key.Key_Left: -1,
            Qt.Key.Key_PageUp: PAGE_STEP,
            Qt.Key.Key_PageDown: -PAGE_STEP,
        }
        if ev.key() in steps:
            ev.accept()
            self.stepped.emit(steps[ev.key()])
        elif ev.key() == Qt.Key.Key_Home:
            ev.accept()
            self.reset_requested.emit()
        else:
            super().keyPressEvent(ev)


class _Layer:
    """A volume placed in display space: slices by display position, image rects."""

    def __init__(self, volume: Volume):
        self.volume = volume
        self.origin, self.spacing = display.display_grid(volume.affine)
        self.shape = np.array(volume.shape)

    def index_at(self, position) -> np.ndarray:
        """Nearest voxel (may lie outside the grid) at a display position."""
        return np.rint((np.asarray(position, float) - self.origin) / self.spacing).astype(int)

    def inside(self, ijk) -> bool:
        return bool(np.all(np.asarray(ijk) >= 0) and np.all(np.asarray(ijk) < self.shape))

    def position(self, ijk) -> np.ndarray:
        return self.origin + np.asarray(ijk, float) * self.spacing

    def slice(self, plane: Plane, index: int) -> np.ndarray | None:
        """The 2D slice as a view of the volume (no copy), first axis = screen horizontal."""
        if not 0 <= index < self.shape[plane.slice_axis]:
            return None
        key = [slice(None)] * 3
        key[plane.slice_axis] = index
        return self.volume.data[tuple(key)]

    def rect(self, plane: Plane) -> QRectF:
        h, v = plane.h_axis, plane.v_axis
        return QRectF(
            self.origin[h] - self.spacing[h] / 2,
            self.origin[v] - self.spacing[v] / 2,
            self.shape[h] * self.spacing[h],
            self.shape[v] * self.spacing[v],
        )


def _format_value(value: float) -> str:
    value = float(value)
    if value == round(value) and abs(value) < 1e9:  # integer-valued data reads as integers
        return str(int(value))
    return f"{value:.6g}"


class TriPlanarView(QWidget):
    """Three linked views of one volume, plus a side panel with the LUT, readouts and options."""

    crosshairMoved = Signal(object)  # display position (3,) in mm
    levelsChanged = Signal(float, float)
    volumeIndexRequested = Signal(int)  # the 4D slider asks for another volume of the series
    radiologicalChanged = Signal(bool)

    def __init__(self, parent=None, show_file_order: bool = True):
        super().__init__(parent)
        self.show_file_order = show_file_order
        self._layer: _Layer | None = None
        self._overlay: _Layer | None = None
        self._ijk = np.zeros(3, dtype=int)
        self._radiological = True
        self._colormap = "grey"
        self._window_start = (0.0, 1.0)
        self._data_span = 1.0
        self._syncing = False

        self.views = {plane.name: SliceView(plane) for plane in PLANES}
        for view in self.views.values():
            view.view_box.pointed.connect(lambda h, v, view=view: self._pointed(view.plane, h, v))
            view.view_box.window_dragged.connect(self._window_dragged)
            view.stepped.connect(lambda n, view=view: self.step_slice(view.plane.name, n))
            view.reset_requested.connect(self.reset_view)
            view.hovered.connect(lambda pos, view=view: self._hovered(view, pos))

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(3)
        grid.addWidget(self.views["axial"], 0, 0)
        grid.addWidget(self.views["sagittal"], 0, 1)
        grid.addWidget(self.views["coronal"], 1, 0)
        grid.addWidget(self._build_panel(), 1, 1)
        for i in range(2):
            grid.setRowStretch(i, 1)
            grid.setColumnStretch(i, 1)
        self._update_letters()
        self.set_colormap("grey")

    # ----- side panel -------------------------------------------------------------------
    def _build_panel(self) -> QWidget:
        panel = QWidget()
        # Ignored: the grid's equal stretch, not the panel's contents, sizes the rows
        panel.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Ignored)
        outer = QHBoxLayout(panel)
        outer.setContentsMargins(6, 4, 4, 4)
        left = QVBoxLayout()
        outer.addLayout(left, 1)

        self.title_label = QLabel("No volume")
        self.title_label.setStyleSheet("font-weight: bold;")
        # Neither a long file name nor the size line may widen the panel (and the window): both
        # are clipped, their tooltips hold them whole. (Wrapping would let the panel's height
        # follow the text, and the views move under the mouse as the readouts change.)
        self.title_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        left.addWidget(self.title_label)
        self.info_label = QLabel("")
        self.info_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        left.addWidget(self.info_label)

        row = QHBoxLayout()
        row.addWidget(QLabel("Colormap"))
        self.colormap_combo = QComboBox()
        self.colormap_combo.setMinimumContentsLength(8)
        self.colormap_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.colormap_combo.addItems([*display.COLORMAP_NAMES, display.DIFFERENCE_COLORMAP])
        self.colormap_combo.currentTextChanged.connect(self.set_colormap)
        row.addWidget(self.colormap_combo, 1)
        left.addLayout(row)

        self.radiological_check = QCheckBox("Radiological")
        self.radiological_check.setToolTip(
            "Radiological: the patient's right on the screen's left. Off: neurological (the patient's left on the left)"
        )
        self.radiological_check.setChecked(True)
        self.radiological_check.toggled.connect(self.set_radiological)
        left.addWidget(self.radiological_check)

        # One above the other: side by side they set the panel's (and so the window's) least width.
        self.auto_window_button = QPushButton("Auto window")
        self.auto_window_button.clicked.connect(self.auto_window)
        self.reset_view_button = QPushButton("Reset view")
        self.reset_view_button.clicked.connect(self.reset_view)
        left.addWidget(self.auto_window_button)
        left.addWidget(self.reset_view_button)

        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.crosshair_readout = QLabel("")
        self.cursor_readout = QLabel("")
        for label, tip in ((self.crosshair_readout, "At the crosshair"), (self.cursor_readout, "Under the mouse")):
            label.setFont(mono)
            label.setToolTip(tip)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            label.setMinimumHeight(3 * label.fontMetrics().height() + 4)
            label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            left.addWidget(label)

        self.volume_row = QWidget()
        row = QHBoxLayout(self.volume_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.volume_label = QLabel("Volume")
        self.volume_slider = QSlider(Qt.Orientation.Horizontal)
        self.volume_slider.setMinimum(0)
        row.addWidget(self.volume_label)
        row.addWidget(self.volume_slider, 1)
        left.addWidget(self.volume_row)
        self.volume_row.hide()
        # Debounced: dragging through a long series asks for the volume it stops on.
        self._volume_timer = QTimer(self, singleShot=True, interval=150)
        self._volume_timer.timeout.connect(lambda: self.volumeIndexRequested.emit(self.volume_slider.value()))
        self.volume_slider.valueChanged.connect(self._volume_slider_moved)
        left.addStretch(1)

        self.histogram = pg.HistogramLUTItem(fillHistogram=True)
        self.histogram.gradient.showTicks(False)
        self.histogram.sigLevelsChanged.connect(self._levels_from_histogram)
        self.histogram.sigLookupTableChanged.connect(self._lut_from_histogram)
        hist_view = pg.GraphicsView(background=None)
        hist_view.setCentralItem(self.histogram)
        hist_view.setFixedWidth(96)
        hist_view.setFrameShape(QFrame.Shape.NoFrame)
        outer.addWidget(hist_view)
        return panel

    # ----- volume -----------------------------------------------------------------------
    @property
    def volume(self) -> Volume | None:
        return None if self._layer is None else self._layer.volume

    def set_volume(self, volume: Volume, keep_view: bool = False) -> None:
        """Show `volume`. keep_view (another volume of the same series or grid): keep the
        crosshair, zoom, window and colormap; otherwise centre the crosshair and auto-window."""
        old = self._layer
        keep_view = keep_view and old is not None and old.volume.same_grid(volume)
        self._layer = _Layer(volume)
        if not keep_view:
            self._ijk = (np.array(volume.shape) - 1) // 2
        stats = display.volume_stats(volume.data)
        self._data_span = stats.span
        self.histogram.plot.setData(stats.centres, np.log1p(stats.counts))
        self.histogram.setHistogramRange(float(stats.centres[0]), float(stats.centres[-1]), padding=0.02)
        self._update_volume_info()
        self._show_all_slices()
        if not keep_view:
            self.auto_window()
            self.reset_view()
        else:
            self._levels_from_histogram()

    def _update_volume_info(self) -> None:
        volume = self.volume
        self.title_label.setText(volume.name)
        self.title_label.setToolTip(volume.name)
        sizes = " × ".join(f"{s:.3g}" for s in volume.voxel_sizes)
        text = f"{' × '.join(map(str, volume.shape))} voxels\n{sizes} mm"
        if self.show_file_order:
            text += f"\nfile orientation {volume.source_axcodes}"
        self.info_label.setText(text)
        self.info_label.setToolTip(text)
        self.volume_row.setVisible(volume.n_volumes > 1)
        if volume.n_volumes > 1:
            self.volume_slider.blockSignals(True)
            self.volume_slider.setMaximum(volume.n_volumes - 1)
            self.volume_slider.setValue(volume.volume_index)
            self.volume_slider.blockSignals(False)
            self.volume_label.setText(f"Volume {volume.volume_index + 1}/{volume.n_volumes}")

    def _volume_slider_moved(self, value: int) -> None:
        n = self.volume.n_volumes if self.volume else 1
        self.volume_label.setText(f"Volume {value + 1}/{n}")
        self._volume_timer.start()

    # ----- crosshair --------------------------------------------------------------------
    def crosshair_index(self) -> tuple[int, int, int]:
        """The crosshair voxel in canonical RAS order."""
        return tuple(int(v) for v in self._ijk)  # type: ignore[return-value]

    def slice_index(self, plane: str) -> int:
        return int(self._ijk[self.views[plane].plane.slice_axis])

    def crosshair_position(self) -> np.ndarray:
        """The crosshair in display mm (the space linked views share)."""
        return self._layer.position(self._ijk) if self._layer else np.zeros(3)

    def crosshair_world(self) -> np.ndarray:
        return self.volume.world(self._ijk)

    def set_crosshair_index(self, ijk) -> None:
        if self._layer is None:
            return
        new = np.clip(np.asarray(ijk, dtype=int), 0, self._layer.shape - 1)
        if np.array_equal(new, self._ijk):
            return
        changed = new != self._ijk
        self._ijk = new
        self._show_slices(changed)
        if not self._syncing:
            self.crosshairMoved.emit(self.crosshair_position())

    def set_crosshair_position(self, position) -> None:
        if self._layer is not None:
            self.set_crosshair_index(self._layer.index_at(position))

    def set_crosshair_world(self, xyz) -> None:
        if self.volume is not None:
            # Rounded first so that float noise of the affine (the same image stored in another
            # axis order) cannot tip a position half-way between two voxels either way.
            index = np.round(self.volume.index_of(xyz), 3)
            self.set_crosshair_index(np.rint(index).astype(int))

    def step_slice(self, plane: str, steps: int) -> None:
        ijk = self._ijk.copy()
        ijk[self.views[plane].plane.slice_axis] += steps
        self.set_crosshair_index(ijk)

    def _pointed(self, plane: Plane, h: float, v: float) -> None:
        if self._layer is None:
            return
        position = self.crosshair_position()
        position[plane.h_axis], position[plane.v_axis] = h, v
        self.set_crosshair_index(self._layer.index_at(position))

    # ----- drawing ----------------------------------------------------------------------
    def _show_all_slices(self) -> None:
        for view in self.views.values():
            view.image_item.setImage(self._layer.slice(view.plane, self._ijk[view.plane.slice_axis]), autoLevels=False)
            view.image_item.setRect(self._layer.rect(view.plane))
        self._show_slices(np.ones(3, dtype=bool))

    def _show_slices(self, changed_axes: np.ndarray) -> None:
        """Redraw what the crosshair move changed: the slices along the changed axes, all lines."""
        layer, position = self._layer, self.crosshair_position()
        for view in self.views.values():
            plane = view.plane
            if changed_axes[plane.slice_axis]:
                view.image_item.setImage(layer.slice(plane, self._ijk[plane.slice_axis]), autoLevels=False)
                view.set_title(
                    f"{plane.name.capitalize()}  {'xyz'[plane.slice_axis]} = {position[plane.slice_axis]:.1f} mm"
                )
                self._show_overlay_slice(view, position)
            view.v_line.setValue(position[plane.h_axis])
            view.h_line.setValue(position[plane.v_axis])
        self.crosshair_readout.setText(self._readout("Crosshair", self._ijk))

    def _readout(self, title: str, ijk) -> str:
        volume = self.volume
        x, y, z = volume.world(ijk)
        value = volume.data[tuple(ijk)]
        lines = [f"{title:<10} value {_format_value(value)}", f"  x {x:.1f}  y {y:.1f}  z {z:.1f} mm"]
        if self.show_file_order:
            i, j, k = volume.source_index(ijk)
            lines.append(f"  voxel {i}, {j}, {k} (file order)")
        return "\n".join(lines)

    def _hovered(self, view: SliceView, scene_pos) -> None:
        if self._layer is None:
            return
        point = view.view_box.mapSceneToView(scene_pos)
        position = self.crosshair_position()
        position[view.plane.h_axis], position[view.plane.v_axis] = point.x(), point.y()
        ijk = self._layer.index_at(position)
        if self._layer.inside(ijk):
            self.cursor_readout.setText(self._readout("Cursor", ijk))
        else:
            self.cursor_readout.setText("Cursor     outside the volume")

    # ----- window / level and colormap --------------------------------------------------
    def levels(self) -> tuple[float, float]:
        lo, hi = self.histogram.getLevels()
        return float(lo), float(hi)

    def set_levels(self, lo: float, hi: float) -> None:
        self.histogram.setLevels(float(lo), float(hi))

    def auto_window(self) -> None:
        if self.volume is not None:
            self.set_levels(*display.volume_stats(self.volume.data).window)

    def _levels_from_histogram(self, *_) -> None:
        levels = self.levels()
        for view in self.views.values():
            view.image_item.setLevels(levels)
        self.levelsChanged.emit(*levels)

    def _window_dragged(self, dx: float, dy: float, is_start: bool) -> None:
        if is_start:
            self._window_start = self.levels()
        lo, hi = self._window_start
        per_pixel = self._data_span / 500.0
        width = max((hi - lo) + dx * per_pixel, per_pixel)
        level = (hi + lo) / 2 + dy * per_pixel  # dragging up (dy < 0) lowers the level: brighter
        self.set_levels(level - width / 2, level + width / 2)

    def colormap_name(self) -> str:
        return self._colormap

    def set_colormap(self, name: str) -> None:
        self._colormap = name
        self.histogram.gradient.setColorMap(display.colormap(name))  # emits -> _lut_from_histogram
        self.histogram.gradient.showTicks(False)
        if self.colormap_combo.currentText() != name:
            self.colormap_combo.blockSignals(True)
            self.colormap_combo.setCurrentText(name)
            self.colormap_combo.blockSignals(False)

    def _lut_from_histogram(self, *_) -> None:
        lut = self.histogram.gradient.getLookupTable(256, alpha=False)
        for view in self.views.values():
            view.image_item.setLookupTable(lut)

    # ----- orientation and view ---------------------------------------------------------
    @property
    def radiological(self) -> bool:
        return self._radiological

    def set_radiological(self, radiological: bool) -> None:
        """Radiological (patient right on the screen's left) or neurological display."""
        if bool(radiological) == self._radiological:
            return
        self._radiological = bool(radiological)
        if self.radiological_check.isChecked() != self._radiological:
            self.radiological_check.setChecked(self._radiological)
        self._update_letters()
        self.radiologicalChanged.emit(self._radiological)

    def _update_letters(self) -> None:
        for view in self.views.values():
            view.view_box.invertX(display.flips_horizontally(view.plane, self._radiological))
            view.set_letters(display.edge_letters(view.plane, self._radiological))

    def reset_view(self) -> None:
        if self._layer is None:
            return
        for view in self.views.values():
            view.view_box.setRange(rect=self._layer.rect(view.plane), padding=0.02)

    # ----- overlay ----------------------------------------------------------------------
    def set_overlay(
        self,
        volume: Volume | None,
        colormap: str = "hot",
        opacity: float = 0.5,
        levels: tuple[float, float] | None = None,
    ) -> None:
        """Draw `volume` over this one (e.g. an error map); None removes it."""
        self._overlay = None if volume is None else _Layer(volume)
        if volume is not None:
            lut = display.lookup_table(colormap)
            if levels is None:
                levels = (
                    display.difference_window(volume.data)
                    if colormap == display.DIFFERENCE_COLORMAP
                    else display.volume_stats(volume.data).window
                )
            for view in self.views.values():
                view.overlay_item.setLookupTable(lut)
                view.overlay_item.setLevels(levels)
                view.overlay_item.setOpacity(opacity)
        if self._layer is not None:
            position = self.crosshair_position()
            for view in self.views.values():
                self._show_overlay_slice(view, position)

    def set_overlay_opacity(self, opacity: float) -> None:
        for view in self.views.values():
            view.overlay_item.setOpacity(opacity)

    def _show_overlay_slice(self, view: SliceView, position) -> None:
        overlay = self._overlay
        image = None
        if overlay is not None:
            index = overlay.index_at(position)[view.plane.slice_axis]
            image = overlay.slice(view.plane, index)
        if image is None:
            view.overlay_item.hide()
            return
        view.overlay_item.setImage(image, autoLevels=False)
        view.overlay_item.setRect(overlay.rect(view.plane))
        view.overlay_item.show()

    # ----- linking (compare mode) -------------------------------------------------------
    def link(self, other: TriPlanarView) -> None:
        """Share crosshair, zoom and pan with another TriPlanarView (positions in display mm)."""
        self.crosshairMoved.connect(other._follow)
        other.crosshairMoved.connect(self._follow)
        for name, view in self.views.items():
            other.views[name].view_box.setXLink(view.view_box)
            other.views[name].view_box.setYLink(view.view_box)

    def _follow(self, position) -> None:
        self._syncing = True
        try:
            self.set_crosshair_position(position)
        finally:
            self._syncing = False
