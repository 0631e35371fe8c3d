"""CycleGAN training loop (torch, no Qt): the reference objective and schedule on MRI slices.

Domain A = T1-weighted, domain B = T2-weighted. G_A: A -> B ("t1-to-t2"), G_B: B -> A
("t2-to-t1"); D_A judges B images (real T2 vs G_A's fakes), D_B judges A images. Objective
as in Zhu et al. 2017: LSGAN (MSE) adversarial losses, L1 cycle loss x 10, L1 identity loss
x 0.5 x 10, image pools of 50 fakes for the discriminators, Adam 2e-4 (0.5, 0.999), learning
rate constant for the first half of the iterations, then linearly down to 0.

Everything a run produces goes into its folder (config.json, events.jsonl, samples/,
checkpoints/latest.pt, model.safetensors). Under `torchrun` the same code runs
DistributedDataParallel; only rank 0 writes files.

Stopping: SIGTERM or SIGINT ends the current iteration, writes a checkpoint and a "stopped"
event, and returns normally (the CLI exits 0); `resume=True` continues from the checkpoint.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from mri_style_app.cyclegan import checkpoint as model_files
from mri_style_app.cyclegan import events, validation
from mri_style_app.cyclegan.data import (
    Augmentation,
    DataError,
    PairedBatches,
    UnpairedBatches,
    fit_to_size,
    load_domain,
    load_pairs,
    write_png,
)
from mri_style_app.cyclegan.device import native_bfloat16
from mri_style_app.cyclegan.events import BEST_MODEL_FILE, CHECKPOINT, CONFIG_FILE, MODEL_FILE
from mri_style_app.cyclegan.networks import (
    SIZE_MULTIPLE,
    PatchDiscriminator,
    build_generator,
    init_weights,
    memory_format,
)
from mri_style_app.cyclegan.presets import DEFAULT_PRESET, DISCRIMINATOR_NDF, PRESETS, GeneratorConfig
from mri_style_app.cyclegan.structure import structure_loss
from mri_style_app.cyclegan.time_budget import TimeBudget
from mri_style_app.files import write_atomically

DEFAULT_ITERATIONS = 2000
AUTO_SIZE_LIMIT = 256  # the automatic training size stops here: larger slices are resized down
DEFAULT_PERCENTILE = 99.5  # the foreground percentile that maps to 1, unless set or inherited
DEFAULT_LR = 2e-4  # Adam's learning rate from random weights, unless set
FINE_TUNE_LR = 2e-5  # the same for a fine-tune (init_from)


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
        preset = self.preset or DEFAULT_PRESET  # None until a Trainer resolves it (_resolve_preset)
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


class ImagePool:
    """The reference history of generated images: half the time the discriminator sees an older fake."""

    def __init__(self, size: int):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for image in batch.detach():
            image = image[None]
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(1, generator=generator).item() > 0.5:
                i = int(torch.randint(0, self.size, (1,), generator=generator))
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out)

    def state(self) -> torch.Tensor:
        return torch.cat(self.images).cpu() if self.images else torch.zeros(0)

    def load(self, stored: torch.Tensor, device) -> None:
        self.images = [t[None].to(device) for t in stored] if stored.numel() else []


def lr_factor(iteration: int, total: int, decay_fraction: float) -> float:
    """Reference schedule: constant, then linear down to 0 at the last iteration."""
    decay = round(total * decay_fraction)
    start = total - decay
    if decay <= 0 or iteration < start:
        return 1.0
    return max(0.0, (total - iteration) / decay)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"))


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def _set_requires_grad(nets, flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class _StopRequest:
    """SIGTERM/SIGINT set a flag; the loop stops at the end of the iteration (after a checkpoint)."""

    def __init__(self):
        self.signal_name: str | None = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: stopping is up to the caller
                pass
        return self

    def _handle(self, signum, frame):
        self.signal_name = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _distributed_from_env() -> Distributed:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    return Distributed(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(name: str, dist_info: Distributed) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return torch.device("cuda", dist_info.local_rank if dist_info.active else torch.cuda.current_device())
    return torch.device("cpu")


def load_run_config(run_dir) -> TrainConfig:
    path = Path(run_dir) / CONFIG_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SetupError(f"{run_dir} holds no training run to resume ({CONFIG_FILE} is missing)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SetupError(f"{path} cannot be read ({exc}); start a new run in another folder") from None
    return TrainConfig.from_dict(saved["config"])


def _load_start_model(path: str):
    """The init_from model (CycleGANModel), read once: its card sets the percentiles, its weights the generators."""
    try:
        return model_files.load_model(path)
    except model_files.ModelError as exc:
        raise SetupError(f"init_from: {exc}") from None


def _resolve_percentiles(config: TrainConfig, start_model) -> None:
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


def _resolve_preset(config: TrainConfig, start_model) -> None:
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


class Trainer:
    """One training run: build with a config, then `run()`."""

    def __init__(self, config: TrainConfig, resume: bool = False, on_event=None):
        # Absolute paths in config.json, so --resume works from any working folder.
        for name in ("domain_a", "domain_b", "out", "paired_a", "paired_b", "init_from", "val_a", "val_b"):
            if getattr(config, name) is not None:
                setattr(config, name, str(Path(getattr(config, name)).expanduser().absolute()))
        self.start_model = _load_start_model(config.init_from) if config.init_from else None
        _resolve_preset(config, self.start_model)
        config.check()
        _resolve_percentiles(config, self.start_model)
        if config.lr is None:
            config.lr = FINE_TUNE_LR if config.init_from else DEFAULT_LR
        self.config = config
        self.resume = resume
        self.on_event = on_event
        self.run_dir = Path(config.out)
        self.dist = _distributed_from_env()
        self.device = resolve_device(config.device, self.dist)
        if config.amp and self.device.type == "cuda" and not native_bfloat16(self.device):
            raise SetupError("--amp needs a GPU with bfloat16 support; run without --amp")
        self.amp = config.amp if config.amp is not None else self.device.type == "cpu" and native_bfloat16(self.device)
        self.precision = "bfloat16" if self.amp else "float32"
        self._check_run_folder()
        # Reading the data is the validation: every file is opened before training starts.
        self.data_a = load_domain(config.domain_a, config.plane, "domain A (T1)", config.percentile_a)
        self.data_b = load_domain(config.domain_b, config.plane, "domain B (T2)", config.percentile_b)
        self.pairs = (
            load_pairs(config.paired_a, config.paired_b, config.plane, (config.percentile_a, config.percentile_b))
            if config.paired_a
            else None
        )
        self.validation = (
            validation.load_validation_pairs(config.val_a, config.val_b) if config.val_a and self.dist.main else None
        )
        self.last_validation: dict | None = None
        if config.size is None:
            largest = max(self.data_a.largest_side(), self.data_b.largest_side())
            config.size = max(32, min(AUTO_SIZE_LIMIT, largest + -largest % SIZE_MULTIPLE))
        # The in-plane pixel size (mm) of the slices as training shows them, for the model card.
        self.pixel_size = (
            self.data_a.training_pixel_size(config.size, config.crop)
            + self.data_b.training_pixel_size(config.size, config.crop)
        ) / 2
        per_step = config.batch_size * self.dist.world
        self.epoch_iterations = max(1, max(len(self.data_a), len(self.data_b)) // per_step)
        self.budget = TimeBudget(config.minutes * 60) if config.minutes is not None else None
        if config.iterations is not None:
            self.total = config.iterations
        elif config.epochs is not None:
            self.total = config.epochs * self.epoch_iterations
        elif self.budget is not None:
            self.total = 1  # until the first iterations are measured
        else:
            self.total = DEFAULT_ITERATIONS

    def _check_run_folder(self) -> None:
        run = self.run_dir
        if run.exists() and not run.is_dir():
            raise SetupError(f"--out {run} is a file; give a folder for the run")
        if self.resume:
            if (run / MODEL_FILE).exists() and any(e["type"] == "done" for e in events.read_events(run)):
                raise SetupError(f"the run in {run} has finished already ({MODEL_FILE}); nothing to resume")
        elif (run / CONFIG_FILE).exists():
            raise SetupError(f"{run} already holds a training run; continue it with --resume or choose a new folder")

    # ------------------------------------------------------------ set-up
    def _build(self) -> None:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        layers = cfg.generator_config()
        self.G_A, self.G_B = build_generator(layers), build_generator(layers)
        ndf = cfg.discriminator_ndf or DISCRIMINATOR_NDF[cfg.preset]
        self.D_A = PatchDiscriminator(ndf=ndf)
        self.D_B = PatchDiscriminator(ndf=ndf)
        for net in (self.G_A, self.G_B, self.D_A, self.D_B):
            init_weights(net)
        if cfg.init_from:
            self._load_generators(Path(cfg.init_from), self.start_model)
        for net in (self.G_A, self.G_B, self.D_A, self.D_B):
            net.to(self.device)
        # the starting model's generators, frozen: the anchor term's targets
        self.anchors = None
        if cfg.init_from and cfg.lambda_anchor > 0:
            self.anchors = tuple(
                self.start_model.generator(d).to(self.device).eval().requires_grad_(False)
                for d in ("t1-to-t2", "t2-to-t1")
            )
        self.use_memory_format(memory_format(layers))
        betas = (cfg.beta1, cfg.beta2)
        self.opt_G = torch.optim.Adam([*self.G_A.parameters(), *self.G_B.parameters()], lr=cfg.lr, betas=betas)
        self.opt_D = torch.optim.Adam([*self.D_A.parameters(), *self.D_B.parameters()], lr=cfg.lr, betas=betas)
        schedule = lambda it: lr_factor(it, self.total, cfg.decay_fraction)  # noqa: E731
        self.sched_G = torch.optim.lr_scheduler.LambdaLR(self.opt_G, schedule)
        self.sched_D = torch.optim.lr_scheduler.LambdaLR(self.opt_D, schedule)
        self.pool_A = ImagePool(cfg.pool_size)  # fake A images, for D_B
        self.pool_B = ImagePool(cfg.pool_size)  # fake B images, for D_A
        # Each rank draws its own batches; the seed makes the whole run repeatable.
        self.rng = torch.Generator().manual_seed(cfg.seed * 1000 + self.dist.rank)
        augmentation = Augmentation() if cfg.augment else None
        self.batches_a = UnpairedBatches(
            self.data_a, cfg.size, cfg.batch_size, self.dist.rank, self.dist.world, augmentation, cfg.crop
        )
        self.batches_b = UnpairedBatches(
            self.data_b, cfg.size, cfg.batch_size, self.dist.rank, self.dist.world, augmentation, cfg.crop
        )
        self.batches_pairs = (
            PairedBatches(self.pairs, self._paired_size(), cfg.batch_size, cfg.augment) if self.pairs else None
        )
        self.iteration = 0
        self.seconds = 0.0
        self.wall_seconds = 0.0  # the whole run's time, samples, checkpoints and validation included
        self.best_ssim: float | None = None
        self.sums = torch.zeros(len(events.LOSS_KEYS), dtype=torch.float64)
        self.sum_count = 0

    def use_memory_format(self, layout: torch.memory_format) -> None:
        """Run every network, and the batches fed to them, in `layout` (networks.memory_format)."""
        self.layout = layout
        for net in (self.G_A, self.G_B, self.D_A, self.D_B, *(self.anchors or ())):
            net.to(memory_format=layout)

    def _paired_size(self) -> int:
        """The side paired slices are padded to: the run's size, or with crop (where the size is
        the unpaired windows') the largest paired slice, so pairs are never resized."""
        if not self.config.crop:
            return self.config.size
        largest = max(
            max(n for a, n in enumerate(self.pairs.heads[head].reference_a.shape) if a != axis)
            for head, axis in {(h, a) for h, a, _ in self.pairs.index}
        )
        return max(self.config.size, largest + -largest % SIZE_MULTIPLE)

    def _load_generators(self, path: Path, model) -> None:
        """Start G_A and G_B from a saved model (init_from); its layers must be this run's."""
        theirs, mine = model.config.to_dict(), self.config.generator_config().to_dict()
        differ = [f"{k} {theirs[k]!r} (this run: {mine[k]!r})" for k in theirs if theirs[k] != mine[k]]
        if differ:
            raise SetupError(
                f"init_from {path}: its generators' layers differ from this run's: {', '.join(differ)}. "
                "Leave out --preset to take the model's layers, or choose another model"
            )
        for net, direction in ((self.G_A, "t1-to-t2"), (self.G_B, "t2-to-t1")):
            try:
                net.load_state_dict(model.generator(direction).state_dict())
            except model_files.ModelError as exc:
                raise SetupError(f"init_from: {exc}") from None

    def _wrap_ddp(self) -> None:
        if not self.dist.active:
            return
        ids = [self.device.index] if self.device.type == "cuda" else None
        ddp = nn.parallel.DistributedDataParallel
        self.G_A, self.G_B, self.D_A, self.D_B = (
            ddp(n, device_ids=ids) for n in (self.G_A, self.G_B, self.D_A, self.D_B)
        )

    def _unwrap_ddp(self) -> None:
        # The DDP wrappers hold the process group; one still alive when the interpreter exits takes
        # gloo's threads down in C++ teardown, which aborts the process ("terminate called without
        # an active exception"). Drop them, and collect, before the group is destroyed.
        self.G_A, self.G_B, self.D_A, self.D_B = (_unwrap(n) for n in (self.G_A, self.G_B, self.D_A, self.D_B))
        gc.collect()

    def nets(self) -> dict[str, nn.Module]:
        return {"G_A": _unwrap(self.G_A), "G_B": _unwrap(self.G_B), "D_A": _unwrap(self.D_A), "D_B": _unwrap(self.D_B)}

    # ------------------------------------------------------------ checkpoints
    def checkpoint_state(self) -> dict:
        return {
            "iteration": self.iteration,
            "seconds": self.seconds,
            "wall_seconds": self.wall_seconds,
            "best_ssim": self.best_ssim if self.best_ssim is not None else float("nan"),
            "nets": {k: v.state_dict() for k, v in self.nets().items()},
            "optimizers": {"G": self.opt_G.state_dict(), "D": self.opt_D.state_dict()},
            "schedulers": {"G": self.sched_G.state_dict(), "D": self.sched_D.state_dict()},
            "pools": {"A": self.pool_A.state(), "B": self.pool_B.state()},
            "rng": {"data": self.rng.get_state(), "torch": torch.get_rng_state()},
            "batches": {
                "A": self.batches_a.state_dict(),
                "B": self.batches_b.state_dict(),
                **({"pairs": self.batches_pairs.state_dict()} if self.batches_pairs else {}),
            },
            "log": {"sums": self.sums.clone(), "count": self.sum_count},
        }

    def save_checkpoint(self) -> Path:
        path = self.run_dir / CHECKPOINT
        state = self.checkpoint_state()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda tmp: torch.save(state, tmp))
        return path

    def load_checkpoint(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged file: say which, never a traceback
            raise SetupError(f"{path}: the checkpoint cannot be read ({exc}); start a new run") from None
        for name, net in self.nets().items():
            net.load_state_dict(state["nets"][name])
        self.opt_G.load_state_dict(state["optimizers"]["G"])
        self.opt_D.load_state_dict(state["optimizers"]["D"])
        self.sched_G.load_state_dict(state["schedulers"]["G"])
        self.sched_D.load_state_dict(state["schedulers"]["D"])
        self.pool_A.load(state["pools"]["A"], self.device)
        self.pool_B.load(state["pools"]["B"], self.device)
        if not self.dist.active:  # other ranks keep their own streams (see docs: DDP resume)
            self.rng.set_state(state["rng"]["data"])
            self.batches_a.load_state_dict(state["batches"]["A"])
            self.batches_b.load_state_dict(state["batches"]["B"])
            if self.batches_pairs and "pairs" in state["batches"]:
                self.batches_pairs.load_state_dict(state["batches"]["pairs"])
        else:
            self.rng.manual_seed(self.config.seed * 1000 + self.dist.rank + 7919 * int(state["iteration"]))
        torch.set_rng_state(state["rng"]["torch"])
        self.iteration = int(state["iteration"])
        self.seconds = float(state["seconds"])
        self.wall_seconds = float(state.get("wall_seconds", self.seconds))
        best = float(state.get("best_ssim", float("nan")))
        self.best_ssim = best if best == best else None
        sums = state["log"]["sums"]  # a checkpoint from before the paired losses has fewer
        self.sums = torch.zeros(len(events.LOSS_KEYS), dtype=torch.float64)
        self.sums[: len(sums)] = sums
        self.sum_count = int(state["log"]["count"])

    # ------------------------------------------------------------ one iteration
    def _autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def train_step(
        self, real_A: torch.Tensor, real_B: torch.Tensor, pair: tuple[torch.Tensor, ...] | None = None
    ) -> torch.Tensor:
        """One reference CycleGAN iteration, plus the paired L1 terms when `pair` (input A,
        target A, input B, target B; see data.PairedBatches) is given; returns the losses in
        LOSS_KEYS order."""
        cfg = self.config
        real_A, real_B = (t.contiguous(memory_format=self.layout) for t in (real_A, real_B))
        if pair is not None:
            pair = tuple(t.contiguous(memory_format=self.layout) for t in pair)
        lam, lam_idt = cfg.lambda_cycle, cfg.lambda_cycle * cfg.lambda_identity
        D_A, D_B = _unwrap(self.D_A), _unwrap(self.D_B)  # frozen in the G step: no DDP sync there
        with self._autocast():
            fake_B = self.G_A(real_A)
            rec_A = self.G_B(fake_B)
            fake_A = self.G_B(real_B)
            rec_B = self.G_A(fake_A)
            _set_requires_grad((D_A, D_B), False)
            self.opt_G.zero_grad(set_to_none=True)
            pred_fake_B, pred_fake_A = D_A(fake_B), D_B(fake_A)
            loss_G_A = F.mse_loss(pred_fake_B.float(), torch.ones_like(pred_fake_B, dtype=torch.float32))
            loss_G_B = F.mse_loss(pred_fake_A.float(), torch.ones_like(pred_fake_A, dtype=torch.float32))
            loss_cycle_A = F.l1_loss(rec_A.float(), real_A) * lam
            loss_cycle_B = F.l1_loss(rec_B.float(), real_B) * lam
            zero = torch.zeros((), device=real_A.device)
            loss_idt_A = loss_idt_B = loss_paired_A = loss_paired_B = loss_structure_A = loss_structure_B = zero
            loss_anchor_A = loss_anchor_B = zero
            if self.anchors is not None:
                with torch.no_grad():
                    kept_B, kept_A = self.anchors[0](real_A).float(), self.anchors[1](real_B).float()
                loss_anchor_A = F.l1_loss(fake_B.float(), kept_B) * cfg.lambda_anchor
                loss_anchor_B = F.l1_loss(fake_A.float(), kept_A) * cfg.lambda_anchor
            if cfg.lambda_structure > 0:
                loss_structure_A = structure_loss(fake_B.float(), real_A) * cfg.lambda_structure
                loss_structure_B = structure_loss(fake_A.float(), real_B) * cfg.lambda_structure
            if lam_idt > 0:  # two generator passes saved when the identity loss is off
                loss_idt_A = F.l1_loss(self.G_A(real_B).float(), real_B) * lam_idt
                loss_idt_B = F.l1_loss(self.G_B(real_A).float(), real_A) * lam_idt
            if pair is not None:
                input_A, target_A, input_B, target_B = pair
                loss_paired_A = F.l1_loss(self.G_A(input_A).float(), target_B) * cfg.lambda_paired
                loss_paired_B = F.l1_loss(self.G_B(input_B).float(), target_A) * cfg.lambda_paired
        (
            (loss_G_A + loss_G_B) * cfg.lambda_adversarial
            + loss_cycle_A
            + loss_cycle_B
            + loss_idt_A
            + loss_idt_B
            + loss_paired_A
            + loss_paired_B
            + loss_structure_A
            + loss_structure_B
            + loss_anchor_A
            + loss_anchor_B
        ).backward()
        self.opt_G.step()

        _set_requires_grad((D_A, D_B), True)
        self.opt_D.zero_grad(set_to_none=True)
        losses_D = []
        for D, real, fake, pool in ((self.D_A, real_B, fake_B, self.pool_B), (self.D_B, real_A, fake_A, self.pool_A)):
            fake = pool.query(fake.float(), self.rng)
            with self._autocast():
                pred_real, pred_fake = D(real), D(fake.detach())
                loss = 0.5 * (
                    F.mse_loss(pred_real.float(), torch.ones_like(pred_real, dtype=torch.float32))
                    + F.mse_loss(pred_fake.float(), torch.zeros_like(pred_fake, dtype=torch.float32))
                )
            loss.backward()
            losses_D.append(loss)
        self.opt_D.step()
        self.sched_G.step()
        self.sched_D.step()
        return (
            torch.stack(
                [
                    loss_G_A,
                    loss_G_B,
                    losses_D[0],
                    losses_D[1],
                    loss_cycle_A,
                    loss_cycle_B,
                    loss_idt_A,
                    loss_idt_B,
                    loss_paired_A,
                    loss_paired_B,
                    loss_structure_A,
                    loss_structure_B,
                    loss_anchor_A,
                    loss_anchor_B,
                ]
            )
            .detach()
            .double()
            .cpu()
        )

    # ------------------------------------------------------------ outputs
    def emit(self, event: dict) -> None:
        if not self.dist.main:
            return
        event = events.append_event(self.run_dir, {"iteration": self.iteration, **event})
        if self.on_event:
            self.on_event(event)

    def _fixed_sample_inputs(self):
        a = fit_to_size(self.data_a.slice(len(self.data_a) // 2), self.config.size)
        b = fit_to_size(self.data_b.slice(len(self.data_b) // 2), self.config.size)
        return a[None].to(self.device), b[None].to(self.device)

    def write_sample(self) -> Path:
        """Grid: real A, fake B, reconstructed A / real B, fake A, reconstructed B (fixed slices)."""
        nets = self.nets()
        real_A, real_B = self._sample_inputs
        with torch.no_grad():
            fake_B = nets["G_A"](real_A)
            fake_A = nets["G_B"](real_B)
            rows = [[real_A, fake_B, nets["G_B"](fake_B)], [real_B, fake_A, nets["G_A"](fake_A)]]
        gap = 2
        size = self.config.size
        grid = np.zeros((2 * size + gap, 3 * size + 2 * gap), dtype=np.uint8)
        for r, row in enumerate(rows):
            for c, image in enumerate(row):
                pixels = ((image[0, 0].float().cpu().numpy() + 1) * 127.5).clip(0, 255).round().astype(np.uint8)
                grid[r * (size + gap) : r * (size + gap) + size, c * (size + gap) : c * (size + gap) + size] = pixels
        path = self.run_dir / "samples" / f"iter_{self.iteration:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_png(path, grid)

    def _log_step(self) -> None:
        sums = self.sums.clone()
        count = torch.tensor([float(self.sum_count)], dtype=torch.float64)
        if self.dist.active:  # the curve shows the mean over all ranks
            dist.all_reduce(sums)
            dist.all_reduce(count)
        means = (sums / max(count.item(), 1)).tolist()
        self.sums.zero_()
        self.sum_count = 0
        self.emit(
            {
                "type": "step",
                "total_iterations": self.total,
                "epoch": (self.iteration - 1) // self.epoch_iterations,
                **{k: round(v, 6) for k, v in zip(events.LOSS_KEYS, means)},
                "lr": self.opt_G.param_groups[0]["lr"],
                "seconds": round(self.seconds, 3),
                **({"seconds_left": round(self.budget.left(self.wall_seconds), 1)} if self.budget else {}),
            }
        )

    def _checkpoint(self) -> Path:
        path = self.run_dir / CHECKPOINT
        if self.dist.main:
            self.save_checkpoint()
        self.emit({"type": "checkpoint", "path": CHECKPOINT})
        return path

    def _data_summary(self) -> dict:
        summary = {"domain_a": self.data_a.summary(), "domain_b": self.data_b.summary()}
        if self.pairs:
            summary["paired"] = self.pairs.summary()
        return summary

    def _card(self, validation: dict | None = None) -> dict:
        cfg = self.config
        training = {
            "iterations": self.iteration,
            "seconds": round(self.seconds, 1),
            "size": cfg.size,
            "batch_size": cfg.batch_size,
            "world_size": self.dist.world,
            "plane": cfg.plane,
            "precision": self.precision,
            "objective": {
                "gan": "lsgan",
                "lambda_adversarial": cfg.lambda_adversarial,
                "lambda_cycle": cfg.lambda_cycle,
                "lambda_identity": cfg.lambda_identity,
                "lambda_structure": cfg.lambda_structure,
                "lambda_anchor": cfg.lambda_anchor if self.anchors else 0.0,
                "pool_size": cfg.pool_size,
                "lambda_paired": cfg.lambda_paired if self.pairs else 0.0,
                "lr": cfg.lr,
                "betas": [cfg.beta1, cfg.beta2],
                "decay_fraction": cfg.decay_fraction,
            },
            "data": self._data_summary(),
            "seed": cfg.seed,
            **({"init_from": Path(cfg.init_from).name} if cfg.init_from else {}),
            **({"validation": validation} if validation else {}),
        }
        normalisation = model_files.training_normalisation(
            cfg.percentile_a,
            cfg.percentile_b,
            self.pixel_size,
        )
        return model_files.make_card(cfg.generator_config(), model_files.DIRECTIONS, normalisation, training=training)

    def _generators(self) -> dict[str, nn.Module]:
        nets = self.nets()
        return {"t1-to-t2": nets["G_A"], "t2-to-t1": nets["G_B"]}

    def _write_model(self, name: str) -> Path:
        return Path(model_files.save_model(self.run_dir / name, self._generators(), self._card(self.last_validation)))

    def _validate(self) -> None:
        """Score the validation pairs with the current generators; keep the best as BEST_MODEL_FILE."""
        began = time.perf_counter()
        model = model_files.CycleGANModel(None, self._card(), self._generators())
        figures = validation.score(model, self.validation, self.device)
        ssim = validation.mean_ssim(figures)
        best = self.best_ssim is None or ssim > self.best_ssim
        self.last_validation = {"iteration": self.iteration, "pairs": len(self.validation), **figures}
        if best:
            self.best_ssim = ssim
            self._write_model(BEST_MODEL_FILE)
        seconds = time.perf_counter() - began
        if self.budget is not None:  # the run ends with one more
            self.budget.reserve = seconds
        known = self.budget is None or self.iteration > 0  # a budget's total needs a measured speed
        self.emit(
            {
                "type": "validation",
                **figures,
                "ssim": round(ssim, 4),
                "best": best,
                "total_iterations": self.total if known else None,
                "seconds": round(seconds, 2),
            }
        )

    # ------------------------------------------------------------ the run
    def _start(self) -> None:
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        checkpoint = self.run_dir / CHECKPOINT
        resumed = self.resume and checkpoint.exists()
        if resumed:
            self.load_checkpoint(checkpoint)
        if self.dist.main:
            if self.resume:
                events.truncate_after(self.run_dir, self.iteration)
            write_json(
                self.run_dir / CONFIG_FILE,
                {
                    "config": self.config.to_dict(),
                    "data": self._data_summary(),
                    "total_iterations": None if self.budget else self.total,
                    "epoch_iterations": self.epoch_iterations,
                    "world_size": self.dist.world,
                },
            )
        budget = (
            {"minutes": self.config.minutes, "seconds_left": round(self.budget.left(self.wall_seconds), 1)}
            if self.budget
            else {}
        )
        self.emit(
            {
                "type": "start",
                "total_iterations": None if self.budget else self.total,
                "epoch_iterations": self.epoch_iterations,
                **budget,
                "resumed": resumed,
                "device": self.device.type,
                "precision": self.precision,
                "world_size": self.dist.world,
                "preset": self.config.preset,
                "size": self.config.size,
                "crop": self.config.crop,
                "lambda_identity": self.config.lambda_identity,
                "init_from": self.config.init_from,
            }
        )

    def _weights_in_sync(self) -> bool:
        """DDP keeps every rank's copy identical; check it once at the end rather than trust it."""
        total = torch.stack(
            [
                p.detach().double().sum() + p.detach().double().abs().sum()
                for net in self.nets().values()
                for p in net.parameters()
            ]
        ).cpu()
        low, high = total.clone(), total.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        return bool(torch.allclose(low, high, rtol=1e-6, atol=1e-8))

    def _agree(self, stop: _StopRequest) -> bool:
        """Whether to stop for a signal; with a time budget, also set the total from the speed so far.
        Every rank stops at the same iteration and takes rank 0's total (the learning-rate schedule
        depends on it, and the ranks' weights must stay equal)."""
        planned = float(self.budget.plan(self.iteration, self.wall_seconds)) if self.budget and self.dist.main else 0.0
        flags = torch.tensor([1.0 if stop.signal_name else 0.0, planned], dtype=torch.float64)
        if self.dist.active:
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        if self.budget is not None:
            self.total = max(self.iteration, int(flags[1].item()))
        return bool(flags[0].item())

    def run(self) -> Path | None:
        """Train to the end (returns the model path) or until stopped (returns None)."""
        if self.dist.active and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
        try:
            self._build()
            self._start()
            self._wrap_ddp()
            self._sample_inputs = self._fixed_sample_inputs()
            cfg = self.config
            if self.validation and self.iteration == 0:  # where the run starts from: the first point of the curve
                self._validate()
            loop_began, used_before = time.perf_counter(), self.wall_seconds
            if self.budget is not None:
                self.budget.start(self.iteration, self.wall_seconds)
                self.total = self.budget.plan(self.iteration, self.wall_seconds)
            with _StopRequest() as stop:
                while self.iteration < self.total:
                    began = time.perf_counter()
                    real_A = self.batches_a.next(self.rng).to(self.device)
                    real_B = self.batches_b.next(self.rng).to(self.device)
                    pair = None
                    if self.batches_pairs:
                        pair = tuple(t.to(self.device) for t in self.batches_pairs.next(self.rng))
                    losses = self.train_step(real_A, real_B, pair)
                    self.iteration += 1
                    self.sums += losses
                    self.sum_count += 1
                    self.seconds += time.perf_counter() - began
                    self.wall_seconds = used_before + time.perf_counter() - loop_began
                    stopping = self._agree(stop)  # and, with a time budget, the total
                    if self.iteration % cfg.log_every == 0 or self.iteration == self.total:
                        self._log_step()
                    if self.dist.main and (self.iteration % cfg.sample_every == 0 or self.iteration == self.total):
                        self.emit({"type": "sample", "path": self.write_sample().relative_to(self.run_dir).as_posix()})
                    if self.validation and (self.iteration % cfg.val_every == 0 or self.iteration == self.total):
                        self._validate()
                    self.wall_seconds = used_before + time.perf_counter() - loop_began
                    if self.iteration % cfg.checkpoint_every == 0 or stopping:
                        self._checkpoint()
                    if stopping and self.iteration < self.total:
                        self.emit({"type": "stopped", "checkpoint": CHECKPOINT, "signal": stop.signal_name or "peer"})
                        return None
            extra = {"weights_in_sync": self._weights_in_sync()} if self.dist.active else {}
            model = self._write_model(MODEL_FILE) if self.dist.main else self.run_dir / MODEL_FILE
            if self.validation and self.best_ssim is not None:
                extra["best"] = BEST_MODEL_FILE
            self.emit(
                {
                    "type": "done",
                    "model": MODEL_FILE,
                    "seconds": round(self.seconds, 3),
                    "wall_seconds": round(self.wall_seconds, 1),
                    **extra,
                }
            )
            if self.dist.active:  # no rank tears the group down while rank 0 still writes the model
                dist.barrier()
            return model
        except (SetupError, DataError):
            raise
        except Exception as exc:
            message = f"training failed at iteration {self.iteration}: {type(exc).__name__}: {exc}"
            if isinstance(exc, torch.OutOfMemoryError):
                message += " (out of memory: use a smaller --preset, --size or --batch-size)"
            self.emit({"type": "error", "message": message})
            raise
        finally:
            if self.dist.active and dist.is_initialized():
                self._unwrap_ddp()
                dist.destroy_process_group()


def train(config: TrainConfig, resume: bool = False, on_event=None) -> Path | None:
    """Build and run a training run; see Trainer."""
    return Trainer(config, resume=resume, on_event=on_event).run()
