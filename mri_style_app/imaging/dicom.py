"""DICOM series: find them in a folder, build a Volume from their headers, write a derived series.

Qt-free and torch-free. The geometry comes from the headers alone, never from file names or
InstanceNumber: slices are sorted by ImagePositionPatient along the slice normal, the slice step
is taken from those positions (not SliceThickness), and DICOM's LPS patient space is turned into
RAS exactly (x and y negated). RescaleSlope and RescaleIntercept are applied per slice. Classic
single-frame series and enhanced multi-frame files go through the same code: each image frame
is one `Frame`.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mri_style_app import __version__
from mri_style_app.imaging.volume import Volume, VolumeError, in_source_order, to_canonical, usable_voxels

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
# Direction cosines and pixel spacings that differ by less than this are the same.
ORIENTATION_TOLERANCE = 1e-4
# A slice step that differs from the series' usual step by more than this share means a slice
# is missing (or extra): the volume would be drawn stretched, so it is refused.
SPACING_TOLERANCE = 0.05
# Objects that are DICOM but not images, by SOP Class UID prefix, named for the messages.
NON_IMAGE_KINDS = {
    "1.2.840.10008.5.1.4.1.1.88.": "a structured report",
    "1.2.840.10008.5.1.4.1.1.11.": "a presentation state",
    "1.2.840.10008.5.1.4.1.1.66": "a registration or segmentation object",
    "1.2.840.10008.5.1.4.1.1.104.": "an encapsulated document",
    "1.2.840.10008.5.1.4.1.1.481.": "a radiotherapy object",
    "1.2.840.10008.5.1.4.1.1.7": "a secondary capture",
}
# Transfer syntaxes whose pixel data needs a codec plugin, with the package that brings it.
CODEC_PACKAGES = {
    "1.2.840.10008.1.2.4.57": ("JPEG Lossless", "pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.70": ("JPEG Lossless", "pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.50": ("JPEG Baseline", "pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.51": ("JPEG Extended", "pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.80": ("JPEG-LS Lossless", "pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.81": ("JPEG-LS", "pylibjpeg-libjpeg"),
    "1.2.840.10008.1.2.4.90": ("JPEG 2000 Lossless", "pylibjpeg-openjpeg"),
    "1.2.840.10008.1.2.4.91": ("JPEG 2000", "pylibjpeg-openjpeg"),
    "1.2.840.10008.1.2.5": ("RLE Lossless", "pylibjpeg-rle"),
}


def _fail(path: Path, problem: str, advice: str) -> VolumeError:
    return VolumeError(f"{path}: {problem}. {advice}")


def is_dicom_file(path: Path) -> bool:
    """Whether `path` is a file with the DICOM Part 10 preamble ("DICM" at byte 128)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


# ---------------------------------------------------------------- what a folder holds
@dataclass
class Frame:
    """One 2D image of a series: where it lies and how its stored values become intensities."""

    path: Path
    index: int | None  # frame number in a multi-frame file, None for a single-frame file
    position: np.ndarray  # ImagePositionPatient, LPS mm: the centre of the first pixel
    row_cosine: np.ndarray  # direction of increasing column index (LPS)
    column_cosine: np.ndarray  # direction of increasing row index (LPS)
    pixel_spacing: tuple[float, float]  # (between rows, between columns) in mm
    shape: tuple[int, int]  # (rows, columns)
    slope: float = 1.0
    intercept: float = 0.0
    sop_instance_uid: str = ""
    sop_class_uid: str = ""


