"""A training run's schedule arithmetic, torch-free: the learning rate over the run's iterations,
and the time arithmetic that the trainer's `--minutes` and the wizard's duration estimate share
(seconds per iteration)."""

from __future__ import annotations

import math


def lr_factor(iteration: int, total: int, decay_fraction: float) -> float:
    """Reference schedule: constant, then linear down to 0 at the last iteration."""
    decay = round(total * decay_fraction)
    start = total - decay
    if decay <= 0 or iteration < start:
        return 1.0
    return max(0.0, (total - iteration) / decay)


def iterations_in(seconds: float, seconds_per_iteration: float) -> int:
    """Whole iterations that fit in `seconds` at the measured speed (at least 1)."""
    return max(1, int(seconds // max(seconds_per_iteration, 1e-9)))


def duration_of(iterations: int, seconds_per_iteration: float) -> float:
    return iterations * seconds_per_iteration


class TimeBudget:
    """Where a run of `seconds` ends. `plan(iteration, used)` after each iteration gives the total
    iteration count: the last whole iteration that fits, at the speed measured so far in this
    process (the first iteration, which carries the warm-up, counts only until there is a second).
    Once the time is up, or the next iteration would overrun it, the total is the iteration just done.
    `reserve` is kept free for the work after the last iteration (the final validation)."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.reserve = 0.0
        self._marks: list[tuple[int, float]] = []

    def start(self, iteration: int, used: float) -> None:
        """Mark where this process begins (a resumed run has `used` seconds behind it)."""
        self._marks = [(iteration, used)]

    def seconds_per_iteration(self, iteration: int, used: float) -> float | None:
        if not self._marks:
            return None
        if len(self._marks) == 1 and iteration > self._marks[0][0]:
            self._marks.append((iteration, used))
        i0, w0 = self._marks[1] if len(self._marks) > 1 and iteration > self._marks[1][0] else self._marks[0]
        return (used - w0) / (iteration - i0) if iteration > i0 else None

    def plan(self, iteration: int, used: float) -> int:
        rate = self.seconds_per_iteration(iteration, used)
        left = self.seconds - self.reserve - used
        if left <= 0 or rate is None:
            return iteration if left <= 0 else iteration + 1
        return iteration + int(math.floor(left / max(rate, 1e-9)))

    def left(self, used: float) -> float:
        return max(0.0, self.seconds - used)
