"""Training for a time budget (--minutes) and live validation on co-registered pairs: real short
runs on the seed slices, validation events, the best model, the diagnosis of a run that is not learning."""

from __future__ import annotations

import json

import pytest
import torch
from test_train import _cli, kill_after_a_checkpoint, resume

from mri_style_app.__main__ import main
from mri_style_app.cyclegan import events
from mri_style_app.cyclegan.checkpoint import load_model
from mri_style_app.cyclegan.seed_slices import write_split
from mri_style_app.cyclegan.time_budget import TimeBudget, iterations_in
from mri_style_app.cyclegan.train import CHECKPOINT, Trainer
from mri_style_app.cyclegan.train_config import TrainConfig


@pytest.fixture(scope="module")
def seed_pairs(tmp_path_factory, seed_dir):
    """The seed test split as one co-registered T1w/T2w volume pair (tests may read every slice)."""
    out = tmp_path_factory.mktemp("seed_pairs")
    write_split(out, "test", seed_dir)
    return out / "t1w", out / "t2w"


def test_time_budget_places_the_total_by_the_measured_speed():
    budget = TimeBudget(100.0)
    budget.start(0, 0.0)
    assert budget.plan(0, 0.0) == 1  # nothing measured yet: one more iteration
    assert budget.plan(1, 5.0) == 1 + 19  # 5 s per iteration, 95 s left
    # The first iteration carried the warm-up: from the second on, speed is measured after it.
    assert budget.plan(11, 15.0) == 11 + 85
    budget.reserve = 10.0  # the final validation
    assert budget.plan(11, 15.0) == 11 + 75
    assert budget.plan(50, 99.5) == 50  # the next iteration would overrun: stop now
    assert budget.plan(60, 120.0) == 60
    resumed = TimeBudget(100.0)
    resumed.start(40, 80.0)  # 80 s spent before the run was killed
    assert resumed.plan(41, 81.0) == 41 + 19
    assert iterations_in(60, 0.25) == 240 and iterations_in(1, 10) == 1


def test_minutes_stop_on_time_within_one_iteration(seed_dir, tmp_path):
    run = tmp_path / "run"
    budget = 0.15 * 60
    assert main([*_cli(seed_dir, run, "--minutes", "0.15", "--quiet")[3:]]) == 0
    log = events.read_events(run)
    steps = [e for e in log if e["type"] == "step"]
    done = log[-1]
    assert done["type"] == "done" and done["iteration"] == steps[-1]["iteration"] == steps[-1]["total_iterations"]
    per_iteration = max(b["seconds"] - a["seconds"] for a, b in zip(steps, steps[1:]))
    # Stopped on time: neither early nor later than one iteration (the final sample aside).
    assert budget - 2 * per_iteration - 1.0 <= done["wall_seconds"] <= budget + per_iteration + 1.0, (
        done,
        per_iteration,
    )
    # The learning-rate decay ended where the time did.
    assert steps[-1]["lr"] < 0.1 * steps[0]["lr"]
    start = next(e for e in log if e["type"] == "start")
    assert start["minutes"] == 0.15 and start["total_iterations"] is None
    assert json.loads((run / "config.json").read_text())["config"]["minutes"] == 0.15
    card = load_model(run / "model.safetensors").card
    assert card["training"]["iterations"] == done["iteration"]


def test_a_budgeted_run_killed_and_resumed_keeps_its_time(seed_dir, tmp_path):
    run = tmp_path / "run"
    kill_after_a_checkpoint(_cli(seed_dir, run, "--minutes", "0.3", "--checkpoint-every", "5"), run, 10)
    spent = torch.load(run / CHECKPOINT, weights_only=True)["wall_seconds"]
    assert 0 < spent < 18
    result = resume(run)
    assert result.returncode == 0, result.stderr
    log = events.read_events(run)
    starts = [e for e in log if e["type"] == "start"]
    assert starts[-1]["resumed"] and starts[-1]["seconds_left"] == pytest.approx(18 - spent, abs=0.2)
    assert log[-1]["type"] == "done" and 17 <= log[-1]["wall_seconds"] <= 21
    steps = [e["iteration"] for e in log if e["type"] == "step"]
    assert steps == list(range(1, log[-1]["iteration"] + 1))


