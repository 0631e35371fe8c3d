"""`mri-style train`: train a CycleGAN on two folders of unpaired T1w (A) and T2w (B) images.

Settings come from the command line, optionally on top of a TOML recipe (`--recipe`); paths
in a recipe are relative to the recipe file. `--resume` continues the run in --out with the
settings saved in its config.json. Progress lines are printed from the run's events.
Under `torchrun --nproc_per_node N` the same command trains with DistributedDataParallel.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mri_style_app.cyclegan.presets import DEFAULT_PRESET, PRESETS

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1

# option name -> (type, help); all default to None so a recipe can fill what was not given
_OPTIONS = {
    "domain_a": (str, "folder of T1-weighted NIfTI volumes and/or PNG slices (domain A)"),
    "domain_b": (str, "folder of T2-weighted NIfTI volumes and/or PNG slices (domain B)"),
    "paired_a": (str, "optional: folder of co-registered T1w volumes, partners of paired_b by file name"),
    "paired_b": (str, "optional: folder of the T2w partners; adds an L1 loss per pair (lambda_paired, default 10)"),
    "init_from": (
        str,
        "optional: a model (.safetensors) whose generators start the run, with their layers: fine-tuning",
    ),
    "out": (str, "run folder: config, events.jsonl, samples, checkpoints, model.safetensors"),
    "preset": (
        str,
        f"generator: {', '.join(PRESETS)} (default: {DEFAULT_PRESET}; with --init-from, the model's layers)",
    ),
    "size": (
        int,
        "training image size in pixels, a multiple of 4 (default: the largest slice, up to 256: whole slices at their own scale)",
    ),
    "iterations": (int, "number of training iterations (default 2000)"),
    "epochs": (int, "number of passes over the larger domain, instead of --iterations"),
    "minutes": (
        float,
        "train for this many minutes instead of a number of iterations: the run measures "
        "its speed and places the learning-rate decay where the time runs out",
    ),
    "val_a": (
        str,
        "optional: folder of co-registered T1w volumes never trained on, partners of val_b by file "
        "name: scored during the run; the best model is kept as best.safetensors",
    ),
    "val_b": (str, "optional: folder of the T2w partners of val_a"),
    "val_every": (int, "iterations between validation scores (default 200; also at the end)"),
    "batch_size": (int, "slices per batch and process (default 1, as the reference)"),
    "lr": (float, "Adam learning rate (default 2e-4; 2e-5 with --init-from)"),
    "plane": (str, "slice plane for NIfTI volumes: axial (default), coronal, sagittal or all"),
    "device": (str, "auto (default: CUDA when available), cpu or cuda"),
    "seed": (int, "random seed (default 0)"),
    "log_every": (int, "iterations between progress lines / loss points (default 10)"),
    "sample_every": (int, "iterations between sample images (default 100)"),
    "checkpoint_every": (int, "iterations between checkpoints (default 200)"),
}
_RECIPE_ONLY = (
    "decay_fraction",
    "lambda_adversarial",
    "lambda_cycle",
    "lambda_identity",
    "lambda_paired",
    "bright_weight_a",
    "bright_weight_b",
    "edge_weight",
    "paired_weights",
    "lambda_structure",
    "lambda_anchor",
    "pool_size",
    "discriminator_ndf",
    "generator",
    "beta1",
    "beta2",
    "augment",
    "amp",
    "crop",
    "percentile_a",
    "percentile_b",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for name, (kind, text) in _OPTIONS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None, help=text)
    parser.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mixed precision: bfloat16 autocast (default: on a CPU with native bfloat16 "
        "instructions, AVX512-BF16 or AMX, where it halves a step's time; off elsewhere)",
    )
    parser.add_argument(
        "--crop",
        action="store_true",
        default=None,
        help="train on random --size windows at the images' own scale instead of whole "
        "slices resized to --size (faster; the translator works at the own scale)",
    )
    parser.add_argument(
        "--no-augment", dest="augment", action="store_false", default=None, help="no flips, affine or intensity jitter"
    )
    parser.add_argument("--recipe", type=Path, help="TOML file with any of these settings")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--quiet", action="store_true", help="print only the start, errors and the end")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def read_recipe(path: Path) -> dict:
    """Settings from a TOML recipe; relative folder paths are taken from the recipe's folder."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise ValueError("reading a recipe needs Python 3.11 or the 'tomli' package") from None
    try:
        with open(path, "rb") as fh:
            recipe = tomllib.load(fh)
    except FileNotFoundError:
        raise ValueError(f"recipe {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"recipe {path} cannot be read: {exc}") from None
    recipe = {key.replace("-", "_"): value for key, value in recipe.items()}
    unknown = sorted(set(recipe) - set(_OPTIONS) - set(_RECIPE_ONLY))
    if unknown:
        raise ValueError(f"recipe {path}: unknown setting(s) {', '.join(unknown)}")
    from mri_style_app.cyclegan.train_config import PATH_SETTINGS  # here: it imports torch

    for key in PATH_SETTINGS:
        if key in recipe:
            recipe[key] = str((path.parent / Path(recipe[key]).expanduser()).resolve())
    return recipe


def run(args: argparse.Namespace) -> int:
    from mri_style_app.cyclegan import events
    from mri_style_app.cyclegan.data import DataError
    from mri_style_app.cyclegan.train import Trainer
    from mri_style_app.cyclegan.train_config import SetupError, TrainConfig, load_run_config

    given = {name: getattr(args, name) for name in [*_OPTIONS, "amp", "augment"] if getattr(args, name) is not None}
    try:
        if args.resume:
            if "out" not in given:
                return _fail("--resume needs --out RUN, the folder of the run to continue")
            config = load_run_config(given["out"])
            config.out = given["out"]  # the folder as named now, wherever the run was started from
            ignored = sorted(set(given) - {"out", "device"})
            if ignored:
                print(
                    f"note: resuming with the settings saved in {given['out']}; ignoring "
                    + ", ".join("--" + k.replace("_", "-") for k in ignored)
                )
            if "device" in given:
                config.device = given["device"]
        else:
            settings = read_recipe(args.recipe) if args.recipe else {}
            length = ("iterations", "epochs", "minutes")
            if any(k in given for k in length):  # the command line's run length replaces the recipe's
                settings = {k: v for k, v in settings.items() if k not in length}
            settings.update(given)
            missing = [f"--{k.replace('_', '-')}" for k in ("domain_a", "domain_b", "out") if k not in settings]
            if missing:
                return _fail(f"missing {', '.join(missing)} (the two image folders and the run folder)")
            config = TrainConfig.from_dict(settings)
        total = None
        seen: list[dict] = []
        warned = set()

        def show(event: dict) -> None:
            nonlocal total
            total = event.get("total_iterations", total)
            seen.append(event)
            advice = events.diagnose(seen) if event["type"] == "validation" else None
            if (
                args.quiet
                and event["type"] in ("step", "sample", "checkpoint")
                or (args.quiet and event["type"] == "validation" and not advice)
            ):
                return
            try:
                print(events.describe(event, total), flush=True)
                if advice and advice not in warned:
                    warned.add(advice)
                    print(f"warning: {advice}", flush=True)
            except BrokenPipeError:
                # The app that started this run quit and chose to leave it going: keep training
                # without printing; events.jsonl in the run folder is the record.
                sys.stdout = sys.stderr = open(os.devnull, "w")

        trainer = Trainer(config, resume=args.resume, on_event=show)
    except (SetupError, DataError, ValueError, TypeError) as exc:
        return _fail(str(exc))

    if trainer.dist.main:
        a, b = trainer.data_a.summary(), trainer.data_b.summary()
        for label, s in (("A (T1)", a), ("B (T2)", b)):
            shapes = ", ".join(f"{k} x{n}" for k, n in s["shapes"].items())
            print(
                f"domain {label}: {s['slices']} slices from {s['volumes']} volume(s) and {s['png_files']} PNG(s) "
                f"[{shapes}]; skipped {s['skipped_near_empty_slices']} near-empty slice(s), "
                f"ignored {s['ignored_files']} other file(s)",
                flush=True,
            )
    try:
        trainer.run()
    except (SetupError, DataError) as exc:
        return _fail(str(exc))
    except Exception as exc:  # already written as an "error" event; one line for people
        print(f"error: training failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0
