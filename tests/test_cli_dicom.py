"""The command line on DICOM folders and on many inputs at once, as real subprocesses."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from dicom_series import SeriesSpec, read, write_series

from mri_style_app import paths
from mri_style_app.imaging.volume import load_volume, save_volume

FAST_MODEL = paths.fast_model_path()


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mri_style_app", *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A folder with two series of the real demo head, 2 mm, axial and oblique sagittal."""
    root = tmp_path_factory.mktemp("study")
    demo = load_volume(paths.demo_t1_path())
    axial = write_series(
        root / "study" / "ax",
        demo.data,
        demo.affine,
        SeriesSpec(size=(96, 112, 80), series_number=2, description="T1 axial"),
    )
    sagittal = write_series(
        root / "study" / "sag",
        demo.data,
        demo.affine,
        SeriesSpec(
            plane="sagittal",
            tilt=("z", 15.0),
            size=(112, 90, 40),
            slice_spacing=3.0,
            series_number=5,
            description="T1 sag",
        ),
    )
    return root, axial, sagittal


def test_info_hides_the_patient_unless_asked(study):
    _, axial, _ = study
    run = _cli("info", axial.folder)
    assert run.returncode == 0, run.stderr
    assert "DICOM" in run.stdout and "T1 axial" in run.stdout and "96 x 112 x 80" in run.stdout
    assert "Test^Patient" not in run.stdout and "MRISTYLE-0001" not in run.stdout
    shown = _cli("info", axial.folder, "--show-patient")
    assert "Test^Patient" in shown.stdout and "MRISTYLE-0001" in shown.stdout


def test_several_series_are_listed_and_chosen_by_number_or_uid(study, tmp_path):
    root, _, sagittal = study
    run = _cli("info", root / "study")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "holds 2 image series" in run.stderr and "T1 axial" in run.stderr and "T1 sag" in run.stderr
    assert "80 slices" in run.stderr and "oblique (near sagittal)" in run.stderr
    by_number = _cli("info", root / "study", "--series", "5", "--json")
    by_uid = _cli("info", root / "study", "--series", sagittal.series_uid, "--json")
    assert by_number.returncode == 0 and by_number.stdout == by_uid.stdout
    assert '"slices": 40' in by_number.stdout
    render = _cli("render", root / "study", "--series", "2", "--out", tmp_path / "ax.png", "--size", "400x300")
    assert render.returncode == 0, render.stderr
    assert (tmp_path / "ax.png").stat().st_size > 1000
    translate = _cli(
        "translate", root / "study", tmp_path / "t.nii.gz", "--direction", "t1-to-t2", "--model", FAST_MODEL
    )
    assert translate.returncode == 2 and "--series" in translate.stderr and not (tmp_path / "t.nii.gz").exists()


def test_translate_a_series_to_nifti_and_to_a_derived_dicom_series(study, tmp_path):
    _, _, sagittal = study
    nifti = tmp_path / "sag_t2.nii.gz"
    run = _cli("translate", sagittal.folder, nifti, "--direction", "t1-to-t2", "--model", FAST_MODEL, "--quiet")
    assert run.returncode == 0, run.stderr
    source = load_volume(sagittal.folder)
    assert load_volume(nifti).same_grid(source, atol=1e-5)
    out = tmp_path / "sag_t2"
    run = _cli(
        "translate",
        sagittal.folder,
        out,
        "--direction",
        "t1-to-t2",
        "--model",
        FAST_MODEL,
        "--format",
        "dicom",
        "--quiet",
    )
    assert run.returncode == 0, run.stderr
    series = load_volume(out)
    assert series.same_grid(source, atol=1e-5)
    np.testing.assert_allclose(series.data, load_volume(nifti).data, atol=float(np.ptp(series.data)) / 60000)
    header = read(next(out.iterdir()))
    original = read(sagittal.files[0])
    assert (
        header.StudyInstanceUID == original.StudyInstanceUID and header.SeriesInstanceUID != original.SeriesInstanceUID
    )
    assert "Synthetic T2w" in header.SeriesDescription and FAST_MODEL.name in header.DerivationDescription
    again = _cli(
        "translate", sagittal.folder, out, "--direction", "t1-to-t2", "--model", FAST_MODEL, "--format", "dicom"
    )
    assert again.returncode == 2 and "not empty" in again.stderr


def _bad_folders(tmp_path, axial) -> dict:
    folders = {}
    gap = shutil.copytree(axial.folder, tmp_path / "gap")
    files = sorted(gap.iterdir(), key=lambda f: float(read(f).ImagePositionPatient[2]))
    files[40].unlink()
    folders["gap"] = (gap, "slice(s) missing")
    cut = shutil.copytree(axial.folder, tmp_path / "cut")
    victim = next(iter(sorted(cut.iterdir())))
    victim.write_bytes(victim.read_bytes()[:3000])
    folders["cut"] = (cut, "truncated or damaged")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("no images here")
    folders["junk"] = (junk, "no DICOM images")
    return folders


