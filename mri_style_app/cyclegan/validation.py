"""Live validation of a training run: co-registered pairs that are never trained on, scored by
the project's one protocol (imaging.metrics) through the real translation path (no Qt).

Two folders hold the pairs: a T1w and a T2w volume with the same file name are one pair. Every
scoring translates each T1w to T2w and each T2w to T1w with the run's current generators and
scores the whole head (the head mask of both images of the pair), pooled over all pairs by voxel:
SSIM and MAE are means over the head voxels of every pair, PSNR comes from the pooled squared error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mri_style_app.cyclegan.checkpoint import DIRECTIONS, CycleGANModel
from mri_style_app.cyclegan.data import DataError, is_volume_file
from mri_style_app.cyclegan.translate import translate_volume
from mri_style_app.imaging.metrics import evaluate_pair, head_mask
from mri_style_app.imaging.volume import Volume, VolumeError, load_volume


@dataclass
class ValidationPair:
    name: str
    t1: Volume
    t2: Volume
    head: np.ndarray  # the scored voxels: head mask of both images


def load_validation_pairs(folder_t1, folder_t2) -> list[ValidationPair]:
    """The pairs in two folders (same file names); raises DataError with a message for people."""
    folders = [Path(folder_t1).expanduser(), Path(folder_t2).expanduser()]
    for label, folder in zip(("--val-a (T1w)", "--val-b (T2w)"), folders):
        if not folder.is_dir():
            raise DataError(f"validation folder {label} {folder} does not exist or is not a folder")
    names = [sorted(p.name for p in f.iterdir() if p.is_file() and is_volume_file(p)) for f in folders]
    lonely = sorted(set(names[0]) ^ set(names[1]))
    if lonely:
        raise DataError(
            f"validation folders {folders[0]} and {folders[1]} must hold the same file names "
            f"(co-registered pairs); without a partner: {', '.join(lonely[:5])}"
            f"{' ...' if len(lonely) > 5 else ''}"
        )
    if not names[0]:
        raise DataError(f"validation folders {folders[0]} and {folders[1]} hold no NIfTI volumes")
    pairs = []
    for name in names[0]:
        try:
            t1, t2 = (load_volume(folder / name) for folder in folders)
        except VolumeError as exc:
            raise DataError(f"{exc} (in the validation folders)") from None
        if not t1.same_grid(t2):
            raise DataError(
                f"validation pair {name}: the T1w ({'x'.join(map(str, t1.shape))}) and the T2w "
                f"({'x'.join(map(str, t2.shape))}) are not on the same voxel grid; pairs must be co-registered"
            )
        head = head_mask(t1.data, t2.data)
        if not head.any():
            raise DataError(f"validation pair {name}: no head voxels to score (both images are empty)")
        pairs.append(ValidationPair(name, t1, t2, head))
    return pairs


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / denominator if denominator > 0 else 0.0


def score(model: CycleGANModel, pairs: list[ValidationPair], device="cpu") -> dict[str, dict[str, float]]:
    """Per direction: SSIM, PSNR (dB) and MAE over the pairs' head voxels, and the correlation of
    each translation with its own input in the head (a T1w <-> T2w translation inverts most of the
    contrast, so it is negative when the generator has learnt it; real pairs give about -0.4)."""
    result = {}
    for direction in DIRECTIONS:
        voxels = ssim_sum = mae_sum = squared_sum = corr_sum = 0.0
        for pair in pairs:
            source, target = (pair.t1, pair.t2) if direction == "t1-to-t2" else (pair.t2, pair.t1)
            pred = translate_volume(source, model, direction, device=device)
            n = float(pair.head.sum())
            figures = evaluate_pair(pred.data, target.data, pair.head)
            voxels += n
            ssim_sum += figures["ssim"] * n
            mae_sum += figures["mae"] * n
            squared_sum += 10 ** (-figures["psnr"] / 10) * n  # the mean squared error, data range 1
            corr_sum += _correlation(pred.data[pair.head], source.data[pair.head]) * n
        mse = squared_sum / voxels
        result[direction] = {
            "ssim": round(ssim_sum / voxels, 4),
            "psnr": round(10 * math.log10(1 / mse), 3) if mse > 0 else 99.0,
            "mae": round(mae_sum / voxels, 4),
            "correlation": round(corr_sum / voxels, 3),
        }
    return result


def mean_ssim(figures: dict) -> float:
    """The figure that chooses the best model: SSIM averaged over both directions."""
    return sum(figures[d]["ssim"] for d in DIRECTIONS) / len(DIRECTIONS)
