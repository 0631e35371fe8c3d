"""Reproduce the bundled models and their evidence, step by step.

The default model is a `unet` CycleGAN (a U-Net per direction, no normalisation layer) trained
in nine plain `mri-style train --recipe` runs on the seed train split (whole heads) and simulated
ICBM brains, as pairs and unpaired, the last six with synthetic whole heads added to the pairs:
  - training/recipes/default_t1_t2_unet.toml: 4000 iterations from random weights;
  - training/recipes/default_t1_t2_unet_continued.toml: that model 90 more minutes (init_from)
    at half the learning rate;
  - training/recipes/default_t1_t2_unet_bright.toml: that model 30 more minutes, fat and marrow
    weighted in the T2w -> T1w paired loss and the T1w scaled by its 99.9th percentile;
  - training/recipes/synthetic_heads_weighted.toml: that model 25 more minutes with 16 synthetic
    whole heads (training/make_synthetic_heads.py) among the pairs;
  - training/recipes/synthetic_heads_blend.toml: 10 more minutes on those folders from the fourth
    run's T1w -> T2w and the third run's T2w -> T1w generator (a heads run's T2w -> T1w alone is
    better in whole heads but loses the seed brain's edges: docs/synthetic_heads.md), then each
    weight averaged with the one it started from (`blend`; training/validate_blend.py checks the
    share without the seed test split);
  - training/recipes/synthetic_heads_blend_continued.toml: that average 10 more minutes on the
    same folders;
  - training/recipes/synthetic_heads_hard_cut.toml: that model 10 more minutes on the same
    folders, the skull-stripped heads cut through the scan and the paired warp keeping anatomy
    apart from air;
  - training/recipes/synthetic_heads_edge.toml: that model 10 more minutes on the same folders,
    the paired L1 counting each reference's outermost anatomy layer 5 times (edge_weight);
  - training/recipes/synthetic_heads_edge_continued.toml: that model 10 more minutes, the layer
    counted 10 times. It ships as it is.
The fast model (`--model fast`) is the `unet-fast` preset, the same U-Net at half the width,
trained on the same folders and objectives: training/recipes/fast_t1_t2_unet.toml (45 minutes from
random weights), then fast_t1_t2_unet_bright.toml (the default's third run, 30 minutes),
fast_t1_t2_unet_heads.toml (the default's fourth run, 30 minutes), fast_t1_t2_unet_blend.toml
(the default's fifth run, from the third run's T1w -> T2w and the second run's T2w -> T1w, then
averaged with its start), fast_t1_t2_unet_blend_continued.toml (the default's sixth run) and
fast_t1_t2_unet_hard_cut.toml (the default's seventh run), fast_t1_t2_unet_edge.toml (the
default's eighth run), fast_t1_t2_unet_edge_continued.toml (the default's ninth run) and
fast_t1_t2_unet_edge_hour.toml (the ninth run's objective, 60 minutes more).
The seed test split is read by no run: `prepare` writes the train split alone, and the synthetic
heads come from Colin27's label map without the test band.

    .venv/bin/python training/make_default_model.py prepare   # training folders under runs/default-data
    .venv/bin/python training/make_default_model.py heads     # the synthetic-heads folders alone
    .venv/bin/python training/make_default_model.py train     # the model's runs (each resumes)
    .venv/bin/python training/make_default_model.py export    # last run -> resources/models/
    .venv/bin/python training/make_default_model.py evaluate  # score table, sweep, figures, card
    .venv/bin/python training/make_default_model.py all
    .venv/bin/python training/make_default_model.py --model fast all

`train` can be stopped at any time (Ctrl-C: the trainer checkpoints) and run again to resume.
`export` takes the finished model, or the latest checkpoint of an unfinished run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "training"))

from mri_style_app import paths  # noqa: E402

RECIPES = REPO / "training" / "recipes"
DATA = REPO / "runs" / "default-data"
SYNTHETIC_HEADS = ("--heads", "16", "--variants", "2", "--seed", "2025")
# heads-balanced: the seed volumes and the brains drawn about as often as in the default model's
# own folders (a seed volume 24 in 70, a brain 30 in 70, a synthetic head 16 in 70)
BALANCED_COPIES = (12, 10)


@dataclass(frozen=True)
class BundledModel:
    name: str  # as --model names it
    path: Path  # the model file in resources/models
    runs: list[tuple[Path, Path]]  # (recipe, run folder) in order; the last run is the shipped model
    evidence: Path  # its score table, sweep and figures
    # direction -> index in runs of the run whose generator ships (with a blend: whose generator the
    # blended run starts from); any other direction: the last run's (with a blend: the run before it)
    generator_runs: dict[str, int] = field(default_factory=dict)
    synthetic_heads: bool = False  # a run reads the synthetic whole heads (`prepare` writes them too)
    # With a blend, `train` writes that start to the blended run's init_from, and the blend is
    # blend x the blended run's weights + (1 - blend) x that start's: the shipped weights when the
    # blended run is the last, else the next run's init_from.
    blend: float | None = None
    blended_run: int = -1  # index in runs

    @property
    def blend_index(self) -> int:
        return self.blended_run % len(self.runs)


MODELS = {
    model.name: model
    for model in (
        BundledModel(
            "default",
            paths.bundled_models()["default"],
            [
                (RECIPES / "default_t1_t2_unet.toml", REPO / "runs" / "default-model-unet"),
                (RECIPES / "default_t1_t2_unet_continued.toml", REPO / "runs" / "default-model-unet-continued"),
                (RECIPES / "default_t1_t2_unet_bright.toml", REPO / "runs" / "default-model-unet-bright"),
                (RECIPES / "synthetic_heads_weighted.toml", REPO / "runs" / "synthetic-heads-weighted"),
                (RECIPES / "synthetic_heads_blend.toml", REPO / "runs" / "synthetic-heads-blend"),
                (RECIPES / "synthetic_heads_blend_continued.toml", REPO / "runs" / "synthetic-heads-blend-continued"),
                (RECIPES / "synthetic_heads_hard_cut.toml", REPO / "runs" / "synthetic-heads-hard-cut"),
                (RECIPES / "synthetic_heads_edge.toml", REPO / "runs" / "synthetic-heads-edge"),
                (RECIPES / "synthetic_heads_edge_continued.toml", REPO / "runs" / "synthetic-heads-edge-continued"),
            ],
            REPO / "docs" / "default_model",
            # the fifth run starts from the fourth run's T1w -> T2w and the third run's T2w -> T1w
            # (a heads run's T2w -> T1w alone loses the seed brain's edges); the sixth run starts
            # half-way between the fifth's start and its end (training/validate_blend.py's pick)
            {"t2-to-t1": 2},
            synthetic_heads=True,
            blend=0.5,
            blended_run=4,
        ),
        BundledModel(
            "fast",
            paths.bundled_models()["fast"],
            [
                (RECIPES / "fast_t1_t2_unet.toml", REPO / "runs" / "fast-model-unet"),
                (RECIPES / "fast_t1_t2_unet_bright.toml", REPO / "runs" / "fast-model-unet-bright"),
                (RECIPES / "fast_t1_t2_unet_heads.toml", REPO / "runs" / "fast-model-unet-heads"),
                (RECIPES / "fast_t1_t2_unet_blend.toml", REPO / "runs" / "fast-model-unet-blend"),
                (RECIPES / "fast_t1_t2_unet_blend_continued.toml", REPO / "runs" / "fast-model-unet-blend-continued"),
                (RECIPES / "fast_t1_t2_unet_hard_cut.toml", REPO / "runs" / "fast-model-unet-hard-cut"),
                (RECIPES / "fast_t1_t2_unet_edge.toml", REPO / "runs" / "fast-model-unet-edge"),
                (RECIPES / "fast_t1_t2_unet_edge_continued.toml", REPO / "runs" / "fast-model-unet-edge-continued"),
                (RECIPES / "fast_t1_t2_unet_edge_hour.toml", REPO / "runs" / "fast-model-unet-edge-hour"),
            ],
            REPO / "docs" / "default_model" / "fast",
            {"t2-to-t1": 1},  # as in the default model
            synthetic_heads=True,
            blend=0.5,  # training/validate_blend.py's pick for this model
            blended_run=3,
        ),
    )
}
CLI = [sys.executable, "-m", "mri_style_app"]
# the card's training settings, from the last recipe
SETTINGS = (
    "preset",
    "size",
    "crop",
    "plane",
    "batch_size",
    "lr",
    "lambda_cycle",
    "lambda_identity",
    "lambda_paired",
    "lambda_adversarial",
    "seed",
)
DATA_DESCRIPTION = {
    "summary": "28 whole-head slice pairs of the seed train split and 3 simulated brains, as pairs and unpaired",
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

# each model's later runs, on top of DATA_DESCRIPTION
_BRIGHT_RUN = (
    "30 minutes more on the same folders; the T2w -> T1w paired L1 counts bright T1w voxels "
    "(fat and marrow, above 0.8 of the scale) 8 times, and T1w targets are scaled by their 99.9th "
    "percentile, so fat and marrow are not clipped"
)

_HARD_CUT_RUN = (
    "10 minutes more on the same folders, the skull-stripped heads cut through the scan and the paired "
    "warp averaging anatomy with anatomy and air with air, so a skull-stripped brain's cut edge keeps "
    "its brightness"
)


def _edge_run(weight: int) -> str:
    return (
        f"10 minutes more on the same folders, the paired L1 counting each reference's outermost anatomy "
        f"layer (voxels next to background, such as a skull-stripped brain's cut edge) {weight} times"
    )


def _heads_run(minutes: int) -> str:
    return (
        f"{minutes} minutes more with 16 synthetic whole heads added to the pairs (training/make_synthetic_heads.py: "
        "Colin27's tissue label map without the seed test band, z 100-134, deformed, mirrored, some "
        "skull-stripped, under random 1.5 and 3 T protocols; the targets are the same head under the "
        "reference protocols); their paired L1 is off in grey and white matter (weight maps); the seed "
        "volumes and the brains are drawn about as often as before"
    )


RUN_DESCRIPTION = {
    "default": {
        "third run": _BRIGHT_RUN,
        "fourth run": _heads_run(25),
        "fifth run": "10 minutes more on the fourth run's folders, from the fourth run's T1w -> T2w and the "
        "third run's T2w -> T1w generator; its weights averaged with its start's",
        "sixth run": "10 minutes more on the same folders, from that average",
        "seventh run": _HARD_CUT_RUN,
        "eighth run": _edge_run(5),
        "ninth run": _edge_run(10),
        "generators": "both the ninth run's",
    },
    "fast": {
        "second run": _BRIGHT_RUN,
        "third run": _heads_run(30),
        "fourth run": "10 minutes more on the third run's folders, from the third run's T1w -> T2w and the "
        "second run's T2w -> T1w generator; its weights averaged with its start's",
        "fifth run": "10 minutes more on the same folders, from that average",
        "sixth run": _HARD_CUT_RUN,
        "seventh run": _edge_run(5),
        "eighth run": _edge_run(10),
        "generators": "both the eighth run's",
    },
}


def prepare() -> None:
    """The training folders: the seed train split as whole-head pairs, and the simulated brains."""
    from mri_style_app.cyclegan import seed_slices

    pairs = [DATA / "pairs-A-t1w", DATA / "pairs-B-t2w"]
    for folder in pairs:
        shutil.rmtree(folder, ignore_errors=True)
    names = seed_slices.write_split(DATA / "seed-train", "train")
    for folder, contrast in zip(pairs, ("t1w", "t2w")):
        folder.mkdir(parents=True)
        for name in names:
            shutil.copy2(DATA / "seed-train" / contrast / f"{name}.nii.gz", folder / f"{name}.nii.gz")
    brains = ("--heads", "3", "--variants", "3", "--reference-field", "1.5", "--dark-csf-variants", "1")
    script = REPO / "training" / "prepare_reference_pairs.py"
    subprocess.run(
        [sys.executable, str(script), "--out", str(DATA), *brains, "--folder-prefix", "pairs", "--seed", "1515"],
        check=True,
    )


def prepare_heads() -> None:
    """The synthetic whole-head folders (docs/synthetic_heads.md; after `prepare`, which runs this
    for the default model): heads-*, 16 synthetic whole heads, each simulated brain 5 times (icbm_NAME_c0 ...)
    and each seed train volume 4 times (NAME_c0 ...), so that a head is drawn 4 in 10 times a
    synthetic head, 4 in 10 a brain, 2 in 10 a seed volume; heads-balanced-*, the same with
    BALANCED_COPIES."""
    script = REPO / "training" / "make_synthetic_heads.py"
    synthetic = DATA / "synthetic-heads"
    subprocess.run(
        [sys.executable, str(script), "--out", str(synthetic), *SYNTHETIC_HEADS, "--folder-prefix", "synth"],
        check=True,
    )
    assemble_heads(synthetic)
    assemble_heads(synthetic, "heads-balanced", *BALANCED_COPIES)


def assemble_heads(synthetic: Path, prefix: str = "heads", seed_copies: int = 4, brain_copies: int = 5) -> None:
    """PREFIX-A-t1w and PREFIX-B-t2w: the synthetic heads once, each seed train volume and each
    simulated brain listed that many times (hard links), and PREFIX-weights, the synthetic heads'
    weight maps (the other heads have none and count fully)."""
    weights = DATA / f"{prefix}-weights"
    shutil.rmtree(weights, ignore_errors=True)
    shutil.copytree(synthetic / "synth-weights", weights)
    for contrast, letter in (("t1w", "A"), ("t2w", "B")):
        folder = DATA / f"{prefix}-{letter}-{contrast}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for file in sorted((synthetic / f"synth-{letter}-{contrast}").glob("*.nii.gz")):
            shutil.copy2(file, folder / file.name)
        for file in sorted((DATA / f"pairs-{letter}-{contrast}").glob("*.nii.gz")):
            head, _, variant = file.name.removesuffix(".nii.gz").partition("~")
            seed = head.startswith("seed_")
            for copy in range(seed_copies if seed else brain_copies):
                name = f"{head}_c{copy}" if seed else f"icbm_{head}_c{copy}"
                os.link(file, folder / (f"{name}~{variant}.nii.gz" if variant else f"{name}.nii.gz"))


def train(bundled: BundledModel) -> None:
    from mri_style_app.cyclegan.events import read_events

    for index, (recipe, run) in enumerate(bundled.runs):
        if any(e.get("type") == "done" for e in read_events(run)):
            continue  # finished before
        if bundled.blend is not None and index == bundled.blend_index:
            write_start(bundled)
        if bundled.blend is not None and index == bundled.blend_index + 1:
            write_blend(bundled)
        # --resume continues the run in --out with the settings saved there
        resume = ["--resume", "--out", str(run)] if (run / "checkpoints" / "latest.pt").exists() else []
        subprocess.run([*CLI, "train", "--recipe", str(recipe), *resume], check=True)


def run_model(recipe: Path, run: Path) -> tuple[dict, dict, dict]:
    """(generators, training record, normalisation) of a run: its finished model, or the latest
    checkpoint of an unfinished run (loaded without unpickling code)."""
    from evidence import checkpoint_generators

    from mri_style_app.cyclegan import checkpoint as model_files
    from mri_style_app.cyclegan.events import read_events
    from mri_style_app.cyclegan.train_config import DEFAULT_PERCENTILE

    finished = run / "model.safetensors"
    if finished.exists():
        model = model_files.load_model(finished)
        return model.generators, dict(model.card.get("training", {})), model.normalisation
    config = recipe_config(recipe)
    generators, state = checkpoint_generators(run, config.preset)
    steps = [e for e in read_events(run) if e.get("type") == "step"]
    training = {
        "iterations": int(state["iteration"]),
        "seconds": round(float(state["seconds"]), 1),
        "finished": False,
        "last_losses": {k: steps[-1][k] for k in ("paired_A", "paired_B")} if steps else {},
    }
    # the percentiles the run trained with (a recipe that sets none trains with the default)
    normalisation = model_files.training_normalisation(
        config.percentile_a or DEFAULT_PERCENTILE, config.percentile_b or DEFAULT_PERCENTILE, 1.0
    )
    return generators, training, normalisation


def made_by(bundled: BundledModel, otherwise: int) -> dict[str, int]:
    """Direction -> index of the run whose generator it takes: generator_runs, else `otherwise`."""
    from mri_style_app.cyclegan.checkpoint import DIRECTIONS

    return {direction: bundled.generator_runs.get(direction, otherwise) for direction in DIRECTIONS}


def picked_generators(bundled: BundledModel, runs: dict[str, int]) -> tuple[dict, dict]:
    """(generators, normalisation): each direction's generator from the run `runs` names, each
    contrast scaled as the generator that reads it was trained to read it."""
    from mri_style_app.cyclegan import checkpoint as model_files

    loaded = {index: run_model(*bundled.runs[index]) for index in set(runs.values())}
    generators = {direction: loaded[index][0][direction] for direction, index in runs.items()}
    percentiles = {}
    for direction, index in runs.items():
        source = direction.split("-to-")[0]
        percentiles[source] = model_files.contrast_percentile(loaded[index][2], source)
    return generators, model_files.training_normalisation(percentiles["t1"], percentiles["t2"], 1.0)


def recipe_config(recipe: Path):
    from mri_style_app.commands.train import read_recipe
    from mri_style_app.cyclegan.train_config import TrainConfig

    return TrainConfig.from_dict(read_recipe(recipe))


def start_path(bundled: BundledModel) -> Path:
    """Where the blended run starts from: its recipe's init_from."""
    return Path(recipe_config(bundled.runs[bundled.blend_index][0]).init_from)


