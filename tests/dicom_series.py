"""DICOM series written with pydicom alone, from real volumes, for the DICOM tests.

Independent of the app's own DICOM writer: each series resamples a RAS volume onto a slice grid
of its own (any orientation, pixel and slice spacing), so the tests know the truth voxel by voxel.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

LPS = np.diag([-1.0, -1.0, 1.0])
MR = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"


def rotation(axis: str, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = {"x": (1, 2), "y": (0, 2), "z": (0, 1)}[axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


# Row and column direction cosines (LPS) of the usual acquisition planes.
PLANES = {
    "axial": (np.array([1.0, 0, 0]), np.array([0, 1.0, 0])),
    "sagittal": (np.array([0, 1.0, 0]), np.array([0, 0, -1.0])),
    "coronal": (np.array([1.0, 0, 0]), np.array([0, 0, -1.0])),
}


@dataclass
class SeriesSpec:
    plane: str = "axial"
    tilt: tuple[str, float] | None = None  # ("x", 12.0): rotate the slice plane about an LPS axis
    pixel_spacing: tuple[float, float] = (2.0, 2.0)  # (between rows, between columns)
    slice_spacing: float = 2.0
    size: tuple[int, int, int] = (96, 112, 80)  # (columns, rows, slices)
    slope: float = 1.0
    intercept: float = 0.0
    shuffle: bool = True
    multiframe: bool = False
    transfer_syntax: str | None = None  # compress with pydicom (RLE Lossless, JPEG 2000 Lossless ...)
    series_number: int = 3
    description: str = "T1w test"


@dataclass
class WrittenSeries:
    folder: Path
    truth: np.ndarray  # (columns, rows, slices) intensities after rescale
    lps_affine: np.ndarray  # 4x4 voxel (column, row, slice) -> LPS mm
    files: list[Path]
    study_uid: str
    for_uid: str
    series_uid: str


def _grid(data: np.ndarray, affine: np.ndarray, spec: SeriesSpec) -> tuple[np.ndarray, np.ndarray]:
    row, col = PLANES[spec.plane]
    if spec.tilt:
        rot = rotation(*spec.tilt)
        row, col = rot @ row, rot @ col
    normal = np.cross(row, col)
    ncol, nrow, nslice = spec.size
    centre_ras = affine[:3, :3] @ ((np.array(data.shape) - 1) / 2) + affine[:3, 3]
    centre = LPS @ centre_ras
    lps = np.eye(4)
    lps[:3, 0] = row * spec.pixel_spacing[1]
    lps[:3, 1] = col * spec.pixel_spacing[0]
    lps[:3, 2] = normal * spec.slice_spacing
    lps[:3, 3] = centre - lps[:3, :3] @ ((np.array(spec.size) - 1) / 2)
    ii, jj, kk = np.meshgrid(np.arange(ncol), np.arange(nrow), np.arange(nslice), indexing="ij")
    points = lps @ np.stack([ii.ravel(), jj.ravel(), kk.ravel(), np.ones(ii.size)])
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ points
    voxels = np.linalg.inv(affine) @ ras
    values = ndimage.map_coordinates(data, voxels[:3], order=1, mode="constant", cval=0.0)
    return values.reshape(spec.size).astype(np.float32), lps


def _common(spec: SeriesSpec, study_uid: str, for_uid: str, series_uid: str) -> Dataset:
    ds = Dataset()
    ds.PatientName = "Test^Patient"
    ds.PatientID = "MRISTYLE-0001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = for_uid
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", "A1"
    ds.ReferringPhysicianName = ""
    ds.Modality = "MR"
    ds.SeriesNumber = spec.series_number
    ds.SeriesDescription = spec.description
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.Rows, ds.Columns = spec.size[1], spec.size[0]
    return ds


def _save(ds: Dataset, path: Path, sop_class: str, syntax: str | None) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    if syntax:
        ds.compress(syntax)
    ds.save_as(path, enforce_file_format=True)


def write_series(folder, data: np.ndarray, affine: np.ndarray, spec: SeriesSpec, seed: int = 0) -> WrittenSeries:
    """Resample `data` (RAS voxels, `affine`) onto `spec`'s grid and write it as a DICOM series."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    truth, lps = _grid(data, affine, spec)
    stored = np.round((truth - spec.intercept) / spec.slope).astype(np.int16)
    truth = stored.astype(np.float32) * np.float32(spec.slope) + np.float32(spec.intercept)
    study_uid, for_uid, series_uid = generate_uid(), generate_uid(), generate_uid()
    order = list(range(spec.size[2]))
    if spec.shuffle:
        rng.shuffle(order)
    files = []
    if spec.multiframe:
        ds = _common(spec, study_uid, for_uid, series_uid)
        ds.SOPClassUID, ds.SOPInstanceUID = ENHANCED_MR, generate_uid()
        ds.NumberOfFrames = spec.size[2]
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
        shared = Dataset()
        measures, orient, rescale = Dataset(), Dataset(), Dataset()
        measures.PixelSpacing = list(spec.pixel_spacing)
        measures.SliceThickness = spec.slice_spacing * 0.8  # thickness is not the step: never read as one
        orient.ImageOrientationPatient = [
            *(lps[:3, 0] / np.linalg.norm(lps[:3, 0])),
            *(lps[:3, 1] / np.linalg.norm(lps[:3, 1])),
        ]
        rescale.RescaleSlope, rescale.RescaleIntercept, rescale.RescaleType = spec.slope, spec.intercept, "US"
        shared.PixelMeasuresSequence = [measures]
        shared.PlaneOrientationSequence = [orient]
        shared.PixelValueTransformationSequence = [rescale]
        ds.SharedFunctionalGroupsSequence = [shared]
        per_frame = []
        for n, k in enumerate(order):
            group, plane, content = Dataset(), Dataset(), Dataset()
            plane.ImagePositionPatient = list(lps[:3, :] @ np.array([0.0, 0.0, k, 1.0]))
            content.InStackPositionNumber = n + 1  # deliberately not the slice order
            group.PlanePositionSequence = [plane]
            group.FrameContentSequence = [content]
            per_frame.append(group)
        ds.PerFrameFunctionalGroupsSequence = per_frame
        ds.PixelData = np.ascontiguousarray(np.stack([stored[:, :, k].T for k in order])).tobytes()
        path = folder / "enhanced.dcm"
        _save(ds, path, ENHANCED_MR, spec.transfer_syntax)
        files.append(path)
    else:
        for n, k in enumerate(order):
            ds = _common(spec, study_uid, for_uid, series_uid)
            ds.SOPClassUID, ds.SOPInstanceUID = MR, generate_uid()
            ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
            ds.InstanceNumber = n + 1  # deliberately not the slice order
            ds.ImagePositionPatient = list(lps[:3, :] @ np.array([0.0, 0.0, k, 1.0]))
            ds.ImageOrientationPatient = [
                *(lps[:3, 0] / np.linalg.norm(lps[:3, 0])),
                *(lps[:3, 1] / np.linalg.norm(lps[:3, 1])),
            ]
            ds.PixelSpacing = list(spec.pixel_spacing)
            ds.SliceThickness = spec.slice_spacing * 0.8  # thickness is not the step: never read as one
            ds.RescaleSlope, ds.RescaleIntercept = spec.slope, spec.intercept
            ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
            name = f"{rng.getrandbits(40):010x}" if spec.shuffle else f"IM{n:04d}"
            path = folder / name
            _save(ds, path, MR, spec.transfer_syntax)
            files.append(path)
    return WrittenSeries(folder, truth, lps, files, study_uid, for_uid, series_uid)


def ras_affine(written: WrittenSeries) -> np.ndarray:
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ written.lps_affine


def read(path) -> Dataset:
    return pydicom.dcmread(path)
