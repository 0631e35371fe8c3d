"""Page 1: the training folders (read through the trainer's own loaders, off the GUI thread),
optional co-registered pairs and optional validation pairs."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from mri_style_app.cyclegan.run_setup import FolderScan, scan_folder, scan_pairs, scan_validation
from mri_style_app.ui.help_text import TOOLTIPS
from mri_style_app.ui.workers import Task, register_expected_error, start_task


def _read(reader):
    """The folder readers on a worker thread: their DataError is a message for people, no traceback."""

    def read(*folders):
        from mri_style_app.cyclegan.data import DataError

        register_expected_error(DataError)
        return reader(*folders)

    return read


def thumbnail_pixmap(image: np.ndarray, size: int = 96) -> QPixmap:
    """A grey QPixmap of a 2D slice, windowed to its own 1-99th percentiles."""
    lo, hi = np.percentile(image, [1, 99]) if image.size else (0.0, 1.0)
    scaled = np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1)
    grey = np.ascontiguousarray((scaled * 255).astype(np.uint8))
    qimage = QImage(grey.data, grey.shape[1], grey.shape[0], grey.strides[0], QImage.Format.Format_Grayscale8)
    return QPixmap.fromImage(qimage.copy()).scaled(
        size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


def _folder_row(line_edit: QLineEdit, button: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(line_edit, 1)
    row.addWidget(button)
    return row


class PairFolders(QWidget):
    """Two optional folders of co-registered T1w/T2w volumes (same file names), read on a worker
    thread by `reader` (folder_a, folder_b) -> summary; `state` is none, reading, ok or error."""

    changed = Signal()

    def __init__(self, title: str, none_text: str, reader, tooltip_keys: tuple[str, str], what: str):
        super().__init__()
        self.none_text, self.reader, self.what = none_text, reader, what
        self.edits: dict[str, QLineEdit] = {}
        self.summary = QLabel(none_text)
        self.summary.setWordWrap(True)
        self.state = "none"
        self.task: Task | None = None
        self._scanned: tuple[str, str] = ("", "")
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(QLabel(f"<b>{title}</b>"))
        for side, name, key in (("a", "T1w", tooltip_keys[0]), ("b", "T2w", tooltip_keys[1])):
            edit = QLineEdit()
            edit.setPlaceholderText(f"{what} {name} folder")
            edit.setToolTip(TOOLTIPS[key])
            edit.editingFinished.connect(self.scan)
            browse = QPushButton("Browse...")
            browse.clicked.connect(lambda _=False, s=side: self._browse(s))
            box.addLayout(_folder_row(edit, browse))
            self.edits[side] = edit
        box.addWidget(self.summary)

    def _browse(self, side: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder", self.edits[side].text())
        if folder:
            self.edits[side].setText(folder)
            self.scan()

    def set_folders(self, folder_a, folder_b) -> Task | None:
        self.edits["a"].setText(str(folder_a) if folder_a else "")
        self.edits["b"].setText(str(folder_b) if folder_b else "")
        return self.scan()

    def folders(self) -> tuple[str, str] | None:
        """The two folders when both are given and read well, else None."""
        folders = tuple(self.edits[s].text().strip() for s in ("a", "b"))
        return folders if self.state == "ok" else None

    def scan(self, again: bool = False) -> Task | None:
        folders = tuple(self.edits[s].text().strip() for s in ("a", "b"))
        if folders == self._scanned and not again:
            return self.task  # editingFinished also fires on focus changes: nothing new
        self._scanned = folders
        self.task = None

        def show(state: str, text: str) -> None:
            self.state = state
            self.summary.setText(text)
            self.changed.emit()

        if not any(folders):
            show("none", self.none_text)
            return None
        if not all(folders):
            show("error", f"<span style='color:#b00'>Give both {self.what} folders (T1w and T2w), or neither</span>")
            return None
        show("reading", "Reading...")

        def done(text: str) -> None:
            if self._scanned == folders:  # not changed meanwhile
                show("ok", text)

        def failed(text: str) -> None:
            if self._scanned == folders:
                show("error", f"<span style='color:#b00'>{text}</span>")

        self.task = start_task(
            lambda progress, cancel: self.reader(*folders),
            f"read {self.what} folders",
            on_finished=done,
            on_failed=failed,
            owner=self,
        )
        return self.task


class DataPage(QWizardPage):
    def __init__(self):
        super().__init__()
        self.setTitle("1. Training data")
        self.setSubTitle(
            "Two folders of unpaired images: T1-weighted (domain A) and T2-weighted "
            "(domain B). NIfTI volumes or PNG slices; they need not show the same heads."
        )
        self.scans: dict[str, FolderScan | None] = {"a": None, "b": None}
        self.tasks: dict[str, Task | None] = {"a": None, "b": None}
        self._scanned: dict[str, str] = {}
        self.edits: dict[str, QLineEdit] = {}
        self.summaries: dict[str, QLabel] = {}
        self.thumb_rows: dict[str, QHBoxLayout] = {}
        grid = QGridLayout(self)
        for row, (side, title) in enumerate((("a", "T1 folder (domain A)"), ("b", "T2 folder (domain B)"))):
            edit = QLineEdit()
            edit.setToolTip(TOOLTIPS[f"domain_{side}"])
            edit.editingFinished.connect(lambda s=side: self.scan(s))
            browse = QPushButton("Browse...")
            browse.clicked.connect(lambda _=False, s=side: self._browse(s))
            summary = QLabel("No folder chosen")
            summary.setWordWrap(True)
            thumbs = QHBoxLayout()
            thumbs.addStretch(1)
            box = QVBoxLayout()
            label = QLabel(f"<b>{title}</b>")
            box.addWidget(label)
            box.addLayout(_folder_row(edit, browse))
            box.addWidget(summary)
            box.addLayout(thumbs)
            grid.addLayout(box, row, 0)
            self.edits[side], self.summaries[side], self.thumb_rows[side] = edit, summary, thumbs
            self.registerField(f"domain_{side}*", edit)
        # Co-registered pairs: an L1 loss per pair next to the unpaired losses.
        self.pairs = PairFolders(
            "Co-registered pairs for training (optional)",
            "None: unpaired training",
            scan_pairs,
            ("paired_a", "paired_b"),
            "paired",
        )
        # Validation pairs: never trained on, scored as the run goes.
        self.validation = PairFolders(
            "Validation pairs (optional, never trained on)",
            "None: the run is judged by its losses alone",
            scan_validation,
            ("val_a", "val_b"),
            "validation",
        )
        for box in (self.pairs, self.validation):
            box.changed.connect(self.completeChanged)
        grid.addWidget(self.pairs, 2, 0)
        grid.addWidget(self.validation, 3, 0)
        grid.setRowStretch(4, 1)

    def _browse(self, side: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder", self.edits[side].text())
        if folder:
            self.set_folder(side, folder)

    def set_folder(self, side: str, folder) -> Task:
        self.edits[side].setText(str(folder))
        return self.scan(side)

    def scan(self, side: str) -> Task | None:
        folder = self.edits[side].text().strip()
        if folder and folder == self._scanned.get(side):
            return self.tasks[side]  # editingFinished also fires on focus changes: nothing new
        self._scanned[side] = folder
        self.scans[side] = None
        self._clear_thumbnails(side)
        self.completeChanged.emit()
        if not folder:
            return None
        self.summaries[side].setText("Reading...")

        def done(scan: FolderScan):
            if self.edits[side].text().strip() != str(folder):
                return  # the folder changed meanwhile
            self.scans[side] = scan
            self._show_scan(side, scan)
            self.completeChanged.emit()

        def failed(text):
            self.summaries[side].setText(f"<span style='color:#b00'>{text}</span>")

        task = start_task(
            lambda progress, cancel: scan_folder(folder), "scan folder", on_finished=done, on_failed=failed, owner=self
        )
        self.tasks[side] = task
        return task

    def _clear_thumbnails(self, side: str) -> None:
        row = self.thumb_rows[side]
        while row.count() > 1:
            item = row.takeAt(0)
            if item.widget():
                item.widget().deleteLater()

    def _show_scan(self, side: str, scan: FolderScan) -> None:
        if scan.error:
            self.summaries[side].setText(f"<span style='color:#b00'>{scan.error}</span>")
            return
        lines = [f"{scan.count} training images: {scan.kinds}"]
        lines += [f"<span style='color:#a60'>Warning: {w}</span>" for w in scan.warnings]
        self.summaries[side].setText("<br>".join(lines))
        for i, image in enumerate(scan.thumbnails):
            thumb = QLabel()
            thumb.setPixmap(thumbnail_pixmap(image))
            self.thumb_rows[side].insertWidget(i, thumb)

    def isComplete(self) -> bool:
        return all(s is not None and not s.error and s.count > 0 for s in self.scans.values()) and all(
            box.state in ("none", "ok") for box in (self.pairs, self.validation)
        )
