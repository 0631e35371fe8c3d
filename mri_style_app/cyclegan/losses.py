"""The losses of one CycleGAN iteration (torch, no Qt): the generators' terms (LSGAN, cycle,
identity, structure, paired, anchor) and their weighted sum, the discriminators' LSGAN loss, and
the image pool of earlier fakes the discriminators are shown."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from mri_style_app.cyclegan.data import ANATOMY_LEVEL
from mri_style_app.cyclegan.structure import structure_loss

if TYPE_CHECKING:
    from mri_style_app.cyclegan.train_config import TrainConfig


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


def set_requires_grad(nets, flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def lsgan_loss(prediction: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss (in float32) of a discriminator's prediction against 1 (real) or 0 (fake)."""
    target = torch.ones_like if real else torch.zeros_like
    return F.mse_loss(prediction.float(), target(prediction, dtype=torch.float32))


# Model range [-1, 1] of the unit scale's 0.8: above it a reference voxel counts as bright.
BRIGHT_UNIT = 0.8
BRIGHT_MODEL = 2 * BRIGHT_UNIT - 1


def paired_l1(
    translation: torch.Tensor,
    target: torch.Tensor,
    bright_weight: float = 1.0,
    weight: torch.Tensor | None = None,
    edge_weight: float = 1.0,
) -> torch.Tensor:
    """Mean absolute error, each voxel where the target is bright counted `bright_weight` times,
    each voxel of the target's outer layer (outer_layer) `edge_weight` times and, with `weight`
    (per voxel, 0-1), each voxel that much."""
    error = (translation - target).abs()
    if bright_weight != 1.0:
        error = torch.where(target > BRIGHT_MODEL, error * bright_weight, error)
    if edge_weight != 1.0:
        error = torch.where(outer_layer(target), error * edge_weight, error)
    if weight is not None:
        error = error * weight
    return error.mean()


def outer_layer(target: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) bool: the voxels of a reference's anatomy (above data.ANATOMY_LEVEL of its unit
    scale) with background among their 8 neighbours, such as a skull-stripped brain's cut edge."""
    anatomy = (target > 2 * ANATOMY_LEVEL - 1).float()
    # a minimum filter: max pooling of the negation (the padding counts as anatomy, not background)
    inner = -F.max_pool2d(-anatomy, kernel_size=3, stride=1, padding=1)
    return (anatomy > 0) & (inner == 0)


def generator_losses(
    G_A: nn.Module,
    G_B: nn.Module,
    D_A: nn.Module,
    D_B: nn.Module,
    real_A: torch.Tensor,
    real_B: torch.Tensor,
    pair: tuple[torch.Tensor, ...] | None,
    cfg: TrainConfig,
    anchors: tuple[nn.Module, nn.Module] | None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The generators' loss terms, weighted, keyed as in events.LOSS_KEYS (all but D_A and D_B;
    a term that is off is 0), and the translations fake_A and fake_B for the discriminators.
    `pair` is (input A, target A, input B, target B[, weight]; see data.PairedBatches) or None; `anchors`
    the starting model's frozen generators (t1-to-t2, t2-to-t1) of a fine-tune, or None. The
    discriminators must be frozen (set_requires_grad) by the caller."""
    lam, lam_idt = cfg.lambda_cycle, cfg.lambda_cycle * cfg.lambda_identity
    fake_B = G_A(real_A)
    rec_A = G_B(fake_B)
    fake_A = G_B(real_B)
    rec_B = G_A(fake_A)
    pred_fake_B, pred_fake_A = D_A(fake_B), D_B(fake_A)
    zero = torch.zeros((), device=real_A.device)
    losses = dict.fromkeys(
        ("idt_A", "idt_B", "paired_A", "paired_B", "structure_A", "structure_B", "anchor_A", "anchor_B"), zero
    )
    losses["G_A"] = lsgan_loss(pred_fake_B, True)
    losses["G_B"] = lsgan_loss(pred_fake_A, True)
    losses["cycle_A"] = F.l1_loss(rec_A.float(), real_A) * lam
    losses["cycle_B"] = F.l1_loss(rec_B.float(), real_B) * lam
    if anchors is not None:
        with torch.no_grad():
            kept_B, kept_A = anchors[0](real_A).float(), anchors[1](real_B).float()
        losses["anchor_A"] = F.l1_loss(fake_B.float(), kept_B) * cfg.lambda_anchor
        losses["anchor_B"] = F.l1_loss(fake_A.float(), kept_A) * cfg.lambda_anchor
    if cfg.lambda_structure > 0:
        losses["structure_A"] = structure_loss(fake_B.float(), real_A) * cfg.lambda_structure
        losses["structure_B"] = structure_loss(fake_A.float(), real_B) * cfg.lambda_structure
    if lam_idt > 0:  # two generator passes saved when the identity loss is off
        losses["idt_A"] = F.l1_loss(G_A(real_B).float(), real_B) * lam_idt
        losses["idt_B"] = F.l1_loss(G_B(real_A).float(), real_A) * lam_idt
    if pair is not None:
        input_A, target_A, input_B, target_B = pair[:4]
        weight = pair[4] if len(pair) > 4 else None

        def paired(G: nn.Module, source: torch.Tensor, target: torch.Tensor, bright: float) -> torch.Tensor:
            error = paired_l1(G(source).float(), target, bright, weight, cfg.edge_weight)
            return error * cfg.lambda_paired

        losses["paired_A"] = paired(G_A, input_A, target_B, cfg.bright_weight_b)
        losses["paired_B"] = paired(G_B, input_B, target_A, cfg.bright_weight_a)
    return losses, fake_A, fake_B


def generator_objective(losses: dict[str, torch.Tensor], lambda_adversarial: float) -> torch.Tensor:
    """The sum the generators minimise: the adversarial terms at their weight, the others as they are."""
    return (
        (losses["G_A"] + losses["G_B"]) * lambda_adversarial
        + losses["cycle_A"]
        + losses["cycle_B"]
        + losses["idt_A"]
        + losses["idt_B"]
        + losses["paired_A"]
        + losses["paired_B"]
        + losses["structure_A"]
        + losses["structure_B"]
        + losses["anchor_A"]
        + losses["anchor_B"]
    )


def discriminator_loss(D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """LSGAN loss of a discriminator on real images (target 1) and generated ones (target 0), halved."""
    pred_real, pred_fake = D(real), D(fake.detach())
    return 0.5 * (lsgan_loss(pred_real, True) + lsgan_loss(pred_fake, False))
