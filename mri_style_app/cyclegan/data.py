"""Unpaired slice datasets for training: NIfTI volumes and/or PNG slices in a folder (no Qt).

Every image gets the app's one intensity normalisation (the same as inference): the
foreground mask of the volume (or of the PNG slice), scaled to [0, 1] by a percentile there
(99.5th unless the run sets its domain's own, e.g. the 90th for T1w), then mapped to [-1, 1].
Slices are shown the way people look at them (superior or anterior up), padded to a square with
background and resized to the training size.

PNG files are read and written with Pillow (cyclegan/ must not use Qt).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from mri_style_app.files import write_atomically
from mri_style_app.imaging.intensity import foreground_mask, normalize_unit
from mri_style_app.imaging.volume import READABLE_SUFFIXES, VolumeError, load_volume

PLANES = ("axial", "coronal", "sagittal")  # canonical RAS axes 2, 1, 0
_PLANE_AXIS = {"axial": 2, "coronal": 1, "sagittal": 0}
# A volume slice is kept when its head area is at least this share of the plane's largest one:
# the first and last slices through the top of the skull teach nothing.
MIN_SLICE_AREA_SHARE = 0.25
# A PNG slice is refused as blank when less than this share of its pixels is foreground.
MIN_PNG_FOREGROUND = 0.02
# A voxel of a reference above this share of its scale is anatomy to the paired warp, not air.
ANATOMY_LEVEL = 1e-3


class DataError(Exception):
    """A training folder cannot be used; the message says which file, what and what to do."""


# ---------------------------------------------------------------- PNG
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as Qt's greyscale conversion


def read_png(path) -> np.ndarray:
    """A PNG file as a float32 (height, width) grey image in its own value range (0-255, or
    0-65535 for 16-bit grey). Colour becomes luma; alpha is dropped; palettes are expanded.
    Raises ValueError (or OSError) with the reason when the file is no readable PNG."""
    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                raise ValueError(f"it is not a PNG file (it holds {image.format or 'something else'})")
            image.load()
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                return np.asarray(image, dtype=np.float32)
            if image.mode not in ("L", "LA", "RGB", "RGBA"):
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            pixels = np.asarray(image, dtype=np.float32)
    except UnidentifiedImageError:
        raise ValueError("it is not a PNG file") from None
    except (SyntaxError, EOFError) as exc:  # Pillow's words for a damaged or cut-off PNG
        raise ValueError(f"the file is damaged or truncated ({exc})") from None
    if pixels.ndim == 2:
        return pixels
    return pixels[..., 0] if pixels.shape[-1] == 2 else pixels[..., :3] @ _LUMA


def write_png(path, image: np.ndarray) -> Path:
    """Write a (height, width) uint8 grey image as PNG, atomically (temp file renamed into place)."""
    grey = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="L")
    return write_atomically(Path(path), lambda tmp: grey.save(tmp, format="PNG"))


# ---------------------------------------------------------------- datasets
def to_model_range(unit: np.ndarray) -> np.ndarray:
    """[0, 1] -> [-1, 1], the generators' range."""
    return (unit * 2.0 - 1.0).astype(np.float32)


def normalise_image(data: np.ndarray, percentile: float = 99.5) -> np.ndarray:
    """The inference normalisation: foreground `percentile` -> 1, clipped, then to [-1, 1]."""
    mask = foreground_mask(data)
    return to_model_range(normalize_unit(data, mask if mask.any() else None, percentile))


def _view_slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """Slice of a canonical RAS volume, turned so superior (or anterior, for axial) is up."""
    return np.rot90(np.take(volume, index, axis=axis))


def _is_png(path: Path) -> bool:
    return path.name.lower().endswith(".png")


def is_volume_file(path: Path) -> bool:
    name = path.name.lower()
    # An Analyze pair is listed once, by its header.
    return name.endswith(READABLE_SUFFIXES) and not name.endswith((".img", ".img.gz"))


