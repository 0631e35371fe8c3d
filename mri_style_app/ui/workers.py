"""The one way work leaves the GUI thread.

- `start_task(fn)` runs `fn(progress, cancel)` on a worker thread (loading, translation) and
  reports back through Qt signals, which Qt delivers on the GUI thread.
- `TrainingProcess` runs `mri-style train ...` as an asyncio subprocess on the qasync event
  loop, so a crash or out-of-memory in training never takes the viewer down.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable

import shiboken6
from PySide6.QtCore import QObject, QTimer, Signal

from mri_style_app.imaging.volume import VolumeError

ProgressFn = Callable[[float, str], None]

# Messages of these errors are already written for people; anything else is a bug and gets
# a generic sentence plus the traceback on stderr for the report.
_EXPECTED_ERRORS: tuple[type[BaseException], ...] = (VolumeError, ValueError, OSError, MemoryError)

# Progress signals faster than this are dropped (the last one always goes through).
_PROGRESS_INTERVAL_S = 0.05

_running: set[Task] = set()  # keeps running tasks alive until they report


def exempt_long_lived_objects() -> None:
    """Take every object alive now (modules, Qt wrappers, a loaded model: they live as long as the
    app) out of the cyclic collector's scans. A full collection of them holds the interpreter for
    100 ms or more on a small CPU, and the viewer stops while it runs, whichever thread starts it."""
    gc.freeze()


def register_expected_error(error_type: type[BaseException]) -> None:
    """Let another layer's error type (ModelError, ...) reach the user with its own message."""
    global _EXPECTED_ERRORS
    if error_type not in _EXPECTED_ERRORS:
        _EXPECTED_ERRORS = (*_EXPECTED_ERRORS, error_type)


class Task(QObject):
    """One piece of work on a worker thread. Connect the signals, then call `start()`."""

    progress = Signal(float, str)  # fraction 0..1, message
    finished = Signal(object)  # the function's result
    failed = Signal(str)  # a message for people
    cancelled = Signal()

    def __init__(self, fn: Callable[[ProgressFn, threading.Event], object], name: str = "task"):
        super().__init__()
        self.name = name
        self._fn = fn
        self.cancel_event = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"mri-style-{name}", daemon=True)
        self._last_progress = 0.0
        self.started_at = 0.0

    def start(self) -> Task:
        _running.add(self)
        # Let go of the task on the GUI thread, after the callbacks connected before start() ran:
        # dropping it on the worker thread could delete it before its queued signals arrive.
        for signal_ in (self.finished, self.failed, self.cancelled):
            signal_.connect(self._release)
        self.started_at = time.monotonic()
        self._thread.start()
        return self

    def _release(self, *_) -> None:
        QTimer.singleShot(0, lambda: _running.discard(self))

    def cancel(self) -> None:
        """Ask the work to stop; it checks between steps (one batch at most)."""
        self.cancel_event.set()

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the thread ends (tests and shutdown only, never on the GUI thread's hot path)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _report_progress(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last_progress >= _PROGRESS_INTERVAL_S:
            self._last_progress = now
            self.progress.emit(float(fraction), message)

    def _run(self) -> None:
        try:
            result = self._fn(self._report_progress, self.cancel_event)
        except BaseException as exc:  # noqa: BLE001 - every outcome must reach the GUI
            if self.cancel_event.is_set():
                self.cancelled.emit()
            elif isinstance(exc, _EXPECTED_ERRORS):
                self.failed.emit(str(exc))
            else:
                traceback.print_exc(file=sys.stderr)
                self.failed.emit(f"Unexpected error in {self.name}: {type(exc).__name__}: {exc}")
        else:
            if self.cancel_event.is_set():
                self.cancelled.emit()
            else:
                self.finished.emit(result)


def start_task(
    fn: Callable[[ProgressFn, threading.Event], object],
    name: str = "task",
    on_finished=None,
    on_failed=None,
    on_progress=None,
    on_cancelled=None,
    owner: QObject | None = None,
) -> Task:
    """Run `fn(progress, cancel_event)` off the GUI thread; the callbacks run on the GUI thread.
    With an `owner` widget they run only while it exists: a dialog closed before its work ends
    is not called back."""
    task = Task(fn, name)
    for signal_, slot in (
        (task.finished, on_finished),
        (task.failed, on_failed),
        (task.progress, on_progress),
        (task.cancelled, on_cancelled),
    ):
        if slot is not None:
            signal_.connect(slot if owner is None else _while_alive(owner, slot))
    return task.start()


def _while_alive(owner: QObject, slot):
    def call(*args):
        if shiboken6.isValid(owner):
            slot(*args)

    return call


class TrainingProcess(QObject):
    """A training run as a child process, read line by line on the qasync event loop.

    The process gets its own session, so the app can quit and leave it running if the
    person chooses to. `stop()` sends SIGTERM: the trainer writes a checkpoint and exits.
    """

    output = Signal(str)  # one line of the child's stdout/stderr
    exited = Signal(int)  # exit status (negative: killed by that signal)

    KILL_AFTER_S = 20.0

    def __init__(self, command: list[str], cwd: str | None = None):
        super().__init__()
        self.command = command
        self.cwd = cwd
        self.process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task | None = None
        self._detached = False

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def is_running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def _run(self) -> None:
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.command,
                cwd=self.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=sys.platform != "win32",
            )
        except OSError as exc:
            self.output.emit(f"error: could not start training: {exc}")
            self.exited.emit(127)
            return
        assert self.process.stdout is not None
        while True:
            line = await self.process.stdout.readline()
            if not line:
                break
            if not self._detached:
                self.output.emit(line.decode("utf-8", "replace").rstrip())
        code = await self.process.wait()
        if not self._detached:
            self.exited.emit(code)

    def stop(self) -> None:
        """Ask the run to stop cleanly (it checkpoints first); kill it if it does not end in time."""
        if not self.is_running():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM if sys.platform != "win32" else signal.CTRL_BREAK_EVENT)
        asyncio.get_event_loop().call_later(self.KILL_AFTER_S, self._kill_if_running)

    def _kill_if_running(self) -> None:
        if self.is_running():
            assert self.process is not None
            self.process.kill()

    def detach(self) -> None:
        """Leave the run going on its own (the app is closing and the person chose to keep it)."""
        self._detached = True
