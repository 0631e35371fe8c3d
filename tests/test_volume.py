"""Loading and saving real NIfTI/Analyze files: values, geometry, orientation, round trips."""

from __future__ import annotations

import gzip
import os

import nibabel as nib
import numpy as np
import pytest

from mri_style_app.imaging import volume as volume_module
from mri_style_app.imaging.intensity import robust_range
from mri_style_app.imaging.volume import Volume, VolumeError, load_volume, save_volume

RNG = np.random.default_rng(42)
# A reference volume in RAS order, not cubic and with unequal voxels so that any axis mix-up shows.
REF = (RNG.random((9, 11, 7)) * 1000 + 1).astype(np.float32)
REF_AFFINE = np.array([[1.0, 0, 0, -4], [0, 1.5, 0, -7], [0, 0, 2.5, 3], [0, 0, 0, 1]])


def _file_in_order(axcodes: str):
    """REF stored in another axis order, made with nibabel alone (not with the code under test)."""
    to_file = nib.orientations.ornt_transform(
        nib.orientations.axcodes2ornt("RAS"), nib.orientations.axcodes2ornt(tuple(axcodes))
    )
    data = nib.orientations.apply_orientation(REF, to_file)
    affine = REF_AFFINE @ nib.orientations.inv_ornt_aff(to_file, REF.shape)
    return data, affine


# --- values -------------------------------------------------------------------------------


def test_scaling_is_applied(tmp_path):
    raw = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    img = nib.Nifti1Image(raw, np.eye(4), dtype=np.int16)
    img.header.set_slope_inter(0.5, -10.0)
    nib.save(img, tmp_path / "scaled.nii")
    vol = load_volume(tmp_path / "scaled.nii")
    assert vol.data.dtype == np.float32
    np.testing.assert_allclose(vol.data, raw * 0.5 - 10.0)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.int64, np.float64, ">i2", ">f4"])
def test_integer_big_endian_and_wide_types(tmp_path, dtype):
    raw = (np.arange(5 * 6 * 7).reshape(5, 6, 7) % 200 + 1).astype(dtype)
    header = nib.Nifti1Header(endianness=">") if str(dtype).startswith(">") else None
    img = nib.Nifti1Image(raw, np.eye(4), header=header, dtype=np.dtype(dtype))
    nib.save(img, tmp_path / "typed.nii")
    assert nib.load(tmp_path / "typed.nii").get_data_dtype() == np.dtype(dtype)
    vol = load_volume(tmp_path / "typed.nii")
    np.testing.assert_array_equal(vol.data, raw.astype(np.float32))


def test_nan_and_inf_are_counted_and_do_not_poison_ranges(tmp_path):
    data = REF.copy()
    data[0, 0, :3] = np.nan
    data[1, 1, 1] = np.inf
    data[2, 2, 2] = -np.inf
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "holes.nii.gz")
    vol = load_volume(tmp_path / "holes.nii.gz")
    assert vol.nonfinite_count == 5
    assert np.all(np.isfinite(vol.data))
    lo, hi = robust_range(vol.data)
    assert np.isfinite(lo) and np.isfinite(hi) and 0 <= lo < hi <= 1001


def test_4d_gives_the_first_volume_and_the_count(tmp_path):
    series = np.stack([REF * (t + 1) for t in range(4)], axis=-1)
    nib.save(nib.Nifti1Image(series, REF_AFFINE), tmp_path / "series.nii.gz")
    vol = load_volume(tmp_path / "series.nii.gz")
    assert vol.n_volumes == 4 and vol.volume_index == 0 and vol.shape == REF.shape
    assert vol.source_shape == (9, 11, 7, 4)
    np.testing.assert_allclose(vol.data, REF)
    third = load_volume(tmp_path / "series.nii.gz", volume_index=2)
    np.testing.assert_allclose(third.data, REF * 3)


def test_4d_with_trailing_singleton(tmp_path):
    series = np.stack([REF, REF * 2], axis=-1)[..., None]  # (X, Y, Z, 2, 1)
    nib.save(nib.Nifti1Image(series, REF_AFFINE), tmp_path / "s.nii")
    vol = load_volume(tmp_path / "s.nii", volume_index=1)
    assert vol.n_volumes == 2
    np.testing.assert_allclose(vol.data, REF * 2)


def test_2d_image_is_one_slice(tmp_path):
    # The decision: a 2D image opens as a volume one voxel thick, not a refusal.
    plane = REF[:, :, 0]
    nib.save(nib.Nifti1Image(plane, np.diag([0.5, 0.7, 3.0, 1.0])), tmp_path / "plane.nii")
    vol = load_volume(tmp_path / "plane.nii")
    assert vol.shape == (9, 11, 1) and vol.n_volumes == 1
    np.testing.assert_allclose(vol.data[:, :, 0], plane)
    np.testing.assert_allclose(vol.voxel_sizes, [0.5, 0.7, 3.0])


