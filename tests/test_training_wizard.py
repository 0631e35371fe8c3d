"""The training wizard, driven by pytest-qt: real seed slices, a real `mri-style train`
subprocess on the qasync loop, its real events.jsonl, the real loss plot."""

from __future__ import annotations

import asyncio
import json
import shutil
import time

import numpy as np
import pytest

from mri_style_app.cyclegan import events as run_events


@pytest.fixture
def loop(qapp):
    import qasync

    event_loop = qasync.QEventLoop(qapp, already_running=False)
    asyncio.set_event_loop(event_loop)
    yield event_loop
    event_loop.close()
    asyncio.set_event_loop(None)


def run_until(loop, condition, timeout: float, what: str) -> None:
    """Drive the qasync loop (Qt events and asyncio subprocess I/O) until `condition()` holds."""

    async def wait():
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.05)

    loop.run_until_complete(wait())


@pytest.fixture
def tiny_domains(seed_dir, tmp_path):
    """Two small unpaired folders made of real seed slices (copied to tmp, never into the repo)."""
    folders = {}
    for name, count in (("T1", 5), ("T2", 6)):
        folder = tmp_path / name
        folder.mkdir()
        for png in sorted((seed_dir / name).glob("*.png"))[::7][:count]:
            shutil.copy(png, folder / png.name)
        folders[name] = folder
    return folders["T1"], folders["T2"]


def test_data_page_counts_shows_thumbnails_and_warns(qtbot, tiny_domains, tmp_path):
    from mri_style_app.ui.training_wizard import TrainingWizard

    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    wizard.show()
    page = wizard.data_page
    t1, t2 = tiny_domains
    assert not page.isComplete()
    with qtbot.waitSignal(page.completeChanged, timeout=30_000, check_params_cb=lambda *a: page.scans["a"] is not None):
        page.set_folder("a", t1)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    task = page.set_folder("b", empty)
    assert task.wait(30)
    qtbot.waitUntil(lambda: page.scans["b"] is not None, timeout=5000)
    assert "has no NIfTI" in page.summaries["b"].text() and "1 other file" in page.summaries["b"].text()
    assert not page.isComplete()

    assert page.set_folder("b", t2).wait(30)
    qtbot.waitUntil(lambda: page.isComplete(), timeout=5000)
    scan_a, scan_b = page.scans["a"], page.scans["b"]
    assert (scan_a.count, scan_b.count) == (5, 6)
    assert "5 PNG slice(s)" in page.summaries["a"].text() and "217x181 (5)" in scan_a.kinds  # height x width
    assert any("only 5 slices" in w for w in scan_a.warnings)
    assert len(scan_a.thumbnails) == 4 and scan_a.thumbnails[0].shape == (217, 181)
    thumbs = [page.thumb_rows["a"].itemAt(i).widget() for i in range(page.thumb_rows["a"].count() - 1)]
    assert len(thumbs) == 4 and not thumbs[0].pixmap().isNull()


@pytest.fixture
def window(qtbot):
    from mri_style_app.ui.app import MainWindow, _install_panels

    win = MainWindow()
    _install_panels(win)
    win.show()
    yield win
    # Closed here rather than by qtbot, which closes its widgets before this runs: a test that
    # fails part-way can leave a training run going, and closing would then open the close
    # guard's modal question, which nobody answers. Such runs end here and the window closes
    # without asking, so a failure is reported instead of hanging the suite.
    for run in win.training_panel.running_runs():
        run.detach()
        if run.process is not None and run.process.is_running():
            run.process.process.kill()
    win.close_guards.clear()
    win.close()


def _click_in_message_box(qtbot, window, button_text: str) -> None:
    """Press a button of the close guard's real QMessageBox as soon as it is open."""
    from PySide6.QtCore import QTimer

    def press():
        box = getattr(window.training_panel, "close_box", None)
        if box is None or not box.isVisible():
            QTimer.singleShot(20, press)
            return
        [button] = [b for b in box.buttons() if b.text() == button_text]
        button.click()

    QTimer.singleShot(20, press)


# Long enough (a few seconds of lite/32 on a fast CPU) that the run is still going when Stop
# reaches it, a moment after its first loss points.
WIZARD_ITERATIONS = 100


