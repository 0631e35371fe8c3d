"""The BrainWeb-style simulation and the shipped demo volumes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mri_style_app.imaging import simulate as sim
from mri_style_app.imaging.volume import Volume, load_volume, save_volume
from mri_style_app.paths import demo_mask_path, demo_t1_path, demo_t2_path, resources_dir


def _pure_tissue_maps():
    """Three voxels: pure CSF, pure GM, pure WM, plus one outside the brain."""
    gm = np.array([0.0, 1.0, 0.0, 0.3])
    wm = np.array([0.0, 0.0, 1.0, 0.3])
    mask = np.array([True, True, True, False])
    return gm, wm, mask


def test_tissue_fractions():
    gm = np.array([0.2, 0.7, 0.9, 0.5])
    wm = np.array([0.3, 0.5, 0.0, 0.5])
    mask = np.array([True, True, True, False])
    f = sim.tissue_fractions(gm, wm, mask)
    np.testing.assert_allclose(f["csf"], [0.5, 0.0, 0.1, 0.0])
    np.testing.assert_allclose(f["gm"], [0.2, 0.7, 0.9, 0.0])


def test_t2w_spin_echo_values_by_hand():
    # BrainWeb 1.5 T, TR 3300, TE 120: PD (1 - exp(-TR/T1)) exp(-TE/T2), written out here.
    expected = [
        1.00 * (1 - math.exp(-3300 / 2569)) * math.exp(-120 / 329),
        0.86 * (1 - math.exp(-3300 / 833)) * math.exp(-120 / 83),
        0.77 * (1 - math.exp(-3300 / 500)) * math.exp(-120 / 70),
        0.0,
    ]
    got = sim.t2w_from_tissue_maps(*_pure_tissue_maps())
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got[0] > got[1] > got[2] > 0  # T2w: CSF bright, WM darkest


@pytest.mark.parametrize("tissues,seq", [(sim.BRAINWEB_1_5T, sim.T1W_1_5T), (sim.RELAXATION_3T, sim.T1W_3T)])
def test_t1w_gradient_echo(tissues, seq):
    gm, wm, mask = _pure_tissue_maps()
    got = sim.spoiled_gradient_echo(sim.tissue_fractions(gm, wm, mask), tissues=tissues, **seq)
    a = math.radians(seq["flip_deg"])
    t = tissues["wm"]
    e1 = math.exp(-seq["tr_ms"] / t.t1_ms)
    wm_by_hand = t.pd * math.sin(a) * (1 - e1) / (1 - math.cos(a) * e1) * math.exp(-seq["te_ms"] / t.t2star_ms)
    assert got[2] == pytest.approx(wm_by_hand, rel=1e-6)
    assert got[2] > got[1] > got[0] > 0  # T1w: WM brightest, CSF darkest


def test_rician_noise_level():
    rng = np.random.default_rng(3)
    signal = np.zeros((200, 200))
    signal[:100] = 1.0
    noisy = sim.add_rician_noise(signal, 2.0, signal > 0, rng)
    sigma = 0.02
    # Where there is no signal the magnitude is Rayleigh: mean sigma * sqrt(pi / 2).
    assert noisy[100:].mean() == pytest.approx(sigma * math.sqrt(math.pi / 2), rel=0.02)
    assert noisy[:100].std() == pytest.approx(sigma, rel=0.05)
    assert noisy.min() >= 0


def test_bias_field_is_smooth_bounded_and_seeded():
    field = sim.bias_field((40, 50, 30), 0.2, np.random.default_rng(1))
    assert field.min() == pytest.approx(0.9, abs=1e-6) and field.max() == pytest.approx(1.1, abs=1e-6)
    assert max(np.abs(np.diff(field, axis=a)).max() for a in range(3)) < 0.02  # smooth
    same = sim.bias_field((40, 50, 30), 0.2, np.random.default_rng(1))
    other = sim.bias_field((40, 50, 30), 0.2, np.random.default_rng(2))
    assert np.array_equal(field, same) and not np.allclose(field, other)


# --- the shipped demo volumes ----------------------------------------------------------------


@pytest.fixture(scope="module")
def demo():
    folder = resources_dir() / "demo"
    vols = {
        "t1": load_volume(demo_t1_path()),
        "t2": load_volume(demo_t2_path()),
        "mask": load_volume(demo_mask_path()),
        "gm": load_volume(folder / "icbm152_2009a_gm.nii.gz"),
        "wm": load_volume(folder / "icbm152_2009a_wm.nii.gz"),
    }
    return vols


def test_demo_files_share_one_grid(demo):
    t1 = demo["t1"]
    assert t1.shape == (197, 233, 189) and t1.source_axcodes == "RAS"
    np.testing.assert_allclose(t1.voxel_sizes, 1.0)
    for name, vol in demo.items():
        assert t1.same_grid(vol), name


def test_demo_mask_is_a_plausible_brain(demo):
    mask = demo["mask"].data
    assert set(np.unique(mask)) == {0.0, 1.0}
    litres = mask.sum() * np.prod(demo["mask"].voxel_sizes) / 1e6
    # The MNI152 average brain is larger than a typical head (it includes the CSF around the
    # brain and the template is scaled up): 1.89 litres for this skull-stripped template.
    assert 1.1 < litres < 2.0
    inside = mask > 0
    assert np.all(demo["t1"].data[~inside] == 0)  # the T1 template is zero outside the brain
    gm_wm = (demo["gm"].data + demo["wm"].data) / 255
    assert gm_wm[inside].mean() > 0.8  # mostly tissue, not background


def test_demo_t2_is_the_brainweb_simulation(demo):
    inside = demo["mask"].data > 0
    expected = sim.t2w_from_tissue_maps(demo["gm"].data / 255, demo["wm"].data / 255, inside)
    slope = demo["t2"].extra["scaling"][0]
    assert np.abs(demo["t2"].data - expected).max() <= slope / 2 + 1e-7  # only 12-bit rounding
    assert np.all(demo["t2"].data[~inside] == 0)


def test_demo_licence_notice():
    text = (resources_dir() / "demo" / "LICENSE-ICBM.txt").read_text()
    assert "Copyright (C) 1993-2004 Louis Collins, McConnell Brain Imaging Centre" in text


def test_3t_pair_is_seeded_noisy_and_can_be_stored_in_another_order(demo, tmp_path):
    # A crop keeps this fast; the same function runs on the whole grid in the model tests.
    crop = (slice(40, 160), slice(50, 190), slice(60, 120))
    gm, wm = demo["gm"].data[crop] / 255, demo["wm"].data[crop] / 255
    inside = demo["mask"].data[crop] > 0
    t1w, t2w = sim.simulate_3t_pair(gm, wm, inside, seed=5)
    again, _ = sim.simulate_3t_pair(gm, wm, inside, seed=5)
    other, _ = sim.simulate_3t_pair(gm, wm, inside, seed=6)
    assert np.array_equal(t1w, again) and not np.array_equal(t1w, other)
    # 2 % Rician noise: the air outside the brain has Rayleigh mean 0.02 * max * sqrt(pi/2).
    sigma = 0.02 * float(np.max(t2w[inside]))
    assert t2w[~inside].mean() == pytest.approx(sigma * math.sqrt(math.pi / 2), rel=0.15)
    # The contrasts are the right way round despite noise and bias.
    csf = inside & (gm + wm < 0.05)
    white = inside & (wm > 0.95)
    assert t2w[csf].mean() > 2 * t2w[white].mean() and t1w[white].mean() > 2 * t1w[csf].mean()

    vol = Volume(data=t2w, affine=demo["t1"].affine.copy(), name="t2w_3t")
    out = save_volume(vol.stored_as("LIP"), tmp_path / "t2w_3t.nii.gz")
    back = load_volume(out)
    assert back.source_axcodes == "LIP"
    np.testing.assert_array_equal(back.data, t2w)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-6)
