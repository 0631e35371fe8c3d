"""Volume: a 3D image in canonical RAS voxel order, plus what is needed to write it back.

Qt-free and torch-free. Every problem with an input file becomes a `VolumeError` whose
message says which file, what is wrong and what to do about it.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import nibabel as nib
import numpy as np
from isal import igzip
from nibabel import orientations as ornt_lib
from nibabel.fileholders import FileHolder

from mri_style_app.files import write_atomically

# Refuse a volume whose float32 copy would need more than this share of the available memory.
MEMORY_SHARE_LIMIT = 0.5
READABLE_SUFFIXES = (".nii", ".nii.gz", ".hdr", ".img", ".hdr.gz", ".img.gz")
# What a volume computed from another (a translation) keeps of its `extra`: the DICOM source, so
# the result can be written as a derived series in the source's study.
DERIVED_KEEPS = ("dicom",)


class VolumeError(Exception):
    """A file cannot be used as a volume; the message is written for people."""


@dataclass
class Volume:
    """float32 voxels in canonical RAS+ order: index i grows towards +x (the patient's Right),
    j towards +y (Anterior), k towards +z (Superior); `affine` maps [i, j, k, 1] to world mm."""

    data: np.ndarray  # (X, Y, Z) float32, canonical RAS voxel order, finite
    affine: np.ndarray  # 4x4 canonical voxel -> world (RAS, mm)
    name: str = "volume"
    source_path: Path | None = None
    source_affine: np.ndarray | None = None  # 4x4 file voxel -> world
    source_header: object | None = None  # the file's own nibabel header (a copy)
    source_shape: tuple[int, ...] = ()  # the file's full shape, all dimensions
    n_volumes: int = 1  # number of volumes in a 4D file
    volume_index: int = 0  # which of them `data` holds
    nonfinite_count: int = 0  # NaN/inf voxels in the file, stored as 0 in `data`
    extra: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.data.shape)  # type: ignore[return-value]

    @property
    def voxel_sizes(self) -> np.ndarray:
        """Voxel edge lengths in mm along the canonical axes."""
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @property
    def source_axcodes(self) -> str:
        """The file's own orientation, such as 'LAS' (RAS for a volume made in memory)."""
        aff = self.affine if self.source_affine is None else self.source_affine
        return "".join(ornt_lib.aff2axcodes(aff))

    @property
    def canonical_to_source(self) -> np.ndarray:
        """4x4 matrix from canonical voxel indices to the file's own voxel indices."""
        if self.source_affine is None:
            return np.eye(4)
        return np.linalg.inv(self.source_affine) @ self.affine

    def source_index(self, ijk) -> tuple[int, int, int]:
        """Canonical voxel index -> the same voxel's index in the file's own axis order."""
        vec = self.canonical_to_source @ np.array([*ijk, 1.0])
        return tuple(int(round(v)) for v in vec[:3])  # type: ignore[return-value]

    def world(self, ijk) -> np.ndarray:
        """Canonical voxel index (may be fractional) -> world position in mm."""
        return (self.affine @ np.array([*ijk, 1.0]))[:3]

    def index_of(self, xyz) -> np.ndarray:
        """World position in mm -> fractional canonical voxel index."""
        return (np.linalg.inv(self.affine) @ np.array([*xyz, 1.0]))[:3]

    def with_data(self, data: np.ndarray, name: str | None = None) -> Volume:
        """A volume on the same grid and with the same source geometry, holding other voxels."""
        data = np.asarray(data, dtype=np.float32)
        if data.shape != self.data.shape:
            raise ValueError(f"shape {data.shape} does not match the volume's grid {self.data.shape}")
        # Remember the file this came from, so a derived volume is never saved over it either.
        origin = self.source_path or self.extra.get("derived_from")
        return replace(
            self,
            data=data,
            name=name or self.name,
            source_path=None,
            n_volumes=1,
            volume_index=0,
            nonfinite_count=0,
            extra={key: self.extra[key] for key in DERIVED_KEEPS if key in self.extra}
            | ({"derived_from": origin} if origin else {}),
        )

    def stored_as(self, axcodes: str) -> Volume:
        """The same voxels, to be saved in another axis order such as 'LIA' or 'SAR'.

        Only the file geometry changes (a fresh NIfTI header); display and world positions stay.
        """
        to_file = ornt_lib.ornt_transform(ornt_lib.axcodes2ornt("RAS"), ornt_lib.axcodes2ornt(tuple(axcodes)))
        file_affine = self.affine @ ornt_lib.inv_ornt_aff(to_file, self.shape)
        return replace(
            self,
            source_affine=file_affine,
            source_header=None,
            source_path=None,
            source_shape=(),
            extra=dict(self.extra),
        )

    def same_grid(self, other: Volume, atol: float = 1e-3) -> bool:
        return self.shape == other.shape and np.allclose(self.affine, other.affine, atol=atol)


def _fail(path: Path, problem: str, advice: str) -> VolumeError:
    return VolumeError(f"{path}: {problem}. {advice}")


def _available_memory_bytes() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 1024**3  # a conservative guess where /proc is missing (macOS, Windows)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise _fail(path, "no such file", "Check the path and try again")
    if not os.access(path, os.R_OK):
        raise _fail(path, "cannot be read (permission denied)", "Check the file's permissions")
    if path.stat().st_size == 0:
        raise _fail(
            path, "the file is empty (0 bytes)", "It may be an interrupted download or copy; get the file again"
        )
    name = path.name.lower()
    for ours, partner in ((".hdr", ".img"), (".img", ".hdr"), (".hdr.gz", ".img.gz"), (".img.gz", ".hdr.gz")):
        if name.endswith(ours):
            other = path.with_name(path.name[: -len(ours)] + partner)
            if not other.exists():
                raise _fail(
                    path,
                    f"the other half of the Analyze/NIfTI pair, {other.name}, is missing",
                    "Keep the .hdr and the .img file side by side in one folder",
                )
            break
    if name.endswith(".gz"):
        with open(path, "rb") as fh:
            if fh.read(2) != b"\x1f\x8b":
                raise _fail(
                    path,
                    "the name ends in .gz but the file is not gzip-compressed",
                    "Rename it to .nii if it is an uncompressed NIfTI file, or get the file again",
                )


def _open_image(path: Path):
    try:
        img = nib.load(str(path))
    except nib.filebasedimages.ImageFileError:
        if path.name.lower().endswith(".gz"):
            _verify_gzip(path)  # a gzip cut short before the end of the header says so here
        raise _fail(
            path,
            "is not a NIfTI or Analyze image (no valid NIfTI/Analyze header: wrong size or magic)",
            "Open a .nii, .nii.gz or .hdr/.img file",
        ) from None
    except FileNotFoundError as exc:
        raise _fail(
            path,
            f"a file of the image pair is missing ({Path(exc.filename or '').name})",
            "Analyze images need both the .hdr and the .img file side by side",
        ) from None
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise _fail(path, f"the file is truncated or damaged ({exc})", "Get the file again") from None
    except Exception as exc:  # nibabel raises many types for bad headers
        raise _fail(path, f"the header cannot be read ({exc})", "The file is damaged or not an image") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image, nib.AnalyzeImage)):
        raise _fail(
            path,
            f"is a {type(img).__name__}, not a NIfTI or Analyze image",
            "Convert it to NIfTI first (for example with dcm2niix or mri_convert)",
        )
    return img


