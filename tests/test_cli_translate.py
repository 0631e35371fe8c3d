"""`mri-style translate` as a real subprocess: geometry kept, errors as one line, nothing written."""

from __future__ import annotations

import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch

from mri_style_app.cyclegan import checkpoint as ck
from mri_style_app.cyclegan.networks import GeneratorConfig, ResnetGenerator, init_weights
from mri_style_app.imaging.volume import Volume, save_volume

CONFIG = GeneratorConfig(ngf=4, n_blocks=1)


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mri_style_app", "translate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    nets = {d: ResnetGenerator(CONFIG) for d in ck.DIRECTIONS}
    for net in nets.values():
        init_weights(net)
    model = ck.save_model(folder / "m.safetensors", nets, ck.make_card(CONFIG, ck.DIRECTIONS))
    rng = np.random.default_rng(0)
    data = np.zeros((20, 24, 18), np.float32)
    data[4:16, 5:19, 3:15] = 500 + 50 * rng.random((12, 14, 12))
    affine = np.diag([1.0, 1.1, 1.3, 1.0])
    affine[:3, 3] = [-10, -12, -9]
    sources = {}
    for axcodes in ("LAS", "RAS", "LIA"):
        sources[axcodes] = save_volume(Volume(data, affine).stored_as(axcodes), folder / f"in_{axcodes}.nii.gz")
    return folder, model, sources


@pytest.mark.parametrize("axcodes", ["LAS", "RAS", "LIA"])
def test_out_has_exactly_the_input_shape_and_affine(files, axcodes):
    folder, model, sources = files
    out = folder / f"out_{axcodes}.nii.gz"
    run = _cli(sources[axcodes], out, "--direction", "t1-to-t2", "--model", model, "--device", "cpu")
    assert run.returncode == 0, run.stderr
    written, original = nib.load(out), nib.load(sources[axcodes])
    assert written.shape == original.shape and np.allclose(written.affine, original.affine)
    assert nib.aff2axcodes(written.affine) == tuple(axcodes)
    assert "100%" in run.stderr and "CPU" in run.stderr  # the progress bar and the device


def test_tri_planar_from_the_command_line(files):
    folder, model, sources = files
    out = folder / "tri.nii"
    run = _cli(sources["RAS"], out, "--direction", "t2-to-t1", "--model", model, "--planes", "tri", "--quiet")
    assert run.returncode == 0 and run.stderr == ""
    assert np.asarray(nib.load(out).dataobj).std() > 0


def _bad(run, *words):
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    for word in words:
        assert word in lines[0]


def test_bad_input_is_one_line_exit_2_and_nothing_written(files, tmp_path):
    folder, model, sources = files
    src = sources["RAS"]
    out = tmp_path / "out.nii.gz"
    _bad(_cli(tmp_path / "missing.nii.gz", out, "--direction", "t1-to-t2", "--model", model), "no such file")
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(src.read_bytes()[:200])
    _bad(_cli(broken, out, "--direction", "t1-to-t2", "--model", model), "broken.nii.gz")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model" * 20)
    _bad(_cli(src, out, "--direction", "t1-to-t2", "--model", junk), "junk.safetensors", "not a safetensors")
    _bad(_cli(src, out, "--direction", "t1-to-t2", "--model", tmp_path / "absent.safetensors"), "no such model")
    _bad(_cli(src, src, "--direction", "t1-to-t2", "--model", model), "never overwritten")
    _bad(
        _cli(src, tmp_path / "no" / "such" / "out.nii.gz", "--direction", "t1-to-t2", "--model", model),
        "does not exist",
    )
    _bad(_cli(src, tmp_path / "out.png", "--direction", "t1-to-t2", "--model", model), ".nii")
    if not torch.cuda.is_available():
        _bad(_cli(src, out, "--direction", "t1-to-t2", "--model", model, "--device", "cuda"), "CUDA")
    assert not any(tmp_path.glob("out*")) and not any(tmp_path.glob(".out*"))


def test_unwritable_folder(files, tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    folder, model, sources = files
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    _bad(_cli(sources["RAS"], locked / "out.nii.gz", "--direction", "t1-to-t2", "--model", model), "permission")
