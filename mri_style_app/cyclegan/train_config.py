"""A training run's settings: TrainConfig (what a recipe, the command line and a run folder's
config.json hold) with its checks, the defaults a run fills in where a setting is left out, and
SetupError, the message for people when a run cannot start."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch

from mri_style_app.cyclegan import checkpoint as model_files
from mri_style_app.cyclegan.events import CONFIG_FILE
from mri_style_app.cyclegan.networks import SIZE_MULTIPLE
from mri_style_app.cyclegan.presets import DEFAULT_PRESET, PRESETS, GeneratorConfig

DEFAULT_ITERATIONS = 2000
AUTO_SIZE_LIMIT = 256  # the automatic training size stops here: larger slices are resized down
DEFAULT_PERCENTILE = 99.5  # the foreground percentile that maps to 1, unless set or inherited
DEFAULT_LR = 2e-4  # Adam's learning rate from random weights, unless set
FINE_TUNE_LR = 2e-5  # the same for a fine-tune (init_from)


# The settings that name files or folders: a recipe's are relative to the recipe, and a run
# stores them absolute, so --resume works from any working folder.
PATH_SETTINGS = ("domain_a", "domain_b", "out", "paired_a", "paired_b", "paired_weights", "init_from", "val_a", "val_b")


class SetupError(Exception):
    """The run cannot start (bad option, busy or finished run folder); the message is for people."""


@dataclass
class TrainConfig:
    domain_a: str
    domain_b: str
    out: str
    # The defaults learn the contrast from unpaired slices on a CPU in minutes (training/unpaired_sweep.py):
    # a small ResNet generator (a U-Net's skip connections let it copy its input instead), whole slices
    # at their own scale, no identity loss, a structure loss, and bfloat16 where the CPU has it.
    # None: the init_from model's layers for a fine-tune (its card records them), else DEFAULT_PRESET.
    preset: str | None = None
    # Changes to the preset's generator layers (GeneratorConfig fields: `generator = {ngf = 32}`,
    # `{upsample = "resize"}`), for experiments in a recipe. The card records the layers.
    generator: dict | None = None
    # The side of the square training images. None: the largest slice's side (rounded up to a
    # multiple of 4) up to AUTO_SIZE_LIMIT, so whole slices train at their own scale, as the
    # translator runs them.
    size: int | None = None
    iterations: int | None = None  # total; None: from `epochs` or `minutes`, else DEFAULT_ITERATIONS
    epochs: int | None = None
    # A time budget instead of a number of iterations: the run measures its speed as it goes and
    # places the total (and so the learning-rate decay) where the time runs out.
    minutes: float | None = None
    batch_size: int = 1
    # Adam's learning rate. None: 2e-4 (the reference's) from random weights, a tenth of it for a
    # fine-tune (init_from), which at 2e-4 drifted away from the model it started from.
    lr: float | None = None
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_cycle: float = 10.0
    # The reference CycleGAN's 0.5 suits photos; T1w <-> T2w must invert contrast, which it pulls against.
    lambda_identity: float = 0.0
    # Weight of the structure loss (cyclegan/structure.py): the L1 distance between the contrast-free
    # MIND descriptors of each input and its translation, which holds edges where the input has them.
    # On unpaired slices it brings the contrast in fewer iterations and sharper (docs/training.md).
    lambda_structure: float = 3.0
    # Optional co-registered pairs (same file names in two folders): an L1 loss between each
    # translation and its partner, next to the unpaired losses. Off unless both are given.
    paired_a: str | None = None
    paired_b: str | None = None
    lambda_paired: float = 10.0
    # The paired L1's weight where the domain's reference is bright (above losses.BRIGHT_UNIT of its
    # unit scale), against 1 elsewhere: _a for translations into A (T1w), _b into B (T2w). Fat and
    # marrow in a whole-head T1w are rare, yet the brightest tissue sets each image's scale, so a
    # translation that under-produces them has every other tissue too bright on that scale.
    bright_weight_a: float = 1.0
    bright_weight_b: float = 1.0
    # The paired L1's weight on the outermost voxel layer of each reference's anatomy (voxels next
    # to background, losses.outer_layer), against 1 elsewhere. A skull-stripped brain's cut edge is
    # one voxel wide: too few voxels for the plain mean to fit it in the iterations a run has.
    edge_weight: float = 1.0
    # Optional folder of per-voxel weight maps for the paired L1 (NAME.nii.gz on the grid of the
    # paired head NAME, values 0-1; heads without one count fully): where a pair's reference is
    # right only in part, such as synthetic heads whose brain is a few flat labels.
    paired_weights: str | None = None
    # Weight of the generators' adversarial (GAN) terms. Below 1 it lets the paired and cycle
    # terms lead: the discriminators reward the texture and noise of the unpaired images, which a
    # noise-free reference protocol does not have.
    lambda_adversarial: float = 1.0
    # Optional MRI Style model (.safetensors, same preset) whose generators start the run instead of
    # random weights: fine-tuning. The discriminators start fresh.
    init_from: str | None = None
    # A fine-tune's L1 between each translation and the starting model's translation of the same
    # input: the unpaired terms adapt the model to the new scans, this keeps what it translated
    # right (without it, ten minutes on unpaired slices cost the bundled model 0.08 SSIM on scans
    # of its own training protocol; docs/training.md). Only with init_from.
    lambda_anchor: float = 10.0
    pool_size: int = 50
    # Filters of the discriminators' first layer. None: the preset's (DISCRIMINATOR_NDF).
    discriminator_ndf: int | None = None
    # Optional co-registered T1w/T2w pairs (same file names), never trained on: scored every
    # `val_every` iterations and at the end; the best by SSIM is kept as best.safetensors.
    val_a: str | None = None
    val_b: str | None = None
    val_every: int = 200
    # The foreground percentile that maps to 1 when normalising each domain's images (the model
    # card records them; translation uses the same). 90 for T1w puts its white matter, not its
    # brightest voxels, at 1, which real and simulated T1w scans agree on. None: the init_from
    # model's (a fine-tune must see its inputs as the model was trained to), else 99.5.
    percentile_a: float | None = None
    percentile_b: float | None = None
    decay_fraction: float = 0.5  # share of the run over which the learning rate falls to 0
    plane: str = "axial"
    augment: bool = True
    # train the unpaired terms on native-scale size x size windows rather than resized whole
    # slices (paired slices stay whole, at native scale)
    crop: bool = False
    device: str = "auto"
    # bfloat16 autocast. None: on where the device computes bfloat16 natively (device.native_bfloat16)
    # and the run is on a CPU, where it halves a step's time; float32 elsewhere.
    amp: bool | None = None
    seed: int = 0
    log_every: int = 10
    sample_every: int = 100
    checkpoint_every: int = 200

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SetupError(f"unknown setting(s): {', '.join(unknown)}")
        kinds = {
            "int": int,
            "int | None": int,
            "float": float,
            "float | None": float,
            "str": str,
            "str | None": str,
            "bool": bool,
            "bool | None": bool,
            "dict | None": dict,
        }
        clean = {}
        for f in fields(cls):
            if f.name not in values:
                continue
            value, kind = values[f.name], kinds[str(f.type)]
            if value is None or (kind is float and isinstance(value, (int, float)) and not isinstance(value, bool)):
                clean[f.name] = None if value is None else float(value)
            elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise SetupError(
                    f"setting {f.name} = {value!r} should be {'a number' if kind in (int, float) else kind.__name__}"
                )
            else:
                clean[f.name] = value
        return cls(**clean)

    def to_dict(self) -> dict:
        return asdict(self)

    def generator_config(self) -> GeneratorConfig:
        """The generators' layers: the preset's, with the recipe's `generator` changes."""
        preset = self.preset or DEFAULT_PRESET  # None until a Trainer resolves it (resolve_preset)
        if preset not in PRESETS:
            raise SetupError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        try:
            return replace(PRESETS[preset], **(self.generator or {}))
        except (TypeError, ValueError) as exc:
            raise SetupError(f"generator = {self.generator}: {exc}") from None

    def check(self) -> None:
        self.generator_config()
        if self.size is not None and (self.size < 32 or self.size % SIZE_MULTIPLE):
            raise SetupError(
                f"--size {self.size}: the image size must be at least 32 and a multiple of {SIZE_MULTIPLE}"
            )
        if sum(v is not None for v in (self.iterations, self.epochs, self.minutes)) > 1:
            raise SetupError("give one of --iterations, --epochs and --minutes")
        if self.minutes is not None and not 0 < self.minutes <= 7 * 24 * 60:
            raise SetupError(f"--minutes {self.minutes:g}: give a time above 0 and at most a week")
        if (self.val_a is None) != (self.val_b is None):
            raise SetupError("validation needs both --val-a and --val-b (folders of co-registered T1w and T2w volumes)")
        for name in (
            "iterations",
            "epochs",
            "batch_size",
            "log_every",
            "sample_every",
            "checkpoint_every",
            "val_every",
            "discriminator_ndf",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SetupError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
        if not 0 <= self.decay_fraction <= 1:
            raise SetupError("decay_fraction must be between 0 and 1")
        if (self.paired_a is None) != (self.paired_b is None):
            raise SetupError("paired training needs both paired_a and paired_b (folders of co-registered volumes)")
        if self.paired_weights is not None and self.paired_a is None:
            raise SetupError("paired_weights weighs the paired L1: it needs paired_a and paired_b")
        for name in ("bright_weight_a", "bright_weight_b", "edge_weight"):
            if getattr(self, name) < 1:
                raise SetupError(f"{name} must be at least 1 (got {getattr(self, name)})")
        if min(self.lambda_paired, self.lambda_adversarial, self.lambda_structure, self.lambda_anchor) < 0:
            raise SetupError(
                "lambda_paired, lambda_adversarial, lambda_structure and lambda_anchor must not be negative"
            )
        for name in ("percentile_a", "percentile_b"):
            if getattr(self, name) is not None and not 50 <= getattr(self, name) <= 100:
                raise SetupError(f"{name} must be between 50 and 100 (got {getattr(self, name)})")
        if (self.lr is not None and self.lr <= 0) or self.pool_size < 0:
            raise SetupError("the learning rate must be positive and the pool size not negative")
        if self.device not in ("auto", "cpu", "cuda"):
            raise SetupError(f"--device {self.device}: choose auto, cpu or cuda")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise SetupError("--device cuda: no CUDA GPU is available to PyTorch here; use --device cpu")


def load_run_config(run_dir) -> TrainConfig:
    path = Path(run_dir) / CONFIG_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SetupError(f"{run_dir} holds no training run to resume ({CONFIG_FILE} is missing)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SetupError(f"{path} cannot be read ({exc}); start a new run in another folder") from None
    return TrainConfig.from_dict(saved["config"])


def resolve_percentiles(config: TrainConfig, start_model) -> None:
    """Fill the percentiles not set: from the starting model's card, else the default 99.5."""
    start = (DEFAULT_PERCENTILE, DEFAULT_PERCENTILE)
    if start_model is not None:
        normalisation = start_model.normalisation
        start = (
            model_files.contrast_percentile(normalisation, "t1"),
            model_files.contrast_percentile(normalisation, "t2"),
        )
    if config.percentile_a is None:
        config.percentile_a = start[0]
    if config.percentile_b is None:
        config.percentile_b = start[1]


def resolve_preset(config: TrainConfig, start_model) -> None:
    """Fill the preset when none was given. A fine-tune with no generator changes takes the
    starting model's layers: its preset where the card names one that ships, else the nearest
    preset and the differences. Anything else takes DEFAULT_PRESET."""
    if config.preset is not None:
        return
    if start_model is None or config.generator is not None:
        config.preset = DEFAULT_PRESET
        return
    layers = start_model.config
    name = start_model.preset if start_model.preset in PRESETS else ("unet" if layers.generator == "unet" else "lite")
    base = PRESETS[name].to_dict()
    config.preset = name
    config.generator = {k: v for k, v in layers.to_dict().items() if base[k] != v} or None