@dataclass
class Series:
    """One image series of a folder, as its headers describe it."""

    uid: str
    number: int | None
    description: str
    modality: str
    frames: list[Frame] = field(default_factory=list)
    header: Dataset | None = None  # the first file's header, without pixel data

    @property
    def n_slices(self) -> int:
        return len(self.frames)

    @property
    def orientation(self) -> str:
        """axial, sagittal or coronal by the slice normal's main axis; oblique past 10 degrees."""
        if not self.frames:
            return "unknown"
        normal = np.cross(self.frames[0].row_cosine, self.frames[0].column_cosine)
        axis = int(np.argmax(np.abs(normal)))
        name = ("sagittal", "coronal", "axial")[axis]
        return name if abs(normal[axis]) >= np.cos(np.radians(10)) else f"oblique (near {name})"

    @property
    def image_size(self) -> str:
        rows, cols = self.frames[0].shape if self.frames else (0, 0)
        return f"{cols} x {rows}"

    def summary(self) -> str:
        """One line for lists: number, description, slices, orientation, size."""
        number = "-" if self.number is None else str(self.number)
        description = self.description or "(no description)"
        return (
            f"{number:>4}  {description}  ({self.n_slices} slices, {self.orientation}, {self.image_size}, "
            f"{self.modality})  UID {self.uid}"
        )


@dataclass
class FolderScan:
    """Everything a folder holds: the image series, what is DICOM but not an image, and junk."""

    folder: Path
    series: list[Series]
    non_images: list[tuple[Path, str]]  # (file, what it is)
    unreadable: list[tuple[Path, str]]  # DICOM files whose header cannot be read (file, why)
    ignored: int  # files that are not DICOM at all

    def choose(self, which: str | None) -> Series:
        """The series `which` names (SeriesNumber or SeriesInstanceUID), or the only one."""
        if not self.series:
            raise self._no_images()
        if which is None:
            if len(self.series) == 1:
                return self.series[0]
            raise SeriesChoiceError(self.folder, self.series)
        by_uid = [s for s in self.series if which == s.uid]
        by_number = [s for s in self.series if s.number is not None and which.strip() == str(s.number)]
        if len(by_uid) == 1 or len(by_number) == 1:
            return (by_uid or by_number)[0]
        if by_number:
            raise SeriesChoiceError(
                self.folder, self.series, f"has {len(by_number)} series numbered {which}; give the UID"
            )
        raise SeriesChoiceError(self.folder, self.series, f"has no series {which!r}")

    def check_complete(self) -> None:
        """Refuse a folder with a damaged DICOM file: the series it belongs to would miss a slice."""
        if self.unreadable:
            path, why = self.unreadable[0]
            more = f" (and {len(self.unreadable) - 1} more)" if len(self.unreadable) > 1 else ""
            raise _fail(path, f"is a truncated or damaged DICOM file{more}: {why}", "Get the series again")

    def _no_images(self) -> VolumeError:
        if self.non_images:
            kinds = sorted({kind for _, kind in self.non_images})
            return _fail(
                self.folder,
                f"holds {len(self.non_images)} DICOM object(s) but no image ({', '.join(kinds)})",
                "Choose the folder of an image series",
            )
        return _fail(
            self.folder,
            "is a folder with no DICOM images" + (f" ({self.ignored} other files)" if self.ignored else ""),
            "Choose a folder that holds a DICOM series, or a .nii, .nii.gz or .hdr/.img file",
        )


class SeriesChoiceError(VolumeError):
    """A folder holds several series and none (or an unknown one) was chosen; `series` lists them."""

    def __init__(self, folder: Path, series: list[Series], problem: str | None = None):
        self.folder, self.series = folder, series
        problem = problem or f"holds {len(series)} image series"
        listing = "\n".join(s.summary() for s in series)
        super().__init__(f"{folder}: {problem}; choose one with --series N (its number or UID):\n{listing}")


def _floats(value, n: int) -> np.ndarray | None:
    try:
        out = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return out if out.shape == (n,) and np.all(np.isfinite(out)) else None


def _first(groups: list[Dataset], keyword: str):
    """The first item of sequence `keyword` found in the given functional groups (per-frame first)."""
    for group in groups:
        seq = getattr(group, keyword, None) if group is not None else None
        if seq:
            return seq[0]
    return None


