"""The wizard's teaching texts, and a diagnosis of a run from its own loss curves.

Plain Python and numpy (no Qt), so the diagnosis is easy to test. The texts follow the
reference CycleGAN objective (LSGAN adversarial loss, cycle weight 10, identity weight 0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Short texts for tooltips, keyed by the curve or control they explain.
TOOLTIPS: dict[str, str] = {
    "G_A": "Adversarial loss of generator A (T1 -> T2): how far its fake T2 images are from "
    "fooling discriminator A. Lower means more convincing fakes.",
    "G_B": "Adversarial loss of generator B (T2 -> T1): how far its fake T1 images are from fooling discriminator B.",
    "D_A": "Loss of discriminator A, which tells real T2 slices from generated ones. "
    "About 0.25 means it cannot tell them apart; near 0 means it always wins.",
    "D_B": "Loss of discriminator B, which tells real T1 slices from generated ones.",
    "cycle": "Cycle-consistency loss (A and B summed): translate a slice to the other contrast "
    "and back, and measure how far the round trip lands from the original. It should "
    "fall steadily: it is what keeps the anatomy in place.",
    "identity": "Identity loss (A and B summed): feed a generator an image that is already in "
    "its target contrast; it should change nothing. It keeps intensities honest.",
    "paired": "Paired loss (A and B summed), only in runs given co-registered pairs: how far each "
    "translation of a paired slice lands from its real partner. It falls as the model learns "
    "the exact contrast mapping.",
    "anchor": "Anchor loss (A and B summed), only when fine-tuning: how far each translation has "
    "moved from the starting model's translation of the same slice. It keeps what the starting "
    "model translated right while the other losses adapt it to your scans.",
    "structure": "Structure loss (A and B summed): how far the edges and textures of each "
    "translation are from those of its input, measured by a descriptor (MIND) that ignores "
    "contrast, so an inverted image scores as the same structure. It keeps each structure where "
    "the input has it, sharp, without inventing new ones.",
    "smoothing": "Exponential moving average of the curves. Raw GAN losses are noisy; smoothing "
    "shows the trend. Set to 0 to see every step.",
    "log_scale": "Logarithmic y axis: shows a loss falling from 2 to 0.02 as clearly as from 2 "
    "to 1, and makes a loss collapsing towards zero stand out.",
    "preset": "Generator. lite (the default, 8 filters): learns T1w <-> T2w from unpaired slices on a "
    "CPU in minutes and translates a volume in seconds; for a fresh start. unet: the bundled model's "
    "U-Net, which sees the anatomy around each voxel; for fine-tuning the bundled model, or training "
    "with co-registered pairs (trained unpaired from scratch, its skip connections let it copy the "
    "input). unet-fast: the same U-Net at half the width, the bundled fast model's; translates "
    "about twice as fast, for slow computers. standard: the reference CycleGAN (64 filters, 9 residual blocks), for a GPU.",
    "size": "Training images are made this many pixels square: larger ones are resized down, "
    "smaller ones padded (never enlarged). auto (the default) takes the largest slice's side, up to "
    "256, so whole slices train at their own scale, as translation runs them. Larger costs roughly "
    "quadratically more time.",
    "iterations": "Number of training steps. Each step shows the networks one T1 and one T2 "
    "slice. Learning-rate decay runs over the second half.",
    "minutes": "Train for this long. The run measures its own speed as it goes and places the "
    "learning-rate decay over the second half of the time; Stop and Resume keep the budget.",
    "start": "Fine-tuning starts from the bundled model, which already translates T1w <-> T2w, and "
    "adapts it to your scans at a tenth of the learning rate, holding each translation near the "
    "bundled model's (the anchor loss): useful in minutes. A fresh start "
    "begins from random weights and must first discover the contrast inversion from unpaired "
    "images: on a 2-core CPU about 20 minutes with the defaults before it translates well, "
    "longer with a bigger preset.",
    "validation": "Validation SSIM of the whole head, per direction, on the validation pairs "
    "(co-registered scans that training never reads), scored by the same protocol as "
    "`mri-style evaluate`. Higher is better; the best model is kept as best.safetensors.",
    "val_a": "Optional: T1-weighted NIfTI volumes co-registered with the T2-weighted volumes of the "
    "same file name in the other validation folder. Never trained on: the run scores them "
    "as it goes and keeps the best model.",
    "val_b": "Optional: the T2-weighted partners of the validation T1w folder, same file names, same voxel grid.",
    "domain_a": "A folder of T1-weighted images: NIfTI volumes or PNG slices. They do not need "
    "to match the T2 images: CycleGAN learns from unpaired data.",
    "domain_b": "A folder of T2-weighted images: NIfTI volumes or PNG slices.",
    "paired_a": "Optional: T1-weighted NIfTI volumes co-registered with the T2-weighted volumes of "
    "the same file name in the other paired folder. Each pair adds an L1 loss between "
    "the translation and its partner (weight lambda_paired, 10). A file NAME~TAG is "
    "another scan of head NAME, used only as an input.",
    "paired_b": "Optional: the T2-weighted partners of the paired T1w folder, same file names, same voxel grid.",
    "cycle_map": "Translate to the other contrast and back, and show |original - round trip| as "
    "a heat overlay. Bright areas are where the model is unsure or invents detail.",
    "planes": "Which direction the volume is cut into 2D slices for the network. Each plane's "
    "slices are evened out across slices, so they show no bands in the other views. 'tri' "
    "translates along all three planes and takes their median instead, at three times the time.",
}

HELP_HTML = """
<h3>How CycleGAN learns</h3>
<p>Two <b>generators</b> translate slices: <b>G_A</b> turns T1 into T2 and <b>G_B</b> turns T2
into T1. Two <b>discriminators</b> judge them: <b>D_A</b> learns to tell real T2 slices from the
fakes of G_A, and <b>D_B</b> does the same for T1. The generators improve by fooling the
discriminators; the discriminators improve by not being fooled. Neither folder needs matching
scans: the training data is unpaired.</p>