def _verify_gzip(path: Path) -> int:
    """Decompress the whole file once, checking every gzip checksum; return the unpacked size.

    Reading one volume touches only the start of the stream, so a file cut short later (or with
    a corrupt tail) would otherwise load silently.
    """
    size = 0
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(1 << 22):
                size += len(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise _fail(
            path,
            f"the compressed file is truncated or damaged ({exc})",
            "Get the file again; it may be an interrupted download or copy",
        ) from None
    return size


def _spatial_shape(path: Path, shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """(3D shape, number of volumes) for a file shape, refusing what cannot be shown."""
    dims = list(shape)
    while len(dims) > 3 and dims[-1] == 1:  # trailing singleton dimensions mean nothing
        dims.pop()
    if any(d <= 0 for d in dims):
        raise _fail(path, f"the header gives an empty shape {tuple(shape)}", "The file is damaged")
    if len(dims) >= 5:
        raise _fail(
            path,
            f"has {len(dims)} dimensions {tuple(shape)}; only 3D volumes and 4D series can be shown",
            "Split it into 3D volumes first (for example with fslsplit)",
        )
    if len(dims) == 4:
        return tuple(dims[:3]), dims[3]
    if len(dims) == 2:
        # A single 2D slice is shown as a volume one voxel thick (documented in docs/viewer.md).
        return (dims[0], dims[1], 1), 1
    if len(dims) == 1:
        raise _fail(path, f"holds a 1D array {tuple(shape)}, not an image", "Open a 2D, 3D or 4D image")
    return tuple(dims), 1


def to_canonical(raw: np.ndarray, source_affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Voxels in a file's own axis order and its affine -> (float32 RAS-ordered voxels, their affine)."""
    to_ras = ornt_lib.ornt_transform(ornt_lib.io_orientation(source_affine), ornt_lib.axcodes2ornt("RAS"))
    data = np.ascontiguousarray(ornt_lib.apply_orientation(raw, to_ras), dtype=np.float32)
    return data, source_affine @ ornt_lib.inv_ornt_aff(to_ras, raw.shape[:3])


def usable_voxels(path: Path, raw: np.ndarray) -> tuple[np.ndarray, int]:
    """(voxels with NaN/inf set to 0, how many were), refusing an image with nothing to show."""
    finite = np.isfinite(raw)
    nonfinite = int(raw.size - np.count_nonzero(finite))
    if nonfinite == raw.size:
        raise _fail(path, "every voxel is NaN or infinite", "The file holds no usable image")
    if nonfinite:
        raw = np.where(finite, raw, np.float32(0))
    if not np.any(raw):
        raise _fail(path, "every voxel is zero", "The file holds no image (an empty mask or a failed export?)")
    return raw, nonfinite


def in_source_order(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """(voxels in the source file's own axis order, the file's affine): what a writer stores."""
    source_affine = volume.affine if volume.source_affine is None else volume.source_affine
    to_source = ornt_lib.ornt_transform(ornt_lib.axcodes2ornt("RAS"), ornt_lib.io_orientation(source_affine))
    data = np.ascontiguousarray(ornt_lib.apply_orientation(volume.data, to_source), dtype=np.float32)
    return data, source_affine


def load_volume(path, volume_index: int = 0, series: str | None = None) -> Volume:
    """Read a NIfTI-1/2 or Analyze image, or a DICOM series (a folder, or one multi-frame file).

    4D files give volume `volume_index` (first by default). `series` picks one series of a DICOM
    folder that holds several, by its SeriesNumber or SeriesInstanceUID.
    """
    path = Path(path)
    from mri_style_app.imaging import dicom  # it builds on this module

    if path.is_dir() or dicom.is_dicom_file(path):
        return dicom.load_series(path, series)
    _check_file(path)
    img = _open_image(path)
    header = img.header
    dtype = header.get_data_dtype()
    if dtype.kind == "c":
        raise _fail(path, f"holds complex numbers ({dtype})", "Save the magnitude image and open that")
    if dtype.kind not in "biuf":
        raise _fail(
            path,
            f"holds data of type {dtype} (for example RGB), not scalar intensities",
            "Convert it to a scalar (grey-level) image first",
        )
    shape3, n_volumes = _spatial_shape(path, tuple(int(d) for d in img.shape))
    if not 0 <= volume_index < n_volumes:
        raise _fail(
            path,
            f"has {n_volumes} volume(s); volume {volume_index} does not exist",
            f"Choose a volume from 0 to {n_volumes - 1}",
        )

    needed = int(np.prod(shape3, dtype=np.int64)) * 4
    if needed > MEMORY_SHARE_LIMIT * _available_memory_bytes():
        raise _fail(
            path,
            f"one volume needs {needed / 1024**3:.1f} GiB of memory, more than this computer can spare",
            "Crop or downsample it first",
        )
    # The data file must hold what the header promises (every volume, not just the first).
    data_file = Path(img.file_map["image"].filename)
    promised = int(header.get_data_offset()) + int(np.prod(img.shape, dtype=np.int64)) * dtype.itemsize
    gz = data_file.name.lower().endswith(".gz")
    actual = _verify_gzip(data_file) if gz else data_file.stat().st_size
    if promised > actual:
        raise _fail(
            data_file,
            f"is truncated: the header promises {promised} bytes of image but the file "
            f"{'unpacks to' if gz else 'has'} {actual}",
            "Get the file again; it may be an interrupted download or copy",
        )

    try:
        proxy = img.dataobj
        if n_volumes > 1:
            raw = proxy[:, :, :, volume_index]
            while raw.ndim > 3:
                raw = raw[..., 0]
        else:
            raw = np.asanyarray(proxy)
        raw = np.asarray(raw, dtype=np.float32).reshape(shape3)  # applies scl_slope/inter
    except MemoryError:
        raise _fail(
            path, "there is not enough memory to read the data", "Close other programs or crop the image"
        ) from None
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())  # nibabel's messages span lines; ours is one
        raise _fail(path, f"the image data is truncated or damaged ({detail})", "Get the file again") from None

    raw, nonfinite = usable_voxels(path, raw)

    source_affine = img.affine.copy()
    if not np.all(np.isfinite(source_affine)) or abs(np.linalg.det(source_affine[:3, :3])) < 1e-12:
        raise _fail(path, "the voxel-to-world matrix is invalid (singular or not finite)", "The header is damaged")
    data, affine = to_canonical(raw, source_affine)

    name = path.name
    for suffix in (".nii.gz", ".nii", ".hdr", ".img"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    # nibabel moves scl_slope/inter from the header into the data proxy; keep them for `info`.
    slope, inter = getattr(img.dataobj, "slope", 1.0), getattr(img.dataobj, "inter", 0.0)
    return Volume(
        data=data,
        affine=affine,
        name=name,
        source_path=path.resolve(),
        source_affine=source_affine,
        source_header=header.copy(),
        source_shape=tuple(int(d) for d in img.shape),
        n_volumes=n_volumes,
        volume_index=volume_index,
        nonfinite_count=nonfinite,
        extra={"scaling": (float(slope), float(inter))},
    )


def _write_gzipped(img: nib.Nifti1Image | nib.Nifti2Image, path: str) -> None:
    """`img` as a gzipped NIfTI file. ISA-L's gzip at level 1 compresses a float32 translation
    about ten times faster than zlib's level 1 (nibabel's), into a slightly smaller file. Like
    nibabel's, the gzip header holds no file name and no time."""
    with (
        open(path, "wb") as raw,
        igzip.IGzipFile(filename="", mode="wb", compresslevel=1, fileobj=raw, mtime=0) as stream,
    ):
        img.to_file_map({"image": FileHolder(fileobj=stream)})


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _protected_paths(volume: Volume) -> list[Path]:
    """The files a save must never replace: the source, and both halves of an Analyze pair."""
    paths = []
    for source in (volume.source_path, volume.extra.get("derived_from")):
        if source:
            source = Path(source)
            paths.append(source)
            for a, b in ((".hdr", ".img"), (".img", ".hdr")):
                if source.suffix.lower() == a:
                    paths.append(source.with_suffix(b))
    return paths


def save_volume(volume: Volume, path) -> Path:
    """Write `volume` as NIfTI in its source file's own axis order, affine, qform/sform and units.

    The write goes to a temporary file in the target folder that is renamed into place, so a
    crash never leaves half a file. The file the volume came from is never overwritten.
    """
    path = Path(path)
    lower = path.name.lower()
    if not (lower.endswith(".nii") or lower.endswith(".nii.gz")):
        raise VolumeError(f"{path}: can only save NIfTI (.nii or .nii.gz). Choose a name ending in .nii.gz")
    for protected in _protected_paths(volume):
        if _same_file(path, protected):
            raise VolumeError(
                f"{path}: this is the file the volume was loaded from and it is never overwritten. Choose another name"
            )
    if not path.parent.exists():
        raise VolumeError(f"{path}: the folder {path.parent} does not exist. Choose an existing folder")

    data, source_affine = in_source_order(volume)
    source_header = volume.source_header
    if isinstance(source_header, nib.Nifti2Header):
        img = nib.Nifti2Image(data, source_affine, header=source_header)
    elif isinstance(source_header, nib.Nifti1Header):
        img = nib.Nifti1Image(data, source_affine, header=source_header)
    else:  # Analyze source or made in memory: NIfTI-1 with the geometry set from the affine
        img = nib.Nifti1Image(data, source_affine)
        img.header.set_xyzt_units("mm")
    if isinstance(source_header, (nib.Nifti1Header, nib.Nifti2Header)):
        qform, qcode = source_header.get_qform(coded=True)
        sform, scode = source_header.get_sform(coded=True)
        img.set_qform(qform if qform is not None else source_affine, int(qcode))
        img.set_sform(sform if sform is not None else source_affine, int(scode))
        img.header.set_xyzt_units(*source_header.get_xyzt_units())
    img.set_data_dtype(np.float32)
    img.header["scl_slope"] = np.nan
    img.header["scl_inter"] = np.nan

    compress = lower.endswith(".gz")

    def write(tmp: str) -> None:
        if compress:
            _write_gzipped(img, tmp)
        else:
            nib.save(img, tmp)

    try:
        return write_atomically(path, write, suffix=".tmp.nii.gz" if compress else ".tmp.nii")
    except OSError as exc:
        raise VolumeError(f"{path}: could not be written ({exc}). Check free disk space and permissions") from None
