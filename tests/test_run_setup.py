"""What the training wizard works out without Qt (cyclegan/run_setup.py, run_progress.py): the
folder scan, the command line, a run's bookkeeping from its real events file. No pytest-qt."""

from __future__ import annotations

import json
import shutil

import pytest

from mri_style_app import paths
from mri_style_app.cyclegan import events
from mri_style_app.cyclegan.run_progress import RunProgress
from mri_style_app.cyclegan.run_setup import bundled_model, log_interval, scan_folder, train_command


def test_folder_scan_counts_warns_and_keeps_the_loaders_message(seed_dir, tmp_path):
    folder = tmp_path / "T1"
    folder.mkdir()
    for png in sorted((seed_dir / "T1").glob("*.png"))[:5]:
        shutil.copy(png, folder / png.name)
    (folder / "notes.txt").write_text("not an image")
    scan = scan_folder(folder)
    assert scan.count == 5 and "5 PNG slice(s)" in scan.kinds and len(scan.thumbnails) == 4
    assert any("too few" in w for w in scan.warnings) and any("notes.txt" in w for w in scan.warnings)
    assert "does not exist" in scan_folder(tmp_path / "none").error


def test_the_command_line_for_iterations_minutes_auto_size_and_resume(tmp_path):
    base = train_command("A", "B", tmp_path / "run", "lite", 0, 300, "cpu")
    assert base[: len(paths.self_command())] == paths.self_command()
    line = " ".join(base[len(paths.self_command()) :])
    assert "--preset lite --iterations 300 --device cpu --log-every 3" in line and "--size" not in line
    timed = train_command("A", "B", tmp_path / "run", "lite", 128, None, "auto", minutes=20, extra=["--val-a", "V"])
    assert timed[timed.index("--minutes") + 1] == "20" and "--iterations" not in timed
    assert timed[timed.index("--size") + 1] == "128" and timed[-2:] == ["--val-a", "V"]
    assert train_command(None, None, tmp_path / "run", "", 0, 0, resume=True)[-3:] == [
        "--out",
        str(tmp_path / "run"),
        "--resume",
    ]
    assert [log_interval(n) for n in (12, 500, 100_000)] == [1, 5, 10]
    path, preset = bundled_model()
    assert (
        path == paths.default_model_path()
        and preset == json.loads(path.with_suffix(".json").read_text())["architecture"]["preset"]
    )


def test_run_progress_follows_a_runs_events(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / events.CONFIG_FILE).write_text(json.dumps({"config": {"init_from": "base.safetensors"}}))
    progress = RunProgress(run)
    log = [
        {"type": "start", "iteration": 0, "total_iterations": None, "minutes": 1, "seconds_left": 60.0},
        {"type": "validation", "iteration": 0, "ssim": 0.2, "best": True},
        {"type": "step", "iteration": 10, "total_iterations": 100, "seconds": 2.0, "seconds_left": 50.0},
        {"type": "step", "iteration": 20, "total_iterations": 110, "seconds": 4.0, "seconds_left": 40.0},
        {"type": "validation", "iteration": 20, "ssim": 0.5, "best": True},
        {"type": "done", "iteration": 110, "model": "model.safetensors", "best": "best.safetensors"},
    ]
    for event in log[:4]:
        progress.note(event)
    assert progress.fine_tune and progress.adversarial and progress.total_iterations == 110
    assert progress.seconds_left() == 40.0  # the trainer's own figure for a time budget
    for event in log[4:]:
        progress.note(event)
    assert progress.best == (20, 0.5) and progress.finished_model == run / "model.safetensors"
    assert progress.best_model == run / "best.safetensors" and len(progress.judged) == 3
    paced = RunProgress(run)
    for i, seconds in ((10, 3.0), (20, 5.0)):
        paced.note({"type": "step", "iteration": i, "total_iterations": 100, "seconds": seconds})
    assert paced.seconds_left() == pytest.approx(80 * 0.2)  # 2 s per 10 iterations since the first step
    paced.events_rewritten()
    assert paced.first_step is None and paced.judged == []