def write_start(bundled: BundledModel) -> Path:
    """The blended run's start: the generators generator_runs picks from the runs before it."""
    from mri_style_app.cyclegan import checkpoint as model_files

    before = bundled.blend_index - 1
    generators, normalisation = picked_generators(bundled, made_by(bundled, before))
    card = model_files.make_card(recipe_config(bundled.runs[before][0]).preset, model_files.DIRECTIONS, normalisation)
    start_path(bundled).parent.mkdir(parents=True, exist_ok=True)
    return model_files.save_model(start_path(bundled), generators, card)


def share_of(name: str, share: float | dict[str, float]) -> float:
    """A weight's share: the one share, or that of the part of the network (the first component
    of the weight's name, such as "encoder") that the mapping names."""
    if not isinstance(share, dict):
        return share
    part = name.split(".", 1)[0]
    if part not in share:
        raise SystemExit(f"the blend gives no share for {name} (it names {', '.join(share)})")
    return share[part]


def blended(start: dict, end: dict, share: float | dict[str, float]) -> dict:
    """Each direction's generator with s x end's weights + (1 - s) x start's, s = share_of(weight)."""
    out = {}
    for direction, generator in end.items():
        first = start[direction].state_dict()
        weights = {}
        for name, weight in generator.state_dict().items():
            s = share_of(name, share)
            weights[name] = (1 - s) * first[name] + s * weight
        mixed = deepcopy(generator)
        mixed.load_state_dict(weights)
        out[direction] = mixed
    return out