def test_wizard_trains_in_a_subprocess_with_live_curves_stop_resume_and_hand_over(
    qtbot, loop, window, tiny_domains, tmp_path, monkeypatch
):
    from mri_style_app.ui.training_wizard import ESTIMATE_ITERATIONS

    # The child processes inherit this: one thread each, as the training tests run, so that
    # OpenMP threads do not spin against the other processes sharing a small CI machine.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    training = window.training_panel
    wizard = training.new_wizard()
    qtbot.addWidget(wizard)
    t1, t2 = tiny_domains
    wizard.data_page.set_folder("a", t1)
    wizard.data_page.set_folder("b", t2)
    run_until(loop, wizard.data_page.isComplete, 60, "the folder scans")

    model_page = wizard.model_page
    assert model_page.fine_tune() and not model_page.preset_combo.isEnabled()  # the first choice
    model_page.start_combo.setCurrentIndex(model_page.start_combo.findData("fresh"))
    model_page.length_combo.setCurrentIndex(model_page.length_combo.findData("iterations"))
    model_page.preset_combo.setCurrentText("lite")
    model_page.size_spin.setValue(32)
    model_page.iterations_spin.setValue(WIZARD_ITERATIONS)
    model_page.device_combo.setCurrentText("cpu")
    wizard.next()  # the model page times real iterations of lite/32 on this CPU
    assert wizard.currentPage() is model_page
    key = wizard.estimator.key("lite", 32, "cpu")
    run_until(loop, lambda: key in wizard.estimator.cache, 90, "the duration estimate")
    per_iteration = wizard.estimator.cache[key]
    print(f"\nestimate: {per_iteration:.3f} s per lite/32 iteration ({ESTIMATE_ITERATIONS}-iteration timing run)")
    assert 0 < per_iteration < 30
    assert "s per iteration here" in model_page.estimate_label.text()

    wizard.next()
    run_dir = tmp_path / "run"
    wizard.output_page.folder_edit.setText(str(run_dir))
    assert wizard.output_page.isComplete()
    assert (
        f"--preset lite --size 32 --iterations {WIZARD_ITERATIONS} --device cpu --log-every 1"
        in wizard.output_page.command_view.toPlainText()
    )
    wizard.next()  # "Start training": a real `mri-style train` child process
    assert wizard.currentPage() is wizard.run_page
    run, view = wizard.run, wizard.run_page.view
    assert run.is_running()

    started = time.monotonic()
    run_until(loop, lambda: view.plot.point_count() > 0, 90, "the first loss points")
    print(f"first loss point {time.monotonic() - started:.1f} s after Start")
    assert np.isfinite(view.plot.series("cycle")[1]).all()
    assert view.stop_button.isEnabled() and not view.use_button.isEnabled()

    # Closing the app during a run asks: Cancel keeps the window, Stop checkpoints and stops.
    _click_in_message_box(qtbot, window, "Cancel")
    assert not window.close() and window.isVisible() and run.is_running()
    _click_in_message_box(qtbot, window, "Stop training")
    assert window.close()
    run_until(loop, lambda: not run.is_running() and run.stopped, 60, "the run to stop")
    stopped_at = run.last_iteration
    assert 0 < stopped_at < WIZARD_ITERATIONS and run.can_resume()
    assert view.resume_button.isEnabled() and "Resume" in view.progress_label.text()

    print(f"stopped {time.monotonic() - started:.1f} s after Start")
    view.resume_button.click()  # `mri-style train --out RUN --resume`
    run_until(loop, lambda: run.finished_model is not None and not run.is_running(), 120, "the resumed run to finish")
    print(f"finished {time.monotonic() - started:.1f} s after Start")
    steps = [e for e in run_events.read_events(run_dir) if e["type"] == "step"]
    iterations = [e["iteration"] for e in steps]
    assert iterations == sorted(set(iterations)) and iterations[-1] == WIZARD_ITERATIONS  # continued, no duplicates
    assert view.plot.point_count() == len(steps)
    assert view.progress_bar.value() == 1000
    assert not view.sample_label.pixmap().isNull()
    assert view.diagnosis_label.text() and "Training finished" in view.diagnosis_label.text()
    print(f"stopped at iteration {stopped_at}, resumed to {WIZARD_ITERATIONS}; {len(steps)} loss points")

    # "Use this model" loads the run's model into the translate panel.
    panel = window.translate_panel
    assert view.use_button.isEnabled()
    with qtbot.waitSignal(panel.model_loaded, timeout=60_000):
        view.use_button.click()
    assert panel.current_model_path() == str((run_dir / "model.safetensors").resolve())

    # An old run folder shows its curves again.
    old = training.open_run(run_dir)
    qtbot.addWidget(old)
    assert old.currentPage() is old.run_page
    assert old.run_page.view.plot.point_count() == len(steps)
    assert not old.run_page.view.resume_button.isEnabled()  # finished: nothing to resume