@dataclass
class SliceDataset:
    """All usable 2D slices of one domain; `slice(i)` is float32 in [-1, 1], its own shape."""

    folder: Path
    images: list[np.ndarray] = field(default_factory=list)  # normalised volumes or PNG slices
    index: list[tuple[int, int, int]] = field(default_factory=list)  # (image, axis or -1, slice)
    files: list[str] = field(default_factory=list)
    shapes: dict[str, int] = field(default_factory=dict)  # "HxW" or "XxYxZ" -> count
    ignored: list[str] = field(default_factory=list)
    skipped_slices: int = 0
    image_pixel_sizes: list[float] = field(default_factory=list)  # in-plane mm of each image's slices (PNG: 1)

    def __len__(self) -> int:
        return len(self.index)

    def _sides(self) -> np.ndarray:
        """The longer in-plane side (pixels) of each slice."""
        return np.array(
            [
                max(n for a, n in enumerate(self.images[image].shape) if a != axis)
                if axis >= 0
                else max(self.images[image].shape)
                for image, axis, _ in self.index
            ]
        )

    def largest_side(self) -> int:
        return int(self._sides().max()) if self.index else 0

    def training_pixel_size(self, size: int, crop: bool) -> float:
        """The typical in-plane pixel size (mm) of the slices as training shows them: a whole slice
        larger than `size` is resized down to it, so its pixels grow (windows, `crop`, never are)."""
        if not self.index:
            return 1.0
        sizes = np.array([self.image_pixel_sizes[image] for image, _, _ in self.index])
        if not crop:
            sizes = sizes * np.maximum(1.0, self._sides() / size)
        return float(np.median(sizes))

    @property
    def has_png_slices(self) -> bool:
        return any(axis < 0 for _, axis, _ in self.index)

    def slice(self, i: int) -> np.ndarray:
        image, axis, k = self.index[i]
        if axis < 0:
            return self.images[image]
        return np.ascontiguousarray(_view_slice(self.images[image], axis, k))

    def summary(self) -> dict:
        n_png = sum(1 for f in self.files if _is_png(Path(f)))
        return {
            "folder": str(self.folder),
            "slices": len(self),
            "png_files": n_png,
            "volumes": len(self.files) - n_png,
            "shapes": dict(self.shapes),
            "skipped_near_empty_slices": self.skipped_slices,
            "ignored_files": len(self.ignored),
        }


def _kept_slices(mask: np.ndarray, axis: int) -> np.ndarray:
    """Indices along `axis` of the slices whose head area is at least MIN_SLICE_AREA_SHARE of the largest."""
    area = mask.sum(axis=tuple(a for a in range(mask.ndim) if a != axis))
    return np.flatnonzero(area >= MIN_SLICE_AREA_SHARE * max(area.max(), 1))


def load_domain(folder, plane: str = "axial", label: str = "domain", percentile: float = 99.5) -> SliceDataset:
    """Read and check a folder of training images; raises DataError before any training starts."""
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise DataError(f"{label} folder {folder} does not exist")
    if not folder.is_dir():
        raise DataError(f"{label} path {folder} is a file, not a folder of images")
    if plane not in (*PLANES, "all"):
        raise DataError(f"unknown plane {plane!r}; choose axial, coronal, sagittal or all")
    axes = [_PLANE_AXIS[p] for p in PLANES] if plane == "all" else [_PLANE_AXIS[plane]]
    dataset = SliceDataset(folder=folder)
    entries = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    for path in entries:
        if _is_png(path):
            try:
                grey = read_png(path)
            except (OSError, ValueError) as exc:
                raise DataError(
                    f"{path}: cannot read this PNG ({exc}). Re-export it or remove it from the folder"
                ) from None
            if grey.max() <= grey.min() or foreground_mask(grey).mean() < MIN_PNG_FOREGROUND:
                dataset.skipped_slices += 1
                dataset.ignored.append(path.name)
                continue
            dataset.images.append(normalise_image(grey, percentile))
            dataset.image_pixel_sizes.append(1.0)
            dataset.index.append((len(dataset.images) - 1, -1, 0))
            key = f"{grey.shape[0]}x{grey.shape[1]}"
        elif is_volume_file(path):
            try:
                volume = load_volume(path)
            except VolumeError as exc:
                raise DataError(f"{exc} (in the {label} folder; remove the file to train without it)") from None
            data = volume.data
            pixel_size = float(np.mean([volume.voxel_sizes[a] for a in range(3) if a != axes[0]]))
            mask = foreground_mask(data)
            dataset.images.append(to_model_range(normalize_unit(data, mask if mask.any() else None, percentile)))
            dataset.image_pixel_sizes.append(pixel_size)
            image_no = len(dataset.images) - 1
            for axis in axes:
                if data.shape[axis] < 2:
                    continue  # a 2D image stored as a volume has no slices across its flat axis
                keep = _kept_slices(mask, axis)
                dataset.skipped_slices += data.shape[axis] - len(keep)
                dataset.index.extend((image_no, axis, int(k)) for k in keep)
            key = "x".join(str(s) for s in data.shape)
        else:
            dataset.ignored.append(path.name)
            continue
        dataset.files.append(path.name)
        dataset.shapes[key] = dataset.shapes.get(key, 0) + 1
    if not dataset.files and not dataset.index:
        found = f" (it holds {len(entries)} other file(s))" if entries else " (it is empty)"
        raise DataError(f"{label} folder {folder} has no NIfTI (.nii, .nii.gz, .hdr) or PNG images{found}")
    if not dataset.index:
        raise DataError(f"{label} folder {folder}: every image is blank or near-empty; nothing to train on")
    return dataset