def test_validation_scores_pairs_keeps_the_best_model_and_refuses_bad_folders(seed_dir, seed_pairs, tmp_path, capsys):
    val_a, val_b = seed_pairs
    run = tmp_path / "run"
    config = TrainConfig(
        domain_a=str(seed_dir / "T1"),
        domain_b=str(seed_dir / "T2"),
        out=str(run),
        size=112,  # the defaults otherwise; whole slices resized down, so iterations are quick
        iterations=120,
        val_a=str(val_a),
        val_b=str(val_b),
        val_every=40,
        log_every=10,
        sample_every=1000,
        checkpoint_every=1000,
        seed=1,
        amp=False,  # the learning check in float32: bfloat16 rounding differs by CPU model
    )
    Trainer(config).run()
    log = events.read_events(run)
    scores = [e for e in log if e["type"] == "validation"]
    assert [e["iteration"] for e in scores] == [0, 40, 80, 120]
    for e in scores:
        for direction in ("t1-to-t2", "t2-to-t1"):
            figures = e[direction]
            assert set(figures) == {"ssim", "psnr", "mae", "correlation"}
            assert -1 <= figures["ssim"] <= 1 and figures["psnr"] > 0 and 0 <= figures["mae"] <= 1
        assert e["ssim"] == pytest.approx((e["t1-to-t2"]["ssim"] + e["t2-to-t1"]["ssim"]) / 2, abs=1e-4)
    # It learns: validation SSIM rises from the untrained start, and the whole-head error falls.
    assert scores[-1]["ssim"] > scores[0]["ssim"] + 0.05, [s["ssim"] for s in scores]
    for direction in ("t1-to-t2", "t2-to-t1"):
        assert scores[-1][direction]["psnr"] > scores[0][direction]["psnr"] + 0.5, [s[direction] for s in scores]
    best = max(scores, key=lambda e: e["ssim"])
    assert [e["iteration"] for e in scores if e["best"]][-1] == best["iteration"]
    best_card = load_model(run / "best.safetensors").card
    assert best_card["training"]["iterations"] == best["iteration"]
    final_card = load_model(run / "model.safetensors").card
    assert final_card["training"]["validation"]["iteration"] == 120
    assert final_card["training"]["validation"]["t1-to-t2"] == scores[-1]["t1-to-t2"]
    assert log[-1]["type"] == "done" and log[-1]["best"] == "best.safetensors"
    # The same scores as `mri-style evaluate` of the translation (the one protocol).
    out = tmp_path / "pred.nii.gz"
    name = next(val_a.iterdir()).name
    assert (
        main(
            [
                "translate",
                str(val_a / name),
                str(out),
                "--direction",
                "t1-to-t2",
                "--model",
                str(run / "model.safetensors"),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", str(out), str(val_b / name), "--source", str(val_a / name), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["ssim"] == pytest.approx(scores[-1]["t1-to-t2"]["ssim"], abs=1e-3)
    assert evaluated["psnr"] == pytest.approx(scores[-1]["t1-to-t2"]["psnr"], abs=0.01)

    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "other.nii.gz").write_bytes((val_b / name).read_bytes())
    for extra, words in (
        (["--val-a", str(val_a)], "both --val-a and --val-b"),
        (["--val-a", str(val_a), "--val-b", str(lonely)], "without a partner"),
        (["--val-a", str(val_a), "--val-b", str(tmp_path / "none")], "does not exist"),
    ):
        assert main([*_cli(seed_dir, tmp_path / "bad", "--iterations", "2", *extra)[3:]]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and words in err, err
    assert not (tmp_path / "bad").exists()


def _validation(iteration, ssim, correlation=-0.3, total=100):
    figures = {"ssim": ssim, "psnr": 15.0, "mae": 0.1, "correlation": correlation}
    return {
        "type": "validation",
        "iteration": iteration,
        "total_iterations": total,
        "t1-to-t2": dict(figures),
        "t2-to-t1": dict(figures),
        "ssim": ssim,
    }


def test_diagnosis_names_a_generator_that_is_not_learning_the_contrast():
    start = {"type": "start", "iteration": 0, "crop": True, "lambda_identity": 0.5, "init_from": None}
    assert events.diagnose([start, _validation(0, 0.05)]) is None  # before training: nothing to judge
    assert events.diagnose([start, _validation(5, 0.1)]) is None  # too early
    low = events.diagnose([start, _validation(20, 0.1)])
    assert "not learning the contrast" in low and "lambda_identity" in low and "--crop" in low
    assert events.diagnose([start, _validation(20, 0.6)]) is None
    following = events.diagnose([start, _validation(20, 0.6, correlation=0.2)])
    assert "correlates positively" in following
    # Advice fits the run: nothing it already does.
    tuned = {**start, "crop": False, "lambda_identity": 0.0, "init_from": "bundled.safetensors"}
    advice = events.diagnose([tuned, _validation(20, 0.1)])
    assert "lambda_identity" not in advice and "--crop" not in advice and "--init-from" not in advice
    assert "--lr" in advice
    line = events.describe(_validation(20, 0.6) | {"best": True}, 100)
    assert "T1w->T2w SSIM 0.600" in line and "best" in line


def test_a_fine_tune_takes_the_starting_models_percentiles_unless_given(seed_dir, tmp_path):
    from mri_style_app import paths
    from mri_style_app.cyclegan.checkpoint import contrast_percentile

    bundled = load_model(paths.default_model_path())
    common = dict(
        domain_a=str(seed_dir / "T1"),
        domain_b=str(seed_dir / "T2"),
        preset=bundled.preset,
        init_from=str(paths.default_model_path()),
    )
    inherited = Trainer(TrainConfig(out=str(tmp_path / "a"), **common)).config
    assert (inherited.percentile_a, inherited.percentile_b) == (
        contrast_percentile(bundled.normalisation, "t1"),
        contrast_percentile(bundled.normalisation, "t2"),
    )
    given = Trainer(TrainConfig(out=str(tmp_path / "b"), percentile_a=95.0, **common)).config
    assert given.percentile_a == 95.0 and given.percentile_b == inherited.percentile_b
    fresh = Trainer(
        TrainConfig(out=str(tmp_path / "c"), domain_a=common["domain_a"], domain_b=common["domain_b"])
    ).config
    assert (fresh.percentile_a, fresh.percentile_b) == (99.5, 99.5)
