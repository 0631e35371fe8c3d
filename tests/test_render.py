"""`mri-style render`: the same picture whatever order the file stores its axes in."""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtGui import QImage
from viewer_helpers import SHAPE, write_image

from mri_style_app.commands import render


def _args(file, out, **overrides):
    parser = argparse.ArgumentParser()
    render.add_arguments(parser)
    argv = [str(file), "--out", str(out), "--size", "700x560"]
    for key, value in overrides.items():
        argv += [f"--{key}"] if value is True else [f"--{key}", str(value)]
    return parser.parse_args(argv)


def _asymmetric_image() -> np.ndarray:
    """An image no flip or swap maps onto itself: a ramp plus off-centre blocks."""
    rng = np.random.default_rng(3)
    data = rng.uniform(50, 60, SHAPE).astype(np.float32)
    data += np.linspace(0, 40, SHAPE[0], dtype=np.float32)[:, None, None]
    data[30:36, 10:14, 5:9] = 300  # right, posterior, inferior
    data[4:8, 38:44, 20:26] = 200  # left, anterior, superior
    return data


@pytest.mark.parametrize("axcodes", ["LIA", "PSR", "SLP"])
def test_same_picture_whatever_the_axis_order(qapp, tmp_path, axcodes):
    data = _asymmetric_image()
    (tmp_path / "ras").mkdir()
    ras = write_image(tmp_path / "ras" / "head.nii.gz", data=data, axcodes="RAS")
    other_dir = tmp_path / axcodes
    other_dir.mkdir()
    other = write_image(other_dir / "head.nii.gz", data=data, axcodes=axcodes)
    at = "5.5,-3,10"
    assert render.run(_args(ras, tmp_path / "ras.png", at=at)) == 0
    assert render.run(_args(other, tmp_path / "other.png", at=at)) == 0
    a, b = QImage(str(tmp_path / "ras.png")), QImage(str(tmp_path / "other.png"))
    assert a.width() == 700 and a.height() == 560
    assert a == b, f"{axcodes} renders differently from RAS"
    # and the picture is not blank: the crosshair position moved it away from the default
    assert render.run(_args(ras, tmp_path / "centre.png")) == 0
    assert QImage(str(tmp_path / "centre.png")) != a


def test_neurological_and_colormap_change_the_picture(qapp, tmp_path):
    path = write_image(tmp_path / "head.nii.gz", data=_asymmetric_image())
    assert render.run(_args(path, tmp_path / "radio.png")) == 0
    assert render.run(_args(path, tmp_path / "neuro.png", neurological=True)) == 0
    assert render.run(_args(path, tmp_path / "hot.png", colormap="hot")) == 0
    radio, neuro, hot = (QImage(str(tmp_path / n)) for n in ("radio.png", "neuro.png", "hot.png"))
    assert radio != neuro and radio != hot

    # hot has coloured pixels, grey has none in the axial view (top-left quarter)
    def coloured(image):
        quarter = image.copy(10, 10, image.width() // 2 - 20, image.height() // 2 - 20)
        quarter = quarter.convertToFormat(QImage.Format.Format_RGB32)
        bits = np.frombuffer(quarter.constBits(), np.uint8).reshape(quarter.height(), -1)[:, : quarter.width() * 4]
        bgr = bits.reshape(quarter.height(), quarter.width(), 4)[..., :3].astype(int)
        return int(np.count_nonzero(np.ptp(bgr, axis=2) > 40))

    # grey has only the green crosshair and the yellow letters
    assert coloured(hot) > 5 * coloured(radio)


def test_cli_writes_png_and_rejects_bad_input(tmp_path, repo_root):
    path = write_image(tmp_path / "head.nii.gz", data=_asymmetric_image())
    out = tmp_path / "out.png"

    def run(*argv):
        return subprocess.run(
            [sys.executable, "-m", "mri_style_app", "render", *argv],
            capture_output=True,
            text=True,
            cwd=repo_root,
            timeout=120,
        )

    ok = run(str(path), "--out", str(out), "--size", "640x480", "--at", "0,0,0")
    assert ok.returncode == 0, ok.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (640, 480)

    bad = tmp_path / "bad.nii"
    bad.write_bytes(b"\x00" * 10)
    for argv, needle in [
        ((str(bad), "--out", str(out)), "bad.nii"),
        ((str(tmp_path / "missing.nii.gz"), "--out", str(out)), "no such file"),
        ((str(path), "--out", str(out), "--size", "big"), "--size"),
        ((str(path), "--out", str(out), "--at", "1,2"), "--at"),
        ((str(path), "--out", str(out), "--at", "900,0,0"), "outside"),
        ((str(path), "--out", str(out), "--colormap", "rainbow"), "--colormap"),
        ((str(path), "--out", str(tmp_path / "nofolder" / "x.png")), "does not exist"),
    ]:
        result = run(*argv)
        assert result.returncode == 2, (argv, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and needle in lines[-1], result.stderr
        assert "Traceback" not in result.stderr
