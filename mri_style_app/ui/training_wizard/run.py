"""A training run followed by the wizard (the child process and its events file), and the
duration estimate that times real iterations of a choice in a scratch run."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from mri_style_app.cyclegan import events as run_events
from mri_style_app.cyclegan.run_progress import RunProgress
from mri_style_app.cyclegan.run_setup import train_command
from mri_style_app.ui.workers import TrainingProcess

POLL_INTERVAL_MS = 500
ESTIMATE_ITERATIONS = 8  # iterations of a timing run; the first ones warm up and are not counted
ESTIMATE_TIMED = 4  # the pace is the median of the last this many iterations


class TrainingRun(QObject):
    """One run folder: follows its events.jsonl, and owns the training process if it started one."""

    new_events = Signal(list)  # events appended since the last poll
    restarted = Signal()  # the events file was rewritten (a resume trimmed it): start the curves over
    output = Signal(str)  # a line the trainer printed
    exited = Signal(int)  # the process ended with this status

    def __init__(self, run_dir, parent=None):
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.progress = RunProgress(self.run_dir)
        self.process: TrainingProcess | None = None
        self._active = False
        self._tail = run_events.EventTail(self.run_dir)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.timeout.connect(self.poll)

    def __getattr__(self, name: str):
        # What the events say (iterations, models, pace) is RunProgress's: read it through the run.
        progress = self.__dict__.get("progress")
        if progress is None or not hasattr(progress, name):
            raise AttributeError(name)
        return getattr(progress, name)

    def start(self, command: list[str]) -> None:
        self.progress.session_started()
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
            self.progress.events_rewritten()
            self.restarted.emit()
        for event in new:
            self.progress.note(event)
        if new:
            self.new_events.emit(new)
        return new

    def _process_exited(self, code: int) -> None:
        self._active = False
        self.poll()  # the last events before the exit
        self._timer.stop()
        self.exited.emit(code)


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
