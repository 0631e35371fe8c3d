"""A contrast-free description of image structure, for a structure loss (torch, no Qt).

The modality independent neighbourhood descriptor (MIND; Heinrich et al. 2012, "MIND: Modality
independent neighbourhood descriptor for multi-modal deformable registration") describes each
pixel by how much its patch differs from the patches a few pixels away in four directions,
scaled by the local variance. It is the same for an image and for any affine map of its
intensities, inverted ones included: a T1w and a T2w of one head have nearly the same MIND, while
a translation that moves, blurs or invents an edge does not. The structure-constrained CycleGAN
(Yang et al. 2018, "Unpaired brain MR-to-CT synthesis using a structure-constrained CycleGAN")
adds the L1 distance between the MIND of each input and of its translation to the generator loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DISTANCE = 2  # pixels between a patch and its four neighbours
PATCH = 3  # side of the patches compared
EPS = 1e-6  # keeps the flat background (no variance) finite


def _shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x moved by (dy, dx), edges repeated."""
    d = DISTANCE
    padded = F.pad(x, (d, d, d, d), mode="replicate")
    height, width = x.shape[-2:]
    return padded[..., d + dy : d + dy + height, d + dx : d + dx + width]


def mind(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) image -> (N, 4, H, W) descriptor in (0, 1], largest entry 1 at each pixel."""
    d = DISTANCE
    distances = torch.cat(
        [
            F.avg_pool2d((x - _shifted(x, dy, dx)) ** 2, PATCH, stride=1, padding=PATCH // 2, count_include_pad=False)
            for dy, dx in ((-d, 0), (d, 0), (0, -d), (0, d))
        ],
        dim=1,
    )
    variance = distances.mean(dim=1, keepdim=True)
    # As Heinrich's reference code: the variance bounded to a band around its image mean, so a
    # nearly flat region neither divides by zero nor turns its noise into strong structure.
    mean = variance.mean(dim=(2, 3), keepdim=True)
    variance = torch.maximum(torch.minimum(variance, mean * 1000), mean * 1e-3) + EPS
    descriptor = torch.exp(-distances / variance)
    return descriptor / descriptor.amax(dim=1, keepdim=True)


def structure_loss(translation: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between the MIND of a translation and of the image it came from."""
    return F.l1_loss(mind(translation), mind(source))