def test_nifti2(tmp_path):
    data, affine = _file_in_order("LAS")
    nib.save(nib.Nifti2Image(data, affine), tmp_path / "two.nii")
    vol = load_volume(tmp_path / "two.nii")
    assert isinstance(vol.source_header, nib.Nifti2Header)
    np.testing.assert_allclose(vol.data, REF)
    np.testing.assert_allclose(vol.affine, REF_AFFINE)
    out = save_volume(vol, tmp_path / "two_copy.nii.gz")
    assert isinstance(nib.load(out), nib.Nifti2Image)
    np.testing.assert_allclose(load_volume(out).data, REF)


@pytest.mark.parametrize("open_as", ["pair.hdr", "pair.img"])
def test_analyze_pair(tmp_path, open_as):
    raw = (REF * 10).astype(np.int16)
    nib.save(nib.AnalyzeImage(raw, np.diag([1.0, 1.5, 2.5, 1.0])), tmp_path / "pair.img")
    assert (tmp_path / "pair.hdr").exists()
    vol = load_volume(tmp_path / open_as)
    assert vol.name == "pair"
    # Analyze has no orientation: nibabel's convention is a flipped x axis (LAS).
    reference = nib.as_closest_canonical(nib.load(tmp_path / "pair.img")).get_fdata()
    np.testing.assert_allclose(vol.data, reference)
    assert vol.source_axcodes == "".join(nib.aff2axcodes(nib.load(tmp_path / "pair.img").affine))
    saved = save_volume(vol, tmp_path / "pair_as_nifti.nii")
    np.testing.assert_allclose(load_volume(saved).data, vol.data)


# --- orientation ---------------------------------------------------------------------------

ORDERS = ["RAS", "LAS", "LIA", "PSR", "ILP", "ASL"]


@pytest.mark.parametrize("axcodes", ORDERS)
def test_any_axis_order_loads_to_the_same_canonical_volume(tmp_path, axcodes):
    data, affine = _file_in_order(axcodes)
    nib.save(nib.Nifti1Image(data, affine), tmp_path / f"{axcodes}.nii.gz")
    vol = load_volume(tmp_path / f"{axcodes}.nii.gz")
    assert vol.source_axcodes == axcodes
    np.testing.assert_array_equal(vol.data, REF)
    np.testing.assert_allclose(vol.affine, REF_AFFINE, atol=1e-6)
    np.testing.assert_allclose(vol.voxel_sizes, [1.0, 1.5, 2.5])
    # Every canonical voxel maps back to the same voxel (same value) in the file's own order.
    for ijk in [(0, 0, 0), (8, 10, 6), (3, 7, 2)]:
        assert data[vol.source_index(ijk)] == vol.data[ijk]
        np.testing.assert_allclose(vol.index_of(vol.world(ijk)), ijk, atol=1e-9)
        np.testing.assert_allclose(vol.world(ijk), (affine @ np.array([*vol.source_index(ijk), 1.0]))[:3])


@pytest.mark.parametrize(
    "axcodes,codes", [(axcodes, (1, 4)) for axcodes in ORDERS] + [("LIA", (0, 2)), ("LAS", (2, 0))]
)
def test_load_save_load_keeps_data_and_geometry(tmp_path, axcodes, codes):
    data, affine = _file_in_order(axcodes)
    raw = np.round(data).astype(np.int16)
    img = nib.Nifti1Image(raw, affine, dtype=np.int16)
    img.header.set_slope_inter(0.25, 5.0)
    img.set_qform(affine, code=codes[0])
    img.set_sform(affine, code=codes[1])  # 4: MNI
    img.header.set_xyzt_units("mm", "sec")
    src = tmp_path / f"src_{axcodes}.nii.gz"
    nib.save(img, src)

    first = load_volume(src)
    out = save_volume(first, tmp_path / f"copy_{axcodes}.nii.gz")
    second = load_volume(out)

    np.testing.assert_array_equal(second.data, first.data)
    np.testing.assert_allclose(second.affine, first.affine, atol=1e-6)
    np.testing.assert_allclose(second.source_affine, first.source_affine, atol=1e-6)
    assert second.source_axcodes == axcodes
    written = nib.load(out)
    assert written.shape == raw.shape  # the file's own axis order, not RAS
    np.testing.assert_allclose(written.get_fdata(), raw * 0.25 + 5.0, rtol=1e-6)
    assert (int(written.header["qform_code"]), int(written.header["sform_code"])) == codes
    assert written.header.get_xyzt_units() == ("mm", "sec")