def _frame(path: Path, index: int | None, groups: list[Dataset], shape: tuple[int, int], ds: Dataset) -> Frame:
    """A Frame from the datasets that hold its attributes (functional groups, then the file)."""
    plane = _first(groups, "PlanePositionSequence") or ds
    orient = _first(groups, "PlaneOrientationSequence") or ds
    measures = _first(groups, "PixelMeasuresSequence") or ds
    rescale = _first(groups, "PixelValueTransformationSequence") or ds
    position = _floats(getattr(plane, "ImagePositionPatient", None), 3)
    cosines = _floats(getattr(orient, "ImageOrientationPatient", None), 6)
    spacing = _floats(getattr(measures, "PixelSpacing", None), 2)
    where = path.name if index is None else f"{path.name} frame {index + 1}"
    if position is None or cosines is None:
        raise _fail(
            path,
            f"{where} has no usable ImagePositionPatient/ImageOrientationPatient, so its place in the head is unknown",
            "Export the series again with its geometry (a screen capture cannot be shown in 3D)",
        )
    row, col = cosines[:3], cosines[3:]
    if abs(np.linalg.norm(row) - 1) > 1e-2 or abs(np.linalg.norm(col) - 1) > 1e-2 or abs(row @ col) > 1e-2:
        raise _fail(path, f"{where} has an invalid ImageOrientationPatient {list(cosines)}", "The header is damaged")
    if spacing is None or np.any(spacing <= 0):
        spacing = np.array([1.0, 1.0])  # no PixelSpacing: DICOM says the size is then unknown; 1 mm as dcm2niix
    slope = float(getattr(rescale, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(rescale, "RescaleIntercept", 0.0) or 0.0)
    return Frame(
        path=path,
        index=index,
        position=position,
        row_cosine=row / np.linalg.norm(row),
        column_cosine=col / np.linalg.norm(col),
        pixel_spacing=(float(spacing[0]), float(spacing[1])),
        shape=shape,
        slope=slope,
        intercept=intercept,
        sop_instance_uid=str(getattr(ds, "SOPInstanceUID", "")),
        sop_class_uid=str(getattr(ds, "SOPClassUID", "")),
    )


def _frames_of(path: Path, ds: Dataset) -> list[Frame]:
    shape = (int(ds.Rows), int(ds.Columns))
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    shared = getattr(ds, "SharedFunctionalGroupsSequence", None)
    shared = shared[0] if shared else None
    per_frame = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
    if n_frames == 1 and per_frame is None:
        return [_frame(path, None, [shared], shape, ds)]
    if per_frame is not None and len(per_frame) != n_frames:
        raise _fail(
            path,
            f"says it has {n_frames} frames but describes {len(per_frame)}",
            "The file is damaged; export it again",
        )
    return [_frame(path, i, [per_frame[i] if per_frame else None, shared], shape, ds) for i in range(n_frames)]


def _non_image_kind(ds: Dataset) -> str | None:
    """What a DICOM object is when it is not an image, or None for an image."""
    sop_class = str(getattr(ds, "SOPClassUID", ""))
    for prefix, kind in NON_IMAGE_KINDS.items():
        if sop_class.startswith(prefix):
            return kind
    if not getattr(ds, "Rows", None) or not getattr(ds, "Columns", None):  # the pixels themselves are not read
        if "Image Storage" in pydicom.uid.UID(sop_class).name:
            raise ValueError("an image whose header stops before its size: the file is cut short")
        return f"a {getattr(ds, 'Modality', None) or 'DICOM'} object without an image"
    if int(getattr(ds, "SamplesPerPixel", 1) or 1) != 1:
        return "a colour image"
    return None


def _candidate_files(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(Path(root) / name for name in sorted(names) if not name.startswith("."))
    return files


def scan_folder(folder) -> FolderScan:
    """The series in `folder` and its subfolders, from their headers (pixel data is not read)."""
    folder = Path(folder)
    if not folder.exists():
        raise _fail(folder, "no such file or folder", "Check the path and try again")
    if not os.access(folder, os.R_OK | (os.X_OK if folder.is_dir() else 0)):
        raise _fail(folder, "cannot be read (permission denied)", "Check the folder's permissions")
    paths = [folder] if folder.is_file() else _candidate_files(folder)
    by_uid: dict[str, Series] = {}
    non_images, unreadable, ignored = [], [], 0
    for path in paths:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:
            ignored += 1  # not DICOM (a README, a DICOMDIR-less viewer's files...): ignored
            continue
        except Exception as exc:  # pydicom raises many types for a damaged header
            if is_dicom_file(path):
                unreadable.append((path, " ".join(str(exc).split()) or type(exc).__name__))
            else:
                ignored += 1
            continue
        if getattr(ds, "file_meta", None) is not None and str(getattr(ds.file_meta, "MediaStorageSOPClassUID", "")) == (
            "1.2.840.10008.1.3.10"
        ):
            ignored += 1  # a DICOMDIR index
            continue
        try:
            kind = _non_image_kind(ds)
        except ValueError as exc:
            unreadable.append((path, str(exc)))
            continue
        if kind is not None:
            non_images.append((path, kind))
            continue
        try:
            frames = _frames_of(path, ds)
        except VolumeError:
            non_images.append((path, "an image without patient geometry (a screen capture?)"))
            continue
        except (AttributeError, TypeError, ValueError) as exc:
            unreadable.append((path, f"incomplete image header: {exc}"))
            continue
        uid = str(getattr(ds, "SeriesInstanceUID", "")) or f"no-uid:{path.parent}"
        series = by_uid.get(uid)
        if series is None:
            number = getattr(ds, "SeriesNumber", None)
            series = by_uid[uid] = Series(
                uid=uid,
                number=int(number) if number not in (None, "") else None,
                description=str(getattr(ds, "SeriesDescription", "") or ""),
                modality=str(getattr(ds, "Modality", "") or "?"),
                header=ds,
            )
        series.frames.extend(frames)
    series_list = sorted(by_uid.values(), key=lambda s: (s.number is None, s.number or 0, s.description))
    return FolderScan(folder, series_list, non_images, unreadable, ignored)


# ---------------------------------------------------------------- geometry and voxels
def _check_uniform(series: Series, folder: Path) -> None:
    first = series.frames[0]
    for frame in series.frames[1:]:
        if frame.shape != first.shape:
            raise _fail(
                folder,
                f"series {series.number} mixes image sizes ({first.shape[1]} x {first.shape[0]} in "
                f"{first.path.name}, {frame.shape[1]} x {frame.shape[0]} in {frame.path.name})",
                "A volume needs one image size: export the series again, or choose another series",
            )
        if np.abs(frame.row_cosine - first.row_cosine).max() > ORIENTATION_TOLERANCE or (
            np.abs(frame.column_cosine - first.column_cosine).max() > ORIENTATION_TOLERANCE
        ):
            raise _fail(
                folder,
                f"series {series.number} mixes slice orientations ({first.path.name} and {frame.path.name}: "
                "a localiser or several stacks in one series)",
                "Choose a series whose slices are parallel",
            )
        if np.abs(np.subtract(frame.pixel_spacing, first.pixel_spacing)).max() > ORIENTATION_TOLERANCE:
            raise _fail(
                folder,
                f"series {series.number} mixes pixel spacings ({first.pixel_spacing} and {frame.pixel_spacing})",
                "A volume needs one pixel size: export the series again",
            )


def series_geometry(series: Series, folder: Path) -> tuple[list[Frame], np.ndarray]:
    """(frames sorted along the slice normal, 4x4 voxel (column, row, slice) -> RAS mm affine)."""
    _check_uniform(series, folder)
    first = series.frames[0]
    normal = np.cross(first.row_cosine, first.column_cosine)
    frames = sorted(series.frames, key=lambda f: float(f.position @ normal))
    distances = np.array([f.position @ normal for f in frames])
    steps = np.diff(distances)
    if len(frames) > 1:
        typical = float(np.median(steps))
        if np.any(steps < 1e-3 * max(typical, 1e-3)):
            k = int(np.argmin(steps))
            repeats = len(frames) - len(np.unique(np.round(distances, 3)))
            raise _fail(
                folder,
                f"series {series.number} has {repeats + 1 if repeats else 2} images at one slice position "
                f"({frames[k].path.name} and {frames[k + 1].path.name}): several echoes, time points or "
                "a duplicated file",
                "Split the series by echo or time point (for example with dcm2niix), or remove the duplicate",
            )
        uneven = np.abs(steps - typical) > SPACING_TOLERANCE * typical
        if np.any(uneven):
            k = int(np.argmax(np.abs(steps - typical)))
            missing = int(round(steps[k] / typical)) - 1
            what = f"about {missing} slice(s) missing" if missing >= 1 else "unevenly spaced slices"
            raise _fail(
                folder,
                f"series {series.number} has {what}: {steps[k]:.2f} mm between {frames[k].path.name} and "
                f"{frames[k + 1].path.name} where the other slices are {typical:.2f} mm apart",
                "Copy the whole series again from the scanner or PACS",
            )
        step = (frames[-1].position - frames[0].position) / (len(frames) - 1)
    else:
        thickness = float(getattr(series.header, "SpacingBetweenSlices", 0) or 0) or float(
            getattr(series.header, "SliceThickness", 0) or 0
        )
        step = normal * (thickness if thickness > 0 else 1.0)
    row_spacing, column_spacing = first.pixel_spacing
    lps = np.eye(4)
    lps[:3, 0] = first.row_cosine * column_spacing
    lps[:3, 1] = first.column_cosine * row_spacing
    lps[:3, 2] = step
    lps[:3, 3] = frames[0].position
    return frames, LPS_TO_RAS @ lps


def _pixels(frames: list[Frame], folder: Path) -> np.ndarray:
    """(columns, rows, slices) float32 voxels with each frame's rescale applied."""
    rows, cols = frames[0].shape
    out = np.empty((cols, rows, len(frames)), dtype=np.float32)
    cache: dict[Path, np.ndarray] = {}
    for k, frame in enumerate(frames):
        stored = cache.get(frame.path)
        if stored is None:
            stored = _read_pixels(frame.path)
            if frame.index is not None:
                cache = {frame.path: stored}  # a multi-frame file is decoded once
        image = stored if frame.index is None else stored[frame.index] if stored.ndim == 3 else stored
        if image.shape != frame.shape:
            raise _fail(frame.path, f"its pixel data has shape {image.shape}, not {frame.shape}", "The file is damaged")
        out[:, :, k] = (image.astype(np.float32) * np.float32(frame.slope) + np.float32(frame.intercept)).T
    return out


def _read_pixels(path: Path) -> np.ndarray:
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise _fail(
            path, f"the file is truncated or damaged ({' '.join(str(exc).split())})", "Get the file again"
        ) from None
    syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ""))
    try:
        return ds.pixel_array
    except (RuntimeError, NotImplementedError) as exc:
        name, package = CODEC_PACKAGES.get(syntax, (syntax, None))
        if package and ("plugin" in str(exc).lower() or "missing" in str(exc).lower()):
            raise _fail(
                path,
                f"its pixel data is compressed as {name} and no decoder for it is installed",
                f"Install {package} (pip install {package}) beside MRI Style, or export the series uncompressed",
            ) from None
        raise _fail(
            path, f"its pixel data cannot be decoded ({' '.join(str(exc).split())})", "Get the file again"
        ) from None
    except (ValueError, AttributeError, KeyError, EOFError, OSError) as exc:
        raise _fail(
            path,
            f"its pixel data is truncated or damaged ({' '.join(str(exc).split())})",
            "Get the file again; it may be an interrupted copy",
        ) from None