def blend_of(bundled: BundledModel) -> tuple[dict, dict]:
    """(generators, normalisation): the blended run's end blended with its start."""
    from mri_style_app.cyclegan import checkpoint as model_files

    end, normalisation = picked_generators(bundled, {d: bundled.blend_index for d in model_files.DIRECTIONS})
    start = model_files.load_model(start_path(bundled))
    if start.normalisation != normalisation:
        raise SystemExit(f"{start_path(bundled)} scales the contrasts unlike the run that started from it")
    return blended(start.generators, end, bundled.blend), normalisation


def write_blend(bundled: BundledModel) -> Path:
    """The blend, where the run after the blended run starts (its recipe's init_from)."""
    from mri_style_app.cyclegan import checkpoint as model_files

    recipe = bundled.runs[bundled.blend_index + 1][0]
    generators, normalisation = blend_of(bundled)
    card = model_files.make_card(recipe_config(recipe).preset, model_files.DIRECTIONS, normalisation)
    path = Path(recipe_config(recipe).init_from)
    path.parent.mkdir(parents=True, exist_ok=True)
    return model_files.save_model(path, generators, card)


def export(bundled: BundledModel) -> Path:
    from mri_style_app.cyclegan import checkpoint as model_files

    last = len(bundled.runs) - 1
    config = recipe_config(bundled.runs[last][0])
    # with a blend, generator_runs names the blended run's start: both directions are the last run's
    runs = made_by(bundled, last) if bundled.blend is None else {d: last for d in model_files.DIRECTIONS}
    if bundled.blend is not None and bundled.blend_index == last:
        generators, normalisation = blend_of(bundled)
    else:
        generators, normalisation = picked_generators(bundled, runs)
    training = run_model(*bundled.runs[last])[1]
    # folders of the machine that trained it, and the last run's own scores while it ran
    for machine_specific in ("data", "init_from", "recipe", "validation"):
        training.pop(machine_specific, None)
    training.update(
        {
            "recipes": [r.relative_to(REPO).as_posix() for r, _ in bundled.runs],
            "generators": {d: bundled.runs[i][0].relative_to(REPO).as_posix() for d, i in runs.items()},
            **(
                {
                    "blend": bundled.blend,
                    "blended": bundled.runs[bundled.blend_index][0].relative_to(REPO).as_posix(),
                }
                if bundled.blend is not None
                else {}
            ),
            "reproduce": "python training/make_default_model.py"
            + ("" if bundled.name == "default" else f" --model {bundled.name}")
            + " all",
            "settings": {k: getattr(config, k) for k in SETTINGS},
            "data": {**DATA_DESCRIPTION, **RUN_DESCRIPTION[bundled.name]},
        }
    )
    card = model_files.make_card(config.preset, model_files.DIRECTIONS, normalisation, training=training)
    out = model_files.save_model(bundled.path, generators, card)
    print(f"exported {out}")
    return out


def evaluate(bundled: BundledModel) -> dict:
    """Score table, protocol sweep and figures (training/evidence.py) into the model's evidence
    folder, and the metrics into the card."""
    from evidence import evaluate_model

    from mri_style_app.cyclegan import checkpoint as model_files

    model = model_files.load_model(bundled.path)
    metrics = evaluate_model(bundled.path, bundled.evidence, [run for _, run in bundled.runs])
    card = dict(model.card)
    card["metrics"] = metrics
    model_files.save_model(bundled.path, model.generators, card)
    return metrics


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("prepare", "heads", "train", "export", "evaluate", "all"))
    parser.add_argument("--model", choices=tuple(MODELS), default="default", help="which bundled model")
    args = parser.parse_args()
    bundled = MODELS[args.model]
    if args.step == "heads":
        prepare_heads()
        return
    if args.step in ("prepare", "all"):
        prepare()
        if bundled.synthetic_heads:
            prepare_heads()
    for name, step in (("train", train), ("export", export), ("evaluate", evaluate)):
        if args.step in (name, "all"):
            step(bundled)


if __name__ == "__main__":
    main()
