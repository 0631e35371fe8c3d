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
        "lite",
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


def test_torchrun_with_a_time_budget_and_validation_keeps_the_ranks_together(seed_dir, tmp_path):
    """Rank 0's clock sets every rank's total (the learning-rate schedule depends on it) and rank 0
    alone scores the validation pairs, while the others wait at the next collective."""
    from mri_style_app.cyclegan.seed_slices import write_split

    write_split(tmp_path / "val", "test", seed_dir)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "mri_style_app", "train", "--domain-a", str(seed_dir / "T1"), "--domain-b", str(seed_dir / "T2"),
               "--out", str(run), "--preset", "lite", "--size", "32", "--minutes", "0.2", "--log-every", "1",
               "--val-a", str(tmp_path / "val" / "t1w"), "--val-b", str(tmp_path / "val" / "t2w"), "--val-every", "10"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    log = events.read_events(run)
    done = log[-1]
    assert done["type"] == "done" and done["weights_in_sync"] is True and done["best"] == "best.safetensors"
    assert done["wall_seconds"] <= 12 + 10
    steps = [e["iteration"] for e in log if e["type"] == "step"]
    assert steps == list(range(1, done["iteration"] + 1))
    assert [e["iteration"] for e in log if e["type"] == "validation"][0] == 0
    assert (run / "best.safetensors").is_file()
