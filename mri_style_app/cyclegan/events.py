"""The one reader and writer of a training run's `events.jsonl` (no Qt, no torch).

One JSON object per line. The trainer appends; the CLI prints, the wizard plots and resume
trims the same file. Every event has "type", "iteration" and "time" (Unix seconds); the
schema of each type is in docs/training.md.

A line is written in one `write` call and flushed, so a reader sees whole lines, except
possibly a half-written last line while the trainer is writing or after it was killed:
readers skip a last line that does not parse.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from mri_style_app.files import write_atomically

EVENTS_FILE = "events.jsonl"
# The other files of a run folder, named here (not in train.py) so the wizard reads them without torch.
CONFIG_FILE = "config.json"
CHECKPOINT = "checkpoints/latest.pt"
MODEL_FILE = "model.safetensors"
BEST_MODEL_FILE = "best.safetensors"  # the model at the best validation SSIM (runs with validation pairs)

# Loss keys of a "step" event, in the order the CLI prints them.
LOSS_KEYS = (
    "G_A",
    "G_B",
    "D_A",
    "D_B",
    "cycle_A",
    "cycle_B",
    "idt_A",
    "idt_B",
    "paired_A",
    "paired_B",
    "structure_A",
    "structure_B",
    "anchor_A",
    "anchor_B",
)
OPTIONAL_LOSSES = ("paired", "structure", "anchor")  # printed only when the run has them


def events_path(run_dir) -> Path:
    return Path(run_dir) / EVENTS_FILE


def _clean(value):
    """JSON has no NaN or infinity: write them as null so every reader can parse the line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def format_event(event: dict) -> str:
    return json.dumps(_clean(event), separators=(",", ":"), allow_nan=False)


