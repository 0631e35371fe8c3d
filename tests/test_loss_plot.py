"""LossPlot (real pyqtgraph widget, offscreen) and the run diagnosis in help_text."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mri_style_app.ui.help_text import D_COLLAPSE_ITERATIONS, diagnose_run


def _steps(n, start=0, d_a=lambda i: 0.25, cycle=lambda i: 2.0 * math.exp(-i / 100)):
    rng = np.random.default_rng(start)
    return [
        {
            "type": "step",
            "iteration": i,
            "epoch": 0,
            "G_A": 0.3 + 0.1 * rng.random(),
            "G_B": 0.35,
            "D_A": d_a(i),
            "D_B": 0.22,
            "cycle_A": cycle(i),
            "cycle_B": cycle(i) / 2,
            "idt_A": 0.4,
            "idt_B": 0.3,
        }
        for i in range(start, start + n)
    ]


@pytest.fixture
def plot(qtbot):
    from mri_style_app.ui.loss_plot import LossPlot

    widget = LossPlot()
    qtbot.addWidget(widget)
    return widget


def test_append_in_batches_sums_cycle_and_identity(plot):
    events = _steps(50)
    assert plot.add_steps(events[:20] + [{"type": "sample", "iteration": 20}]) == 20
    assert plot.add_steps(events[20:]) == 30
    assert plot.point_count() == 50
    x, cycle = plot.series("cycle")
    np.testing.assert_array_equal(x, np.arange(50))
    np.testing.assert_allclose(cycle, [e["cycle_A"] + e["cycle_B"] for e in events])
    np.testing.assert_allclose(plot.series("identity")[1], 0.7)
    # What is drawn is the smoothed curve, with as many points as were added.
    drawn_x, drawn_y = plot._items["cycle"].getData()
    assert len(drawn_x) == 50


def test_smoothing_is_an_ema_and_zero_means_raw(plot):
    events = _steps(30)
    plot.set_smoothing(0.5)
    plot.add_steps(events)
    raw = plot.series("G_A")[1]
    expected = [raw[0]]
    for v in raw[1:]:
        expected.append(0.5 * expected[-1] + 0.5 * v)
    np.testing.assert_allclose(plot.series("G_A", smoothed=True)[1], expected)
    plot.set_smoothing(0.0)
    np.testing.assert_allclose(plot.series("G_A", smoothed=True)[1], raw)
    assert plot.smoothing_slider.value() == 0


def test_null_loss_is_a_gap_and_log_scale_survives_zero(plot):
    events = _steps(10)
    events[4]["G_A"] = None  # the writer stores a non-finite loss as null
    events[6]["D_A"] = 0.0
    plot.add_steps(events)
    assert math.isnan(plot.series("G_A")[1][4])
    assert math.isfinite(plot.series("G_A", smoothed=True)[1][5])  # the EMA picks up again
    plot.log_checkbox.setChecked(True)
    assert plot.is_log_scale()
    _, drawn = plot._items["D_A"].getData()
    assert np.all(drawn[np.isfinite(drawn)] > -7)  # log10 of the floor, not -inf


def test_diagnosis_healthy_run():
    events = _steps(300)
    from mri_style_app.ui.loss_plot import step_values

    x = np.array([e["iteration"] for e in events], float)
    series = {k: np.array([step_values(e)[k] for e in events]) for k in step_values(events[0])}
    [finding] = diagnose_run(x, series)
    assert finding.level == "ok" and "cycle loss fell" in finding.message


def test_diagnosis_sees_discriminator_collapse_and_cycle_stall():
    n = 400
    x = np.arange(n, dtype=float)
    d_a = np.where(x > 100, 0.001, 0.25)  # collapses at 100, stays for 299 iterations
    series = {"D_A": d_a, "D_B": np.full(n, 0.2), "cycle": np.full(n, 1.5)}
    messages = [f.message for f in diagnose_run(x, series)]
    assert any(
        m.startswith(f"D_A has stayed near zero over the last {D_COLLAPSE_ITERATIONS} iterations") for m in messages
    )
    assert any("stopped falling" in m for m in messages)
    assert n - 1 - 101 >= D_COLLAPSE_ITERATIONS
    # A brief dip is not a collapse.
    d_a[-50:] = 0.001
    d_a[:-50] = 0.25
    series["cycle"] = 2.0 * np.exp(-x / 100)
    assert [f.level for f in diagnose_run(x, series)] == ["ok"]


def test_diagnosis_sees_a_noisy_collapse_and_knows_a_fine_tune_starts_low():
    """Like a fine-tune of a trained model: D_A mostly 0.005-0.015 with spikes above 0.02, and a
    cycle loss flat from the start because the run began from a trained model."""
    n = 600
    x = np.arange(n, dtype=float)
    rng = np.random.default_rng(0)
    d_a = np.where(x > 300, rng.uniform(0.005, 0.015, n), 0.25)
    d_a[np.arange(310, n, 9)] = 0.05  # a spike now and then
    series = {"D_A": d_a, "D_B": np.full(n, 0.2), "cycle": np.full(n, 0.11) + rng.normal(0, 0.005, n)}
    messages = [f.message for f in diagnose_run(x, series)]
    assert any(m.startswith("D_A has stayed near zero") for m in messages)
    assert any("stopped falling" in m for m in messages)  # from scratch, a flat cycle is a stall
    tuned = diagnose_run(x, series, fine_tune=True)
    assert not any("stopped falling" in f.message for f in tuned)
    assert any(f.message.startswith("D_A has stayed near zero") for f in tuned)
    series["D_A"] = np.full(n, 0.25)
    [finding] = diagnose_run(x, series, fine_tune=True)
    assert finding.level == "ok" and "saved model" in finding.message


def test_diagnosis_of_a_run_without_adversarial_terms():
    """Like a paired run with lambda_adversarial 0: D_A wins outright, which harms
    nothing there, so no collapse warning and no talk of a GAN game; the run is said to be one."""
    n = 600
    x = np.arange(n, dtype=float)
    series = {"D_A": np.full(n, 0.01), "D_B": np.full(n, 0.2), "cycle": np.linspace(0.3, 0.05, n)}
    assert any(f.message.startswith("D_A has stayed near zero") for f in diagnose_run(x, series))
    findings = diagnose_run(x, series, adversarial=False)
    assert [f.level for f in findings] == ["info", "ok"]
    assert "adversarial terms are off" in findings[0].message
    assert "wobble" not in findings[1].message and "cycle loss fell" in findings[1].message
    tuned = diagnose_run(x, series, fine_tune=True, adversarial=False)
    assert [f.level for f in tuned] == ["info", "ok"] and "wobble" not in tuned[1].message


def test_diagnosis_divergence_and_early():
    assert diagnose_run(np.arange(5.0), {"G_A": np.ones(5)})[0].message.startswith("Iteration 4: too early")
    series = {"G_A": np.array([1.0] * 49 + [math.nan])}
    [finding] = diagnose_run(np.arange(50.0), series)
    assert finding.level == "warning" and "diverged" in finding.message


def test_an_unused_loss_leaves_the_plot_and_the_legend(plot):
    listed = lambda: {label.text for _, label in plot.legend.items}  # noqa: E731
    assert {"identity", "paired"} <= listed()  # before any point, every curve is listed
    plot.add_steps(_steps(20))  # no paired losses in these events: they count as 0
    assert not plot._items["paired"].isVisible() and "paired" not in listed()
    assert plot._items["identity"].isVisible() and "identity" in listed()
    paired = [{**e, "iteration": e["iteration"] + 20, "paired_A": 0.5, "paired_B": 0.4} for e in _steps(5)]
    plot.add_steps(paired)  # the run turns out to use it after all
    assert plot._items["paired"].isVisible() and "paired" in listed()
    assert len(listed()) == len(plot.legend.items)  # listed once