def test_bad_folders_get_one_line_and_nothing_written(study, tmp_path):
    _, axial, _ = study
    for name, (folder, expected) in _bad_folders(tmp_path, axial).items():
        for command in (
            ["info", folder],
            ["translate", folder, tmp_path / f"{name}.nii.gz", "--direction", "t1-to-t2"],
        ):
            run = _cli(*command)
            assert run.returncode == 2, (name, run.stderr)
            assert expected in run.stderr and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
        assert not (tmp_path / f"{name}.nii.gz").exists()


def test_batch_loads_the_model_once_and_goes_past_a_bad_input(study, tmp_path):
    _, axial, sagittal = study
    demo = load_volume(paths.demo_t1_path())
    bids = tmp_path / "bids"
    for subject in ("01", "02"):
        (bids / f"sub-{subject}" / "anat").mkdir(parents=True)
    small = demo.with_data(demo.data)
    save_volume(small, bids / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    (bids / "sub-02" / "anat" / "sub-02_T1w.nii.gz").write_bytes(b"not a volume")
    inputs = [
        bids / "sub-01" / "anat" / "sub-01_T1w.nii.gz",
        bids / "sub-02" / "anat" / "sub-02_T1w.nii.gz",
        sagittal.folder,
    ]
    out = tmp_path / "derivatives"
    run = _cli("translate", *inputs, "--out-dir", out, "--direction", "t1-to-t2", "--model", FAST_MODEL)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("loaded once") == 1
    assert "100%" in run.stderr  # one bar over all inputs
    result = out / "sub-01" / "anat" / "sub-01_T1w_t2w-synth.nii.gz"
    assert load_volume(result).same_grid(small)
    assert load_volume(out / "sag_t2w-synth.nii.gz").same_grid(load_volume(sagittal.folder), atol=1e-5)
    assert not (out / "sub-02").exists()  # nothing written for the bad input
    lines = run.stdout.splitlines()
    assert lines[0].split()[:2] == ["input", "status"]
    assert "done" in lines[1] and "failed" in lines[2] and "not gzip-compressed" in lines[2] and "done" in lines[3]
    assert lines[-1] == "2 done, 1 failed"

    stamp = result.stat().st_mtime_ns
    again = _cli("translate", inputs[0], inputs[2], "--out-dir", out, "--direction", "t1-to-t2", "--model", FAST_MODEL)
    assert again.returncode == 0, again.stderr
    assert "0 done, 2 skipped, 0 failed" in again.stdout and result.stat().st_mtime_ns == stamp
    forced = _cli(
        "translate",
        inputs[0],
        "--out-dir",
        out,
        "--direction",
        "t1-to-t2",
        "--model",
        FAST_MODEL,
        "--overwrite",
        "--quiet",
    )
    assert forced.returncode == 0 and "1 done" in forced.stdout and result.stat().st_mtime_ns != stamp

    dicom_out = tmp_path / "dicom_out"
    run = _cli(
        "translate", axial.folder, sagittal.folder, "--out-dir", dicom_out, "--direction", "t1-to-t2",
        "--model", FAST_MODEL, "--format", "dicom", "--quiet",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert load_volume(dicom_out / "ax_t2w-synth").same_grid(load_volume(axial.folder), atol=1e-5)
    assert load_volume(dicom_out / "sag_t2w-synth").same_grid(load_volume(sagittal.folder), atol=1e-5)


def test_result_names_drop_the_file_type_but_keep_uid_dots(study, tmp_path):
    from mri_style_app.cyclegan.batch import input_stem

    root, axial, _ = study
    demo = load_volume(paths.demo_t1_path())
    enhanced = write_series(tmp_path / "mf", demo.data, demo.affine, SeriesSpec(size=(48, 56, 8), multiframe=True))
    frame_file = next(enhanced.folder.glob("*.dcm"))
    assert input_stem(frame_file) == frame_file.name[: -len(".dcm")]
    uid_named = tmp_path / "1.2.826.0.1.3680043.8.498.1"
    shutil.copyfile(next(p for p in axial.folder.iterdir() if p.is_file()), uid_named)
    assert input_stem(uid_named) == uid_named.name
    assert input_stem(root / "study" / "ax") == "ax"
    nifti = tmp_path / "sub-01_T1w.nii.gz"
    save_volume(demo, nifti)
    assert input_stem(nifti) == "sub-01_T1w"
