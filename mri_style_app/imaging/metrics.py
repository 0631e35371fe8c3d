"""Image similarity inside a region: PSNR, SSIM, MAE. Qt-free and torch-free.

`evaluate_pair` is the project's one scoring protocol, the one ../shared/data/seed-t1-t2/README.md
fixes: each image is scaled to [0, 1] by its own 99.5th percentile in the region, clipped; PSNR
and MAE are taken over the region's voxels; SSIM is scikit-image's default 2D SSIM map of each
slice, averaged over the region's voxels (a bounding box would let the background inflate it).
The regions: `head_mask` (the whole head), a brain mask, or any given mask.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mri_style_app.imaging.intensity import normalize_unit


def _check(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    if mask is None:
        return np.ones(pred.shape, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != pred.shape:
        raise ValueError(f"mask shape {mask.shape} differs from image shape {pred.shape}")
    if not mask.any():
        raise ValueError("the mask is empty")
    return mask


def mae(pred, ref, mask=None) -> float:
    mask = _check(pred, ref, mask)
    return float(np.mean(np.abs(pred[mask].astype(np.float64) - ref[mask])))


def psnr(pred, ref, mask=None, data_range: float = 1.0) -> float:
    mask = _check(pred, ref, mask)
    mse = float(np.mean((pred[mask].astype(np.float64) - ref[mask]) ** 2))
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(data_range**2 / mse))


# SSIM as scikit-image computes it by default (structural_similarity: a 7 x 7 uniform window,
# sample covariance, K1 0.01, K2 0.03, edges reflected), per 2D slice.
SSIM_WINDOW = 7


def ssim_map(pred, ref, data_range: float = 1.0) -> np.ndarray:
    """Local SSIM (Wang et al. 2004) of each 2D slice: a 2D image, or each slice along the
    last axis of a volume (the axial slices of a canonical RAS volume)."""
    x = np.asarray(pred, dtype=np.float64)
    y = np.asarray(ref, dtype=np.float64)
    size = (SSIM_WINDOW, SSIM_WINDOW) + (1,) * (x.ndim - 2)

    def mean(a: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(a, size=size, mode="reflect")

    mx, my = mean(x), mean(y)
    cov_norm = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)  # sample covariance
    sxx = cov_norm * (mean(x * x) - mx * mx)
    syy = cov_norm * (mean(y * y) - my * my)
    sxy = cov_norm * (mean(x * y) - mx * my)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))


def ssim(pred, ref, mask=None, data_range: float = 1.0) -> float:
    """Mean SSIM map over the mask voxels."""
    mask = _check(pred, ref, mask)
    return float(ssim_map(pred, ref, data_range)[mask].mean(dtype=np.float64))


# ---------------------------------------------------------------- regions
HEAD_LEVEL = 10 / 255  # of each image's maximum: the seed protocol's "above 10 of 255"


def head_mask(*images: np.ndarray) -> np.ndarray:
    """The whole-head mask of the seed protocol, per 2D slice (the last axis of a volume):
    voxels above HEAD_LEVEL of its image's maximum in any of `images` (a translation's
    partner images: its source and its reference), closed by two iterations of a 3 x 3 binary
    closing, holes filled."""
    shape = np.shape(images[0])
    above = np.zeros(shape, dtype=bool)
    for image in images:
        image = np.asarray(image)
        if image.shape != shape:
            raise ValueError(f"image shape {image.shape} differs from {shape}")
        top = float(image.max()) if image.size else 0.0
        if top > 0:
            above |= image > HEAD_LEVEL * top
    stack = above.reshape(shape[0], shape[1], -1)
    out = np.empty_like(stack)
    square = np.ones((3, 3), dtype=bool)
    for k in range(stack.shape[2]):
        closed = ndimage.binary_closing(stack[:, :, k], structure=square, iterations=2)
        out[:, :, k] = ndimage.binary_fill_holes(closed)
    return out.reshape(shape)


def evaluate_pair(
    pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None, pct: float = 99.5
) -> dict[str, float]:
    """PSNR (dB), SSIM and MAE of `pred` against `ref` after scaling each to [0, 1] in the mask."""
    mask = _check(pred, ref, mask)
    p = normalize_unit(pred, mask, pct)
    r = normalize_unit(ref, mask, pct)
    return {"psnr": psnr(p, r, mask), "ssim": ssim(p, r, mask), "mae": mae(p, r, mask)}


# ---------------------------------------------------------------- slice-to-slice consistency
def stripe_index(source: np.ndarray, output: np.ndarray, axis: int = 2) -> float:
    """How much more an output changes from slice to slice than within a slice, against its source.

    Inside the head (source above a tenth of its 60th percentile, closed, holes filled, eroded by
    3 voxels), each image scaled by its 99.5th percentile there: the mean absolute second
    difference across slices (along `axis`, axial by default) over the same within a slice
    (along the first other axis), for the output, divided by the same ratio for the source.
    1.0: as smooth from slice to slice as the scan itself; a model that translates slices one at
    a time and disagrees with itself between neighbours scores above 1 (bands in the other planes).
    """
    source = np.asarray(source, dtype=np.float64)
    output = np.asarray(output, dtype=np.float64)
    if source.shape != output.shape or source.ndim != 3:
        raise ValueError(f"stripe_index needs two volumes of one shape, not {source.shape} and {output.shape}")
    head = source > 0.1 * np.percentile(source, 60)
    head = ndimage.binary_fill_holes(ndimage.binary_closing(head, iterations=2))
    head = ndimage.binary_erosion(head, iterations=3)
    if not head.any():
        raise ValueError("stripe_index: no head voxels in the source")
    across, within = axis, next(a for a in range(3) if a != axis)

    def ratio(image: np.ndarray) -> float:
        image = image / max(float(np.percentile(image[head], 99.5)), 1e-12)
        means = []
        for along in (across, within):
            inner = [slice(None)] * 3
            inner[along] = slice(1, -1)
            second = np.abs(np.diff(image, n=2, axis=along))
            means.append(float(second[head[tuple(inner)]].mean()))
        return means[0] / max(means[1], 1e-12)

    return ratio(output) / ratio(source)
