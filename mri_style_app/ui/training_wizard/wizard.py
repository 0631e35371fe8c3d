"""The wizard window: data -> model and schedule -> output folder -> the live run."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWizard

from mri_style_app.cyclegan.run_setup import train_command
from mri_style_app.ui.training_wizard.data_page import DataPage
from mri_style_app.ui.training_wizard.model_page import ModelPage
from mri_style_app.ui.training_wizard.output_page import OutputPage
from mri_style_app.ui.training_wizard.run import DurationEstimate, TrainingRun
from mri_style_app.ui.training_wizard.run_page import RunPage


class TrainingWizard(QWizard):
    """Data -> model and schedule -> output folder -> the live run (a separate window)."""

    DATA, MODEL, OUTPUT, RUN = range(4)
    use_model_requested = Signal(str)
    run_started = Signal(object)  # the TrainingRun

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Train a T1 <-> T2 model")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, True)
        self.resize(1100, 760)
        self.run: TrainingRun | None = None
        self.estimator = DurationEstimate(self)
        self.data_page = DataPage()
        self.model_page = ModelPage(self.estimator)
        self.output_page = OutputPage()
        self.run_page = RunPage()
        for page_id, page in (
            (self.DATA, self.data_page),
            (self.MODEL, self.model_page),
            (self.OUTPUT, self.output_page),
            (self.RUN, self.run_page),
        ):
            self.setPage(page_id, page)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Close")
        self.run_page.view.use_model_requested.connect(self.use_model_requested)

    def command(self) -> list[str]:
        s = self.model_page.settings()
        extra = []
        pairs = self.data_page.pairs.folders()
        if pairs:
            extra += ["--paired-a", pairs[0], "--paired-b", pairs[1]]
        validation = self.data_page.validation.folders()
        if validation:
            extra += ["--val-a", validation[0], "--val-b", validation[1]]
        if s["init_from"]:
            extra += ["--init-from", s["init_from"]]
        return train_command(
            self.field("domain_a"),
            self.field("domain_b"),
            self.output_page.run_dir(),
            s["preset"],
            s["size"],
            s["iterations"],
            s["device"],
            extra=extra,
            minutes=s["minutes"],
        )

    def start_run(self) -> TrainingRun:
        self.estimator.cancel()  # never two trainings at once on the same device
        run_dir = self.output_page.run_dir()
        run_dir.mkdir(parents=True, exist_ok=True)
        self.run = TrainingRun(run_dir, self)
        self.run_page.view.attach(self.run)
        self.run.start(self.command())
        self.run_started.emit(self.run)
        return self.run

    def open_run(self, run_dir) -> TrainingRun:
        """Show an old (or still running) run's curves and samples, with Resume if it stopped."""
        self.run = TrainingRun(run_dir, self)
        self.setStartId(self.RUN)
        self.restart()
        self.run_page.view.attach(self.run)
        self.run.follow()
        self.setWindowTitle(f"Training run {Path(run_dir).name}")
        return self.run

    def is_training(self) -> bool:
        return self.run is not None and self.run.is_running()

    def reject(self) -> None:
        """Closing the window during a run only hides it: the run keeps going."""
        if self.is_training():
            self.hide()
        else:
            self.estimator.cancel()
            super().reject()
