"""Page 3: the run folder, and the exact command that will run."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWizard,
    QWizardPage,
)

from mri_style_app.ui.training_wizard.data_page import _folder_row


class OutputPage(QWizardPage):
    def __init__(self):
        super().__init__()
        self.setTitle("3. Output folder")
        self.setSubTitle(
            "The run folder holds the settings, the loss log (events.jsonl), sample "
            "images, checkpoints for resuming, and finally model.safetensors."
        )
        self.folder_edit = QLineEdit(str(Path.home() / "mri-style-runs" / time.strftime("run-%Y%m%d-%H%M%S")))
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.command_view = QPlainTextEdit()
        self.command_view.setReadOnly(True)
        self.command_view.setMaximumHeight(80)
        self.command_view.setToolTip("The same run from a terminal (or on a GPU server)")
        layout = QVBoxLayout(self)
        layout.addLayout(_folder_row(self.folder_edit, browse))
        layout.addWidget(self.note)
        layout.addWidget(QLabel("Command that will run:"))
        layout.addWidget(self.command_view)
        self.folder_edit.textChanged.connect(self._check)
        self.setCommitPage(True)
        self.setButtonText(QWizard.WizardButton.CommitButton, "Start training")

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Run folder", str(Path(self.folder_edit.text()).parent))
        if folder:
            self.folder_edit.setText(folder)

    def initializePage(self) -> None:
        self._check()

    def run_dir(self) -> Path:
        return Path(self.folder_edit.text().strip()).expanduser()

    def _check(self) -> None:
        folder = self.run_dir()
        if folder.exists() and any(folder.iterdir()):
            self.note.setText(
                f"<span style='color:#b00'>{folder} is not empty. Choose a new folder; "
                "to continue an old run, use 'Open run folder...' and Resume.</span>"
            )
        else:
            self.note.setText("")
        wizard = self.wizard()
        if wizard is not None:
            self.command_view.setPlainText(" ".join(wizard.command()))
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        folder = self.run_dir()
        return bool(self.folder_edit.text().strip()) and not (folder.exists() and any(folder.iterdir()))
