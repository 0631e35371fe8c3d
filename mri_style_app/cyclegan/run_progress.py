"""A training run's state as its events tell it, without Qt or torch: the iterations, the pace and
the time left, the finished and the best model, and what the run page's diagnosis reads. The
wizard's TrainingRun feeds it the events it reads from the run folder."""

from __future__ import annotations

import json
from pathlib import Path

from mri_style_app.cyclegan import events as run_events


class RunProgress:
    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
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

    def session_started(self) -> None:
        """A new training process for this run (a start or a resume)."""
        self.stopped = False
        self.error = None
        self.first_step = None

    def events_rewritten(self) -> None:
        """A resume trimmed the events file: it is read again from the start."""
        self.first_step = None
        self.judged = []

    def note(self, event: dict) -> None:
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
            config = self.config()
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

    def config(self) -> dict:
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

    def diagnosis(self) -> str | None:
        """The validation pairs' verdict on the contrast (events.diagnose), or None."""
        return run_events.diagnose(self.judged)