def test_stored_as_writes_another_axis_order(tmp_path):
    vol = Volume(data=REF.copy(), affine=REF_AFFINE.copy(), name="ref")
    for axcodes in ["LIA", "SPL"]:
        out = save_volume(vol.stored_as(axcodes), tmp_path / f"{axcodes}.nii")
        img = nib.load(out)
        assert "".join(nib.aff2axcodes(img.affine)) == axcodes
        expected, expected_affine = _file_in_order(axcodes)
        np.testing.assert_array_equal(np.asanyarray(img.dataobj), expected)
        np.testing.assert_allclose(img.affine, expected_affine, atol=1e-6)
        back = load_volume(out)
        np.testing.assert_array_equal(back.data, REF)


# --- saving safely --------------------------------------------------------------------------


def test_save_refuses_to_overwrite_the_source(tmp_path):
    data, affine = _file_in_order("LAS")
    src = tmp_path / "src.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), src)
    before = src.read_bytes()
    vol = load_volume(src)
    with pytest.raises(VolumeError, match="never"):
        save_volume(vol, src)
    # Also through another spelling of the same path, and for a volume derived from it.
    os.symlink(src, tmp_path / "link.nii.gz")
    with pytest.raises(VolumeError, match="never"):
        save_volume(vol, tmp_path / "link.nii.gz")
    derived = vol.with_data(vol.data * 2, name="twice")
    (tmp_path / "sub").mkdir()
    with pytest.raises(VolumeError, match="never"):
        save_volume(derived.with_data(derived.data), tmp_path / "sub" / ".." / "src.nii.gz")
    assert src.read_bytes() == before
    save_volume(derived, tmp_path / "twice.nii.gz")  # any other name is fine


def test_save_is_atomic(tmp_path, monkeypatch):
    vol = Volume(data=REF.copy(), affine=REF_AFFINE.copy())
    target = save_volume(vol, tmp_path / "out.nii")
    before = target.read_bytes()
    real_save = volume_module.nib.save

    def save_then_fail(img, filename):  # the real write happens, then the disk "fills up"
        real_save(img, filename)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(volume_module.nib, "save", save_then_fail)
    with pytest.raises(VolumeError, match="No space left"):
        save_volume(vol.with_data(vol.data + 1), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nii"]  # no temporary left behind


@pytest.mark.parametrize("image_class", [nib.Nifti1Image, nib.Nifti2Image])
def test_gzipped_save_is_a_plain_gzip_of_the_uncompressed_save(tmp_path, image_class):
    data, affine = _file_in_order("LIA")
    src = tmp_path / "src.nii"
    nib.save(image_class(data, affine), src)
    vol = load_volume(src).with_data(load_volume(src).data * 2, name="twice")
    plain = save_volume(vol, tmp_path / "out.nii").read_bytes()
    packed = save_volume(vol, tmp_path / "out.nii.gz").read_bytes()
    assert gzip.decompress(packed) == plain
    # Like nibabel's own writer: no file name (flags 0) and no time in the gzip header, so the
    # same volume always gives the same bytes.
    assert packed[:2] == b"\x1f\x8b" and packed[3] == 0 and packed[4:8] == bytes(4)
    assert save_volume(vol, tmp_path / "again.nii.gz").read_bytes() == packed
    assert isinstance(nib.load(tmp_path / "out.nii.gz"), image_class)


def test_save_rejects_bad_targets(tmp_path):
    vol = Volume(data=REF.copy(), affine=REF_AFFINE.copy())
    with pytest.raises(VolumeError, match="NIfTI"):
        save_volume(vol, tmp_path / "out.png")
    with pytest.raises(VolumeError, match="does not exist"):
        save_volume(vol, tmp_path / "missing" / "out.nii")


# --- files nobody here wrote: nibabel's own test data --------------------------------------


@pytest.mark.parametrize("name", ["anatomical.nii", "example4d.nii.gz", "standard.nii.gz", "example_nifti2.nii.gz"])
def test_nibabel_test_data(nibabel_data_dir, name):
    path = nibabel_data_dir / name
    img = nib.load(path)
    vol = load_volume(path)
    assert vol.source_shape == img.shape
    assert vol.source_axcodes == "".join(nib.aff2axcodes(img.affine))
    n_volumes = img.shape[3] if len(img.shape) > 3 else 1
    assert vol.n_volumes == n_volumes
    canonical = nib.as_closest_canonical(img)
    assert "".join(nib.aff2axcodes(canonical.affine)) == "RAS"
    expected = canonical.get_fdata()
    if expected.ndim > 3:
        expected = expected[..., 0]
    assert vol.shape == expected.shape
    np.testing.assert_allclose(vol.data, expected, rtol=1e-6)
    np.testing.assert_allclose(vol.affine, canonical.affine, atol=1e-5)
    np.testing.assert_allclose(vol.voxel_sizes, canonical.header.get_zooms()[:3], rtol=1e-5)
