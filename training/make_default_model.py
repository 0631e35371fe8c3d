"""Reproduce the bundled default model and its evidence, step by step.

The model is a `voxel-headroom` CycleGAN (one 3x3 convolution, then 1x1 ones, per direction; the
`voxel` layers with the output range [-1, 1.1]) trained in four stages, each a plain `mri-style train --recipe`:
  1. training/recipes/default_t1_t2_voxel.toml: from random weights, the unpaired domains (real
     seed slices and simulations) plus the 1.5 T reference scans of 10 simulated heads, paired;
  2. training/recipes/default_t1_t2_voxel_stage2.toml: stage 1 continued (init_from) with the
     adversarial terms off: the paired and cycle terms alone;
  3. training/recipes/default_t1_t2_voxel_stage3.toml: stage 2 continued at half the learning rate;
  4. training/recipes/default_t1_t2_voxel_stage4.toml: stage 3 continued as voxel-headroom, with
     two more T1w inputs per head whose CSF is darker (a longer CSF T1), as in real T1w scans.

    .venv/bin/python training/make_default_model.py prepare   # simulated + seed training folders
    .venv/bin/python training/make_default_model.py train     # all stages (each resumes)
    .venv/bin/python training/make_default_model.py export    # run -> resources/models/
    .venv/bin/python training/make_default_model.py evaluate  # score table, sweep, figures, card
    .venv/bin/python training/make_default_model.py all

`train` can be stopped at any time (Ctrl-C: the trainer checkpoints) and run again to resume.
`export` takes the finished model, or the latest checkpoint of an unfinished run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "training"))
RECIPES = REPO / "training" / "recipes"
DATA = REPO / "runs" / "default-data"
# (recipe, run folder) per stage, in order; the last run is the shipped model
STAGES = [
    (RECIPES / "default_t1_t2_voxel.toml", REPO / "runs" / "default-model-voxel"),
    (RECIPES / "default_t1_t2_voxel_stage2.toml", REPO / "runs" / "default-model-voxel-stage2"),
    (RECIPES / "default_t1_t2_voxel_stage3.toml", REPO / "runs" / "default-model-voxel-stage3"),
    (RECIPES / "default_t1_t2_voxel_stage4.toml", REPO / "runs" / "default-model-voxel-stage4"),
]
RUN = STAGES[-1][1]
EVIDENCE = REPO / "docs" / "default_model"
CLI = [sys.executable, "-m", "mri_style_app"]


def _run_script(name: str, *options: str) -> None:
    """Run training/NAME with --out DATA and `options`; stop if it fails."""
    subprocess.run([sys.executable, str(REPO / "training" / name), "--out", str(DATA), *options], check=True)


def prepare() -> None:
    # the unpaired domains (seed slices, the template, simulations); its random-protocol pairs are
    # not used by these stages (--pairs 0; the domains are drawn from their own random stream)
    _run_script("prepare_default_data.py", "--pairs", "0")
    # The voxel stages pair reference scans only, all at 1.5 T (the output contrast is one protocol
    # at one field: a T2w does not say which field a T1w partner was scanned at), other heads.
    reference_pairs = ("--variants", "0", "--reference-field", "1.5", "--seed", "4343")
    _run_script("prepare_reference_pairs.py", *reference_pairs, "--folder-prefix", "refs")
    # stage 4: the same heads and reference scans, plus two dark-CSF T1w inputs per head
    _run_script(
        "prepare_reference_pairs.py", *reference_pairs, "--folder-prefix", "refsdark", "--dark-csf-variants", "2"
    )


def train() -> None:
    from mri_style_app.cyclegan.events import read_events

    for recipe, run in STAGES:
        if any(e.get("type") == "done" for e in read_events(run)):
            continue  # finished before
        # --resume continues the run in --out with the settings saved there
        resume = ["--resume", "--out", str(run)] if (run / "checkpoints" / "latest.pt").exists() else []
        subprocess.run([*CLI, "train", "--recipe", str(recipe), *resume], check=True)


def export() -> Path:
    from evidence import checkpoint_generators

    from mri_style_app.cyclegan import checkpoint as model_files
    from mri_style_app.cyclegan.events import read_events
    from mri_style_app.paths import default_model_path

    config = json.loads((RUN / "config.json").read_text())["config"]
    finished = RUN / "model.safetensors"
    if finished.exists():
        model = model_files.load_model(finished)
        generators, card = model.generators, model.card
    else:  # an unfinished run: its latest checkpoint (loaded without unpickling code)
        generators, state = checkpoint_generators(RUN, config["preset"])
        steps = [e for e in read_events(RUN) if e.get("type") == "step"]
        # the input scaling the run trained with, as train.py writes it into a finished model
        normalisation = model_files.training_normalisation(
            config.get("percentile_a", 99.5), config.get("percentile_b", 99.5)
        )
        card = model_files.make_card(
            config["preset"],
            model_files.DIRECTIONS,
            normalisation,
            training={
                "iterations": int(state["iteration"]),
                "seconds": round(float(state["seconds"]), 1),
                "finished": False,
                "last_losses": {k: steps[-1][k] for k in ("G_A", "G_B", "D_A", "D_B", "cycle_A", "cycle_B")}
                if steps
                else {},
            },
        )
    card["training"] = {
        **card.get("training", {}),
        "recipes": [recipe.relative_to(REPO).as_posix() for recipe, _ in STAGES],
        "reproduce": "python training/make_default_model.py all",
        "settings": {
            k: config[k]
            for k in (
                "preset",
                "size",
                "plane",
                "batch_size",
                "lr",
                "lambda_cycle",
                "lambda_identity",
                "lambda_paired",
                "lambda_adversarial",
                "percentile_a",
                "seed",
            )
            if k in config
        },
        "data": {
            "A (T1w), unpaired": "43 real BrainWeb T1w seed slices (../shared/data/seed-t1-t2/T1), the "
            "real ICBM 2009a T1 template, 6 spoiled-gradient-echo T1w volumes "
            "simulated from the ICBM tissue maps with random 1.5 T/3 T relaxation "
            "times (+-10 %), TR/TE/flip, bias field and Rician noise",
            "B (T2w), unpaired": "46 real BrainWeb T2w seed slices (../shared/data/seed-t1-t2/T2), 6 "
            "spin-echo T2w volumes simulated the same way with random TR/TE",
            "pairs": "10 heads: the ICBM tissue maps under random smooth deformations, each "
            "scanned once per contrast with the reference protocols (T1w GRE TR 18/TE "
            "10/30 deg, T2w SE TR 3300/TE 120) and the 1.5 T literature relaxation "
            "values, no noise or bias; paired L1 loss x 300; in stage 4 each head "
            "also has two T1w inputs of the same protocol with a longer CSF T1 "
            "(3000-4500 ms: CSF at 0.17-0.26 of white matter instead of 0.30, as "
            "in real T1w scans), paired with the same reference T2w",
            "stages": "1: 1500 iterations from random weights, adversarial, cycle (x 1) and "
            "paired terms, lr 5e-4; 2: 1500 more without the adversarial terms; "
            "3: 1500 more at lr 2.5e-4; 4: 1500 more as voxel-headroom (output "
            "range [-1, 1.1]) with the dark-CSF T1w inputs",
            "output contrast": "the 1.5 T reference protocols above, whatever the input's field and protocol",
            "T1w input": "scaled by its 90th foreground percentile (white matter at 1), T2w input by its 99.5th",
            "caveat": "every simulated head is the ICBM anatomy, deformed; the demo pair is the "
            "undeformed anatomy (the template itself is never paired, but is one of "
            "the unpaired T1w images); the 3 T robustness pair is held out in its "
            "parameters, noise, bias and axis order, not in its anatomy",
        },
    }
    out = model_files.save_model(default_model_path(), generators, card)
    print(f"exported {out}")
    return out


def evaluate() -> dict:
    """Score table, protocol sweep and figures (training/evidence.py) into docs/default_model/,
    and the metrics into the card."""
    from evidence import evaluate_model

    from mri_style_app.cyclegan import checkpoint as model_files
    from mri_style_app.paths import default_model_path

    model = model_files.load_model(default_model_path())
    metrics = evaluate_model(default_model_path(), EVIDENCE, [run for _, run in STAGES])
    card = dict(model.card)
    card["metrics"] = metrics
    model_files.save_model(default_model_path(), model.generators, card)
    return metrics


def main() -> None:
    from evidence import run_steps

    run_steps(__doc__, {"prepare": prepare, "train": train, "export": export, "evaluate": evaluate})


if __name__ == "__main__":
    main()