<h3>What each loss measures</h3>
<ul>
<li><b>Adversarial</b> (G_A, G_B, D_A, D_B): the game between generators and discriminators,
scored with least squares. A discriminator that cannot tell real from fake scores about 0.25;
the generator's loss is then also near 0.25.</li>
<li><b>Cycle</b>: T1 &rarr; T2 &rarr; T1 should give back the same slice (and the same from
T2). Weighted 10 times the adversarial loss by default (a recipe's <code>lambda_cycle</code>), it
keeps the anatomy where it was.</li>
<li><b>Identity</b>: a T2 slice given to the T1&rarr;T2 generator should come out unchanged. It
keeps the generators from shifting intensities that are already right.</li>
<li><b>Paired</b> (only with co-registered pairs): how far each translation is from its partner
scan (L1), times its weight. When it carries the training, a winning discriminator matters less.</li>
<li><b>Structure</b>: each translation should have its input's edges, whatever the contrast
(MIND descriptors, L1, times a recipe's <code>lambda_structure</code>). It settles above 0: a
real T2w differs from its T1w in detail too.</li>
<li><b>Anchor</b> (only when fine-tuning): how far each translation has moved from the starting
model's translation of the same slice (L1, times a recipe's <code>lambda_anchor</code>). It keeps
what the starting model translated right while the other terms adapt it to your scans.</li>
</ul>

<h3>Healthy and failing curves</h3>
<ul>
<li><b>Healthy:</b> the adversarial losses wobble up and down around a level and never settle.
That is the game being played, and it is normal. The cycle and identity losses fall quickly at
first, then slowly. A run that starts from a saved model begins with the cycle loss already
low, and it stays about there.</li>
<li><b>Discriminator winning:</b> D_A or D_B falls to almost zero and stays there while its
generator's loss climbs. The generator gets no useful signal; try a smaller learning rate,
more data or a smaller image size.</li>
<li><b>Cycle stalls:</b> the cycle loss stops falling early and stays high. The translations
will lose anatomy; train longer, or check that the two folders really hold T1 and T2.</li>
<li><b>Diverged:</b> a loss becomes NaN or infinite. Stop the run and resume from the last
checkpoint with a smaller learning rate.</li>
</ul>
<p>The status line under the curves applies these rules to <i>this</i> run as it trains.</p>
"""

# Thresholds of the diagnosis (LSGAN scale: a confused discriminator scores about 0.25).
D_COLLAPSE_LEVEL = 0.02
D_COLLAPSE_ITERATIONS = 200
MIN_ITERATIONS_TO_JUDGE = 20
CYCLE_STALL_FRACTION = 0.02  # cycle must fall at least 2% between the last two quarters


@dataclass
class Diagnosis:
    level: str  # "info", "ok" or "warning"
    message: str


def _tail_mean(values: np.ndarray, start: int, stop: int) -> float:
    part = values[start:stop]
    return float(part.mean()) if part.size else math.nan


def diagnose_run(
    iterations: np.ndarray, series: dict[str, np.ndarray], fine_tune: bool = False, adversarial: bool = True
) -> list[Diagnosis]:
    """Read a run's own curves and say, in words, whether it looks healthy.

    `iterations` holds the iteration of each logged step; `series` maps curve names
    (G_A, G_B, D_A, D_B, cycle, identity, paired, structure, anchor) to the loss at those steps. `fine_tune`: the
    run started from a saved model (init_from), so its cycle loss starts low, not at random.
    `adversarial` False: the run's lambda_adversarial is 0, the generators do not learn from the
    discriminators, so a winning discriminator harms nothing.
    """
    iterations = np.asarray(iterations, dtype=np.float64)
    n = iterations.size
    if n == 0:
        return [Diagnosis("info", "Waiting for the first training step...")]
    last_iteration = int(iterations[-1])
    for name, values in series.items():
        values = np.asarray(values, dtype=np.float64)
        if np.isnan(values).all():
            continue  # a curve this run does not log (the paired loss of an older run)
        if values.size and not np.isfinite(values[-1]):
            return [
                Diagnosis(
                    "warning",
                    f"{name} is {values[-1]} at iteration {last_iteration}: "
                    "training has diverged. Stop, then resume from the last checkpoint "
                    "with a smaller learning rate.",
                )
            ]
    if last_iteration < MIN_ITERATIONS_TO_JUDGE or n < 4:
        return [Diagnosis("info", f"Iteration {last_iteration}: too early to judge the curves.")]

    findings: list[Diagnosis] = []
    if not adversarial:
        findings.append(
            Diagnosis(
                "info",
                "The adversarial terms are off in this run (lambda_adversarial 0): the generators "
                "learn from the paired and cycle losses alone; the G and D curves are drawn for information.",
            )
        )
    gan = ", and the adversarial losses wobble around a level" if adversarial else ""
    for d_name, g_name, target in (("D_A", "G_A", "T2"), ("D_B", "G_B", "T1")) if adversarial else ():
        d = np.asarray(series.get(d_name, ()), dtype=np.float64)
        if d.size != n:
            continue
        # Near zero over the last D_COLLAPSE_ITERATIONS, judged by the median: a winning
        # discriminator's loss still spikes now and then, a brief dip is not a collapse.
        if last_iteration - iterations[0] < D_COLLAPSE_ITERATIONS:
            continue
        recent = np.median(d[iterations >= last_iteration - D_COLLAPSE_ITERATIONS])
        if recent < D_COLLAPSE_LEVEL:
            findings.append(
                Diagnosis(
                    "warning",
                    f"{d_name} has stayed near zero over the last {D_COLLAPSE_ITERATIONS} "
                    f"iterations (median {recent:.3f}): the discriminator is winning, so {g_name} gets "
                    f"little to learn from it and its fake {target} slices will stay poor, unless a "
                    "paired loss carries the training.",
                )
            )

    cycle = np.asarray(series.get("cycle", ()), dtype=np.float64)
    if cycle.size == n and n >= 8:
        quarter = n // 4
        before = _tail_mean(cycle, n - 2 * quarter, n - quarter)
        latest = _tail_mean(cycle, n - quarter, n)
        start = _tail_mean(cycle, 0, max(1, n // 20))  # where it began
        now = _tail_mean(cycle, n - max(1, n // 10), n)  # where it is
        if fine_tune:
            if not any(f.level == "warning" for f in findings):
                findings.append(
                    Diagnosis(
                        "ok",
                        f"Fine-tuning a saved model: the cycle loss started at its trained level "
                        f"({start:.2f}, now {now:.2f}){gan}.",
                    )
                )
        elif latest > before * (1 - CYCLE_STALL_FRACTION) and latest > 0.5 * start:
            findings.append(
                Diagnosis(
                    "warning",
                    f"The cycle loss has stopped falling ({before:.3f} -> {latest:.3f} over "
                    f"the last quarter of the run) while still at {latest / start:.0%} of where it "
                    "started: the round trip is losing anatomy. Train longer or check the data.",
                )
            )
        elif not any(f.level == "warning" for f in findings):
            findings.append(
                Diagnosis(
                    "ok",
                    f"Healthy so far: the cycle loss fell from {start:.2f} to {now:.2f}{gan}"
                    + (", which is normal for a GAN." if adversarial else "."),
                )
            )
    if not findings:
        findings.append(Diagnosis("info", f"Iteration {last_iteration}: no problems seen."))
    return findings
