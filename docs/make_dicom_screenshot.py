"""Regenerate docs/screenshots/dicom_series_list.png and dicom_series.png.

    .venv/bin/python docs/make_dicom_screenshot.py

Runs offscreen. Writes a small DICOM study from the demo volumes with pydicom (an oblique
sagittal T1w at 1 mm, an axial T2w at 2 mm, a coronal T1w at 1.5 mm; one file per slice,
shuffled names, as a scanner export looks), opens its folder in the real main window, grabs the
list of series it offers, chooses the sagittal T1w and grabs the window with the series open.
offscreen has no window decorations, so the window's own title is drawn above the grab.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402
from PySide6.QtCore import QRect, Qt  # noqa: E402
from PySide6.QtGui import QColor, QFont, QImage, QPainter  # noqa: E402
from scipy import ndimage  # noqa: E402

from mri_style_app import paths  # noqa: E402
from mri_style_app.imaging.volume import load_volume  # noqa: E402
from mri_style_app.ui.app import create_application, create_main_window  # noqa: E402

sys.path.insert(0, str(REPO / "docs"))
import make_screenshots  # noqa: E402  (its wait_for and settle)

OUT = REPO / "docs" / "screenshots"
SIZE = (1500, 960)
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])
# Row and column directions (LPS) of each plane, as scanners write them.
PLANES = {
    "axial": ((1.0, 0, 0), (0, 1.0, 0)),
    "sagittal": ((0, 1.0, 0), (0, 0, -1.0)),
    "coronal": ((1.0, 0, 0), (0, 0, -1.0)),
}
CROSSHAIR_MM = (-12.0, 4.0, 10.0)


def _yaw(degrees: float) -> np.ndarray:
    """A turn about the patient's head-feet axis: a sagittal slab turned towards the face."""
    a = np.radians(degrees)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def write_series(folder, volume, plane, size, spacing, number, description, study, yaw=0.0, seed=0) -> None:
    """Resample `volume` (RAS) onto a slice grid (size = columns, rows, slices; isotropic
    `spacing` mm) centred on the head, and write it as one MR file per slice."""
    folder.mkdir(parents=True)
    row, col = (_yaw(yaw) @ np.array(v) for v in PLANES[plane])
    normal = np.cross(row, col)
    lps = np.eye(4)
    lps[:3, :3] = np.column_stack([row, col, normal]) * spacing
    centre = RAS_TO_LPS @ (volume.affine[:3, :3] @ ((np.array(volume.shape) - 1) / 2) + volume.affine[:3, 3])
    lps[:3, 3] = centre - lps[:3, :3] @ ((np.array(size) - 1) / 2)
    grid = np.stack(np.meshgrid(*(np.arange(n) for n in size), indexing="ij"), axis=0).reshape(3, -1)
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps @ np.vstack([grid, np.ones(grid.shape[1])])
    voxels = np.linalg.inv(volume.affine) @ ras
    values = ndimage.map_coordinates(volume.data, voxels[:3], order=1, cval=0.0).reshape(size)
    slope = max(float(values.max()), 1e-6) / 4000.0  # 12-bit values, as an MR scanner stores them
    stored = np.round(values / slope).astype(np.int16)
    series_uid = generate_uid()
    rng = random.Random(seed)
    for k in range(size[2]):
        ds = Dataset()
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Demo^Head", "MRISTYLE-DEMO", "", "O"
        ds.StudyInstanceUID, ds.FrameOfReferenceUID = study
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", ""
        ds.StudyDescription, ds.ReferringPhysicianName = "MRI Style demo head", ""
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = series_uid, number, description
        ds.SOPClassUID, ds.SOPInstanceUID = MR_IMAGE, generate_uid()
        ds.Modality, ds.ImageType, ds.InstanceNumber = "MR", ["ORIGINAL", "PRIMARY", "M", "NONE"], k + 1
        ds.ImagePositionPatient = [float(v) for v in lps[:3, :] @ np.array([0.0, 0.0, k, 1.0])]
        ds.ImageOrientationPatient = [float(v) for v in (*row, *col)]
        ds.PixelSpacing, ds.SliceThickness = [spacing, spacing], spacing
        ds.RescaleSlope, ds.RescaleIntercept = slope, 0.0
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.Rows, ds.Columns = size[1], size[0]
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = MR_IMAGE, ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.save_as(folder / f"{rng.getrandbits(40):010x}", enforce_file_format=True)


def with_title(image: QImage, title: str) -> QImage:
    """`image` under a plain title bar that shows `title`."""
    bar = 32
    out = QImage(image.width(), image.height() + bar, QImage.Format.Format_RGB32)
    out.fill(QColor("#2b2b2b"))
    painter = QPainter(out)
    painter.drawImage(0, bar, image)
    painter.setPen(QColor("#f0f0f0"))
    font = QFont()
    font.setPointSize(11)
    painter.setFont(font)
    painter.drawText(QRect(0, 0, image.width(), bar), Qt.AlignmentFlag.AlignCenter, title)
    painter.end()
    return out


def main() -> int:
    t1, t2 = load_volume(paths.demo_t1_path()), load_volume(paths.demo_t2_path())
    study_folder = Path(tempfile.mkdtemp(prefix="mri-style-")) / "demo-study"
    study = (generate_uid(), generate_uid())
    write_series(study_folder / "s3", t1, "sagittal", (180, 200, 150), 1.0, 3, "T1w MPRAGE sag 1mm", study, yaw=12)
    write_series(study_folder / "s4", t2, "axial", (96, 112, 70), 2.0, 4, "T2w TSE ax 2mm", study, seed=1)
    write_series(study_folder / "s5", t1, "coronal", (128, 120, 150), 1.5, 5, "T1w cor 1.5mm", study, seed=2)

    create_application()
    window = create_main_window([study_folder])
    window.resize(*SIZE)
    make_screenshots.wait_for(lambda: window.series_dialog is not None, "the series list", timeout_s=120)
    dialog = window.series_dialog
    make_screenshots.settle()
    OUT.mkdir(parents=True, exist_ok=True)
    with_title(dialog.grab().toImage(), dialog.windowTitle()).save(str(OUT / "dicom_series_list.png"))

    dialog.select_row(0)
    dialog.accept()
    make_screenshots.wait_for(lambda: window.current_volume is not None, "the sagittal series", timeout_s=120)
    make_screenshots.settle(10)
    window.viewer.reset_view()
    window.viewer.set_crosshair_world(CROSSHAIR_MM)
    make_screenshots.settle(10)
    status = window.statusBar().currentMessage()
    with_title(window.grab().toImage(), window.windowTitle()).save(str(OUT / "dicom_series.png"))
    window.close()
    print(f"wrote {OUT / 'dicom_series_list.png'} and {OUT / 'dicom_series.png'}")
    print(f"title: {window.windowTitle()}\nstatus: {status}")
    shutil.rmtree(study_folder.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
