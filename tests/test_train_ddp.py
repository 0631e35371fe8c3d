"""The same `mri-style train` command under torchrun: 2 CPU processes with DDP (gloo) on tiny data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mri_style_app.cyclegan import events
from mri_style_app.cyclegan.checkpoint import load_model

REPO = Path(__file__).resolve().parents[1]


def test_torchrun_two_processes_train_one_model(seed_dir, tmp_path):
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "mri_style_app",
        "train",
        "--domain-a",
        str(seed_dir / "T1"),
        "--domain-b",
        str(seed_dir / "T2"),
        "--out",
        str(run),
        "--preset",
        "tiny",
        "--size",
        "32",
        "--iterations",
        "4",
        "--log-every",
        "1",
        "--checkpoint-every",
        "2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

    log = events.read_events(run)
    start, done = log[0], log[-1]
    assert start["type"] == "start" and start["world_size"] == 2
    # Each rank takes its half of the slices: an epoch is half as many iterations.
    assert start["epoch_iterations"] == 46 // 2
    # Only rank 0 writes: every iteration is logged once.
    assert [e["iteration"] for e in log if e["type"] == "step"] == [1, 2, 3, 4]
    assert [e["iteration"] for e in log if e["type"] == "checkpoint"] == [2, 4]
    # Gradients were averaged across the ranks, so both ended with the same weights.
    assert done["type"] == "done" and done["weights_in_sync"] is True
    assert result.stdout.count("done: 4 iterations") == 1
    model = load_model(run / done["model"])
    assert set(model.generators) == {"t1-to-t2", "t2-to-t1"}
    assert not list(run.glob("**/*.tmp"))
