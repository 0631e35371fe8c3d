"""The training wizard: data, model and schedule, output folder, then the live run.

The run itself is `mri-style train ...` in a child process (workers.TrainingProcess), so a
crash or out-of-memory in training never takes the viewer down. The wizard follows the run
through RUN/events.jsonl (cyclegan/events.EventTail), polled by a QTimer, and teaches as it
goes: a help panel, tooltips, and a status line that diagnoses this run from its own curves.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from mri_style_app import paths
from mri_style_app.cyclegan import events as run_events
from mri_style_app.cyclegan.presets import PRESETS
from mri_style_app.cyclegan.time_budget import duration_of, iterations_in
from mri_style_app.ui.help_text import HELP_HTML, TOOLTIPS, diagnose_run
from mri_style_app.ui.loss_plot import LossPlot
from mri_style_app.ui.translate_panel import format_seconds
from mri_style_app.ui.workers import Task, TrainingProcess, register_expected_error, start_task

POLL_INTERVAL_MS = 500
PRESET_NAMES = tuple(PRESETS)
ESTIMATE_ITERATIONS = 8  # iterations of a timing run; the first ones warm up and are not counted
ESTIMATE_TIMED = 4  # the pace is the median of the last this many iterations


# ----- the data page's scan (runs on a worker thread) ---------------------------------------
@dataclass
class FolderScan:
    """What a training folder holds, for the data page."""

    folder: Path
    count: int = 0
    kinds: str = ""
    thumbnails: list[np.ndarray] = field(default_factory=list)  # 2D float images, any range
    warnings: list[str] = field(default_factory=list)
    error: str = ""


MIN_SLICES_FOR_A_MODEL = 200  # fewer trains, but teaches little beyond a test of the pipeline


def scan_folder(folder, n_thumbnails: int = 4) -> FolderScan:
    """Count a folder's training slices and take a few to show, through the trainer's own
    loader (cyclegan/data.py), so what the wizard shows is what training will read."""
    from mri_style_app.cyclegan import data

    folder = Path(folder)
    scan = FolderScan(folder)
    try:
        dataset = data.load_domain(folder)
    except data.DataError as exc:
        scan.error = str(exc)
        return scan
    summary = dataset.summary()
    scan.count = len(dataset)
    parts = []
    if summary["png_files"]:
        parts.append(f"{summary['png_files']} PNG slice(s)")
    if summary["volumes"]:
        parts.append(f"axial slices of {summary['volumes']} volume(s)")
    sizes = ", ".join(f"{shape} ({n})" for shape, n in dataset.shapes.items())
    scan.kinds = f"{' and '.join(parts)}; sizes (height x width) {sizes}"
    if scan.count < MIN_SLICES_FOR_A_MODEL:
        scan.warnings.append(
            f"only {scan.count} slices: enough to try the wizard, too few for a "
            f"useful model (aim for {MIN_SLICES_FOR_A_MODEL} or more)"
        )
    if len(dataset.shapes) > 1:
        scan.warnings.append(
            "images of different sizes: each is padded to a square and resized "
            "to the training size, so their scales may differ"
        )
    if dataset.ignored:
        shown = ", ".join(dataset.ignored[:3]) + (" ..." if len(dataset.ignored) > 3 else "")
        scan.warnings.append(f"{len(dataset.ignored)} file(s) not used (not images, or blank): {shown}")
    picks = np.linspace(0, scan.count - 1, min(n_thumbnails, scan.count)).round().astype(int)
    scan.thumbnails = [dataset.slice(int(i)) for i in picks]
    return scan


def scan_validation(folder_a, folder_b) -> str:
    """A one-line summary of the validation pairs, read through the trainer's own loader; raises
    data.DataError (with a message for people) when they cannot be used."""
    from mri_style_app.cyclegan import data, validation

    register_expected_error(data.DataError)
    pairs = validation.load_validation_pairs(folder_a, folder_b)
    voxels = sum(int(p.head.sum()) for p in pairs)
    return f"{len(pairs)} pair(s), {voxels} head voxels: scored as the run goes; the best model is kept"


def scan_pairs(folder_a, folder_b) -> str:
    """A one-line summary of a pair of co-registered folders, read through the trainer's own
    loader; raises data.DataError (with a message for people) when they cannot be used."""
    from mri_style_app.cyclegan import data

    register_expected_error(data.DataError)
    pairs = data.load_pairs(folder_a, folder_b)
    summary = pairs.summary()
    variants = f", {summary['variants']} extra input scan(s)" if summary["variants"] else ""
    return f"{summary['pairs']} pair(s){variants}: {summary['slices']} paired slices"


def thumbnail_pixmap(image: np.ndarray, size: int = 96) -> QPixmap:
    """A grey QPixmap of a 2D slice, windowed to its own 1-99th percentiles."""
    lo, hi = np.percentile(image, [1, 99]) if image.size else (0.0, 1.0)
    scaled = np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1)
    grey = np.ascontiguousarray((scaled * 255).astype(np.uint8))
    qimage = QImage(grey.data, grey.shape[1], grey.shape[0], grey.strides[0], QImage.Format.Format_Grayscale8)
    return QPixmap.fromImage(qimage.copy()).scaled(
        size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


def train_command(
    domain_a,
    domain_b,
    run_dir,
    preset: str,
    size: int,
    iterations: int | None,
    device: str = "auto",
    resume: bool = False,
    extra: list[str] | None = None,
    minutes: float | None = None,
) -> list[str]:
    """The `mri-style train ...` command line (the same executable in the packaged app): for
    `iterations`, or for `minutes` when given."""
    if resume:
        return paths.self_command() + ["train", "--out", str(run_dir), "--resume"]
    length = ["--minutes", f"{minutes:g}"] if minutes else ["--iterations", str(iterations)]
    size_option = ["--size", str(size)] if size else []  # none: whole slices at their own scale
    every = log_interval(iterations) if not minutes else 10
    return [
        *paths.self_command(), "train", "--domain-a", str(domain_a), "--domain-b", str(domain_b),
        "--out", str(run_dir), "--preset", preset, *size_option, *length,
        "--device", device, "--log-every", str(every), *(extra or []),
    ]  # fmt: skip


def bundled_model() -> tuple[Path, str] | None:
    """The bundled default model and its preset (read from its card beside it), or None."""
    path = paths.default_model_path()
    try:
        card = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        preset = card["architecture"]["preset"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (path, preset) if path.is_file() and preset in PRESETS else None


def log_interval(iterations: int) -> int:
    """A loss point every 10 iterations, denser for short runs so their curves still show a shape."""
    return max(1, min(10, iterations // 100))


# ----- a run: the child process and its events ---------------------------------------------
class TrainingRun(QObject):
    """One run folder: follows its events.jsonl, and owns the training process if it started one."""

    new_events = Signal(list)  # events appended since the last poll
    restarted = Signal()  # the events file was rewritten (a resume trimmed it): start the curves over
    output = Signal(str)  # a line the trainer printed
    exited = Signal(int)  # the process ended with this status

    def __init__(self, run_dir, parent=None):
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.process: TrainingProcess | None = None
        self.total_iterations: int | None = None
        self.last_iteration = 0
        self.first_step: tuple[int, float] | None = None  # (iteration, seconds) of this session's first step
        self.last_step: tuple[int, float] | None = None
        self.finished_model: Path | None = None
        self.best_model: Path | None = None  # best by validation, when the run scores validation pairs
        self.best: tuple[int, float] | None = None  # (iteration, mean validation SSIM) of the best so far
        self.judged: list[dict] = []  # start and validation events: what events.diagnose reads
        self.budget_left: float | None = None  # seconds, in a run for a time budget
        self.fine_tune = False  # started from a saved model (the run's init_from)
        self.adversarial = True  # the generators learn from the discriminators (lambda_adversarial > 0)
        self.stopped = False
        self.error: str | None = None
        self._active = False
        self._tail = run_events.EventTail(self.run_dir)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.timeout.connect(self.poll)

    def start(self, command: list[str]) -> None:
        self.stopped = False
        self.error = None
        self.first_step = None
        self._active = True
        self.process = TrainingProcess(command)
        self.process.output.connect(self.output)
        self.process.exited.connect(self._process_exited)
        self.process.start()
        self._timer.start()

    def follow(self) -> None:
        """Show an existing run (no process): read what is there, keep polling in case it grows."""
        self.poll()
        self._timer.start()

    def is_running(self) -> bool:
        """From start() until the process has exited (it takes a moment to launch)."""
        return self._active

    def stop(self) -> None:
        """Ask the trainer to checkpoint and stop (if it is still launching, once it has started)."""
        if self.process is None or not self._active:
            return
        if self.process.is_running():
            self.process.stop()
        else:
            QTimer.singleShot(100, self.stop)

    def detach(self) -> None:
        if self.process is not None:
            self.process.detach()
        self._timer.stop()

    def can_resume(self) -> bool:
        return (
            not self.is_running() and self.finished_model is None and (self.run_dir / run_events.CHECKPOINT).is_file()
        )

    def poll(self) -> list[dict]:
        new = self._tail.poll()
        if self._tail.restarted:
            self.first_step = None
            self.judged = []
            self.restarted.emit()
        for event in new:
            self._note(event)
        if new:
            self.new_events.emit(new)
        return new

    def _note(self, event: dict) -> None:
        kind = event.get("type")
        self.last_iteration = int(event.get("iteration", self.last_iteration) or 0)
        if event.get("total_iterations"):
            self.total_iterations = int(event["total_iterations"])
        if kind == "step" and event.get("seconds") is not None:
            point = (self.last_iteration, float(event["seconds"]))
            self.first_step = self.first_step or point
            self.last_step = point
            if event.get("seconds_left") is not None:
                self.budget_left = float(event["seconds_left"])
        elif kind == "validation":
            self.judged.append(event)
            if event.get("best") and event.get("ssim") is not None:
                self.best = (self.last_iteration, float(event["ssim"]))
        elif kind == "start":
            self.judged.append(event)
            self.budget_left = event.get("seconds_left")
            self.first_step = None
            config = self._config()
            self.fine_tune = bool(config.get("init_from"))
            self.adversarial = config.get("lambda_adversarial", 1.0) != 0
        elif kind == "done":
            self.finished_model = self.run_dir / event.get("model", run_events.MODEL_FILE)
            if event.get("best"):
                self.best_model = self.run_dir / event["best"]
        elif kind == "stopped":
            self.stopped = True
        elif kind == "error":
            self.error = str(event.get("message", "unknown error"))

    def _config(self) -> dict:
        """The run's settings from its config.json (a few hundred bytes); {} if unreadable."""
        try:
            return json.loads((self.run_dir / run_events.CONFIG_FILE).read_text(encoding="utf-8")).get("config", {})
        except (OSError, ValueError, AttributeError):
            return {}

    def seconds_left(self) -> float | None:
        """What the trainer says is left of its time budget; else at this session's pace so far
        (the first logged step includes start-up, so it is the base)."""
        if self.budget_left is not None:
            return self.budget_left
        if not (self.first_step and self.last_step and self.total_iterations):
            return None
        (i0, s0), (i1, s1) = self.first_step, self.last_step
        if i1 <= i0 or s1 <= s0:
            return None
        return (self.total_iterations - i1) * (s1 - s0) / (i1 - i0)

    def _process_exited(self, code: int) -> None:
        self._active = False
        self.poll()  # the last events before the exit
        self._timer.stop()
        self.exited.emit(code)


