"""`mri-style info` and `--version`, run as real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pytest

from mri_style_app import __version__

HEAVY = ("PySide6", "shiboken6", "pyqtgraph", "torch")


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mri_style_app", *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd
    )


@pytest.fixture
def las_file(tmp_path):
    """A 4D int16 file in LAS order, big-endian, with scaling and a NaN-free known range."""
    raw = np.arange(6 * 7 * 5 * 3, dtype=np.int16).reshape(6, 7, 5, 3)
    affine = np.array([[-2.0, 0, 0, 10], [0, 1.5, 0, -20], [0, 0, 3, 5], [0, 0, 0, 1]])
    img = nib.Nifti1Image(raw, affine, header=nib.Nifti1Header(endianness=">"), dtype=np.int16)
    img.header.set_slope_inter(2.0, 1.0)
    path = tmp_path / "series.nii.gz"
    nib.save(img, path)
    return path


def test_info_text(las_file):
    result = _cli("info", las_file)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "6 x 7 x 5 x 3" in out
    assert "2 x 1.5 x 3 mm" in out
    assert "LAS" in out
    assert "int16 (big-endian), scaled by 2 + 1" in out
    assert "volumes:      3" in out
    # Volume 0 holds raw values 0, 3, 6, ... (every third, the 4th axis varies fastest).
    first = np.arange(6 * 7 * 5 * 3).reshape(6, 7, 5, 3)[..., 0] * 2 + 1
    assert f"data range:   {first.min():g} .. {first.max():g}" in out


def test_info_json_matches_nibabel(nibabel_data_dir):
    path = nibabel_data_dir / "example4d.nii.gz"
    result = _cli("info", path, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    img = nib.load(path)
    assert info["shape"] == list(img.shape)
    np.testing.assert_allclose(info["voxel_size_mm"], img.header.get_zooms()[:3], rtol=1e-6)
    assert info["orientation"] == "".join(nib.aff2axcodes(img.affine))
    assert info["dtype"] == img.get_data_dtype().name
    assert info["n_volumes"] == img.shape[3]
    first = img.get_fdata()[..., 0]
    assert info["data_range"] == [first.min(), first.max()]
    assert info["display_window"][0] < info["display_window"][1]


@pytest.mark.parametrize("content", [b"", b"not an image at all" * 30])
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, content):
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(content)
    result = _cli("info", path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "broken.nii.gz" in lines[0]


def test_missing_file_exit_2(tmp_path):
    result = _cli("info", tmp_path / "nope.nii")
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_version():
    result = _cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"mri-style {__version__}"


@pytest.mark.parametrize("argv", [["--version"], ["info", "DEMO"]])
def test_info_and_version_import_neither_qt_nor_torch(argv, tmp_path):
    demo = tmp_path / "small.nii"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), demo)
    argv = [str(demo) if a == "DEMO" else a for a in argv]
    probe = (
        "import sys\n"
        "from mri_style_app.__main__ import main\n"
        f"try:\n    code = main({argv!r})\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print('HEAVY', heavy, 'CODE', code)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "HEAVY [] CODE 0" in result.stdout, result.stdout + result.stderr


def test_start_time_is_short(tmp_path):
    # Generous bound for a shared CI machine; the README gives the measured figure.
    demo = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((32, 32, 32), np.float32), np.eye(4)), demo)
    for args in (["--version"], ["info", demo]):
        start = time.perf_counter()
        assert _cli(*args).returncode == 0
        assert time.perf_counter() - start < 10.0
