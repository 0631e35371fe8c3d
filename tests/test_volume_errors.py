"""Every kind of bad input file gives a VolumeError written for people, never a traceback.

Each bad file is made here with nibabel (or by damaging a file nibabel wrote).
"""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from mri_style_app.imaging.volume import VolumeError, load_volume


def _image(shape=(10, 12, 8), dtype=np.float32, seed=0):
    data = (np.random.default_rng(seed).random(shape) * 100 + 1).astype(dtype)
    return nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]), dtype=dtype)


def _good(tmp_path, name="good.nii", **kw):
    path = tmp_path / name
    nib.save(_image(**kw), path)
    return path


def _expect(path, *phrases):
    with pytest.raises(VolumeError) as err:
        load_volume(path)
    message = str(err.value)
    assert str(path.name) in message, message  # which file
    assert "\n" not in message, message  # one line, for a dialog or `error: ...`
    assert "Traceback" not in message
    for phrase in phrases:
        assert phrase in message.lower(), message
    return message


def _rewrite_header(path, **fields):
    """Change header fields of an uncompressed .nii in place, leaving the data as it is."""
    header = nib.load(path).header.copy()
    for key, value in fields.items():
        if key == "shape":
            header.set_data_shape(value)
        else:
            header[key] = value
    with open(path, "r+b") as fh:
        fh.write(header.binaryblock)


def test_missing_file_and_folder(tmp_path):
    _expect(tmp_path / "nope.nii", "no such file")
    with pytest.raises(VolumeError, match="folder"):
        load_volume(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.nii.gz"
    path.write_bytes(b"")
    _expect(path, "empty", "0 bytes")


def test_not_nifti_at_all(tmp_path):
    path = tmp_path / "notes.nii"
    path.write_text("these are my notes, not an image\n" * 40)
    _expect(path, "not a nifti")


def test_gz_name_but_not_gzip(tmp_path):
    plain = _good(tmp_path)
    path = tmp_path / "plain.nii.gz"
    path.write_bytes(plain.read_bytes())
    _expect(path, "not gzip")


def test_bad_magic(tmp_path):
    path = _good(tmp_path)
    raw = bytearray(path.read_bytes())
    assert raw[344:348] == b"n+1\0"
    raw[344:348] = b"zzz\0"
    path.write_bytes(bytes(raw))
    _expect(path, "not a nifti", "magic")


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_uncompressed(tmp_path, keep):
    path = _good(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    _expect(path, "truncated", "get the file again")


def test_truncated_inside_header(tmp_path):
    path = _good(tmp_path)
    path.write_bytes(path.read_bytes()[:100])
    _expect(path, "not a nifti")


@pytest.mark.parametrize("cut", ["header", "data", "trailer"])
def test_truncated_gzip(tmp_path, cut):
    # "data": the header reads fine and the damage shows only while reading the voxels;
    # "trailer": every voxel is there but the gzip end marker and checksum are missing.
    path = _good(tmp_path, "good.nii.gz", shape=(40, 40, 30))
    raw = path.read_bytes()
    keep = {"header": 60, "data": len(raw) // 2, "trailer": len(raw) - 8}[cut]
    path.write_bytes(raw[:keep])
    _expect(path, "truncated")


def test_corrupt_gzip_body(tmp_path):
    path = _good(tmp_path, "good.nii.gz", shape=(40, 40, 30))
    raw = bytearray(path.read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 64):
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))
    _expect(path, "damaged")


def test_complex_data(tmp_path):
    path = tmp_path / "complex.nii"
    data = np.ones((6, 6, 6), np.complex64) * (1 + 2j)
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    _expect(path, "complex", "magnitude")


def test_rgb_data(tmp_path):
    path = tmp_path / "rgb.nii"
    data = np.zeros((6, 6, 6), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    data["G"] = 7
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    _expect(path, "not scalar")


@pytest.mark.parametrize("shape", [(4, 4, 4, 2, 3), (3, 3, 3, 2, 2, 2)])
def test_five_or_more_dimensions(tmp_path, shape):
    path = _good(tmp_path, shape=shape)
    _expect(path, f"{len(shape)} dimensions", "split")


def test_one_dimension(tmp_path):
    path = _good(tmp_path, shape=(50,))
    _expect(path, "1d")


def test_header_promises_more_than_the_file(tmp_path):
    path = _good(tmp_path)
    _rewrite_header(path, shape=(100, 100, 100))
    _expect(path, "truncated", "promises")


def test_gzip_header_promises_more_than_the_stream(tmp_path):
    # A complete, valid gzip stream whose header claims 20 volumes while it holds 2: reading
    # volume 0 alone would succeed, so the size check must look at the whole stream.
    plain = _good(tmp_path, shape=(10, 12, 8, 2))
    _rewrite_header(plain, shape=(10, 12, 8, 20))
    path = tmp_path / "short4d.nii.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    _expect(path, "truncated", "unpacks to")


@pytest.mark.parametrize("name", ["huge.nii", "huge.nii.gz"])
def test_header_promises_more_than_memory(tmp_path, name):
    plain = _good(tmp_path, "plain.nii")
    _rewrite_header(plain, shape=(30000, 30000, 30000))
    path = tmp_path / name
    path.write_bytes(gzip.compress(plain.read_bytes()) if name.endswith(".gz") else plain.read_bytes())
    _expect(path, "memory", "gib")


def test_all_nan(tmp_path):
    path = tmp_path / "nan.nii"
    nib.save(nib.Nifti1Image(np.full((5, 5, 5), np.nan, np.float32), np.eye(4)), path)
    _expect(path, "nan")


def test_all_inf_and_nan(tmp_path):
    data = np.full((5, 5, 5), np.inf, np.float32)
    data[0] = np.nan
    path = tmp_path / "inf.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    _expect(path, "nan or infinite")


def test_all_zero(tmp_path):
    path = tmp_path / "zero.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.int16), np.eye(4)), path)
    _expect(path, "every voxel is zero")


def test_other_format_is_named(nibabel_data_dir, tmp_path):
    path = tmp_path / "brain.mgz"
    path.write_bytes((nibabel_data_dir / "test.mgz").read_bytes())
    _expect(path, "mghimage", "convert")


def test_analyze_pair_with_missing_half(tmp_path):
    path = tmp_path / "pair.img"
    nib.save(nib.AnalyzeImage(np.ones((4, 4, 4), np.int16), np.eye(4)), path)
    (tmp_path / "pair.img").unlink()
    _expect(tmp_path / "pair.hdr", "pair.img", "missing")


def test_analyze_image_file_too_short(tmp_path):
    path = tmp_path / "pair.hdr"
    nib.save(nib.AnalyzeImage(np.ones((8, 8, 8), np.int16), np.eye(4)), path)
    img_file = tmp_path / "pair.img"
    img_file.write_bytes(img_file.read_bytes()[:100])
    with pytest.raises(VolumeError, match="truncated"):
        load_volume(path)


def test_singular_affine(tmp_path):
    path = _good(tmp_path, "flat.nii")
    _rewrite_header(path, qform_code=0, sform_code=2, srow_z=[0.0, 0.0, 0.0, 0.0])
    _expect(path, "invalid")


def test_volume_index_out_of_range(tmp_path):
    path = _good(tmp_path, shape=(6, 6, 6, 3))
    with pytest.raises(VolumeError, match="0 to 2"):
        load_volume(path, volume_index=3)
