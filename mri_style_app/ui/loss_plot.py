"""LossPlot: a training run's loss curves in pyqtgraph, with smoothing and a log scale.

Points arrive in batches (the wizard polls events.jsonl); arrays grow by doubling and the
exponential moving average is extended only over the new points, so an append costs time
in proportion to what was added, and the curves redraw once per batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from mri_style_app.ui.help_text import TOOLTIPS

# Curve name -> the step-event keys it sums, and its pen colour.
CURVES: dict[str, tuple[tuple[str, ...], str]] = {
    "G_A": (("G_A",), "#1f77b4"),
    "G_B": (("G_B",), "#17becf"),
    "D_A": (("D_A",), "#d62728"),
    "D_B": (("D_B",), "#ff7f0e"),
    "cycle": (("cycle_A", "cycle_B"), "#2ca02c"),
    "identity": (("idt_A", "idt_B"), "#9467bd"),
    "paired": (("paired_A", "paired_B"), "#8c564b"),  # only when the run has co-registered pairs
    "structure": (("structure_A", "structure_B"), "#e377c2"),  # only when the structure loss is on
    "anchor": (("anchor_A", "anchor_B"), "#7f7f7f"),  # only in a fine-tune
}
# Validation curve name -> the direction of a "validation" event, and its pen colour.
VALIDATION_CURVES: dict[str, tuple[str, str]] = {
    "T1w->T2w": ("t1-to-t2", "#1f77b4"),
    "T2w->T1w": ("t2-to-t1", "#d62728"),
}
LOG_FLOOR = 1e-6  # a loss of exactly 0 has no logarithm; draw it at this level


def step_values(event: dict) -> dict[str, float]:
    """The curve values of one step event (NaN where a loss is missing or was not finite)."""
    values = {}
    for name, (keys, _) in CURVES.items():
        total = 0.0
        for key in keys:
            v = event.get(key)
            total += math.nan if v is None else float(v)
        values[name] = total
    return values


class _Series:
    """Growable x/y arrays plus their running EMA."""

    def __init__(self):
        self.x = np.empty(256)
        self.y = np.empty(256)
        self.smooth = np.empty(256)
        self.n = 0

    def append(self, xs: np.ndarray, ys: np.ndarray, alpha: float) -> None:
        need = self.n + len(xs)
        if need > len(self.x):
            size = max(need, 2 * len(self.x))
            for attr in ("x", "y", "smooth"):
                grown = np.empty(size)
                grown[: self.n] = getattr(self, attr)[: self.n]
                setattr(self, attr, grown)
        self.x[self.n : need] = xs
        self.y[self.n : need] = ys
        self._ema(self.n, need, alpha)
        self.n = need

    def _ema(self, start: int, stop: int, alpha: float) -> None:
        prev = self.smooth[start - 1] if start > 0 else math.nan
        for i in range(start, stop):
            v = self.y[i]
            if not math.isfinite(v):
                self.smooth[i] = v
                continue
            prev = v if not math.isfinite(prev) else alpha * prev + (1 - alpha) * v
            self.smooth[i] = prev

    def resmooth(self, alpha: float) -> None:
        self._ema(0, self.n, alpha)


class LossPlot(QWidget):
    """The loss curves of a run (G_A, G_B, D_A, D_B, cycle, identity, paired, structure, anchor) with their
    controls, and under them, once the run scores validation pairs, the validation SSIM per direction."""

    points_added = Signal(int)  # how many steps the last append added

    def __init__(self, parent=None):
        super().__init__(parent)
        self._alpha = 0.6
        self._log = False
        self._series = {name: _Series() for name in CURVES}

        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("bottom", "iteration")
        self.plot.setLabel("left", "loss")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.legend = self.plot.addLegend(offset=(-10, 10), labelTextColor="#222", brush=(255, 255, 255, 210))
        self._items: dict[str, pg.PlotDataItem] = {}
        for name, (_, colour) in CURVES.items():
            item = self.plot.plot([], [], pen=pg.mkPen(colour, width=2), name=name)
            item.setClipToView(True)
            item.setDownsampling(auto=True, method="peak")
            self._items[name] = item
        self._label_tooltips()

        # Validation SSIM: its own axis (0-1, higher is better), the same iterations as the losses.
        self.validation_plot = pg.PlotWidget(background="w")
        self.validation_plot.setLabel("bottom", "iteration")
        self.validation_plot.setLabel("left", "validation SSIM")
        self.validation_plot.getAxis("left").enableAutoSIPrefix(False)  # SSIM, not milli-SSIM
        self.validation_plot.showGrid(x=True, y=True, alpha=0.25)
        self.validation_plot.setXLink(self.plot)
        self.validation_plot.setToolTip(TOOLTIPS["validation"])
        self.validation_plot.addLegend(offset=(-10, -10), labelTextColor="#222", brush=(255, 255, 255, 210))
        self._validation: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in VALIDATION_CURVES}
        self._validation_items = {
            name: self.validation_plot.plot(
                [],
                [],
                pen=pg.mkPen(colour, width=2),
                symbol="o",
                symbolSize=5,
                symbolBrush=colour,
                symbolPen=None,
                name=name,
            )
            for name, (_, colour) in VALIDATION_CURVES.items()
        }
        self.validation_plot.hide()  # until the first validation event

        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal)
        self.smoothing_slider.setRange(0, 99)
        self.smoothing_slider.setValue(int(self._alpha * 100))
        self.smoothing_slider.setToolTip(TOOLTIPS["smoothing"])
        self.smoothing_label = QLabel()
        self.smoothing_slider.valueChanged.connect(lambda v: self.set_smoothing(v / 100))
        self.log_checkbox = QCheckBox("Log scale")
        self.log_checkbox.setToolTip(TOOLTIPS["log_scale"])
        self.log_checkbox.toggled.connect(self.set_log_scale)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Smoothing"))
        controls.addWidget(self.smoothing_slider, 1)
        controls.addWidget(self.smoothing_label)
        controls.addWidget(self.log_checkbox)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 3)
        layout.addWidget(self.validation_plot, 2)
        layout.addLayout(controls)
        self._update_smoothing_label()

    # ----- data -------------------------------------------------------------------------
    def add_steps(self, events: Iterable[dict]) -> int:
        """Append the "step" events among `events`; other types are ignored. Returns the count."""
        steps = [e for e in events if e.get("type") == "step"]
        if not steps:
            return 0
        xs = np.array([float(e.get("iteration", 0)) for e in steps])
        rows = [step_values(e) for e in steps]
        for name, series in self._series.items():
            series.append(xs, np.array([r[name] for r in rows]), self._alpha)
        self._redraw()
        self.points_added.emit(len(steps))
        return len(steps)

    def add_validation(self, events: Iterable[dict]) -> int:
        """Append the "validation" events among `events` to the SSIM curves; returns the count."""
        scores = [e for e in events if e.get("type") == "validation"]
        for event in scores:
            for name, (direction, _) in VALIDATION_CURVES.items():
                figures = event.get(direction)
                if isinstance(figures, dict) and figures.get("ssim") is not None:
                    xs, ys = self._validation[name]
                    xs.append(float(event.get("iteration", 0)))
                    ys.append(float(figures["ssim"]))
        if scores:
            self._redraw_validation()
        return len(scores)

    def validation_series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = self._validation[name]
        return np.array(xs), np.array(ys)

    def clear(self) -> None:
        self._series = {name: _Series() for name in CURVES}
        self._validation = {name: ([], []) for name in VALIDATION_CURVES}
        self._redraw()
        self._redraw_validation()

    def _redraw_validation(self) -> None:
        for name, item in self._validation_items.items():
            item.setData(*self._validation[name])
        self.validation_plot.setVisible(any(xs for xs, _ in self._validation.values()))

    def point_count(self) -> int:
        return self._series["G_A"].n

    def series(self, name: str, smoothed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(iterations, values) of one curve: copies, raw unless `smoothed`."""
        s = self._series[name]
        return s.x[: s.n].copy(), (s.smooth if smoothed else s.y)[: s.n].copy()

    def all_series(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Iterations and every raw curve, for the run diagnosis."""
        return self.series("G_A")[0], {name: self.series(name)[1] for name in CURVES}

    # ----- display ----------------------------------------------------------------------
    def set_smoothing(self, alpha: float) -> None:
        """EMA weight of the past: 0 draws the raw losses, 0.99 a slow trend."""
        self._alpha = min(max(float(alpha), 0.0), 0.99)
        if self.smoothing_slider.value() != round(self._alpha * 100):
            self.smoothing_slider.setValue(round(self._alpha * 100))
        for series in self._series.values():
            series.resmooth(self._alpha)
        self._update_smoothing_label()
        self._redraw()

    def set_log_scale(self, on: bool) -> None:
        self._log = bool(on)
        if self.log_checkbox.isChecked() != self._log:
            self.log_checkbox.setChecked(self._log)
        self.plot.setLogMode(y=self._log)
        self._redraw()

    def is_log_scale(self) -> bool:
        return self._log

    def _update_smoothing_label(self) -> None:
        self.smoothing_label.setText(f"{self._alpha:.2f}")

    def _redraw(self) -> None:
        for name, item in self._items.items():
            s = self._series[name]
            y = s.smooth[: s.n]
            if self._log:
                y = np.maximum(y, LOG_FLOOR)  # NaN stays NaN: a gap in the curve
            item.setData(s.x[: s.n], y, connect="finite")
            # A loss this run does not use (identity weight 0, no pairs) is all zeros: not drawn,
            # so it does not stretch a log axis down to the floor.
            used = s.n == 0 or bool(np.any(np.nan_to_num(s.y[: s.n]) != 0))
            item.setVisible(used)
            listed = self.legend.getLabel(item) is not None
            if used and not listed:
                self.legend.addItem(item, name)
                self._label_tooltips()
            elif listed and not used:  # no crossed-out entry for a curve that is not drawn
                self.legend.removeItem(item)

    def _label_tooltips(self) -> None:
        for _, label in self.legend.items:
            label.setToolTip(TOOLTIPS.get(label.text, ""))