# ----- estimating the duration: two real iterations in a scratch run ------------------------
class DurationEstimate(QObject):
    """Times a few real training iterations of a preset on this device, in a scratch folder."""

    estimated = Signal(str, float)  # key, seconds per iteration
    failed = Signal(str, str)  # key, message

    def __init__(self, parent=None):
        super().__init__(parent)
        self.cache: dict[str, float] = {}
        self._run: TrainingRun | None = None
        self._scratch: Path | None = None
        self._key = ""
        self._pending: tuple | None = None

    @staticmethod
    def key(preset: str, size: int, device: str) -> str:
        return f"{preset}/{size}/{device}"

    def busy(self) -> bool:
        return self._run is not None and self._run.is_running()

    def measure(self, domain_a, domain_b, preset: str, size: int, device: str) -> None:
        """Time this choice (results arrive as signals); a newer request supersedes a running one."""
        key = self.key(preset, size, device)
        if key in self.cache:
            self.estimated.emit(key, self.cache[key])
            return
        if self.busy():
            if key != self._key:
                self._pending = (domain_a, domain_b, preset, size, device)
                self._run.stop()
            return
        self._pending = None
        self._cleanup()
        self._key = key
        self._scratch = Path(tempfile.mkdtemp(prefix="mri-style-estimate-"))
        command = train_command(
            domain_a,
            domain_b,
            self._scratch / "run",
            preset,
            size,
            ESTIMATE_ITERATIONS,
            device,
            extra=["--sample-every", "1000000", "--checkpoint-every", "1000000"],
        )
        self._run = TrainingRun(self._scratch / "run", self)
        lines: list[str] = []
        self._run.output.connect(lines.append)
        self._run.exited.connect(lambda code: self._finished(code, lines))
        self._run.start(command)

    def _finished(self, code: int, lines: list[str]) -> None:
        key, run = self._key, self._run
        steps = [e for e in run_events.read_events(run.run_dir) if e.get("type") == "step"]
        self._run = None
        self._cleanup()
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.measure(*pending)
            return
        seconds = [float(e["seconds"]) for e in steps]
        if code == 0 and len(seconds) > ESTIMATE_TIMED:
            # Median pace of the last iterations: the first ones include warm-up.
            per_iteration = float(np.median(np.diff(seconds[-ESTIMATE_TIMED - 1 :])))
            self.cache[key] = per_iteration
            self.estimated.emit(key, per_iteration)
        else:
            errors = [line for line in lines if line.startswith("error")]
            self.failed.emit(key, errors[-1] if errors else f"the timing run ended with status {code}")

    def _cleanup(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def cancel(self) -> None:
        self._pending = None
        if self._run is not None:
            self._run.stop()


# ----- pages --------------------------------------------------------------------------------
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
            lambda progress, cancel: scan_folder(folder), "scan folder", on_finished=done, on_failed=failed
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
        self.preset_combo.setCurrentText("lite")  # the trainer's default: learns on a CPU in minutes
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
                "translates, and adapts it to your scans: minutes are enough."
            )
        else:
            self.preset_combo.setEnabled(True)
            self.start_note.setText(
                "Starts from random weights: the model must first discover the "
                "contrast inversion from unpaired images, which takes far longer "
                "(hours on a CPU) than fine-tuning."
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
        contrast = run_events.diagnose(run.judged) if run is not None else None
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


# ----- the main window's side: a small Training panel and the close guard ------------------
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