@dataclass
class DicomSource:
    """What a volume read from DICOM keeps of its series: identifiers for a derived series."""

    folder: Path
    series: Series
    frames: list[Frame]  # sorted along the slice normal: frame k is the volume's file slice k

    def patient(self) -> dict:
        header = self.series.header
        return {
            "name": str(getattr(header, "PatientName", "") or ""),
            "id": str(getattr(header, "PatientID", "") or ""),
        }


def load_series(path, which: str | None = None) -> Volume:
    """A Volume from a DICOM series folder (or one multi-frame file); `which` picks a series."""
    path = Path(path)
    scan = scan_folder(path)
    scan.check_complete()
    series = scan.choose(which)
    frames, source_affine = series_geometry(series, path)
    raw, nonfinite = usable_voxels(path, _pixels(frames, path))
    data, affine = to_canonical(raw, source_affine)
    name = _safe_name(series.description) or path.name
    slopes = {(f.slope, f.intercept) for f in frames}
    return Volume(
        data=data,
        affine=affine,
        name=name,
        source_path=path.resolve(),
        source_affine=source_affine,
        source_header=None,
        source_shape=tuple(raw.shape),
        nonfinite_count=nonfinite,
        extra={
            "dicom": DicomSource(path.resolve(), series, frames),
            "scaling": slopes.pop() if len(slopes) == 1 else None,
        },
    )


