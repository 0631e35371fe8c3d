"""What a training run reports as it goes (torch, no Qt): the events in events.jsonl, the loss
means of each logged step, the sample grids in samples/, config.json, and the model card that
records the run's objective and data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from mri_style_app.cyclegan import checkpoint as model_files
from mri_style_app.cyclegan import events
from mri_style_app.cyclegan.data import fit_to_size, write_png
from mri_style_app.files import write_atomically


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"))


class RunLog:
    """The reporting half of Trainer (a base class of it): reads the run's state, never changes it."""

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