KEEP_RUNNING_APP = r"""
import asyncio, os, sys
from PySide6.QtCore import QTimer
import qasync
from mri_style_app.ui.app import MainWindow, _install_panels, create_application
t1, t2, run_dir = sys.argv[1:4]
app = create_application()
loop = qasync.QEventLoop(app)
asyncio.set_event_loop(loop)
window = MainWindow()
_install_panels(window)
window.show()
wizard = window.training_panel.new_wizard()
wizard.data_page.edits["a"].setText(t1)
wizard.data_page.edits["b"].setText(t2)
wizard.model_page.start_combo.setCurrentIndex(wizard.model_page.start_combo.findData("fresh"))
wizard.model_page.length_combo.setCurrentIndex(wizard.model_page.length_combo.findData("iterations"))
wizard.model_page.preset_combo.setCurrentText("lite")
wizard.model_page.size_spin.setValue(32)
wizard.model_page.iterations_spin.setValue(30)
wizard.output_page.folder_edit.setText(run_dir)
run = wizard.start_run()

def press_keep():
    box = getattr(window.training_panel, "close_box", None)
    if box is None or not box.isVisible():
        QTimer.singleShot(20, press_keep)
        return
    [keep] = [b for b in box.buttons() if b.text() == "Keep running"]
    keep.click()

async def main():
    while wizard.run_page.view.plot.point_count() == 0:
        await asyncio.sleep(0.05)
    QTimer.singleShot(20, press_keep)
    print("closed" if window.close() else "not closed", run.process.pid, flush=True)

loop.run_until_complete(main())
os._exit(0)  # the app quits at once; the training child keeps going on its own
"""


