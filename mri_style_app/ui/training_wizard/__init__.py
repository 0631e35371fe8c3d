"""The training wizard: data, model and schedule, output folder, then the live run, one module
per page (data_page, model_page, output_page, run_page), the run it follows (run) and the main
window's Training panel (panel).

The run itself is `mri-style train ...` in a child process (workers.TrainingProcess), so a
crash or out-of-memory in training never takes the viewer down. The wizard follows the run
through RUN/events.jsonl (cyclegan/events.EventTail), polled by a QTimer, and teaches as it
goes: a help panel, tooltips, and a status line that diagnoses this run from its own curves and
its validation pairs. What needs no Qt lives in cyclegan/: run_setup (folder scans, the command
line), run_progress (a run's bookkeeping), time_budget (the duration arithmetic).
"""

from mri_style_app.ui.training_wizard.model_page import PRESET_NAMES
from mri_style_app.ui.training_wizard.panel import TrainingPanel
from mri_style_app.ui.training_wizard.run import ESTIMATE_ITERATIONS, DurationEstimate, TrainingRun
from mri_style_app.ui.training_wizard.run_page import RunView
from mri_style_app.ui.training_wizard.wizard import TrainingWizard

__all__ = [
    "ESTIMATE_ITERATIONS",
    "PRESET_NAMES",
    "DurationEstimate",
    "RunView",
    "TrainingPanel",
    "TrainingRun",
    "TrainingWizard",
]
