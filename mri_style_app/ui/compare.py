"""Compare mode: two tri-planar views side by side with linked crosshair, zoom and pan,
a difference view (right - left) and an overlay of the right volume on the left one."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from mri_style_app.imaging.volume import Volume
from mri_style_app.ui import display
from mri_style_app.ui.triplanar import TriPlanarView

SHOW_RIGHT, SHOW_DIFFERENCE = 0, 1


class CompareView(QWidget):
    """Left and right TriPlanarViews; the right one shows the right volume or the difference."""

    close_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.left_volume: Volume | None = None
        self.right_volume: Volume | None = None
        self.difference: Volume | None = None
        self.right_title = ""
        self._right_colormap = "grey"

        self.left_view = TriPlanarView()
        self.right_view = TriPlanarView()
        self.left_view.link(self.right_view)
        self.left_view.radiologicalChanged.connect(self.right_view.set_radiological)
        self.right_view.radiologicalChanged.connect(self.left_view.set_radiological)

        bar = QHBoxLayout()
        bar.setContentsMargins(6, 2, 6, 2)
        self.left_title_label = QLabel()
        self.left_title_label.setStyleSheet("font-weight: bold;")
        # Long file names are clipped (the tooltip has them whole) rather than widening the window.
        self.left_title_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar.addWidget(self.left_title_label, 1)
        bar.addWidget(QLabel("Overlay right on left"))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(0)
        self.opacity_slider.setFixedWidth(100)
        self.opacity_slider.setToolTip("Opacity of the right volume drawn over the left one (0: off)")
        self.opacity_slider.valueChanged.connect(self._opacity_changed)
        bar.addWidget(self.opacity_slider)
        self.opacity_label = QLabel("0 %")
        self.opacity_label.setMinimumWidth(40)
        bar.addWidget(self.opacity_label)
        bar.addSpacing(20)
        bar.addWidget(QLabel("Right view"))
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(["volume", "difference (right − left)"])
        self.mode_combo.currentIndexChanged.connect(self.set_mode)
        bar.addWidget(self.mode_combo)
        bar.addSpacing(20)
        self.close_button = QPushButton("Back to single view")
        self.close_button.clicked.connect(self.close_requested)
        bar.addWidget(self.close_button)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.left_view)
        splitter.addWidget(self.right_view)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(splitter, 1)

    def set_volumes(self, left: Volume, right: Volume, right_title: str = "") -> None:
        self.left_volume, self.right_volume = left, right
        self.right_title = right_title or right.name
        self.left_title_label.setText(f"Left: {left.name}    Right: {self.right_title}")
        self.left_title_label.setToolTip(self.left_title_label.text())
        same_grid = left.same_grid(right)
        self.difference = None  # made when first shown
        difference_item = self.mode_combo.model().item(SHOW_DIFFERENCE)
        difference_item.setEnabled(same_grid)
        difference_item.setToolTip("" if same_grid else "The two volumes are not on the same voxel grid")
        self.left_view.set_volume(left)
        self.mode_combo.blockSignals(True)
        self.mode_combo.setCurrentIndex(SHOW_RIGHT)
        self.mode_combo.blockSignals(False)
        self.right_view.set_volume(right)
        self.right_view.set_crosshair_position(self.left_view.crosshair_position())
        self.left_view.set_overlay(right, colormap="hot", opacity=self.opacity_slider.value() / 100)
        self._opacity_changed(self.opacity_slider.value())

    @property
    def mode(self) -> int:
        return self.mode_combo.currentIndex()

    def set_mode(self, mode: int) -> None:
        """SHOW_RIGHT: the right volume; SHOW_DIFFERENCE: right - left in a blue-white-red map."""
        if self.right_volume is None:
            return
        if mode == SHOW_DIFFERENCE and self.difference is None and self.left_volume.same_grid(self.right_volume):
            self.difference = self.right_volume.with_data(
                self.right_volume.data - self.left_volume.data, name=f"{self.right_title} − {self.left_volume.name}"
            )
        if mode == SHOW_DIFFERENCE and self.difference is None:
            mode = SHOW_RIGHT
        if self.mode_combo.currentIndex() != mode:
            self.mode_combo.setCurrentIndex(mode)  # re-enters with the same mode
            return
        view = self.right_view
        if mode == SHOW_DIFFERENCE:
            self._right_colormap = view.colormap_name()
            view.set_volume(self.difference, keep_view=True)
            view.set_colormap(display.DIFFERENCE_COLORMAP)
            view.set_levels(*display.difference_window(self.difference.data))
        else:
            view.set_volume(self.right_volume, keep_view=True)
            if view.colormap_name() == display.DIFFERENCE_COLORMAP:
                view.set_colormap(self._right_colormap)
            view.auto_window()

    def _opacity_changed(self, value: int) -> None:
        self.opacity_label.setText(f"{value} %")
        self.left_view.set_overlay_opacity(value / 100)  # 0 draws nothing