def test_keep_running_lets_the_run_finish_after_the_app_quits(tiny_domains, tmp_path):
    import os
    import subprocess
    import sys

    t1, t2 = tiny_domains
    run_dir = tmp_path / "kept"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen"}
    app = subprocess.run(
        [sys.executable, "-c", KEEP_RUNNING_APP, str(t1), str(t2), str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert app.returncode == 0, app.stderr
    assert app.stdout.startswith("closed"), app.stdout + app.stderr
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        kinds = [e["type"] for e in run_events.read_events(run_dir)]
        if "done" in kinds or "error" in kinds:
            break
        time.sleep(0.2)
    events = run_events.read_events(run_dir)
    assert events[-1]["type"] == "done", events[-1]  # no BrokenPipe once the app's end of the pipe closed
    assert (run_dir / "model.safetensors").is_file()


def test_data_page_takes_optional_pairs_into_the_command(qtbot, tiny_domains, tmp_path):
    import nibabel as nib
    import numpy as np

    from mri_style_app.ui.training_wizard import TrainingWizard

    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    wizard.show()
    page = wizard.data_page
    for side, folder in zip("ab", tiny_domains):
        assert page.set_folder(side, folder).wait(30)
    qtbot.waitUntil(page.isComplete, timeout=5000)
    assert "--paired-a" not in wizard.command()  # none given: unpaired training

    rng = np.random.default_rng(0)
    folders = [tmp_path / "pA", tmp_path / "pB"]
    for folder in folders:
        folder.mkdir()
    head = np.zeros((24, 28, 20), np.float32)
    head[4:20, 4:24, 3:17] = 1
    for name in ("h1", "h2"):
        nib.save(
            nib.Nifti1Image(head * rng.uniform(0.5, 1, head.shape).astype(np.float32), np.eye(4)),
            folders[0] / f"{name}.nii.gz",
        )
        nib.save(
            nib.Nifti1Image(head * rng.uniform(0.5, 1, head.shape).astype(np.float32), np.eye(4)),
            folders[1] / f"{name}.nii.gz",
        )

    assert page.pairs.set_folders(folders[0], None) is None  # one of two: refused at once
    assert "both paired folders" in page.pairs.summary.text() and not page.isComplete()
    task = page.pairs.set_folders(folders[0], folders[1])
    assert task.wait(30)
    qtbot.waitUntil(lambda: page.pairs.state == "ok", timeout=5000)
    assert page.isComplete() and "2 pair(s)" in page.pairs.summary.text()
    command = wizard.command()
    assert command[command.index("--paired-a") + 1] == str(folders[0])
    assert command[command.index("--paired-b") + 1] == str(folders[1])

    (folders[1] / "h2.nii.gz").unlink()  # h2 loses its partner: the trainer's message, no traceback
    assert page.pairs.scan(again=True).wait(30)
    qtbot.waitUntil(lambda: page.pairs.state == "error", timeout=5000)
    assert "without a partner: h2.nii.gz" in page.pairs.summary.text() and not page.isComplete()
    assert "--paired-a" not in wizard.command()


def _follow_run(qtbot, tmp_path, config: str, step: dict):
    """A run folder with `config` as its config.json and 40 logged steps (`step` plus iteration and
    seconds), followed by a run page: (page, run) once the page has read the last step."""
    from mri_style_app.ui.training_wizard import RunView, TrainingRun

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(config)
    run_events.append_event(run_dir, {"iteration": 0, "type": "start", "total_iterations": 400})
    for i in range(10, 410, 10):
        run_events.append_event(run_dir, {"iteration": i, "type": "step", **step, "seconds": i * 0.1})
    view = RunView()
    qtbot.addWidget(view)
    run = TrainingRun(run_dir)
    view.attach(run)
    run.follow()
    qtbot.waitUntil(lambda: run.last_iteration == 400, timeout=5_000)
    return view, run


def test_a_run_that_starts_from_a_saved_model_is_judged_as_a_fine_tune(qtbot, tmp_path):
    """The run page reads init_from from the run's config.json: a fine-tune's cycle loss starts
    low, so a flat cycle curve there is no stall."""
    view, run = _follow_run(
        qtbot,
        tmp_path,
        '{"config": {"init_from": "/models/base.safetensors"}}',
        {"G_A": 0.3, "G_B": 0.3, "D_A": 0.25, "D_B": 0.25, "cycle_A": 0.05, "cycle_B": 0.06},
    )
    assert run.fine_tune and run.adversarial
    qtbot.waitUntil(lambda: "saved model" in view.diagnosis_label.text(), timeout=5_000)
    assert "stopped falling" not in view.diagnosis_label.text()


def test_a_run_without_adversarial_terms_is_said_to_be_one(qtbot, tmp_path):
    """The run page reads lambda_adversarial from config.json: with 0 a winning discriminator is no
    problem, and the page says the generators learn from the paired and cycle losses alone."""
    view, run = _follow_run(
        qtbot,
        tmp_path,
        '{"config": {"lambda_adversarial": 0.0}}',
        {"G_A": 0.9, "G_B": 0.5, "D_A": 0.01, "D_B": 0.2, "cycle_A": 0.1, "cycle_B": 0.1},
    )
    assert not run.adversarial
    qtbot.waitUntil(lambda: "adversarial terms are off" in view.diagnosis_label.text(), timeout=5_000)
    assert "near zero" not in view.diagnosis_label.text()


def test_model_page_offers_fine_tuning_first_and_a_time_budget(qtbot, tiny_domains, tmp_path):
    from mri_style_app import paths
    from mri_style_app.ui.training_wizard import TrainingWizard

    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    for side, folder in zip("ab", tiny_domains):
        assert wizard.data_page.set_folder(side, folder).wait(30)
    qtbot.waitUntil(wizard.data_page.isComplete, timeout=5000)
    page = wizard.model_page
    bundled = json.loads(paths.default_model_path().with_suffix(".json").read_text())["architecture"]["preset"]
    # The first choice: fine-tune the bundled model, for minutes; its preset is the bundled model's.
    assert page.start_combo.currentData() == "bundled" and "minutes are enough" in page.start_note.text()
    assert page.preset_combo.currentText() == bundled and not page.preset_combo.isEnabled()
    command = wizard.command()
    assert command[command.index("--init-from") + 1] == str(paths.default_model_path())
    assert command[command.index("--minutes") + 1] == "20" and "--iterations" not in command
    page.estimator.cache[page._key()] = 0.5  # a measured pace, as the timing run leaves it
    page._show_estimate()
    assert "about 2400 iterations in 20 minutes" in page.estimate_label.text()

    page.start_combo.setCurrentIndex(page.start_combo.findData("fresh"))
    assert page.preset_combo.isEnabled() and "far longer" in page.start_note.text()
    page.length_combo.setCurrentIndex(page.length_combo.findData("iterations"))
    page.iterations_spin.setValue(300)
    command = wizard.command()
    assert "--init-from" not in command and "--minutes" not in command
    assert command[command.index("--iterations") + 1] == "300"


def test_validation_folders_go_into_the_command_and_the_run_page_draws_their_curve(
    qtbot, seed_dir, tiny_domains, tmp_path
):
    from mri_style_app.cyclegan.seed_slices import write_split
    from mri_style_app.cyclegan.train import Trainer
    from mri_style_app.cyclegan.train_config import TrainConfig
    from mri_style_app.ui.training_wizard import TrainingWizard

    write_split(tmp_path / "val", "test", seed_dir)
    val_a, val_b = tmp_path / "val" / "t1w", tmp_path / "val" / "t2w"
    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    page = wizard.data_page
    for side, folder in zip("ab", tiny_domains):
        assert page.set_folder(side, folder).wait(30)
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(next(val_b.iterdir()), other / "someone_else.nii.gz")
    assert page.validation.set_folders(val_a, other).wait(30)  # no T2w partner of that name
    qtbot.waitUntil(lambda: page.validation.state == "error", timeout=5000)
    assert "without a partner" in page.validation.summary.text() and not page.isComplete()
    assert page.validation.set_folders(val_a, val_b).wait(30)
    qtbot.waitUntil(lambda: page.validation.state == "ok", timeout=5000)
    qtbot.waitUntil(page.isComplete, timeout=5000)
    assert "1 pair(s)" in page.validation.summary.text()
    command = wizard.command()
    assert command[command.index("--val-a") + 1] == str(val_a)
    assert command[command.index("--val-b") + 1] == str(val_b)

    # A real run with those pairs, then its folder opened on the run page.
    run_dir = tmp_path / "run"
    t1, t2 = tiny_domains
    Trainer(
        TrainConfig(
            domain_a=str(t1),
            domain_b=str(t2),
            out=str(run_dir),
            preset="unet",
            size=32,
            iterations=20,
            val_a=str(val_a),
            val_b=str(val_b),
            val_every=10,
            log_every=5,
        )
    ).run()
    run = wizard.open_run(run_dir)
    view = wizard.run_page.view
    qtbot.waitUntil(lambda: run.finished_model is not None, timeout=10_000)
    xs, ys = view.plot.validation_series("T1w->T2w")
    assert list(xs) == [0, 10, 20] and np.isfinite(ys).all()
    assert view.plot.validation_plot.isVisible() or not view.isVisible()
    assert not view.plot.validation_plot.isHidden()
    best_iteration, best_ssim = run.best
    assert "Best validation SSIM so far" in view.diagnosis_label.text() or "Not learning" in view.diagnosis_label.text()
    menu = view.use_button.menu()
    assert menu is not None and [a.text().split(" (")[0] for a in menu.actions()] == [
        "Final model",
        "Best by validation",
    ]
    assert f"iteration {best_iteration}" in menu.actions()[1].text()
    with qtbot.waitSignal(view.use_model_requested) as chosen:
        menu.actions()[1].trigger()
    assert chosen.args == [str(run_dir / "best.safetensors")]
    with qtbot.waitSignal(view.use_model_requested) as chosen:
        menu.actions()[0].trigger()
    assert chosen.args == [str(run_dir / "model.safetensors")]


def test_a_folder_read_that_ends_after_its_page_is_closed_calls_nothing_back(qtbot, tmp_path):
    import threading

    import shiboken6
    from PySide6.QtWidgets import QApplication

    from mri_style_app.ui.training_wizard.data_page import PairFolders

    release, called = threading.Event(), []

    def slow_reader(folder_a, folder_b):
        release.wait(10)
        called.append((folder_a, folder_b))
        return "2 pair(s)"

    folders = PairFolders("Pairs", "none", slow_reader, ("paired_a", "paired_b"), "paired")
    task = folders.set_folders(tmp_path, tmp_path)
    folders.deleteLater()
    qtbot.waitUntil(lambda: not shiboken6.isValid(folders), timeout=5000)
    release.set()
    assert task.wait(10) and called
    QApplication.processEvents()  # the finished signal arrives for a widget that is gone: no error
