"""intensity.py and metrics.py against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mri_style_app.imaging.intensity import foreground_mask, normalize_unit, percentile_scale, robust_range
from mri_style_app.imaging.metrics import evaluate_pair, head_mask, mae, psnr, ssim, ssim_map, stripe_index

C1, C2 = 0.01**2, 0.03**2  # Wang et al. 2004 constants for data range 1
RNG = np.random.default_rng(7)


# --- intensity ----------------------------------------------------------------------------


def test_robust_range_ignores_the_zero_background():
    data = np.zeros((100, 100, 10), np.float32)
    data[40:60, 40:60, :] = np.linspace(1, 100, 4000).reshape(20, 20, 10)  # 4 % of the voxels
    lo, hi = robust_range(data)
    assert lo == pytest.approx(np.percentile(np.linspace(1, 100, 4000), 0.5), rel=1e-3)
    assert hi == pytest.approx(np.percentile(np.linspace(1, 100, 4000), 99.5), rel=1e-3)


def test_robust_range_is_finite_with_nan_and_inf():
    data = RNG.random((30, 30, 30)).astype(np.float32)
    data[0] = np.nan
    data[1] = np.inf
    data[2] = -np.inf
    lo, hi = robust_range(data)
    assert math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi <= 1


@pytest.mark.parametrize("value", [0.0, 5.0, -3.0])
def test_robust_range_of_a_constant_is_a_usable_window(value):
    lo, hi = robust_range(np.full((4, 4, 4), value, np.float32))
    assert (lo, hi) == (value, value + 1.0)
    assert robust_range(np.full((4, 4, 4), np.nan, np.float32)) == (0.0, 1.0)


def test_percentile_scale_and_normalize_unit_inside_a_mask():
    data = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    mask = np.zeros(data.shape, bool)
    mask[:5] = True  # values 0..499
    assert percentile_scale(data, mask, 99.5) == pytest.approx(np.percentile(np.arange(500), 99.5))
    unit = normalize_unit(data, mask, 99.5)
    assert unit.dtype == np.float32 and unit.min() == 0.0 and unit.max() == 1.0
    assert unit[0, 0, 1] == pytest.approx(1 / np.percentile(np.arange(500), 99.5))
    assert np.all(unit[5:] == 1.0)  # above the window: clipped


def test_foreground_mask_finds_the_head():
    data = np.abs(RNG.normal(0, 1, (40, 40, 40))).astype(np.float32)  # air: noise at 1 % of the head
    head = np.zeros(data.shape, bool)
    head[10:30, 8:32, 12:28] = True
    data[head] += 100
    found = foreground_mask(data)
    assert np.array_equal(found, head)


def test_foreground_mask_keeps_dark_tissue_of_a_skull_stripped_volume():
    """Air of exact zeros, tissues from 0.14 (white matter in T2w) to 0.5 (CSF): all of it is head.
    (The mask once started at the darkest tissue, because the display window leaves zeros out.)"""
    data = np.zeros((40, 40, 40), np.float32)
    head = np.zeros(data.shape, bool)
    head[10:30, 8:32, 12:28] = True
    data[head] = RNG.uniform(0.14, 0.5, int(head.sum()))
    assert np.array_equal(foreground_mask(data), head)


# --- metrics -------------------------------------------------------------------------------


def test_psnr_and_mae_of_a_known_error():
    ref = RNG.random((20, 20, 20))
    pred = ref + 0.1  # MSE 0.01 -> PSNR 20 dB
    assert psnr(pred, ref) == pytest.approx(20.0)
    assert mae(pred, ref) == pytest.approx(0.1)
    assert psnr(pred, ref, data_range=2.0) == pytest.approx(20 + 20 * math.log10(2))
    assert psnr(ref, ref) == math.inf


def test_metrics_count_only_the_mask():
    ref = np.zeros((10, 10, 10))
    pred = ref.copy()
    pred[:5] = 0.5  # wrong outside the mask only ...
    pred[5:] = 0.01  # ... and a little wrong inside
    mask = np.zeros(ref.shape, bool)
    mask[5:] = True
    assert mae(pred, ref, mask) == pytest.approx(0.01)
    assert psnr(pred, ref, mask) == pytest.approx(40.0)


def test_bad_masks_and_shapes_are_refused():
    a = np.zeros((4, 4, 4))
    with pytest.raises(ValueError, match="empty"):
        mae(a, a, np.zeros(a.shape, bool))
    with pytest.raises(ValueError, match="mask shape"):
        mae(a, a, np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="differs"):
        psnr(a, np.zeros((4, 4, 5)))


@pytest.mark.parametrize("shape", [(32, 32), (24, 20, 16)])
def test_ssim_of_identical_images_is_one(shape):
    img = RNG.random(shape)
    np.testing.assert_allclose(ssim_map(img, img), 1.0, atol=1e-5)
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-5)


def test_ssim_of_a_constant_shift_is_the_luminance_term():
    # Flat images: no variance, so SSIM = (2 a b + C1) / (a^2 + b^2 + C1) at every voxel.
    a, b = 0.4, 0.5
    expected = (2 * a * b + C1) / (a * a + b * b + C1)  # 0.975616...
    got = ssim_map(np.full((20, 20, 20), a), np.full((20, 20, 20), b))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert expected == pytest.approx(0.97561570, abs=1e-7)


def test_ssim_of_a_scaled_ramp_matches_the_hand_computed_value():
    # x rises linearly along axis 0; away from the edges the 7 x 7 uniform window sees mean = x
    # and sample variance = slope^2 * mean(k^2 for k in -3..3) * 49 / 48. y = 0.5 x then has
    # mean x / 2, variance / 4, covariance / 2.
    slope, k = 0.01, 0.5
    n = 64
    x = np.repeat((0.2 + slope * np.arange(n))[:, None], 40, axis=1)
    radius = 3
    var = slope**2 * float(np.mean(np.arange(-radius, radius + 1) ** 2)) * 49 / 48
    mean = x[radius : n - radius, 0]
    expected = (2 * k * mean**2 + C1) * (2 * k * var + C2) / (((1 + k * k) * mean**2 + C1) * ((1 + k * k) * var + C2))
    got = ssim_map(k * x, x)[radius : n - radius, 20]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert 0.70 < expected.min() < expected.max() < 0.8  # a real, not a trivial, value


def test_ssim_is_scikit_image_default_per_slice_on_real_images():
    from skimage.metrics import structural_similarity

    from mri_style_app.imaging.volume import load_volume
    from mri_style_app.paths import demo_t1_path, demo_t2_path

    t1 = normalize_unit(load_volume(demo_t1_path()).data[:, :, 60:66])
    t2 = normalize_unit(load_volume(demo_t2_path()).data[:, :, 60:66])
    ours = ssim_map(t1, t2)
    for k in range(t1.shape[2]):
        _, theirs = structural_similarity(t1[:, :, k], t2[:, :, k], data_range=1.0, full=True)
        np.testing.assert_allclose(ours[:, :, k], theirs, atol=1e-4)
    assert 0.3 < float(ours.mean()) < 0.95  # two different contrasts: neither trivial nor identical


def test_head_mask_is_closed_filled_and_made_from_both_partners():
    t1 = np.zeros((50, 50, 2), np.float32)
    t1[5:35, 5:35] = 200.0
    t1[15:25, 15:25] = 0.0  # a dark hole inside the head (say, CSF in a T1w): filled
    t1[10, 5:35] = 0.0  # a one-pixel crack: closed
    t2 = np.zeros_like(t1)
    t2[38:42, 10:20, 1] = 255.0  # tissue only the partner shows
    t2[0, 0, 0] = 255.0  # the partner's maximum
    alone = head_mask(t1)
    assert alone[5:35, 5:35].all() and not alone[:5].any() and not alone[36:].any()
    both = head_mask(t1, t2)
    assert both[38:42, 10:20, 1].all() and not both[38:42, 10:20, 0].any()
    assert head_mask(np.zeros((8, 8, 1))).sum() == 0


def test_ssim_mean_uses_only_the_mask():
    ref = RNG.random((30, 30, 30))
    pred = ref.copy()
    pred[:, :, 15:] = RNG.random((30, 30, 15))  # the upper half is unrelated
    lower = np.zeros(ref.shape, bool)
    lower[:, :, :8] = True  # far enough from the damage for the window (radius 5)
    assert ssim(pred, ref, lower) == pytest.approx(1.0, abs=1e-5)
    assert ssim(pred, ref) < 0.7


def test_evaluate_pair_scales_each_volume_by_itself():
    ref = RNG.random((24, 24, 24)) * 300
    mask = np.ones(ref.shape, bool)
    result = evaluate_pair(2.5 * ref, ref, mask)  # same image, other units: a perfect match
    assert result["psnr"] == math.inf and result["mae"] == 0.0
    assert result["ssim"] == pytest.approx(1.0, abs=1e-5)
    noisy = evaluate_pair(ref + RNG.normal(0, 15, ref.shape), ref, mask)
    assert 15 < noisy["psnr"] < 35 and 0 < noisy["ssim"] < 1 and noisy["mae"] > 0


def test_stripe_index_is_one_for_a_slice_consistent_output_and_grows_with_banding():
    rng = np.random.default_rng(0)
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in (60, 70, 50)), indexing="ij")
    head = (x**2 + y**2 + z**2) < 0.8
    source = np.where(head, 100 + 40 * np.sin(5 * x) * np.cos(4 * y) * np.cos(3 * z) + rng.normal(0, 2, x.shape), 0)
    inverted = np.where(head, 250 - source, 0)  # another contrast, the same from slice to slice
    assert stripe_index(source, inverted) == pytest.approx(1.0, abs=0.05)
    banded = inverted * rng.uniform(0.9, 1.1, (1, 1, x.shape[2]))  # each axial slice its own gain
    assert stripe_index(source, banded) > 1.5
    # bands across the sagittal slices show along that axis, not the axial one
    sagittal = inverted * rng.uniform(0.9, 1.1, (x.shape[0], 1, 1))
    assert stripe_index(source, sagittal, axis=0) > 1.5 > stripe_index(source, sagittal)
    with pytest.raises(ValueError, match="one shape"):
        stripe_index(source, source[:-1])
