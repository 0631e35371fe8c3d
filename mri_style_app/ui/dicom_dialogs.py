"""Dialogs for DICOM folders and folder runs: the list of a folder's series to pick one from,
and the report of a "Translate a folder..." run.

Both are opened with open() (window-modal, the event loop keeps running) and report through
signals, so a test can fill them in and accept them like a person would.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

SERIES_COLUMNS = ("Number", "Description", "Slices", "Orientation", "Size", "Modality")


class SeriesListDialog(QDialog):
    """A folder's image series in a table; OK (or a double click) picks the selected one."""

    series_chosen = Signal(str)  # the SeriesInstanceUID

    def __init__(self, folder, series, parent=None):
        super().__init__(parent)
        self.folder = folder
        self.series = list(series)
        self.setWindowTitle("Choose a DICOM series")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        label = QLabel(f"{folder} holds {len(self.series)} image series. Choose the one to open:")
        label.setWordWrap(True)
        self.table = QTableWidget(len(self.series), len(SERIES_COLUMNS))
        self.table.setHorizontalHeaderLabels(SERIES_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        for row, s in enumerate(self.series):
            cells = (
                "-" if s.number is None else str(s.number),
                s.description or "(no description)",
                str(s.n_slices),
                s.orientation,
                s.image_size,
                s.modality,
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"UID {s.uid}")
                if column in (0, 2):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(lambda _index: self.accept())
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.table.itemSelectionChanged.connect(self._update_open_button)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addWidget(self.table)
        layout.addWidget(self.buttons)
        self.resize(760, 160 + 30 * min(len(self.series), 10))
        if self.series:
            self.select_row(0)

    def select_row(self, row: int) -> None:
        self.table.selectRow(row)

    def chosen(self):
        """The selected Series, or None."""
        rows = self.table.selectionModel().selectedRows()
        return self.series[rows[0].row()] if rows else None

    def _update_open_button(self) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Open).setEnabled(self.chosen() is not None)

    def accept(self) -> None:
        series = self.chosen()
        if series is None:
            return
        super().accept()
        self.series_chosen.emit(series.uid)


class ReportDialog(QDialog):
    """A folder run's report: a fixed-width table of every input and what became of it."""

    def __init__(self, title: str, summary: str, report: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.summary = QLabel(summary)
        self.summary.setWordWrap(True)
        self.text = QPlainTextEdit(report)
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.resize(900, 360)
