"""Translate a whole volume T1w <-> T2w with a CycleGAN generator, slice by slice (torch, no Qt).

The steps, and why:
- Normalise the way the model was trained (the model card's normalisation): foreground mask,
  its 99.5th percentile (or the card's percentile for the source contrast) -> 1, clipped to
  [0, 1], then to the generator's [-1, 1].
- Slice the canonical RAS volume along a plane, in batches. Slices without foreground are not run
  (they are air). Each slice is cut to the in-plane window of the head plus AIR_MARGIN_MM of air
  (air is added where the scan ends closer), so the field of view around the head does not
  change the answer, and the work shrinks to the head; a U-Net runs each group of
  WINDOW_SLICES neighbouring slices on the group's own anatomy plus that margin, on the grid of
  its strides. The window is resampled to the card's
  pixel size (the size the model was trained at; averaged when shrinking), turned the way
  training saw slices (superior or anterior up), run, and resampled back: a 0.5 mm or a 2 mm scan
  is translated like a 1 mm one.
- A volume a few voxels thin along one axis (a single slice stored as a volume) is run in that
  slice's plane, whatever plane was asked for: its other planes hold no image.
- Slices run one at a time disagree a little with their neighbours (stripes across the other
  two planes): one plane's result is evened out across slices by a joint bilateral filter that
  keeps the anatomy's edges (smooth_across_slices). `planes="tri"` instead runs axial, coronal
  and sagittal and takes the voxel-wise median, at three times the work.
- The output lies on the input's grid (`volume.with_data`). Its intensities are the generator's
  [0, 1] times the source's own robust scale (its foreground 99.5th percentile), so the
  translation has the magnitude of the file it came from and one display window fits both.
  Voxels of slices never run (empty slices) are 0.

CUDA runs under float16 autocast, a CPU with native bfloat16 (AVX512-BF16 or AMX) under bfloat16
autocast, any other CPU in float32 (emulated bfloat16 is slower there, see docs/translation.md).
Cancel is checked between batches.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from mri_style_app.cyclegan.checkpoint import DEFAULT_NORMALISATION, CycleGANModel, ModelError, contrast_percentile
from mri_style_app.cyclegan.device import choose_device, native_bfloat16
from mri_style_app.cyclegan.networks import SIZE_MULTIPLE, memory_format, unet_size_multiple
from mri_style_app.imaging.intensity import foreground_mask, percentile_scale
from mri_style_app.imaging.volume import Volume

PLANES = ("axial", "coronal", "sagittal")
PLANE_CHOICES = (*PLANES, "tri")
PLANE_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}  # canonical RAS axes
_CPU_PIXELS_PER_BATCH = 200_000  # a few slices: big enough for fast convolutions, small for cancel
_CUDA_PIXELS_PER_BATCH = 4_000_000

Progress = Callable[[float, str], None]


class Cancel(Protocol):
    def is_set(self) -> bool: ...


class TranslationCancelled(Exception):
    """The translation was cancelled by the user before it finished."""


# Translated voxels farther than this from the source's tissue (above AIR_LEVEL of its robust
# scale) are set to 0: air.
BACKGROUND_MARGIN_VOXELS = 3
AIR_LEVEL = 0.05
# Air kept around the head's in-plane window, in mm: the model sees the head's edge against air,
# as in training, whatever the field of view of the scan. The deepest U-Net level works in 16 mm
# pixels, and a skull-stripped brain is translated well only when it sees air beyond the brain's
# edge there, not the window's end: on held-out simulated brains (T1w -> T2w) 32 mm gives 2.6 dB
# more than 16 mm, 48 mm 2 dB more again at 1.2 times the time (docs/translation.md).
AIR_MARGIN_MM = 32.0
# A U-Net runs this many neighbouring slices at a time on their own anatomy plus AIR_MARGIN_MM.
WINDOW_SLICES = 4
# A volume thinner than this along an axis is a slab of slices in the other two axes' plane.
THIN_VOXELS = 4
# Slices translated one at a time disagree a little with their neighbours, which shows as bands
# across the other two planes. Each voxel is averaged with its neighbours across slices (a
# Gaussian of SLICE_SIGMA slices, SLICE_RADIUS each side), each neighbour weighted down where the
# source differs from the voxel's own (GUIDE_SIGMA, in the source's unit scale: an edge of the
# anatomy) or where the translation differs (OUTPUT_SIGMA: tissues alike in the source, unlike in
# the target, such as CSF and bone in a T1w). Measured in docs/translation.md.
SLICE_RADIUS = 2
SLICE_SIGMA = 1.0
GUIDE_SIGMA = 0.07
OUTPUT_SIGMA = 0.35


# ---------------------------------------------------------------- normalisation
def normalise_volume(data: np.ndarray, normalisation: dict | None = None, contrast: str | None = None):
    """(unit data in [0, 1], scale, foreground mask): the card's input normalisation for an
    image of `contrast` ("t1" or "t2"; None: the card's general percentile)."""
    norm = {**DEFAULT_NORMALISATION, **(normalisation or {})}
    if norm.get("method") != "foreground-percentile":
        raise ModelError(
            f"the model card asks for normalisation {norm.get('method')!r}, which this "
            "version of MRI Style does not know. Update the app"
        )
    mask = foreground_mask(data, float(norm["foreground_fraction"]))
    scale = percentile_scale(data, mask if mask.any() else None, contrast_percentile(norm, contrast))
    unit = data / scale  # float32 for a float32 volume: clipped in place, not copied again
    np.clip(unit, 0.0, 1.0, out=unit)
    return unit.astype(np.float32, copy=False), scale, mask


# ---------------------------------------------------------------- slices <-> the network
def run_generator(net: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) in [-1, 1], any H and W -> same shape. A ResNet generator needs sides that
    are a multiple of SIZE_MULTIPLE: the batch is padded with air (-1) and cropped back."""
    h, w = batch.shape[-2:]
    if _is_unet(net):
        return net(batch)
    # At least 2 x SIZE_MULTIPLE: instance norm needs more than one pixel at the bottleneck.
    ph = max(2 * SIZE_MULTIPLE, h + -h % SIZE_MULTIPLE) - h
    pw = max(2 * SIZE_MULTIPLE, w + -w % SIZE_MULTIPLE) - w
    if ph or pw:
        batch = F.pad(batch, (0, pw, 0, ph), mode="constant", value=-1.0)
    return net(batch)[..., :h, :w]


def inference_autocast(device: torch.device):
    """The precision generators run in on `device`: float16 autocast on CUDA, bfloat16 autocast on
    a CPU that computes bfloat16 natively (the default U-Net 1.6-1.9 times faster than in float32,
    64 dB from its result), else float32 (None)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    if native_bfloat16(device):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return None


def _is_unet(net: torch.nn.Module) -> bool:
    return getattr(net, "config", None) is not None and net.config.generator == "unet"


def _layout(net: torch.nn.Module) -> torch.memory_format:
    config = getattr(net, "config", None)
    return memory_format(config) if config is not None else torch.contiguous_format


def _prepare(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    net = copy.deepcopy(net).eval().requires_grad_(False)
    return net.to(device, memory_format=_layout(net))


def _batch_size(height: int, width: int, device: torch.device, requested: int | None) -> int:
    if requested:
        return max(1, int(requested))
    budget = _CUDA_PIXELS_PER_BATCH if device.type == "cuda" else _CPU_PIXELS_PER_BATCH
    return max(1, min(64, budget // max(1, height * width)))


def _crop_window(mask2d: np.ndarray, margin: tuple[int, int]) -> tuple[slice, slice, tuple[int, ...]]:
    """In-plane window around the foreground plus `margin` voxels of air: (rows, cols) inside
    the slice and the (before, after) air padding per side where the window leaves it."""
    rows, cols = np.nonzero(mask2d)
    if rows.size == 0:
        rows, cols = np.array([0, mask2d.shape[0] - 1]), np.array([0, mask2d.shape[1] - 1])
    lo = (int(rows.min()) - margin[0], int(cols.min()) - margin[1])
    hi = (int(rows.max()) + 1 + margin[0], int(cols.max()) + 1 + margin[1])
    inside = tuple(slice(max(low, 0), min(high, n)) for low, high, n in zip(lo, hi, mask2d.shape))
    pad = (max(-lo[0], 0), max(hi[0] - mask2d.shape[0], 0), max(-lo[1], 0), max(hi[1] - mask2d.shape[1], 0))
    return inside[0], inside[1], pad


def _resize(batch: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Shrinking averages the pixels each new one covers, as a coarser scan does (on 2 mm copies of
    the demo made that way, 1.0 dB better than antialiased bilinear); enlarging is bicubic, kept
    within the image range."""
    if tuple(batch.shape[-2:]) == tuple(size):
        return batch
    if size[0] <= batch.shape[-2] and size[1] <= batch.shape[-1]:
        return F.interpolate(batch, size=size, mode="area")
    if size[0] >= batch.shape[-2] and size[1] >= batch.shape[-1]:
        return F.interpolate(batch, size=size, mode="bicubic", align_corners=False).clamp_(-1.0, 1.0)
    return F.interpolate(batch, size=size, mode="bilinear", align_corners=False, antialias=True)


def _translate_plane(
    net,
    unit: np.ndarray,
    mask: np.ndarray,
    axis: int,
    spacing: tuple[float, float],
    pixel_size: float | None,
    device: torch.device,
    batch_size: int | None,
    step: Callable[[int], None],
    cancel: Cancel | None,
) -> np.ndarray:
    """Run every slice along `axis` that holds foreground; returns the [0, 1] result (0 elsewhere).

    Each slice is cut to the foreground's in-plane window plus a margin of air (so the field of
    view around the head does not matter), brought to the model's pixel size, run, and brought back.
    """
    stack = np.moveaxis(unit, axis, 0)  # (N, a, b) view
    plane_mask = np.moveaxis(mask, axis, 0)
    out = np.zeros(stack.shape, dtype=np.float32)
    indices = np.flatnonzero(plane_mask.any(axis=(1, 2)))
    if indices.size == 0:
        return np.moveaxis(out, 0, axis)
    target = pixel_size or min(spacing)
    margin = tuple(int(np.ceil(AIR_MARGIN_MM / min(s, AIR_MARGIN_MM))) for s in spacing)
    rows, cols, pad = _crop_window(plane_mask.any(axis=0), margin)
    crop_shape = (rows.stop - rows.start + pad[0] + pad[1], cols.stop - cols.start + pad[2] + pad[3])
    model_shape = tuple(max(1, int(round(n * s / target))) for n, s in zip(crop_shape, spacing))
    # A U-Net runs WINDOW_SLICES neighbouring slices at a time on their own anatomy plus the
    # margin (_run_around): groups fixed by the slices alone, so the answer does not depend on the
    # batch size or the device.
    unet = _is_unet(net)
    group = WINDOW_SLICES if unet else len(indices)
    size = min(group, batch_size or group) if unet else _batch_size(*model_shape, device, batch_size)
    margin_pixels = int(np.ceil(AIR_MARGIN_MM / target))
    precision = inference_autocast(device) or contextlib.nullcontext()
    layout = _layout(net)
    for first in range(0, len(indices), group):
        together = indices[first : first + group]
        anatomy = plane_mask[together].any(axis=0)[rows, cols] if unet else None
        box = _box_in_view(np.pad(anatomy, (pad[:2], pad[2:])), model_shape) if unet else None
        for start in range(0, len(together), size):
            if cancel is not None and cancel.is_set():
                raise TranslationCancelled("translation cancelled")
            chosen = together[start : start + size]
            batch = torch.from_numpy(stack[chosen][:, rows, cols] * np.float32(2.0) - np.float32(1.0))[:, None]
            batch = F.pad(batch, (pad[2], pad[3], pad[0], pad[1]), value=-1.0)
            batch = _resize(batch, model_shape).to(device)
            view = torch.rot90(batch, 1, dims=(2, 3)).contiguous(memory_format=layout)  # as training saw it
            with precision:
                result = _run_around(net, view, box, margin_pixels) if unet else run_generator(net, view)
            result = _resize(torch.rot90(result.float(), -1, dims=(2, 3)).cpu(), crop_shape)
            translated = ((result[:, 0] + 1.0) * 0.5).clamp_(0.0, 1.0).numpy()
            translated = translated[:, pad[0] : crop_shape[0] - pad[1], pad[2] : crop_shape[1] - pad[3]]
            block = out[chosen]
            block[:, rows, cols] = translated
            out[chosen] = block
            step(len(chosen))
    return np.moveaxis(out, 0, axis)


def _box_in_view(foreground: np.ndarray, model_shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The bounding box (first row, end row, first column, end column) of a window's `foreground`
    in the pixels of the network's view of it: resized to `model_shape`, then turned by rot90
    (which makes the window's columns, last first, the view's rows)."""
    rows, cols = np.nonzero(foreground)
    row_scale, col_scale = (m / n for m, n in zip(model_shape, foreground.shape))
    return (
        model_shape[1] - int(np.ceil((cols.max() + 1) * col_scale)),
        model_shape[1] - int(np.floor(cols.min() * col_scale)),
        int(np.floor(rows.min() * row_scale)),
        int(np.ceil((rows.max() + 1) * row_scale)),
    )


def _run_around(net, view: torch.Tensor, box: tuple[int, int, int, int], margin: int) -> torch.Tensor:
    """A U-Net run on `view` where only the pixels within `margin` of `box` (first row, end row,
    first column, end column) are needed: on that part alone, its edges on the grid of the
    network's strided convolutions (as in a run of the whole view, so the slices of a plane stay
    alike), and air (-1) elsewhere. Near the top of a head the anatomy of a few slices is much
    smaller than the head's widest window, which the whole plane shares. (A ResNet generator
    normalises over the whole image, so it always runs whole: run_generator.)"""
    h, w = view.shape[-2:]
    multiple = unet_size_multiple(net.config)
    height, width = h + -h % multiple, w + -w % multiple
    r0, r1, c0, c1 = (
        max(0, (box[0] - margin) // multiple * multiple),
        min(height, -(-(box[1] + margin) // multiple) * multiple),
        max(0, (box[2] - margin) // multiple * multiple),
        min(width, -(-(box[3] + margin) // multiple) * multiple),
    )
    padded = F.pad(view, (0, width - w, 0, height - h), value=-1.0)
    part = net(padded[..., r0:r1, c0:c1])
    result = part.new_full((*view.shape[:2], height, width), -1.0)
    result[..., r0:r1, c0:c1] = part
    return result[..., :h, :w]


def usable_planes(shape: tuple[int, ...], planes: str) -> tuple[str, ...]:
    """The planes to run: a volume only a few voxels thick along one axis (a single slice) is
    run in the plane of that slice whatever was asked, since its other planes hold no image."""
    thin = [axis for axis in range(3) if shape[axis] < THIN_VOXELS]
    if thin and len(thin) < 3:
        flat = min(thin, key=lambda a: shape[a])
        return (next(p for p, a in PLANE_AXIS.items() if a == flat),)
    return PLANES if planes == "tri" else (planes,)


def translate_unit(
    unit: np.ndarray,
    mask: np.ndarray,
    net: torch.nn.Module,
    planes: str = "axial",
    device="auto",
    batch_size: int | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    label: str = "Translating",
    voxel_sizes=(1.0, 1.0, 1.0),
    pixel_size: float | None = None,
    smooth_slices: bool = True,
) -> np.ndarray:
    """[0, 1] volume -> translated [0, 1] volume on the same grid (the engine under translate_volume).

    `voxel_sizes` are the canonical axes' voxel sizes in mm; each slice is run at `pixel_size`
    mm (the model's training pixel size; None: the slice's own). `smooth_slices`: one plane's
    slices are evened out across slices (smooth_across_slices); False keeps each slice as the
    network made it."""
    if planes not in PLANE_CHOICES:
        raise ValueError(f"unknown planes {planes!r}; choose one of {', '.join(PLANE_CHOICES)}")
    device = choose_device(device) if isinstance(device, str) else torch.device(device)
    plane_list = usable_planes(unit.shape, planes)
    sizes = [float(v) for v in voxel_sizes]
    keeps = {p: mask.any(axis=tuple(a for a in range(3) if a != PLANE_AXIS[p])) for p in plane_list}
    total = max(1, sum(int(k.sum()) for k in keeps.values()))
    done = 0

    def step(n: int, plane: str = "") -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done / total, f"{label} ({plane}): {done}/{total} slices")

    net = _prepare(net, device)
    results = []
    with torch.inference_mode():
        for p in plane_list:
            axis = PLANE_AXIS[p]
            spacing = tuple(sizes[a] for a in range(3) if a != axis)
            results.append(
                _translate_plane(
                    net,
                    unit,
                    mask,
                    axis,
                    spacing,
                    pixel_size,
                    device,
                    batch_size,
                    lambda n, p=p: step(n, p),
                    cancel,
                )
            )
    # Air stays air: the generators leave a faint haze around the head (measured on the demo
    # T1w: a quarter of the air voxels above 1 % of the brightest tissue), cleared beyond a
    # margin so the head's edge keeps what the model made of it. Not `mask`: in a skull-stripped
    # T2w, whose darkest tissue (white matter) sets its low end, that leaves out a quarter of the brain.
    near = dilate(unit > AIR_LEVEL, BACKGROUND_MARGIN_VOXELS)
    if len(results) == 1:
        axis = PLANE_AXIS[plane_list[0]]
        out = smooth_across_slices(results[0], unit, axis, near) if smooth_slices else results[0]
    else:  # the median of three planes is already consistent across each of them
        out = np.median(np.stack(results), axis=0).astype(np.float32)
    out[~near] = 0.0
    return out


def smooth_across_slices(out: np.ndarray, guide: np.ndarray, axis: int, wanted: np.ndarray | None = None) -> np.ndarray:
    """`out` averaged across slices along `axis` with neighbours that are alike in `guide` (the
    [0, 1] source) and in `out` itself: a joint bilateral filter along one axis, which evens out
    slice-to-slice disagreement and keeps the anatomy's edges. `out` is filtered in place (a
    volume-sized copy costs the first translation in a process about 0.07 s) and returned.
    `wanted`: where the caller uses the result (elsewhere it may stay unfiltered). A slab too
    thin to have neighbours is left as it is."""
    if out.shape[axis] < THIN_VOXELS or not out.any():
        return out

    def extent(volume: np.ndarray, a: int) -> np.ndarray:
        return np.flatnonzero(volume.any(axis=tuple(b for b in range(3) if b != a)))

    # Only the box around what the network made: the air around a head costs time and holds 0.
    # Each voxel's result depends only on its own line across slices, so the box's in-plane
    # sides may also stop where no voxel is wanted.
    kept = [extent(out, a) for a in range(3)]
    if wanted is not None:
        kept = [k if a == axis else np.intersect1d(k, extent(wanted, a)) for a, k in enumerate(kept)]
        if any(k.size == 0 for k in kept):
            return out
    box = tuple(slice(int(k[0]), int(k[-1]) + 1) for k in kept)
    out[box] = _smooth_box(out[box], guide[box], axis)
    return out


def _smooth_box(out: np.ndarray, guide: np.ndarray, axis: int) -> np.ndarray:
    n = out.shape[axis]
    result = torch.from_numpy(np.ascontiguousarray(np.moveaxis(out, axis, 0)))
    source = torch.from_numpy(np.ascontiguousarray(np.moveaxis(guide, axis, 0)))
    total, weights = result.clone(), torch.ones_like(result)
    guide_scale, output_scale = 0.5 / GUIDE_SIGMA**2, 0.5 / OUTPUT_SIGMA**2
    for shift in range(1, min(SLICE_RADIUS, n - 1) + 1):
        distance_weight = float(np.exp(-0.5 * shift**2 / SLICE_SIGMA**2))
        above, below = slice(shift, None), slice(None, n - shift)
        # The weight between two slices is symmetric: made once, used in both directions.
        weight = (source[above] - source[below]).square_().mul_(guide_scale)
        weight.add_((result[above] - result[below]).square_().mul_(output_scale))
        weight = weight.neg_().exp_().mul_(distance_weight)
        for here, there in ((above, below), (below, above)):
            total[here] += weight * result[there]
            weights[here] += weight
    return np.moveaxis(total.div_(weights).numpy(), 0, axis)


def dilate(mask: np.ndarray, voxels: int) -> np.ndarray:
    """`mask` grown by `voxels` along each axis (a box), without SciPy."""
    grown = mask.copy()
    for axis in range(grown.ndim):
        source = grown.copy()
        n = grown.shape[axis]
        for shift in range(1, min(voxels, n - 1) + 1):
            ahead = [slice(None)] * grown.ndim
            behind = [slice(None)] * grown.ndim
            ahead[axis], behind[axis] = slice(shift, None), slice(None, n - shift)
            grown[tuple(ahead)] |= source[tuple(behind)]
            grown[tuple(behind)] |= source[tuple(ahead)]
    return grown


# ---------------------------------------------------------------- public API
def translate_volume(
    volume: Volume,
    model: CycleGANModel,
    direction: str,
    planes: str = "axial",
    device="auto",
    batch_size: int | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    smooth_slices: bool = True,
) -> Volume:
    """The volume translated by `model` in `direction`, on the same grid and affine.

    Raises ModelError if the model lacks the direction, DeviceError for an unusable device,
    TranslationCancelled if `cancel.is_set()` turns true (checked before each batch).
    """
    net = model.generator(direction)
    source, target = direction.split("-to-")
    unit, scale, mask = normalise_volume(volume.data, model.normalisation, source)
    out = translate_unit(
        unit,
        mask,
        net,
        planes,
        device,
        batch_size,
        progress,
        cancel,
        voxel_sizes=volume.voxel_sizes,
        pixel_size=model.pixel_size,
        smooth_slices=smooth_slices,
    )
    out *= np.float32(scale)
    return volume.with_data(out, name=f"{volume.name}_{target.upper()}w_translated")


def cycle_error_volume(
    volume: Volume,
    model: CycleGANModel,
    direction: str,
    planes: str = "axial",
    device="auto",
    batch_size: int | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    translated: Volume | None = None,
) -> Volume:
    """|A - A'| where A' = back(forward(A)): large where the model is unsure. Same grid as A.

    The map is in the source's normalised units (0 = identical, 1 = the full robust range);
    voxels outside the foreground are 0. Pass `translated` (A -> B already computed) to skip
    the forward pass. Needs a model holding both directions.
    """
    forward_dir = direction
    source, target = direction.split("-to-")
    backward_dir = f"{target}-to-{source}"
    forward_net, backward_net = model.generator(forward_dir), model.generator(backward_dir)
    unit, _, mask = normalise_volume(volume.data, model.normalisation, source)

    def part(offset: float, share: float, text: str) -> Progress | None:
        if progress is None:
            return None
        return lambda f, m: progress(offset + share * f, text)

    if translated is None:
        b_unit = translate_unit(
            unit,
            mask,
            forward_net,
            planes,
            device,
            batch_size,
            part(0.0, 0.5, "Cycle map: forward"),
            cancel,
            voxel_sizes=volume.voxel_sizes,
            pixel_size=model.pixel_size,
        )
        back_offset = 0.5
    else:
        b_unit, _, _ = normalise_volume(translated.data, model.normalisation, target)
        back_offset = 0.0
    # The back translation sees B normalised as training saw it, and runs where A has foreground.
    b_unit, _, _ = normalise_volume(b_unit, model.normalisation, target) if b_unit.any() else (b_unit, 1.0, mask)
    a_again = translate_unit(
        b_unit,
        mask,
        backward_net,
        planes,
        device,
        batch_size,
        part(back_offset, 1.0 - back_offset, "Cycle map: back"),
        cancel,
        voxel_sizes=volume.voxel_sizes,
        pixel_size=model.pixel_size,
    )
    error = np.where(mask, np.abs(unit - a_again), 0.0).astype(np.float32)
    return volume.with_data(error, name=f"{volume.name}_cycle_error")