def _safe_name(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text.strip())
    return keep.strip("_.")[:60]


# ---------------------------------------------------------------- writing
def _ds_number(value: float) -> str:
    return str(pydicom.valuerep.DSfloat(float(value), auto_format=True))


def _encode(data: np.ndarray) -> tuple[np.ndarray, float, float, int]:
    """(stored 16-bit values, slope, intercept, PixelRepresentation) for float voxels."""
    lo, hi = float(data.min()), float(data.max())
    if np.all(data == np.round(data)) and lo >= -32768 and hi <= 32767:
        return data.astype(np.int16), 1.0, 0.0, 1
    slope = (hi - lo) / 65535.0 if hi > lo else 1.0
    stored = np.clip(np.round((data - lo) / slope), 0, 65535).astype(np.uint16)
    return stored, slope, lo, 0


def write_series(
    volume: Volume,
    folder,
    description: str,
    derivation: str,
    overwrite: bool = False,
) -> Path:
    """Write `volume` as a DICOM MR series into `folder` (made here; it must not hold files).

    The slices follow the volume's source geometry (for a DICOM source, the source's slices one
    by one). A volume computed from a DICOM series is a derived series in the source's study:
    same patient, study and frame of reference, new series and instance UIDs, ImageType
    DERIVED\\SECONDARY. Anything else is a new study with empty patient fields. The files are
    written into a temporary folder beside `folder` that is renamed into place.
    """
    folder = Path(folder)
    source: DicomSource | None = volume.extra.get("dicom")
    origin = volume.source_path or volume.extra.get("derived_from")
    protected = [Path(origin).resolve()] if origin else []
    if source is not None:
        protected.append(source.folder)
    target = folder.resolve()
    for path in protected:
        if target == path or path in target.parents:
            raise VolumeError(
                f"{folder}: this is (inside) the source of the volume, which is never overwritten. Choose another folder"
            )
    if folder.exists() and not folder.is_dir():
        raise VolumeError(f"{folder}: is a file; a DICOM series is written into a folder. Choose a folder name")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise VolumeError(f"{folder}: the folder is not empty. Choose a new or empty folder for the DICOM series")
    if not folder.parent.is_dir():
        raise VolumeError(f"{folder}: the folder {folder.parent} does not exist. Choose an existing folder")

    data, file_affine = in_source_order(volume)
    stored, slope, intercept, signed = _encode(data)
    lps = np.linalg.inv(LPS_TO_RAS) @ file_affine
    col_step, row_step = lps[:3, 0], lps[:3, 1]
    row_cosine, column_cosine = col_step / np.linalg.norm(col_step), row_step / np.linalg.norm(row_step)
    normal = np.cross(row_cosine, column_cosine)
    pixel_spacing = [np.linalg.norm(row_step), np.linalg.norm(col_step)]
    slice_step = float(np.linalg.norm(lps[:3, 2]))
    n_slices = data.shape[2]
    frames = source.frames if source is not None and len(source.frames) == n_slices else None

    now = datetime.datetime.now()
    date, time_ = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    header = source.series.header if source is not None else None
    study_uid = str(getattr(header, "StudyInstanceUID", "")) or generate_uid()
    frame_of_reference = str(getattr(header, "FrameOfReferenceUID", "")) or generate_uid()
    series_uid = generate_uid()
    series_number = (int(getattr(header, "SeriesNumber", 0) or 0) + 1000) if header is not None else 1
    lo, hi = np.percentile(data, [0.5, 99.5]) if data.size else (0.0, 1.0)

    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        for k in range(n_slices):
            ds = Dataset()
            if header is not None:
                for keyword in (
                    "PatientName",
                    "PatientID",
                    "PatientBirthDate",
                    "PatientSex",
                    "PatientAge",
                    "PatientWeight",
                    "StudyDate",
                    "StudyTime",
                    "StudyID",
                    "StudyDescription",
                    "AccessionNumber",
                    "ReferringPhysicianName",
                    "InstitutionName",
                    "MagneticFieldStrength",
                ):
                    if keyword in header:
                        setattr(ds, keyword, header.data_element(keyword).value)
            for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID"):
                if keyword not in ds:
                    setattr(ds, keyword, "")
            for keyword, value in (("StudyDate", date), ("StudyTime", time_), ("ReferringPhysicianName", "")):
                if keyword not in ds:
                    setattr(ds, keyword, value)
            if "AccessionNumber" not in ds:
                ds.AccessionNumber = ""
            sop_uid = generate_uid()
            ds.SOPClassUID = MR_IMAGE_STORAGE
            ds.SOPInstanceUID = sop_uid
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.FrameOfReferenceUID = frame_of_reference
            ds.PositionReferenceIndicator = ""
            ds.Modality = "MR"
            ds.Manufacturer = "MRI Style"
            ds.SoftwareVersions = __version__
            ds.SeriesDate, ds.SeriesTime = date, time_
            ds.ContentDate, ds.ContentTime = date, time_
            ds.SeriesNumber = series_number
            ds.InstanceNumber = k + 1
            ds.SeriesDescription = description[:64]
            ds.DerivationDescription = derivation[:1024]
            ds.ImageType = ["DERIVED", "SECONDARY"]
            ds.ImageComments = "Synthetic image computed by MRI Style; not acquired"
            ds.BurnedInAnnotation = "NO"
            ds.ScanningSequence = "RM"  # research mode: no acquisition made these pixels
            ds.SequenceVariant = "NONE"
            ds.ScanOptions = ""
            ds.MRAcquisitionType = "3D"
            ds.EchoTime, ds.RepetitionTime, ds.EchoTrainLength = "", "", ""
            position = lps[:3, :] @ np.array([0.0, 0.0, k, 1.0])
            ds.ImagePositionPatient = [_ds_number(v) for v in position]
            ds.ImageOrientationPatient = [_ds_number(v) for v in (*row_cosine, *column_cosine)]
            ds.PixelSpacing = [_ds_number(v) for v in pixel_spacing]
            ds.SliceThickness = _ds_number(slice_step)
            ds.SpacingBetweenSlices = _ds_number(slice_step)
            ds.SliceLocation = _ds_number(normal @ position)
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows, ds.Columns = stored.shape[1], stored.shape[0]
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
            ds.PixelRepresentation = signed
            ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = _ds_number(slope), _ds_number(intercept), "US"
            ds.WindowCenter = _ds_number((lo + hi) / 2)
            ds.WindowWidth = _ds_number(max(hi - lo, 1e-6))
            if frames is not None and frames[k].sop_instance_uid:
                ref = Dataset()
                ref.ReferencedSOPClassUID = frames[k].sop_class_uid or MR_IMAGE_STORAGE
                ref.ReferencedSOPInstanceUID = frames[k].sop_instance_uid
                ds.SourceImageSequence = [ref]
            ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
            meta.MediaStorageSOPInstanceUID = sop_uid
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            meta.ImplementationVersionName = f"MRISTYLE_{__version__}"[:16]
            ds.file_meta = meta
            ds.save_as(tmp / f"IM{k + 1:05d}.dcm", enforce_file_format=True)
        _move_into_place(tmp, folder)
    except OSError as exc:
        raise VolumeError(f"{folder}: could not be written ({exc}). Check free disk space and permissions") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _move_into_place(tmp: Path, folder: Path) -> None:
    """Rename the finished series folder to `folder`; an earlier one there is removed only after."""
    if folder.is_dir():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
        os.rmdir(old)
        os.rename(folder, old)
        os.rename(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, folder)
