"""DICOM series in and out: geometry from the headers, held to the truth and to dcm2niix.

Every series is written by pydicom alone (tests/dicom_series.py) from the real demo volume, so the
expected voxels are known exactly; dcm2niix, the reference converter, must agree on each one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_series import SeriesSpec, ras_affine, read, write_series
from pydicom.uid import JPEG2000Lossless, RLELossless

from mri_style_app import paths
from mri_style_app.imaging import dicom
from mri_style_app.imaging.volume import Volume, VolumeError, load_volume, save_volume, to_canonical

DCM2NIIX = shutil.which("dcm2niix") or str(Path(sys.executable).with_name("dcm2niix"))

SERIES = {
    "axial, rescaled": SeriesSpec(slope=0.5, intercept=-10.0),
    "oblique anisotropic sagittal": SeriesSpec(
        plane="sagittal", tilt=("z", 15.0), pixel_spacing=(1.5, 1.2), slice_spacing=3.3, size=(100, 90, 40), slope=0.25
    ),
    "coronal, double oblique": SeriesSpec(
        plane="coronal", tilt=("x", -20.0), pixel_spacing=(1.1, 1.1), slice_spacing=2.5, size=(80, 70, 36)
    ),
    "enhanced multi-frame": SeriesSpec(plane="coronal", multiframe=True, size=(80, 70, 50), slope=2.0),
    "RLE Lossless": SeriesSpec(transfer_syntax=RLELossless, size=(64, 64, 30)),
    "JPEG 2000 Lossless": SeriesSpec(transfer_syntax=JPEG2000Lossless, size=(64, 64, 30), shuffle=False),
}


@pytest.fixture(scope="module")
def demo():
    return load_volume(paths.demo_t1_path())


@pytest.fixture(scope="module")
def written(demo, tmp_path_factory):
    root = tmp_path_factory.mktemp("dicom")
    return {
        name: write_series(root / f"s{i}", demo.data, demo.affine, spec)
        for i, (name, spec) in enumerate(SERIES.items())
    }


def dcm2niix(folder: Path, out: Path) -> Volume:
    out.mkdir()
    run = subprocess.run(
        [DCM2NIIX, "-z", "y", "-b", "n", "-f", "converted", "-o", str(out), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (nifti,) = out.glob("*.nii.gz")
    return load_volume(nifti)


@pytest.mark.parametrize("name", list(SERIES))
def test_series_geometry_matches_truth_and_dcm2niix(name, written, tmp_path):
    series = written[name]
    volume = load_volume(series.folder)
    truth, truth_affine = to_canonical(series.truth, ras_affine(series))
    assert volume.shape == truth.shape
    np.testing.assert_allclose(volume.affine, truth_affine, atol=1e-6)
    np.testing.assert_array_equal(volume.data, truth)  # every voxel, rescale applied
    reference = dcm2niix(series.folder, tmp_path / "nii")
    assert reference.shape == volume.shape
    np.testing.assert_allclose(volume.affine, reference.affine, atol=1e-4)
    np.testing.assert_allclose(volume.data, reference.data, atol=1e-4)


def test_slice_step_comes_from_positions_not_thickness(written):
    volume = load_volume(written["oblique anisotropic sagittal"].folder)
    header = read(written["oblique anisotropic sagittal"].files[0])
    assert float(header.SliceThickness) != pytest.approx(3.3)
    assert sorted(np.round(volume.voxel_sizes, 4)) == [1.2, 1.5, 3.3]
    assert volume.source_axcodes == "PIR"[:0] + volume.source_axcodes  # the file's own order is reported
    assert (
        dicom.scan_folder(written["oblique anisotropic sagittal"].folder)
        .series[0]
        .orientation.startswith("oblique (near sagittal)")
    )


def test_a_single_multiframe_file_opens_like_its_folder(written):
    series = written["enhanced multi-frame"]
    (file,) = series.files
    from_file, from_folder = load_volume(file), load_volume(series.folder)
    assert from_file.same_grid(from_folder)
    np.testing.assert_array_equal(from_file.data, from_folder.data)


def test_folder_with_several_series_lists_them_and_takes_a_choice(demo, tmp_path):
    a = write_series(
        tmp_path / "study" / "a",
        demo.data,
        demo.affine,
        SeriesSpec(size=(48, 48, 20), series_number=4, description="t1 axial"),
    )
    b = write_series(
        tmp_path / "study" / "b",
        demo.data,
        demo.affine,
        SeriesSpec(plane="sagittal", size=(40, 40, 16), series_number=7, description="t1 sag"),
    )
    with pytest.raises(dicom.SeriesChoiceError) as caught:
        load_volume(tmp_path / "study")
    message = str(caught.value)
    assert "holds 2 image series" in message and "--series" in message
    assert "t1 axial" in message and "20 slices" in message and "sagittal" in message and "48 x 48" in message
    assert [s.number for s in caught.value.series] == [4, 7]
    assert load_volume(tmp_path / "study", series="7").shape == load_volume(b.folder).shape
    assert load_volume(tmp_path / "study", series=a.series_uid).same_grid(load_volume(a.folder))
    with pytest.raises(VolumeError, match="no series '9'"):
        load_volume(tmp_path / "study", series="9")


def _copy(series, to: Path) -> Path:
    shutil.copytree(series.folder, to)
    return to


def _by_position(folder: Path) -> list[Path]:
    files = list(folder.iterdir())
    normal = None
    keyed = []
    for f in files:
        ds = read(f)
        iop = np.array(ds.ImageOrientationPatient, dtype=float)
        normal = np.cross(iop[:3], iop[3:]) if normal is None else normal
        keyed.append((float(np.array(ds.ImagePositionPatient, dtype=float) @ normal), f))
    return [f for _, f in sorted(keyed)]


def test_missing_slice_is_refused_by_name(written, tmp_path):
    folder = _copy(written["axial, rescaled"], tmp_path / "gap")
    files = _by_position(folder)
    files[30].unlink()
    with pytest.raises(VolumeError) as caught:
        load_volume(folder)
    text = str(caught.value)
    assert "slice(s) missing" in text and files[29].name in text and files[31].name in text
    assert "4.00 mm" in text and "2.00 mm apart" in text


def test_mixed_sizes_and_orientations_are_refused(demo, written, tmp_path):
    folder = _copy(written["axial, rescaled"], tmp_path / "mixed")
    first = _by_position(folder)[0]
    ds = read(first)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.save_as(first)
    with pytest.raises(VolumeError, match="mixes slice orientations"):
        load_volume(folder)
    folder = _copy(written["axial, rescaled"], tmp_path / "sizes")
    first = _by_position(folder)[0]
    ds = read(first)
    ds.Rows, ds.Columns = 8, 8
    ds.PixelData = np.zeros((8, 8), np.int16).tobytes()
    ds.save_as(first)
    with pytest.raises(VolumeError, match="mixes image sizes"):
        load_volume(folder)


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_file_is_named(written, tmp_path, keep):
    folder = _copy(written["axial, rescaled"], tmp_path / "cut")
    victim = _by_position(folder)[10]
    data = victim.read_bytes()
    victim.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(VolumeError, match="truncated or damaged") as caught:
        load_volume(folder)
    assert victim.name in str(caught.value)


def _non_image(path: Path, sop_class: str, modality: str, study_uid: str) -> None:
    ds = pydicom.Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, pydicom.uid.generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, pydicom.uid.generate_uid()
    ds.Modality = modality
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, ds.SOPInstanceUID
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)


def test_non_images_and_junk_beside_the_images_are_ignored(written, tmp_path):
    folder = _copy(written["axial, rescaled"], tmp_path / "busy")
    _non_image(folder / "report.dcm", "1.2.840.10008.5.1.4.1.1.88.22", "SR", written["axial, rescaled"].study_uid)
    _non_image(folder / "pstate.dcm", "1.2.840.10008.5.1.4.1.1.11.1", "PR", written["axial, rescaled"].study_uid)
    (folder / "README.txt").write_text("exported by a PACS")
    (folder / "thumbs.db").write_bytes(b"\x00" * 300)
    volume = load_volume(folder)
    np.testing.assert_array_equal(volume.data, load_volume(written["axial, rescaled"].folder).data)
    scan = dicom.scan_folder(folder)
    assert sorted(kind for _, kind in scan.non_images) == ["a presentation state", "a structured report"]
    assert scan.ignored == 2


def test_folders_without_images_say_so(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VolumeError, match="no DICOM images"):
        load_volume(empty)
    (empty / "notes.txt").write_text("nothing here")
    with pytest.raises(VolumeError, match=r"no DICOM images \(1 other files\)"):
        load_volume(empty)
    reports = tmp_path / "reports"
    reports.mkdir()
    _non_image(reports / "sr.dcm", "1.2.840.10008.5.1.4.1.1.88.33", "SR", pydicom.uid.generate_uid())
    with pytest.raises(VolumeError, match="no image .a structured report"):
        load_volume(reports)


def test_missing_codec_names_the_package(tmp_path):
    """A compressed series whose decoder is not installed says which package brings it (the
    plugin is hidden from a fresh interpreter the way a missing install would be)."""
    folder = tmp_path / "jpegls"
    folder.mkdir()
    ds = pydicom.Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.4", pydicom.uid.generate_uid()
    ds.SeriesInstanceUID, ds.Modality = pydicom.uid.generate_uid(), "MR"
    ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing = [0, 0, 0], [1, 0, 0, 0, 1, 0], [1, 1]
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8\xff\xf7" + b"\x00" * 60])
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = pydicom.uid.JPEGLSLossless
    ds.file_meta = meta
    ds.save_as(folder / "im1", enforce_file_format=True)
    code = (
        "import sys\n"
        "for name in ('pylibjpeg', 'libjpeg', 'jpeg_ls', 'gdcm'): sys.modules[name] = None\n"
        "from mri_style_app.__main__ import main\n"
        f"sys.exit(main(['info', {str(folder)!r}]))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "compressed as JPEG-LS Lossless" in run.stderr and "pylibjpeg-libjpeg" in run.stderr


# ---------------------------------------------------------------- writing
def test_derived_series_keeps_study_and_geometry(written, tmp_path):
    series = written["oblique anisotropic sagittal"]
    source = load_volume(series.folder)
    translated = source.with_data(source.data * 1.5 + 0.3, name="synthetic")
    out = dicom.write_series(translated, tmp_path / "derived", "Synthetic T2w (MRI Style, m)", "made by a test")
    back = load_volume(out)
    assert back.same_grid(source, atol=1e-6)
    np.testing.assert_allclose(back.data, translated.data, atol=float(np.ptp(translated.data)) / 65535)
    headers = [read(f) for f in sorted(out.iterdir())]
    original = read(series.files[0])
    source_uids = {read(f).SOPInstanceUID for f in series.files}
    assert len(headers) == 40
    for ds in headers:
        assert ds.PatientName == original.PatientName and ds.PatientID == original.PatientID
        assert ds.StudyInstanceUID == original.StudyInstanceUID
        assert ds.FrameOfReferenceUID == original.FrameOfReferenceUID
        assert ds.SeriesInstanceUID != original.SeriesInstanceUID
        assert ds.SOPInstanceUID not in source_uids
        assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
        assert ds.SeriesDescription == "Synthetic T2w (MRI Style, m)" and ds.DerivationDescription == "made by a test"
        assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID in source_uids
    assert len({ds.SOPInstanceUID for ds in headers}) == 40
    # slice by slice: each written slice lies where its source slice lay
    for ds in headers:
        ref = next(
            read(f)
            for f in series.files
            if read(f).SOPInstanceUID == ds.SourceImageSequence[0].ReferencedSOPInstanceUID
        )
        np.testing.assert_allclose(
            np.array(ds.ImagePositionPatient, float), np.array(ref.ImagePositionPatient, float), atol=1e-4
        )
        np.testing.assert_allclose(
            np.array(ds.ImageOrientationPatient, float), np.array(ref.ImageOrientationPatient, float), atol=1e-6
        )


def test_nifti_round_trip_through_dicom_and_dcm2niix(demo, tmp_path):
    stored = save_volume(demo.stored_as("LIA"), tmp_path / "lia.nii.gz")
    source = load_volume(stored)
    out = dicom.write_series(source, tmp_path / "series", "MRI Style export", "Exported by MRI Style")
    back = load_volume(out)
    assert back.same_grid(source, atol=1e-6)
    np.testing.assert_array_equal(back.data, source.data)  # integral values are stored exactly
    first = read(next(out.iterdir()))
    assert str(first.PatientName) == "" and first.PatientID == ""
    assert first.StudyInstanceUID and first.FrameOfReferenceUID
    reference = dcm2niix(out, tmp_path / "nii")
    assert reference.same_grid(source, atol=1e-4)
    np.testing.assert_allclose(reference.data, source.data, atol=1e-4)


def test_writing_never_replaces_a_source_or_a_full_folder(written, demo, tmp_path):
    series = written["axial, rescaled"]
    source = load_volume(series.folder)
    before = sorted(p.name for p in series.folder.iterdir())
    with pytest.raises(VolumeError, match="never overwritten"):
        dicom.write_series(source.with_data(source.data), series.folder, "x", "y", overwrite=True)
    with pytest.raises(VolumeError, match="never overwritten"):
        dicom.write_series(source.with_data(source.data), series.folder / "inside", "x", "y")
    assert sorted(p.name for p in series.folder.iterdir()) == before
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(VolumeError, match="not empty"):
        dicom.write_series(demo, full, "x", "y")
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    dicom.write_series(demo, full, "x", "y", overwrite=True)
    assert len(list(full.iterdir())) == demo.shape[2]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