# ---------------------------------------------------------------- tensors and augmentation
def fit_to_size(image: np.ndarray, size: int) -> torch.Tensor:
    """Pad a slice to a square with background (-1), then resize to size x size -> (1, size, size).

    Padding first keeps the anatomy's proportions; slices of any shape can be mixed. A slice
    that fits is only padded, never resampled: the translator runs slices at their own scale,
    and even a 1 % resize smooths every voxel (antialiased bilinear from 233 to 232 pixels is a
    2-pixel blur), which teaches blurred input -> blurred output.
    """
    h, w = image.shape
    side = max(h, w, size)  # fits: padded to size; larger: resized down
    top, left = (side - h) // 2, (side - w) // 2
    square = np.full((side, side), -1.0, dtype=np.float32)
    square[top : top + h, left : left + w] = image
    tensor = torch.from_numpy(square)[None, None]
    if side != size:
        tensor = F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False, antialias=side > size)
    return tensor[0].clamp_(-1.0, 1.0)


def random_crop(image: np.ndarray, size: int, generator: torch.Generator) -> torch.Tensor:
    """A size x size window at the slice's own scale (no resizing) -> (1, size, size).

    The window is centred on a random foreground pixel, so it holds tissue, not air; slices
    smaller than the window are padded with background (-1).
    """
    h, w = image.shape
    padded = np.full((max(h, size), max(w, size)), -1.0, dtype=np.float32)
    top, left = (padded.shape[0] - h) // 2, (padded.shape[1] - w) // 2
    padded[top : top + h, left : left + w] = image
    rows, cols = np.nonzero(padded > -0.9)
    if rows.size:
        pick = int(torch.randint(0, rows.size, (1,), generator=generator))
        cy, cx = int(rows[pick]), int(cols[pick])
    else:
        cy, cx = padded.shape[0] // 2, padded.shape[1] // 2
    y0 = min(max(cy - size // 2, 0), padded.shape[0] - size)
    x0 = min(max(cx - size // 2, 0), padded.shape[1] - size)
    return torch.from_numpy(np.ascontiguousarray(padded[y0 : y0 + size, x0 : x0 + size]))[None]


@dataclass(frozen=True)
class Augmentation:
    """Random left-right flip, affine (rotation, scale, shift), a smooth elastic warp and
    intensity gamma/scale.

    Only left-right flips: brains are close to symmetric that way (PNG slices, whose orientation
    is unknown, are also turned upside down; see UnpairedBatches).
    """

    flip: bool = True
    degrees: float = 5.0
    scale: float = 0.05
    shift: float = 0.04
    gamma: float = 0.1
    intensity: float = 0.05
    elastic: float = 0.0  # largest displacement of the warp, as a share of the image side
    # Channels whose voxels above the background are the anatomy. With any, the warp averages
    # anatomy with anatomy and background with background, so a cut edge (a skull-stripped brain)
    # keeps its brightness rather than fading into the air as plain bilinear resampling fades it.
    anatomy_channels: tuple[int, ...] = ()

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = batch.shape[0]

        def uniform(half_width: float, *shape: int) -> torch.Tensor:
            return (torch.rand(n, *shape, generator=generator) * 2 - 1) * half_width

        if self.flip:
            flip = torch.rand(n, generator=generator) < 0.5
            batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
        angle = uniform(math.radians(self.degrees))
        zoom = 1 + uniform(self.scale)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = torch.cos(angle) / zoom
        theta[:, 0, 1] = -torch.sin(angle) / zoom
        theta[:, 1, 0] = torch.sin(angle) / zoom
        theta[:, 1, 1] = torch.cos(angle) / zoom
        theta[:, :, 2] = torch.stack([uniform(self.shift), uniform(self.shift)], 1) * 2
        grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
        if self.elastic > 0:  # 5 x 5 random control displacements, smoothly interpolated
            coarse = uniform(2 * self.elastic, 2, 5, 5)
            grid = grid + F.interpolate(coarse, size=batch.shape[-2:], mode="bicubic", align_corners=True).permute(
                0, 2, 3, 1
            )
        # Shift into [0, 1] so the zero padding outside the image is background.
        unit = self._warped((batch + 1) / 2, grid)
        gamma = torch.exp(uniform(self.gamma))[:, None, None, None]
        scale = (1 + uniform(self.intensity))[:, None, None, None]
        unit = (unit.clamp(0, 1) ** gamma * scale).clamp(0, 1)
        return unit * 2 - 1

    def _warped(self, unit: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        def sample(image: torch.Tensor) -> torch.Tensor:
            return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

        if not self.anatomy_channels:
            return sample(unit)
        anatomy = (unit[:, list(self.anatomy_channels)] > ANATOMY_LEVEL).any(dim=1, keepdim=True).float()
        cover = sample(anatomy)
        inside = sample(unit * anatomy) / cover.clamp_min(1e-6)
        outside = sample(unit * (1 - anatomy)) / (1 - cover).clamp_min(1e-6)
        return torch.where(cover >= 0.5, inside, outside)


@dataclass(frozen=True)
class ScannerAugmentation:
    """What another scanner or protocol does to an input image (never to a target): contrast
    gamma, overall scale, a smooth multiplicative bias field, a coarser in-plane resolution
    resampled back, and Rician noise."""

    gamma: float = 0.3  # log-gamma drawn from [-gamma, gamma]
    intensity: float = 0.1
    bias: float = 0.1  # the field lies in [1 - bias, 1 + bias]
    coarse_probability: float = 0.3
    coarsest: float = 2.0  # pixel size factor of the coarsest resolution
    noise: float = 0.03  # noise standard deviation up to this share of the image's range

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, h, w = batch.shape

        def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
            return low + torch.rand(n, *shape, generator=generator) * (high - low)

        unit = ((batch + 1) / 2).clamp(0, 1)
        unit = unit ** torch.exp(uniform(-self.gamma, self.gamma))[:, None, None, None]
        field = F.interpolate(uniform(-1, 1, 1, 3, 3), size=(h, w), mode="bicubic", align_corners=True)
        peak = field.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
        unit = unit * (1 + uniform(0, self.bias)[:, None, None, None] * field / peak)
        unit = unit * (1 + uniform(-self.intensity, self.intensity))[:, None, None, None]
        coarse = torch.rand(n, generator=generator) < self.coarse_probability
        if coarse.any():
            factor = float(uniform(1.0, self.coarsest)[0])
            small = (max(1, round(h / factor)), max(1, round(w / factor)))
            blurred = F.interpolate(
                F.interpolate(unit, size=small, mode="bilinear", align_corners=False, antialias=True),
                size=(h, w),
                mode="bilinear",
                align_corners=False,
            )
            unit = torch.where(coarse[:, None, None, None], blurred, unit)
        sigma = uniform(0, self.noise)[:, None, None, None]
        real = unit + sigma * torch.randn(unit.shape, generator=generator)
        imaginary = sigma * torch.randn(unit.shape, generator=generator)
        unit = torch.sqrt(real * real + imaginary * imaginary)
        return unit.clamp(0, 1) * 2 - 1


class ShuffledPasses:
    """Item numbers in shuffled passes, one pass after another; the place goes into checkpoints."""

    def __init__(self, items: list[int]):
        self.items = items
        self.order: list[int] = []
        self.position = 0

    def state_dict(self) -> dict:
        return {"order": list(self.order), "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.order = [int(i) for i in state["order"]]
        self.position = int(state["position"])

    def take(self, n: int, generator: torch.Generator) -> list[int]:
        picks = []
        for _ in range(n):
            if self.position >= len(self.order):
                perm = torch.randperm(len(self.items), generator=generator).tolist()
                self.order = [self.items[i] for i in perm]
                self.position = 0
            picks.append(self.order[self.position])
            self.position += 1
        return picks


class UnpairedBatches(ShuffledPasses):
    """Batches for one domain: each epoch a shuffled pass over this rank's share of the slices.

    The slices are split between DDP ranks by index (rank, rank + world, ...), like
    DistributedSampler. All randomness comes from `generator`, whose state goes into checkpoints.
    """

    def __init__(
        self,
        dataset: SliceDataset,
        size: int,
        batch_size: int,
        rank: int = 0,
        world: int = 1,
        augmentation: Augmentation | None = Augmentation(),
        crop: bool = False,
    ):
        super().__init__(list(range(rank, len(dataset), world)) or list(range(len(dataset))))
        self.dataset = dataset
        self.size = size
        self.crop = crop  # native-scale random windows instead of whole slices resized to `size`
        self.batch_size = batch_size
        self.augmentation = augmentation

    def next(self, generator: torch.Generator) -> torch.Tensor:
        picks = self.take(self.batch_size, generator)
        if self.crop:
            slices = [random_crop(self.dataset.slice(i), self.size, generator) for i in picks]
        else:
            slices = [fit_to_size(self.dataset.slice(i), self.size) for i in picks]
        if self.augmentation and self.dataset.has_png_slices:
            # A PNG slice carries no orientation (which way is anterior is unknown, and the seed
            # slices are stored posterior up), while translation shows the model slices anterior
            # or superior up: PNG slices are seen both ways up.
            turn = torch.rand(len(picks), generator=generator) < 0.5
            slices = [
                t.flip(-2) if turn[n] and self.dataset.index[i][1] < 0 else t
                for n, (i, t) in enumerate(zip(picks, slices))
            ]
        batch = torch.stack(slices)
        return self.augmentation(batch, generator) if self.augmentation else batch


# ---------------------------------------------------------------- paired (co-registered) data
# In a paired folder, `NAME.nii.gz` is a head's reference scan and `NAME~TAG.nii.gz` another scan
# of the same head (other sequence or scanner): an extra input, never a target.
VARIANT_MARK = "~"


@dataclass
class PairedHead:
    """One head: reference A and B scans (the targets) and the scans used as inputs (the
    references themselves plus any variants), all normalised to [-1, 1] on one grid."""

    name: str
    reference_a: np.ndarray
    reference_b: np.ndarray
    inputs_a: list[np.ndarray]
    inputs_b: list[np.ndarray]
    weight: np.ndarray | None = None  # per-voxel weight of the paired L1 (0-1); None: 1 everywhere


@dataclass
class PairedSlices:
    """Co-registered T1w/T2w volumes (same file name in two folders, same grid), sliced alike.

    An optional supervised signal next to the unpaired CycleGAN losses: simulated pairs, or a
    user's own registered scans. Each input scan of a head is translated and compared with
    the other domain's reference scan of that head, so variants teach the model to map many
    sequences onto one reference contrast.
    """

    folder_a: Path
    folder_b: Path
    heads: list[PairedHead] = field(default_factory=list)
    index: list[tuple[int, int, int]] = field(default_factory=list)  # (head, axis, slice)
    files: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.index)

    def slices(self, i: int, variant_a: int = 0, variant_b: int = 0) -> tuple[np.ndarray, ...]:
        """(input A, reference A, input B, reference B) at index i, plus the weight slice when
        the pairs are weighted; variant k picks the input scan."""
        head, axis, k = self.index[i]
        h = self.heads[head]
        views = [h.inputs_a[variant_a], h.reference_a, h.inputs_b[variant_b], h.reference_b]
        if self.weighted:
            views.append(h.weight if h.weight is not None else np.ones_like(h.reference_a))
        return tuple(np.ascontiguousarray(_view_slice(v, axis, k)) for v in views)

    @property
    def weighted(self) -> bool:
        return any(h.weight is not None for h in self.heads)

    def summary(self) -> dict:
        return {
            "folder_a": str(self.folder_a),
            "folder_b": str(self.folder_b),
            "pairs": len(self.heads),
            "variants": sum(len(h.inputs_a) + len(h.inputs_b) - 2 for h in self.heads),
            "slices": len(self),
            "weighted_heads": sum(h.weight is not None for h in self.heads),
            "files": list(self.files),
        }


def _head_name(file_name: str) -> tuple[str, bool]:
    """('NAME', is_variant) for NAME.nii.gz or NAME~TAG.nii.gz."""
    stem = file_name
    for suffix in sorted(READABLE_SUFFIXES, key=len, reverse=True):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return stem.split(VARIANT_MARK, 1)[0], VARIANT_MARK in stem


def load_pairs(
    folder_a,
    folder_b,
    plane: str = "axial",
    percentiles: tuple[float, float] = (99.5, 99.5),
    weights_folder=None,
) -> PairedSlices:
    """Volumes with the same file name in both folders are one pair (NAME~TAG variants join
    NAME's head); `weights_folder` may hold a head's per-voxel paired-loss weights as NAME.nii.gz.
    Raises DataError when a folder is missing, a name has no partner, a weight map has no head or
    values outside 0-1, or a head's grids differ."""
    folders = [Path(folder_a).expanduser(), Path(folder_b).expanduser()]
    for label, folder in zip(("paired A (T1)", "paired B (T2)"), folders):
        if not folder.is_dir():
            raise DataError(f"{label} folder {folder} does not exist or is not a folder")
    weight_files = {}
    if weights_folder is not None:
        weights_folder = Path(weights_folder).expanduser()
        if not weights_folder.is_dir():
            raise DataError(f"paired weights folder {weights_folder} does not exist or is not a folder")
        weight_files = {
            _head_name(p.name)[0]: p for p in sorted(weights_folder.iterdir()) if p.is_file() and is_volume_file(p)
        }
    # per folder: file name -> (head, is_variant), parsed once
    parsed = [
        {n: _head_name(n) for n in sorted(p.name for p in f.iterdir() if p.is_file() and is_volume_file(p))}
        for f in folders
    ]
    references = [{head: n for n, (head, variant) in names.items() if not variant} for names in parsed]
    if set(references[0]) != set(references[1]):
        lonely = sorted({**references[0], **references[1]}[h] for h in set(references[0]) ^ set(references[1]))
        raise DataError(
            f"paired folders {folders[0]} and {folders[1]} must hold the same file names; "
            f"without a partner: {', '.join(lonely[:5])}{' ...' if len(lonely) > 5 else ''}"
        )
    if not references[0]:
        raise DataError(f"paired folders {folders[0]} and {folders[1]} hold no NIfTI volumes")
    unknown = sorted(set(weight_files) - set(references[0]))
    if unknown:
        raise DataError(f"{weights_folder}: {weight_files[unknown[0]].name} is the weight map of no paired head")
    for folder, names, refs in zip(folders, parsed, references):
        orphans = [(n, head) for n, (head, variant) in names.items() if variant and head not in refs]
        if orphans:
            name, head = orphans[0]
            raise DataError(
                f"{folder}: {name} is a variant ({VARIANT_MARK}) of a head without a reference "
                f"scan ({head}.nii.gz) in both paired folders"
            )
    axes = [_PLANE_AXIS[p] for p in PLANES] if plane == "all" else [_PLANE_AXIS[plane]]
    pairs = PairedSlices(folder_a=folders[0], folder_b=folders[1])

    def load_on_grid(path: Path, grid, where: str, what: str):
        """The volume at path, which must lie on `grid` (a head's reference scan) unless None."""
        try:
            volume = load_volume(path)
        except VolumeError as exc:
            raise DataError(f"{exc} (in the {where})") from None
        if grid is not None and not volume.same_grid(grid):
            raise DataError(
                f"{path.name}: not on the voxel grid of its head's reference scans "
                f"({volume.shape} vs {grid.shape}); {what} must be co-registered"
            )
        return volume

    def read(path: Path, grid, percentile: float):
        volume = load_on_grid(path, grid, "paired folders", "pairs")
        mask = foreground_mask(volume.data)
        return volume, mask, to_model_range(normalize_unit(volume.data, mask if mask.any() else None, percentile))

    def read_weight(path: Path, grid) -> np.ndarray:
        weight = np.asarray(load_on_grid(path, grid, "paired weights folder", "weight maps").data, dtype=np.float32)
        if not np.isfinite(weight).all() or weight.min() < 0 or weight.max() > 1:
            raise DataError(f"{path.name}: paired weights must lie between 0 and 1")
        return weight

    for head in sorted(references[0]):
        ref_a, mask_a, unit_a = read(folders[0] / references[0][head], None, percentiles[0])
        _, mask_b, unit_b = read(folders[1] / references[1][head], ref_a, percentiles[1])
        pairs.files.append(references[0][head])
        inputs = []
        for folder, names, unit, percentile in zip(folders, parsed, (unit_a, unit_b), percentiles):
            variants = [n for n, parts in names.items() if parts == (head, True)]
            inputs.append([unit] + [read(folder / n, ref_a, percentile)[2] for n in variants])
            pairs.files.extend(f"{folder.name}/{n}" for n in variants)
        weight = read_weight(weight_files[head], ref_a) if head in weight_files else None
        pairs.heads.append(PairedHead(head, unit_a, unit_b, inputs[0], inputs[1], weight))
        for axis in axes:
            pairs.index.extend((len(pairs.heads) - 1, axis, int(k)) for k in _kept_slices(mask_a & mask_b, axis))
    if not pairs.index:
        raise DataError("every paired slice is blank or near-empty; nothing to train on")
    return pairs


def balanced_items(pairs: PairedSlices) -> list[int]:
    """Slice numbers, each head's repeated so that every head is drawn about equally often: a
    head of 10 slices teaches as much as a volume of 150."""
    per_head: dict[int, list[int]] = {}
    for i, (head, _, _) in enumerate(pairs.index):
        per_head.setdefault(head, []).append(i)
    most = max(len(v) for v in per_head.values())
    return [i for items in per_head.values() for i in items * max(1, round(most / len(items)))]


class PairedBatches(ShuffledPasses):
    """Batches of (input A, reference A, input B, reference B) slices from PairedSlices, plus
    the paired-loss weights when the pairs have them, with the same flip, affine and elastic warp
    for all; each input is one of its head's scans at random, and alone gets ScannerAugmentation
    (the targets stay the reference contrast)."""

    def __init__(self, pairs: PairedSlices, size: int, batch_size: int, augment: bool = True):
        super().__init__(balanced_items(pairs))
        self.pairs = pairs
        self.size = size
        self.batch_size = batch_size
        self.augmentation = (
            Augmentation(degrees=10.0, scale=0.1, gamma=0.0, intensity=0.0, elastic=0.02, anatomy_channels=(1, 3))
            if augment
            else None
        )
        self.scanner = ScannerAugmentation() if augment else None

    def next(self, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        picks = self.take(self.batch_size, generator)
        rows = []
        for i in picks:
            head = self.pairs.heads[self.pairs.index[i][0]]
            variant_a, variant_b = (
                int(torch.randint(len(inputs), (1,), generator=generator)) if len(inputs) > 1 else 0
                for inputs in (head.inputs_a, head.inputs_b)
            )
            views = list(self.pairs.slices(i, variant_a, variant_b))
            if len(views) == 5:
                # Carried as 1 - weight in the model range, so the background that padding and
                # warping bring in (-1) weighs 1, as anywhere without a weight map.
                views[4] = 1 - 2 * views[4]
            rows.append(torch.cat([fit_to_size(s, self.size) for s in views]))
        stacked = torch.stack(rows)
        if self.augmentation:
            stacked = self.augmentation(stacked, generator)
        out = [stacked[:, k : k + 1].contiguous() for k in range(stacked.shape[1])]
        if len(out) == 5:
            out[4] = (1 - out[4]) / 2
        if self.scanner:
            out[0], out[2] = self.scanner(out[0], generator), self.scanner(out[2], generator)
        return tuple(out)
