"""The main window's Training panel: start the wizard, open an old run, follow the current one,
and the close guard that asks what to do with a run when the app quits."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QLabel, QMessageBox, QPushButton, QVBoxLayout, QWidget

from mri_style_app.cyclegan import events as run_events
from mri_style_app.ui.training_wizard.run import TrainingRun
from mri_style_app.ui.training_wizard.wizard import TrainingWizard


class TrainingPanel(QWidget):
    """Side panel: start the wizard, open an old run, and follow the current one at a glance."""

    def __init__(self, window, use_model):
        super().__init__()
        self.window = window
        self.use_model = use_model
        self.wizards: list[TrainingWizard] = []
        new_button = QPushButton("Train a model...")
        new_button.clicked.connect(self.new_wizard)
        open_button = QPushButton("Open run folder...")
        open_button.clicked.connect(self.choose_run)
        self.show_button = QPushButton("Show training window")
        self.show_button.clicked.connect(self._show_latest)
        self.status = QLabel("No training run in this session.")
        self.status.setWordWrap(True)
        intro = QLabel("Train your own CycleGAN on unpaired T1 and T2 scans and watch it learn.")
        intro.setWordWrap(True)
        layout = QVBoxLayout(self)
        for widget in (intro, new_button, open_button, self.show_button, self.status):
            layout.addWidget(widget)
        layout.addStretch(1)
        self.show_button.setEnabled(False)
        window.close_guards.append(self.confirm_close)

    def _register(self, wizard: TrainingWizard) -> TrainingWizard:
        self.wizards.append(wizard)
        wizard.use_model_requested.connect(self.use_model)
        wizard.run_started.connect(self._follow)
        self.show_button.setEnabled(True)
        return wizard

    def new_wizard(self) -> TrainingWizard:
        wizard = self._register(TrainingWizard())
        wizard.show()
        return wizard

    def open_run(self, run_dir) -> TrainingWizard:
        wizard = self._register(TrainingWizard())
        self._follow(wizard.open_run(run_dir))
        wizard.show()
        return wizard

    def choose_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Open a training run folder", str(Path.home() / "mri-style-runs")
        )
        if not folder:
            return
        if not run_events.events_path(folder).is_file():
            self.window.show_error(
                "Not a training run",
                f"{folder} has no {run_events.EVENTS_FILE}: choose the folder given as --out to mri-style train.",
            )
            return
        self.open_run(folder)

    def _show_latest(self) -> None:
        if self.wizards:
            self.wizards[-1].show()
            self.wizards[-1].raise_()

    def _follow(self, run: TrainingRun) -> None:
        def update(*_):
            total = f" of {run.total_iterations}" if run.total_iterations else ""
            state = "running" if run.is_running() else ("finished" if run.finished_model else "not running")
            self.status.setText(f"{run.run_dir.name}: iteration {run.last_iteration}{total} ({state})")

        run.new_events.connect(update)
        run.exited.connect(update)
        update()

    def running_runs(self) -> list[TrainingRun]:
        return [w.run for w in self.wizards if w.is_training()]

    def confirm_close(self) -> bool:
        """Close guard: ask whether to stop or keep a running training; False cancels closing."""
        runs = self.running_runs()
        if not runs:
            return True
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Training is running",
            f"{len(runs)} training run(s) still running ({', '.join(r.run_dir.name for r in runs)}).\n\n"
            "Stop: write a checkpoint and stop (Resume later from 'Open run folder...').\n"
            "Keep running: training continues without the app and finishes on its own.",
            parent=self.window,
        )
        stop = box.addButton("Stop training", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep running", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(keep)
        self.close_box = box
        box.exec()
        clicked = box.clickedButton()
        if clicked is stop:
            for run in runs:
                run.stop()
        elif clicked is keep:
            for run in runs:
                run.detach()
        else:
            return False
        for wizard in self.wizards:
            wizard.hide()
        return True
