"""The whole-head candidate model: a `unet` CycleGAN (a U-Net per direction, no normalisation
layers) trained by one recipe, training/recipes/whole_head_unet.toml, a plain `mri-style train
--recipe`, on the seed train split (whole heads) and simulated ICBM brains, as pairs and unpaired.
The seed test split is never read by its training. It is not the bundled model: on brains it
scores below it (docs/whole_head_candidate.md).

    .venv/bin/python training/whole_head_candidate.py prepare   # training folders under runs/whole-head-data
    .venv/bin/python training/whole_head_candidate.py train     # the run (resumes where it stopped)
    .venv/bin/python training/whole_head_candidate.py export    # the run's card completed in place
    .venv/bin/python training/whole_head_candidate.py evaluate  # score table, sweep, figures
    .venv/bin/python training/whole_head_candidate.py all

`train` can be stopped at any time (Ctrl-C: the trainer checkpoints) and run again to resume.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "training"))

RECIPE = REPO / "training" / "recipes" / "whole_head_unet.toml"
RUN = REPO / "runs" / "whole-head-unet"
DATA = REPO / "runs" / "whole-head-data"
EVIDENCE = REPO / "docs" / "whole_head_candidate"
CLI = [sys.executable, "-m", "mri_style_app"]
DATA_DESCRIPTION = {
    "whole heads": "the seed train split of ../shared/data/seed-t1-t2 (BrainWeb Colin27 T1w/T2w, skin, fat, "
    "skull, marrow and brain; axial slices z 69-78 and 82-99: 28 exact pairs); the test split "
    "(z 110-124) is read by no training",
    "brains": "3 ICBM 2009a brains under random smooth deformations (never the undeformed demo anatomy), "
    "each scanned with the BrainWeb 1.5 T reference protocols (T1w spoiled gradient echo TR 18 / "
    "TE 10 ms / 30 deg, T2w spin echo TR 3300 / TE 120 ms, no noise) as targets, and as inputs "
    "also 3 random protocols (1.5 or 3 T, +-10 % tissue values, TR/TE/flip, bias field, Rician "
    "noise) and one T1w with a longer CSF T1 (3000-4500 ms)",
    "sampling": "every head (a seed volume or a simulated brain) drawn about equally often",
    "augmentation": "left-right flips, rotation +-10 deg, scale +-10 %, an elastic warp (all sides alike); "
    "the input side alone: gamma, intensity scale, bias field +-10 %, a coarser in-plane "
    "resolution (up to 2x, p 0.3) and Rician noise up to 3 %",
    "objective": "CycleGAN: LSGAN adversarial terms (weight 0.1), cycle L1 (weight 1), no identity term, "
    "plus the paired L1 of each translation against its reference (weight 10)",
    "output contrast": "the BrainWeb 1.5 T reference protocols, whatever the input's field and protocol",
}


def prepare() -> None:
    from mri_style_app.cyclegan import seed_slices

    pairs = [DATA / "pairs-A-t1w", DATA / "pairs-B-t2w"]
    for folder in pairs:
        shutil.rmtree(folder, ignore_errors=True)
    names = seed_slices.write_split(DATA / "seed-train", "train")
    for folder, contrast in zip(pairs, ("t1w", "t2w")):
        folder.mkdir(parents=True)
        for name in names:
            shutil.copy2(DATA / "seed-train" / contrast / f"{name}.nii.gz", folder / f"{name}.nii.gz")
    subprocess.run(
        [
            sys.executable,
            str(REPO / "training" / "prepare_reference_pairs.py"),
            "--out",
            str(DATA),
            "--heads",
            "3",
            "--variants",
            "3",
            "--reference-field",
            "1.5",
            "--dark-csf-variants",
            "1",
            "--folder-prefix",
            "pairs",
            "--seed",
            "1515",
        ],
        check=True,
    )


def train() -> None:
    from mri_style_app.cyclegan.events import read_events

    if any(e.get("type") == "done" for e in read_events(RUN)):
        return
    # --resume continues the run in --out with the settings saved there
    resume = ["--resume", "--out", str(RUN)] if (RUN / "checkpoints" / "latest.pt").exists() else []
    subprocess.run([*CLI, "train", "--recipe", str(RECIPE), *resume], check=True)


def export() -> Path:
    from evidence import checkpoint_generators

    from mri_style_app.cyclegan import checkpoint as model_files
    from mri_style_app.cyclegan.events import read_events

    config = json.loads((RUN / "config.json").read_text())["config"]
    normalisation = model_files.training_normalisation(config["percentile_a"], config["percentile_b"], 1.0)
    finished = RUN / "model.safetensors"
    if finished.exists():
        model = model_files.load_model(finished)
        generators, training = model.generators, dict(model.card.get("training", {}))
    else:  # an unfinished run: its latest checkpoint (loaded without unpickling code)
        generators, state = checkpoint_generators(RUN, config["preset"])
        steps = [e for e in read_events(RUN) if e.get("type") == "step"]
        training = {
            "iterations": int(state["iteration"]),
            "seconds": round(float(state["seconds"]), 1),
            "finished": False,
            "last_losses": {k: steps[-1][k] for k in ("paired_A", "paired_B")} if steps else {},
        }
    training.pop("data", None)  # absolute folders of the machine that trained it
    training.update(
        {
            "recipe": RECIPE.relative_to(REPO).as_posix(),
            "reproduce": "python training/whole_head_candidate.py all",
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
                    "percentile_b",
                    "iterations",
                    "seed",
                )
            },
            "data": DATA_DESCRIPTION,
        }
    )
    card = model_files.make_card(config["preset"], model_files.DIRECTIONS, normalisation, training=training)
    out = model_files.save_model(RUN / "candidate.safetensors", generators, card)
    print(f"exported {out}")
    return out


def evaluate() -> dict:
    """The candidate's evidence into docs/whole_head_candidate/ (the run's model, not the bundled one)."""
    from evidence import evaluate_model

    return evaluate_model(RUN / "candidate.safetensors", EVIDENCE, [RUN])


def main() -> None:
    from evidence import run_steps

    run_steps(__doc__, {"prepare": prepare, "train": train, "export": export, "evaluate": evaluate})


if __name__ == "__main__":
    main()
