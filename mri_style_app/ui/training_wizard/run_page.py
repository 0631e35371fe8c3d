"""Page 4: the live run: curves, validation SSIM, samples, progress, diagnosis, Stop / Resume /
Use this model."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from mri_style_app.cyclegan.run_setup import train_command
from mri_style_app.ui.help_text import HELP_HTML, diagnose_run
from mri_style_app.ui.loss_plot import LossPlot
from mri_style_app.ui.training_wizard.run import TrainingRun
from mri_style_app.ui.translate_panel import format_seconds


class RunView(QWidget):
    """The run page's body: curves, latest samples, progress, diagnosis, help, Stop/Resume."""

    use_model_requested = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.run: TrainingRun | None = None
        self._sample: QPixmap | None = None  # the latest sample grid, at full size
        self.plot = LossPlot()
        self.sample_label = QLabel("Samples appear here as training runs")
        self.sample_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sample_label.setMinimumSize(240, 160)
        # Ignored: the layout sizes the label and the pixmap follows (not the other way round).
        self.sample_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.sample_label.setToolTip(
            "Top: real T1, fake T2, T1 reconstructed from the fake T2. Bottom: the same starting from a real T2."
        )
        self.sample_caption = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_label = QLabel("")
        self.diagnosis_label = QLabel("")
        self.diagnosis_label.setWordWrap(True)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(500)
        self.log_view.setMaximumHeight(90)
        self.log_view.hide()  # until the trainer prints something
        self.folder_label = QLabel("")
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Write a checkpoint and stop; Resume continues from it")
        self.stop_button.clicked.connect(self.stop)
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(self.resume)
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Load the finished model into the Translate panel")
        self.use_button.clicked.connect(self._use_model)
        self.help_view = QTextBrowser()
        self.help_view.setHtml(HELP_HTML)

        buttons = QHBoxLayout()
        for button in (self.stop_button, self.resume_button, self.use_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        left = QVBoxLayout()
        left.addWidget(self.folder_label)
        left.addWidget(self.plot, 3)
        left.addWidget(self.diagnosis_label)
        left.addWidget(self.progress_bar)
        left.addWidget(self.progress_label)
        left.addLayout(buttons)
        left.addWidget(self.log_view)
        right = QVBoxLayout()
        right.addWidget(QLabel("<b>Latest samples</b>"))
        right.addWidget(self.sample_label, 2)
        right.addWidget(self.sample_caption)
        right.addWidget(QLabel("<b>Help</b>"))
        right.addWidget(self.help_view, 3)
        left_widget, right_widget = QWidget(), QWidget()
        left_widget.setLayout(left)
        right_widget.setLayout(right)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left_widget)
        splitter.addWidget(right_widget)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._update_buttons()

    def attach(self, run: TrainingRun) -> None:
        if self.run is not None:
            self.run.new_events.disconnect(self._on_events)
        self.run = run
        self.plot.clear()
        self.log_view.clear()
        self.use_button.setMenu(None)
        self.folder_label.setText(f"Run folder: {run.run_dir}")
        run.new_events.connect(self._on_events)
        run.restarted.connect(self.plot.clear)
        run.output.connect(self._on_output)
        run.exited.connect(self._on_exit)
        self._update_buttons()

    def _on_output(self, line: str) -> None:
        self.log_view.show()
        self.log_view.appendPlainText(line)

    def _on_events(self, new: list[dict]) -> None:
        self.plot.add_steps(new)
        self.plot.add_validation(new)
        for event in new:
            if event.get("type") == "sample" and event.get("path"):
                self._show_sample(self.run.run_dir / event["path"], int(event.get("iteration", 0)))
            elif event.get("type") == "error":
                self.diagnosis_label.setText(
                    f"<span style='color:#b00'>Training stopped with an error: {event.get('message')}</span>"
                )
        self._show_progress()
        if self.run.error is None:
            self._show_diagnosis()
        self._update_buttons()

    def _show_sample(self, path: Path, iteration: int) -> None:
        pixmap = QPixmap(str(path))
        if pixmap.isNull():
            return
        self._sample = pixmap
        self._fit_sample()
        self.sample_caption.setText(f"Iteration {iteration}: real / translated / round trip")

    def _fit_sample(self) -> None:
        if self._sample is not None:
            self.sample_label.setPixmap(
                self._sample.scaled(
                    self.sample_label.width(),
                    self.sample_label.height(),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_sample()

    def _show_progress(self) -> None:
        run = self.run
        total = run.total_iterations
        if total:
            self.progress_bar.setValue(int(1000 * min(run.last_iteration / total, 1.0)))
        text = f"Iteration {run.last_iteration}" + (f" of {total}" if total else "")
        if run.finished_model is not None:
            text += ": finished"
        elif run.is_running():
            left = run.seconds_left()
            if left is not None:
                text += f", about {format_seconds(left)} left"
        self.progress_label.setText(text)

    def _show_diagnosis(self) -> None:
        iterations, series = self.plot.all_series()
        run = self.run
        findings = diagnose_run(
            iterations, series, fine_tune=run is not None and run.fine_tune, adversarial=run is None or run.adversarial
        )
        colours = {"ok": "#080", "warning": "#b50", "info": "#444"}
        lines = [f"<span style='color:{colours[f.level]}'>{f.message}</span>" for f in findings]
        contrast = run.diagnosis() if run is not None else None
        if contrast:  # the validation pairs outrank the curves: put it first
            lines.insert(0, f"<span style='color:{colours['warning']}'>Not learning: {contrast}.</span>")
        elif run is not None and run.best is not None:
            lines.insert(
                0,
                f"<span style='color:{colours['info']}'>Best validation SSIM so far: "
                f"{run.best[1]:.3f} at iteration {run.best[0]}.</span>",
            )
        self.diagnosis_label.setText("<br>".join(lines))

    def _on_exit(self, code: int) -> None:
        run = self.run
        if run.finished_model is not None:
            self.diagnosis_label.setText(
                self.diagnosis_label.text() + "<br><b>Training finished.</b> "
                "Press 'Use this model' to translate with it."
            )
        elif run.stopped or code == 0:
            self.progress_label.setText(
                f"Stopped at iteration {run.last_iteration}; Resume continues from the last checkpoint."
            )
        else:
            tail = run.error or "see the log above"
            self.progress_label.setText(f"Training ended with status {code}: {tail}")
        self._update_buttons()

    def _update_buttons(self) -> None:
        run = self.run
        running = run is not None and run.is_running()
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(run is not None and run.can_resume())
        finished = run is not None and run.finished_model is not None and run.finished_model.is_file()
        self.use_button.setEnabled(finished)
        # With validation pairs the run kept its best model too: the button offers both.
        best = finished and run.best_model is not None and run.best_model.is_file()
        if best and self.use_button.menu() is None:
            menu = QMenu(self.use_button)
            final = menu.addAction(f"Final model ({run.finished_model.name}, iteration {run.last_iteration})")
            final.triggered.connect(lambda: self.use_model_requested.emit(str(run.finished_model)))
            score = f", validation SSIM {run.best[1]:.3f}" if run.best else ""
            chosen = menu.addAction(
                f"Best by validation ({run.best_model.name}, iteration {run.best[0] if run.best else '?'}{score})"
            )
            chosen.triggered.connect(lambda: self.use_model_requested.emit(str(run.best_model)))
            self.use_button.setMenu(menu)
        elif not best and self.use_button.menu() is not None:
            self.use_button.setMenu(None)

    def stop(self) -> None:
        if self.run is not None and self.run.is_running():
            self.run.stop()
            self.progress_label.setText("Stopping: writing a checkpoint...")
            self.stop_button.setEnabled(False)

    def resume(self) -> None:
        if self.run is not None and self.run.can_resume():
            self.run.start(train_command(None, None, self.run.run_dir, "", 0, 0, resume=True))
            self._update_buttons()

    def _use_model(self) -> None:
        if self.run is not None and self.run.finished_model is not None:
            self.use_model_requested.emit(str(self.run.finished_model))


class RunPage(QWizardPage):
    def __init__(self):
        super().__init__()
        self.setTitle("4. Training")
        self.view = RunView()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFinalPage(True)

    def initializePage(self) -> None:
        wizard = self.wizard()
        if wizard.run is None:
            wizard.start_run()

    def isComplete(self) -> bool:
        return True
