"""A training run's checkpoint (torch, no Qt): the whole state of the run (networks, optimisers,
schedules, image pools, random streams, batch order, unlogged loss sums) in one file of the run
folder, written atomically, and resuming from it. Not a model file (those are checkpoint.py's)."""

from __future__ import annotations

from pathlib import Path

import torch

from mri_style_app.cyclegan import events
from mri_style_app.cyclegan.events import CHECKPOINT
from mri_style_app.cyclegan.train_config import SetupError
from mri_style_app.files import write_atomically


class RunCheckpoint:
    """The checkpoint half of Trainer (a base class of it): saves the run's state, and sets it on resume."""

    def _checkpoint(self) -> Path:
        path = self.run_dir / CHECKPOINT
        if self.dist.main:
            self.save_checkpoint()
        self.emit({"type": "checkpoint", "path": CHECKPOINT})
        return path

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
