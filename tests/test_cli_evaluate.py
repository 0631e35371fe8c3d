"""`mri-style evaluate` on real NIfTI files written with nibabel."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from mri_style_app.__main__ import main
from mri_style_app.imaging.intensity import foreground_mask
from mri_style_app.imaging.metrics import evaluate_pair, head_mask


def _head(shape=(40, 44, 36), seed=0) -> np.ndarray:
    """An ellipsoid 'head' with smooth structure and noise, in air."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    inside = x**2 + y**2 + z**2 < 0.7
    data = np.where(inside, 500 + 300 * np.cos(4 * x) * np.sin(3 * y) + 100 * z, 0.0)
    return (data + rng.normal(0, 5, shape) * inside).astype(np.float32)


def _save(path, data, affine=None):
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 1.0, 1.0]) if affine is None else affine), str(path))
    return str(path)


def test_json_matches_the_metrics_protocol(tmp_path, capsys):
    ref = _head()
    pred = ref * 1.7 + np.random.default_rng(1).normal(0, 20, ref.shape).astype(np.float32) * (ref > 0)
    code = main(["evaluate", _save(tmp_path / "p.nii.gz", pred), _save(tmp_path / "r.nii", ref), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    expected = evaluate_pair(pred, ref, head_mask(ref))
    for key in ("psnr", "ssim", "mae"):
        assert out[key] == pytest.approx(expected[key], rel=1e-6)
    assert out["voxels"] == int(head_mask(ref).sum()) and out["region"] == "head: from reference"
    assert 10 < out["psnr"] < 60 and 0 < out["ssim"] < 1 and out["mae"] > 0


def test_mask_changes_the_result_and_text_output(tmp_path, capsys):
    ref = _head()
    pred = ref.copy()
    pred[:20] += 200 * (ref[:20] > 0)  # error only in one half
    mask = np.zeros(ref.shape, np.uint8)
    mask[20:] = ref[20:] > 0  # the half without error
    p, r = _save(tmp_path / "p.nii", pred), _save(tmp_path / "r.nii", ref)
    m = _save(tmp_path / "m.nii", mask)
    assert main(["evaluate", p, r, "--region", m, "--json"]) == 0
    masked = json.loads(capsys.readouterr().out)
    assert main(["evaluate", p, r, "--json"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert masked["mae"] < whole["mae"] and masked["ssim"] > whole["ssim"]
    assert main(["evaluate", p, r]) == 0
    line = capsys.readouterr().out
    assert line.startswith("PSNR ") and "SSIM" in line and "MAE" in line


def test_regions_head_from_both_partners_and_brain(tmp_path, capsys):
    ref = _head()
    source = np.zeros_like(ref)
    source[2:6, 10:30, 10:26] = 900.0  # tissue the source shows outside the reference's head
    pred = ref + np.random.default_rng(2).normal(0, 30, ref.shape).astype(np.float32)
    p, r, s = (_save(tmp_path / f"{n}.nii", d) for n, d in (("p", pred), ("r", ref), ("s", source)))
    results = {}
    for name, argv in (("alone", []), ("partners", ["--source", s]), ("brain", ["--region", "brain"])):
        assert main(["evaluate", p, r, *argv, "--json"]) == 0
        results[name] = json.loads(capsys.readouterr().out)
    assert results["partners"]["voxels"] == int(head_mask(source, ref).sum()) > results["alone"]["voxels"]
    assert results["partners"]["region"] == "head: from source and reference"
    assert results["brain"]["voxels"] == int(foreground_mask(ref).sum())
    assert results["brain"]["ssim"] == pytest.approx(evaluate_pair(pred, ref, foreground_mask(ref))["ssim"], rel=1e-6)


def test_bad_input_gives_one_error_line_and_exit_2(tmp_path, capsys):
    ref = _save(tmp_path / "r.nii", _head())
    other_grid = _save(tmp_path / "small.nii", _head((30, 30, 30)))
    shifted = _save(tmp_path / "shifted.nii", _head(), np.diag([2.0, 1.0, 1.0, 1.0]))
    empty_mask = _save(tmp_path / "empty.nii", np.zeros((40, 44, 36), np.uint8))
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"\x1f\x8b not really gzip")
    cases = [
        ([other_grid, ref], "same voxel grid"),
        ([shifted, ref], "same voxel grid"),
        ([str(tmp_path / "missing.nii"), ref], "missing.nii"),
        ([str(broken), ref], "broken.nii.gz"),
        ([ref, ref, "--region", empty_mask], "empty"),
        ([ref, ref, "--region", other_grid], "not on the grid"),
        ([ref, ref, "--source", other_grid], "same voxel grid"),
        ([ref, ref, "--region", str(tmp_path / "no_such_mask.nii")], "no_such_mask.nii"),
    ]
    for argv, words in cases:
        assert main(["evaluate", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and words in err and err.count("\n") == 1, err
        assert "Traceback" not in err