def append_event(run_dir, event: dict) -> dict:
    """Append one event (adds "time" if missing) as one flushed line; returns the event."""
    event = {**event}
    event.setdefault("time", round(time.time(), 3))
    line = format_event(event) + "\n"
    with open(events_path(run_dir), "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
    return event


def parse_lines(text: str) -> list[dict]:
    """Events from the text of an events file; a damaged or half-written line is skipped."""
    events = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and "type" in event:
            events.append(event)
    return events


def read_events(run_dir) -> list[dict]:
    """Every complete event of a run, in order ([] when there is no events file yet)."""
    path = events_path(run_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return parse_lines(data.decode("utf-8", "replace"))


def truncate_after(run_dir, iteration: int) -> int:
    """Drop the events logged after `iteration` (resume from a checkpoint); returns how many.

    The file is rewritten to a temp file and renamed into place, so a reader never sees half.
    """
    path = events_path(run_dir)
    events = read_events(run_dir)
    kept = [e for e in events if int(e.get("iteration", 0)) <= iteration]

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(format_event(e) + "\n" for e in kept)
            fh.flush()
            os.fsync(fh.fileno())

    write_atomically(path, write)
    return len(events) - len(kept)


class EventTail:
    """Follows a run's events file as it grows: `poll()` returns the events added since the last call.

    When the file is replaced (a resumed run trims it) or shrinks, it reads from the start
    again, returns every event and sets `restarted` so a plot can clear itself first.
    """

    def __init__(self, run_dir):
        self.path = events_path(run_dir)
        self._offset = 0
        self._inode = None
        self.restarted = False

    def poll(self) -> list[dict]:
        self.restarted = False
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        if self._inode is not None and (stat.st_ino != self._inode or stat.st_size < self._offset):
            self._offset = 0
            self.restarted = True
        self._inode = stat.st_ino
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        # Only whole lines: a half-written last line is read again on the next poll.
        end = data.rfind(b"\n") + 1
        self._offset += end
        return parse_lines(data[:end].decode("utf-8", "replace"))


DIRECTION_NAMES = {"t1-to-t2": "T1w->T2w", "t2-to-t1": "T2w->T1w"}
# Below this whole-head validation SSIM, a tenth into the run, a generator has not found the contrast.
LOW_VALIDATION_SSIM = 0.3


def diagnose(run_events: list[dict]) -> str | None:
    """What to change when the run's generators are not learning the contrast, from its latest
    validation event; None while it looks healthy (or before there is anything to judge)."""
    latest = next((e for e in reversed(run_events) if e.get("type") == "validation"), None)
    if latest is None or not latest.get("iteration"):
        return None  # the score before training says nothing about learning
    start = next((e for e in reversed(run_events) if e.get("type") == "start"), {})
    total = latest.get("total_iterations") or next(
        (e.get("total_iterations") for e in reversed(run_events) if e.get("total_iterations")), None
    )
    advice = []
    if start.get("lambda_identity", 0) > 0:
        advice.append("set the identity weight (lambda_identity) to 0: it pulls towards changing nothing")
    if start.get("crop"):
        advice.append("train on whole slices (no --crop)")
    if not start.get("init_from"):
        advice.append("start from the bundled model (--init-from)")
    advice.append("lower the learning rate (--lr)")
    todo = "; ".join(advice)
    following = [
        DIRECTION_NAMES[d]
        for d in DIRECTION_NAMES
        if isinstance(latest.get(d), dict) and (latest[d].get("correlation") or 0) > 0
    ]
    if following and (not total or latest["iteration"] >= total / 10):
        return (
            f"the {' and '.join(following)} translation follows its input's brightness instead of "
            f"inverting the contrast (it correlates positively with its input). To change: {todo}"
        )
    low = [
        f"{DIRECTION_NAMES[d]} {latest[d]['ssim']:.2f}"
        for d in DIRECTION_NAMES
        if isinstance(latest.get(d), dict)
        and latest[d].get("ssim") is not None
        and latest[d]["ssim"] < LOW_VALIDATION_SSIM
    ]
    if low and total and latest["iteration"] >= total / 10:
        return (
            f"validation SSIM is still {', '.join(low)} after {latest['iteration']} of {total} "
            f"iterations: the generator is not learning the contrast. To change: {todo}"
        )
    return None


def describe(event: dict, total: int | None = None) -> str:
    """One progress line for people, as the CLI prints it."""
    kind = event.get("type")
    it = event.get("iteration", 0)
    of = f"/{total}" if total else ""
    if kind == "step":

        def num(key):
            v = event.get(key)
            return "nan" if v is None else f"{v:.3f}"

        # The paired losses only mean something in runs with co-registered pairs.
        losses = "  ".join(f"{k} {num(k)}" for k in LOSS_KEYS if not k.startswith(OPTIONAL_LOSSES) or event.get(k))
        return (
            f"iter {it}{of}  epoch {event.get('epoch', 0)}  {losses}  "
            f"lr {event.get('lr', 0):.2e}  {event.get('seconds', 0):.1f} s"
        )
    if kind == "start":
        how = "resumed at" if event.get("resumed") else "started at"
        if event.get("minutes"):
            return f"training {how} iteration {it} on {event.get('device', '?')}, for {event['minutes']:g} minutes"
        return f"training {how} iteration {it}{of} on {event.get('device', '?')}"
    if kind == "validation":
        parts = [
            f"{DIRECTION_NAMES[d]} SSIM {event[d]['ssim']:.3f} PSNR {event[d]['psnr']:.2f} dB"
            for d in DIRECTION_NAMES
            if isinstance(event.get(d), dict)
        ]
        return f"iter {it}{of}  validation: {', '.join(parts)}{'  (best so far)' if event.get('best') else ''}"
    if kind == "sample":
        return f"iter {it}{of}  sample {event.get('path')}"
    if kind == "checkpoint":
        return f"iter {it}{of}  checkpoint {event.get('path')}"
    if kind == "stopped":
        return f"stopped at iteration {it}; resume with --resume (checkpoint {event.get('checkpoint')})"
    if kind == "done":
        best = f"; best by validation: {event['best']}" if event.get("best") else ""
        return f"done: {it} iterations; model written to {event.get('model')}{best}"
    if kind == "error":
        return f"error: {event.get('message')}"
    return format_event(event)
