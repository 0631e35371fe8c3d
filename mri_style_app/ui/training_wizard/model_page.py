"""Page 2: where to start (the bundled model or random weights), the preset and size, how long
(minutes or iterations), the device, and a duration estimate timed on this computer."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWizardPage

from mri_style_app.cyclegan.presets import DEFAULT_PRESET, PRESETS
from mri_style_app.cyclegan.run_setup import bundled_model
from mri_style_app.cyclegan.time_budget import duration_of, iterations_in
from mri_style_app.ui.help_text import TOOLTIPS
from mri_style_app.ui.training_wizard.run import ESTIMATE_ITERATIONS, DurationEstimate
from mri_style_app.ui.translate_panel import format_seconds

PRESET_NAMES = tuple(PRESETS)


class ModelPage(QWizardPage):
    def __init__(self, estimator: DurationEstimate):
        super().__init__()
        self.setTitle("2. Model and schedule")
        self.setSubTitle(
            "Fine-tuning the bundled model adapts it to your scans in minutes. Bigger "
            "models and images learn finer detail and take longer; the estimate times "
            "real training iterations on this computer."
        )
        self.estimator = estimator
        self.bundled = bundled_model()
        self.start_combo = QComboBox()
        if self.bundled is not None:
            self.start_combo.addItem("The bundled model (fine-tune)", "bundled")
        self.start_combo.addItem("Random weights (a fresh start)", "fresh")
        self.start_combo.setToolTip(TOOLTIPS["start"])
        self.start_note = QLabel("")
        self.start_note.setWordWrap(True)
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(PRESET_NAMES)
        self.preset_combo.setCurrentText(DEFAULT_PRESET)
        self.preset_combo.setToolTip(TOOLTIPS["preset"])
        self.size_spin = QSpinBox()
        self.size_spin.setRange(0, 512)
        self.size_spin.setSingleStep(32)
        self.size_spin.setSpecialValueText("auto: whole slices at their own scale")  # 0
        self.size_spin.setValue(0)
        self.size_spin.setToolTip(TOOLTIPS["size"])
        self.length_combo = QComboBox()
        self.length_combo.addItem("minutes", "minutes")
        self.length_combo.addItem("iterations", "iterations")
        self.minutes_spin = QSpinBox()
        self.minutes_spin.setRange(1, 7 * 24 * 60)
        self.minutes_spin.setValue(20)
        self.minutes_spin.setSingleStep(5)
        self.minutes_spin.setToolTip(TOOLTIPS["minutes"])
        self.iterations_spin = QSpinBox()
        self.iterations_spin.setRange(1, 10_000_000)
        self.iterations_spin.setValue(5000)
        self.iterations_spin.setSingleStep(500)
        self.iterations_spin.setToolTip(TOOLTIPS["iterations"])
        length = QHBoxLayout()
        length.addWidget(self.minutes_spin, 1)
        length.addWidget(self.iterations_spin, 1)
        length.addWidget(self.length_combo)
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cpu", "cuda"])
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.estimate_button = QPushButton("Estimate duration")
        self.estimate_button.clicked.connect(self.estimate)
        form = QFormLayout(self)
        form.addRow("Start from", self.start_combo)
        form.addRow("", self.start_note)
        form.addRow("Preset", self.preset_combo)
        form.addRow("Image size (pixels)", self.size_spin)
        form.addRow("Train for", length)
        form.addRow("Device", self.device_combo)
        form.addRow(self.estimate_button, self.estimate_label)
        # A new choice is timed once the person stops changing it for a moment.
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(800)
        self._debounce.timeout.connect(self.estimate)
        for signal_ in (
            self.preset_combo.currentIndexChanged,
            self.device_combo.currentIndexChanged,
            self.size_spin.valueChanged,
        ):
            signal_.connect(self._choice_changed)
        self.start_combo.currentIndexChanged.connect(self._start_changed)
        self.length_combo.currentIndexChanged.connect(self._length_changed)
        self.iterations_spin.valueChanged.connect(self._show_estimate)
        self.minutes_spin.valueChanged.connect(self._show_estimate)
        estimator.estimated.connect(lambda key, s: self._show_estimate())
        estimator.failed.connect(self._estimate_failed)
        self._start_changed()
        self._length_changed()

    def fine_tune(self) -> bool:
        return self.start_combo.currentData() == "bundled"

    def settings(self) -> dict:
        minutes = self.length_combo.currentData() == "minutes"
        return {
            "preset": self.preset_combo.currentText(),
            "size": self.size_spin.value(),
            "iterations": None if minutes else self.iterations_spin.value(),
            "minutes": self.minutes_spin.value() if minutes else None,
            "device": self.device_combo.currentText(),
            "init_from": str(self.bundled[0]) if self.fine_tune() else None,
        }

    def _start_changed(self, *_) -> None:
        if self.fine_tune():
            # Fine-tuning keeps the bundled model's layers: its preset, nothing else.
            self.preset_combo.setCurrentText(self.bundled[1])
            self.preset_combo.setEnabled(False)
            self.start_note.setText(
                f"Starts from the bundled model ({self.bundled[1]}), which already "
                "translates, and adapts it gently (a tenth of the learning rate) to your "
                "scans: minutes are enough."
            )
        else:
            self.preset_combo.setEnabled(True)
            self.start_note.setText(
                "Starts from random weights: the model must first discover the "
                "contrast inversion from unpaired images, which takes far longer "
                "than fine-tuning (on a 2-core CPU, about 20 minutes before it is usable)."
            )

    def _length_changed(self, *_) -> None:
        minutes = self.length_combo.currentData() == "minutes"
        self.minutes_spin.setVisible(minutes)
        self.iterations_spin.setVisible(not minutes)
        self._show_estimate()

    def _key(self) -> str:
        s = self.settings()
        return self.estimator.key(s["preset"], s["size"], s["device"])

    def initializePage(self) -> None:
        self.estimate()

    def _choice_changed(self, *_) -> None:
        self._show_estimate()
        wizard = self.wizard()
        if wizard is not None and wizard.currentPage() is self:
            self._debounce.start()

    def estimate(self) -> None:
        s = self.settings()
        wizard = self.wizard()
        if self._key() not in self.estimator.cache:
            self.estimate_label.setText(
                f"Timing {ESTIMATE_ITERATIONS} real iterations of this choice on this device..."
            )
        self.estimator.measure(wizard.field("domain_a"), wizard.field("domain_b"), s["preset"], s["size"], s["device"])

    def _show_estimate(self, *_) -> None:
        per_iteration = self.estimator.cache.get(self._key())
        if per_iteration is None:
            if not self.estimator.busy():
                self.estimate_label.setText("Press 'Estimate duration' to time this choice.")
            return
        s = self.settings()
        if s["minutes"]:
            count = iterations_in(s["minutes"] * 60, per_iteration)
            self.estimate_label.setText(
                f"About {per_iteration:.2f} s per iteration here: about {count} "
                f"iterations in {s['minutes']} minutes (the run re-measures as it goes)."
            )
        else:
            total = duration_of(s["iterations"], per_iteration)
            self.estimate_label.setText(
                f"About {per_iteration:.2f} s per iteration here: "
                f"{format_seconds(total)} for {s['iterations']} "
                "iterations (plus start-up and samples)."
            )

    def _estimate_failed(self, key: str, message: str) -> None:
        if key == self._key():
            self.estimate_label.setText(f"Could not time it: {message}")
