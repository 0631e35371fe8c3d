"""CycleGAN training loop (torch, no Qt) on MRI slices.

Domain A = T1-weighted, domain B = T2-weighted. G_A: A -> B ("t1-to-t2"), G_B: B -> A
("t2-to-t1"); D_A judges B images (real T2 vs G_A's fakes), D_B judges A images. The terms are
Zhu et al. 2017's (LSGAN adversarial losses, L1 cycle and identity losses, image pools of 50
fakes, Adam with beta1 0.5, a learning rate constant for the first part of the run, then
linearly down to 0) plus optional paired, structure and anchor terms; the weights and their
defaults (no identity loss, a structure loss) are train_config.py's.

The settings are train_config.py's, the loss terms losses.py's, the events, samples and model
card run_log.py's and the checkpoint run_checkpoint.py's; this module builds the networks and
runs the loop.

Everything a run produces goes into its folder (config.json, events.jsonl, samples/,
checkpoints/latest.pt, model.safetensors). Under `torchrun` the same code runs
DistributedDataParallel; only rank 0 writes files.

Stopping: SIGTERM or SIGINT ends the current iteration, writes a checkpoint and a "stopped"
event, and returns normally (the CLI exits 0); `resume=True` continues from the checkpoint.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from mri_style_app.cyclegan import checkpoint as model_files
from mri_style_app.cyclegan import events, validation
from mri_style_app.cyclegan.data import (
    Augmentation,
    DataError,
    PairedBatches,
    UnpairedBatches,
    load_domain,
    load_pairs,
)
from mri_style_app.cyclegan.device import native_bfloat16
from mri_style_app.cyclegan.events import BEST_MODEL_FILE, CHECKPOINT, CONFIG_FILE, MODEL_FILE
from mri_style_app.cyclegan.losses import (
    ImagePool,
    discriminator_loss,
    generator_losses,
    generator_objective,
    set_requires_grad,
)
from mri_style_app.cyclegan.networks import (
    SIZE_MULTIPLE,
    PatchDiscriminator,
    build_generator,
    init_weights,
    memory_format,
)
from mri_style_app.cyclegan.presets import DISCRIMINATOR_NDF
from mri_style_app.cyclegan.run_checkpoint import RunCheckpoint
from mri_style_app.cyclegan.run_log import RunLog, write_json
from mri_style_app.cyclegan.time_budget import TimeBudget, lr_factor
from mri_style_app.cyclegan.train_config import (
    AUTO_SIZE_LIMIT,
    DEFAULT_ITERATIONS,
    DEFAULT_LR,
    FINE_TUNE_LR,
    PATH_SETTINGS,
    SetupError,
    TrainConfig,
    resolve_percentiles,
    resolve_preset,
)


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


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


def _load_start_model(path: str):
    """The init_from model (CycleGANModel), read once: its card sets the percentiles, its weights the generators."""
    try:
        return model_files.load_model(path)
    except model_files.ModelError as exc:
        raise SetupError(f"init_from: {exc}") from None


class Trainer(RunLog, RunCheckpoint):
    """One training run: build with a config, then `run()`."""

    def __init__(self, config: TrainConfig, resume: bool = False, on_event=None):
        # Absolute paths in config.json, so --resume works from any working folder.
        for name in PATH_SETTINGS:
            if getattr(config, name) is not None:
                setattr(config, name, str(Path(getattr(config, name)).expanduser().absolute()))
        self.start_model = _load_start_model(config.init_from) if config.init_from else None
        resolve_preset(config, self.start_model)
        config.check()
        resolve_percentiles(config, self.start_model)
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
            load_pairs(
                config.paired_a,
                config.paired_b,
                config.plane,
                (config.percentile_a, config.percentile_b),
                config.paired_weights,
            )
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
        D_A, D_B = _unwrap(self.D_A), _unwrap(self.D_B)  # frozen in the G step: no DDP sync there
        set_requires_grad((D_A, D_B), False)
        self.opt_G.zero_grad(set_to_none=True)
        with self._autocast():
            losses, fake_A, fake_B = generator_losses(
                self.G_A, self.G_B, D_A, D_B, real_A, real_B, pair, cfg, self.anchors
            )
        generator_objective(losses, cfg.lambda_adversarial).backward()
        self.opt_G.step()

        set_requires_grad((D_A, D_B), True)
        self.opt_D.zero_grad(set_to_none=True)
        for key, D, real, fake, pool in (
            ("D_A", self.D_A, real_B, fake_B, self.pool_B),
            ("D_B", self.D_B, real_A, fake_A, self.pool_A),
        ):
            fake = pool.query(fake.float(), self.rng)
            with self._autocast():
                loss = discriminator_loss(D, real, fake)
            loss.backward()
            losses[key] = loss
        self.opt_D.step()
        self.sched_G.step()
        self.sched_D.step()
        return torch.stack([losses[key] for key in events.LOSS_KEYS]).detach().double().cpu()

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
