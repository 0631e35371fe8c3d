"""translate_volume and cycle_error_volume: real forward passes of real (random-weight) models."""

from __future__ import annotations

import sys
import threading

import nibabel as nib
import numpy as np
import pytest
import torch

from mri_style_app.cyclegan import checkpoint as ck
from mri_style_app.cyclegan.device import (
    DeviceError,
    cuda_available,
    describe_device,
    keep_freed_memory,
    physical_cores,
)
from mri_style_app.cyclegan.networks import GeneratorConfig, ResnetGenerator, UNetGenerator, init_weights
from mri_style_app.cyclegan.translate import (
    TranslationCancelled,
    _run_around,
    cycle_error_volume,
    inference_autocast,
    run_generator,
    smooth_across_slices,
    translate_volume,
)
from mri_style_app.imaging.volume import Volume, load_volume, save_volume

CONFIG = GeneratorConfig(ngf=8, n_blocks=2)


def head(shape=(30, 35, 26)) -> np.ndarray:
    """A synthetic head: an ellipsoid of 'tissue' with a darker core, in air, plus a little noise."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    r = np.sqrt(((grid / np.array([0.8, 0.85, 0.75])[:, None, None, None]) ** 2).sum(axis=0))
    data = np.where(r < 1, 800.0, 0.0) - np.where(r < 0.4, 300.0, 0.0) + 40 * grid[0]
    data = np.where(r < 1, data, 0.0) + np.random.default_rng(0).normal(0, 5, shape).clip(0)
    return data.astype(np.float32)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    nets = {d: ResnetGenerator(CONFIG) for d in ck.DIRECTIONS}
    for net in nets.values():
        init_weights(net)
    folder = tmp_path_factory.mktemp("model")
    path = ck.save_model(folder / "random.safetensors", nets, ck.make_card(CONFIG, ck.DIRECTIONS))
    return ck.load_model(path)


@pytest.fixture(scope="module")
def volume():
    affine = np.diag([1.2, 1.0, 1.5, 1.0])
    affine[:3, 3] = [-18, -17, -20]
    return Volume(data=head(), affine=affine, name="head")


@pytest.mark.parametrize("axcodes", ["LAS", "RAS", "LIA"])
def test_output_lies_on_the_input_grid(tmp_path, volume, model, axcodes):
    src = tmp_path / f"head_{axcodes}.nii.gz"
    save_volume(volume.stored_as(axcodes), src)
    loaded = load_volume(src)
    assert loaded.source_axcodes == axcodes
    result = translate_volume(loaded, model, "t1-to-t2", device="cpu")
    assert result.same_grid(loaded) and result.source_axcodes == axcodes
    out = save_volume(result, tmp_path / f"t2_{axcodes}.nii.gz")
    written, original = nib.load(out), nib.load(src)
    assert written.shape == original.shape
    assert np.allclose(written.affine, original.affine)
    # The work happens in canonical RAS order, so every storage order gives the same translation.
    reference = translate_volume(volume, model, "t1-to-t2", device="cpu")
    assert np.allclose(result.data, reference.data, atol=1e-5)


def test_intensities_background_and_batching(volume, model):
    result = translate_volume(volume, model, "t2-to-t1", device="cpu")
    data = result.data
    assert data.dtype == np.float32 and np.isfinite(data).all()
    scale = float(np.percentile(volume.data[volume.data > 0.05 * volume.data.max()], 99.5))
    assert 0 <= data.min() and data.max() <= scale * 1.001  # [0, 1] x the source's robust scale
    assert data.std() > 0
    # Axial slices without foreground (the first, all air) are not run and stay 0.
    empty = ~(volume.data > 0.05 * np.percentile(volume.data, 99.5)).any(axis=(0, 1))
    assert empty.any() and not data[:, :, empty].any()
    # Air beyond a small margin around the head is exactly 0 (no haze); the head is translated.
    from mri_style_app.cyclegan.translate import AIR_LEVEL, BACKGROUND_MARGIN_VOXELS, dilate, normalise_volume

    unit, _, foreground = normalise_volume(volume.data)
    near = dilate(unit > AIR_LEVEL, BACKGROUND_MARGIN_VOXELS)
    assert (~near).any() and not data[~near].any() and data[foreground].mean() > 0
    one_by_one = translate_volume(volume, model, "t2-to-t1", device="cpu", batch_size=1)
    assert np.allclose(one_by_one.data, data, atol=1e-4 * scale)


def test_padding_to_the_size_multiple_and_back(model):
    net = model.generator("t1-to-t2")
    for h, w in [(13, 22), (5, 7), (2, 3), (16, 16)]:
        with torch.inference_mode():
            out = run_generator(net, torch.rand(2, 1, h, w) * 2 - 1)
        assert out.shape == (2, 1, h, w)


def test_a_unet_runs_on_the_anatomy_and_its_margin_only():
    torch.manual_seed(0)
    net = UNetGenerator(GeneratorConfig(ngf=4, n_blocks=2, generator="unet")).eval()  # strides of 4
    init_weights(net)
    view = torch.rand(3, 1, 30, 41) * 2 - 1
    with torch.inference_mode():
        whole = run_generator(net, view)
        # a margin that reaches every side: the same as the whole view
        assert torch.equal(_run_around(net, view, (10, 20, 10, 30), 20), whole)
        part = _run_around(net, view, (13, 15, 9, 11), 2)
    # rows 11-17 and columns 7-13 are needed: the grid of 4 makes that rows 8-20, columns 4-16
    assert part.shape == view.shape
    inside = (slice(None), slice(None), slice(8, 20), slice(4, 16))
    assert torch.equal(part[inside], run_generator(net, view[inside]))
    outside = torch.ones_like(part, dtype=torch.bool)
    outside[inside] = False
    assert (part[outside] == -1).all()


def test_a_unet_translation_does_not_depend_on_the_batch_size():
    # each group of neighbouring slices shares one window whatever the batches (or the device):
    # a cone, so that the anatomy (and its window) narrows from slice to slice
    x, y = np.meshgrid(np.arange(140) - 70.0, np.arange(130) - 65.0, indexing="ij")
    radius = np.hypot(x, y)[:, :, None]
    cone = np.where(radius < np.linspace(8, 50, 12), 600.0 + radius, 0.0).astype(np.float32)
    volume = Volume(data=cone, affine=np.eye(4), name="cone")
    torch.manual_seed(0)
    nets = {}
    for direction in ck.DIRECTIONS:
        nets[direction] = UNetGenerator(GeneratorConfig(ngf=4, n_blocks=2, generator="unet")).eval()
        init_weights(nets[direction])
    unet = ck.CycleGANModel(None, ck.make_card("unet", list(ck.DIRECTIONS)), nets)
    whole = translate_volume(volume, unet, "t1-to-t2", device="cpu").data
    assert whole.any()
    for size in (1, 3):
        assert np.allclose(
            translate_volume(volume, unet, "t1-to-t2", device="cpu", batch_size=size).data, whole, atol=1e-5
        )


def test_each_plane_and_tri_planar_fusion(volume, model):
    """Tri-planar fusion is the median of the three planes' slices as the network made them."""
    results = {
        p: translate_volume(volume, model, "t1-to-t2", planes=p, device="cpu", smooth_slices=False).data
        for p in ("axial", "coronal", "sagittal")
    }
    assert not np.allclose(results["axial"], results["coronal"])
    expected = np.median(np.stack([results["axial"], results["coronal"], results["sagittal"]]), axis=0)
    tri = translate_volume(volume, model, "t1-to-t2", planes="tri", device="cpu").data
    assert np.allclose(tri, expected, atol=1e-5)


def test_smoothing_across_slices_evens_out_bands_and_keeps_edges():
    """Slices that disagree by a random offset each (bands) are evened out; an edge of the source
    across slices (a tissue that starts at one slice) and a contrast the source does not show
    (two tissues alike in the source, unlike in the translation) are kept; a thin slab is left."""
    rng = np.random.default_rng(0)
    shape = (24, 20, 30)
    source = np.full(shape, 0.5, dtype=np.float32)
    source[:, :, 15:] = 0.9  # an edge across axial slices
    truth = 1.0 - source
    truth[:12, :, :] *= 0.2  # unlike in the translation, alike in the source
    bands = rng.normal(0.0, 0.02, shape[2]).astype(np.float32)
    banded = truth + bands[None, None, :]
    smoothed = smooth_across_slices(banded.copy(), source, axis=2)  # it filters in place
    inside = [z for z in range(2, 28) if abs(z - 14.5) > 3]  # away from the edge and the ends
    before = np.abs(banded - truth)[:, :, inside].mean()
    after = np.abs(smoothed - truth)[:, :, inside].mean()
    assert after < 0.75 * before, (before, after)
    # the edge: the last slice below it and the first above keep their own level within the bands
    assert np.abs(smoothed[:, :, 14] - truth[:, :, 14]).max() < 0.05
    assert np.abs(smoothed[:, :, 15] - truth[:, :, 15]).max() < 0.05
    # the two tissues the source does not tell apart stay apart
    assert smoothed[12:, :, 5].mean() - smoothed[:12, :, 5].mean() > 0.35
    slab = banded[:, :, :3]
    assert smooth_across_slices(slab, source[:, :, :3], axis=2) is slab
    # with the voxels the caller uses named, those come out the same (each depends on its own
    # line across slices), whatever the filter skips elsewhere
    wanted = np.zeros(shape, dtype=bool)
    wanted[5:9, 3:17, 10:12] = True
    assert np.array_equal(smooth_across_slices(banded.copy(), source, 2, wanted)[wanted], smoothed[wanted])


def test_the_default_axial_translation_is_smoother_across_slices(model):
    """translate_volume evens out its axial slices (smooth_slices=True, the default); False keeps
    each slice as the network made it."""
    from mri_style_app.imaging.metrics import stripe_index

    noisy_head = Volume(data=head((40, 44, 36)), affine=np.eye(4), name="head")
    kept = translate_volume(noisy_head, model, "t1-to-t2", device="cpu", smooth_slices=False)
    even = translate_volume(noisy_head, model, "t1-to-t2", device="cpu")
    assert stripe_index(noisy_head.data, even.data) < stripe_index(noisy_head.data, kept.data)
    assert even.data.max() <= kept.data.max() + 1e-6 and np.isfinite(even.data).all()


def test_progress_reaches_one_and_cancel_stops_within_a_batch(volume, model):
    seen = []
    translate_volume(volume, model, "t1-to-t2", device="cpu", batch_size=4, progress=lambda f, m: seen.append((f, m)))
    assert seen[-1][0] == pytest.approx(1.0) and all(a[0] < b[0] for a, b in zip(seen, seen[1:]))
    assert "slices" in seen[0][1]

    cancel, calls = threading.Event(), []

    def progress(fraction, message):
        calls.append(fraction)
        cancel.set()  # the user presses Cancel during the first batch

    with pytest.raises(TranslationCancelled):
        translate_volume(
            volume, model, "t1-to-t2", planes="tri", device="cpu", batch_size=4, progress=progress, cancel=cancel
        )
    assert len(calls) == 1  # no batch started after the cancel


def test_cycle_error_map(volume, model):
    translated = translate_volume(volume, model, "t1-to-t2", device="cpu")
    error = cycle_error_volume(volume, model, "t1-to-t2", device="cpu")
    assert error.same_grid(volume) and error.data.min() >= 0 and error.data.max() <= 1
    mask = volume.data > 0.05 * np.percentile(volume.data, 99.5)
    assert error.data[mask].mean() > 0 and not error.data[~mask].any()
    reused = cycle_error_volume(volume, model, "t1-to-t2", device="cpu", translated=translated)
    if inference_autocast(torch.device("cpu")) is None:  # float32: the same map to rounding
        assert np.allclose(reused.data, error.data, atol=1e-4)
    else:  # bfloat16 rounds the re-normalised translation differently: the same map to 40 dB
        from mri_style_app.imaging.metrics import psnr

        assert psnr(reused.data, error.data, mask, data_range=1.0) > 40


def test_wrong_direction_planes_and_device(volume, model, tmp_path):
    one = ck.save_model(
        tmp_path / "one.safetensors", {"t1-to-t2": model.generator("t1-to-t2")}, ck.make_card(CONFIG, ["t1-to-t2"])
    )
    with pytest.raises(ck.ModelError, match="no t2-to-t1 generator"):
        translate_volume(volume, ck.load_model(one), "t2-to-t1")
    with pytest.raises(ValueError, match="unknown planes"):
        translate_volume(volume, model, "t1-to-t2", planes="oblique")
    if not cuda_available():
        with pytest.raises(DeviceError, match="no usable NVIDIA GPU"):
            translate_volume(volume, model, "t1-to-t2", device="cuda")
    assert describe_device("cpu") == f"CPU ({physical_cores()} thread{'s' if physical_cores() > 1 else ''})"


@pytest.mark.skipif(not cuda_available(), reason="no CUDA GPU here")
def test_cuda_half_precision_matches_cpu(volume, model):
    cpu = translate_volume(volume, model, "t1-to-t2", device="cpu").data
    gpu = translate_volume(volume, model, "t1-to-t2", device="cuda").data
    from mri_style_app.imaging.metrics import psnr

    assert psnr(gpu, cpu, cpu > 0, data_range=float(cpu.max())) > 30


def test_the_card_sets_the_normalising_percentile_per_source_contrast(volume, tmp_path):
    from mri_style_app.cyclegan.translate import normalise_volume
    from mri_style_app.imaging.intensity import foreground_mask

    norm = {**ck.DEFAULT_NORMALISATION, "contrast_percentiles": {"t1": 90.0}}
    foreground = volume.data[foreground_mask(volume.data)]
    _, scale_t1, _ = normalise_volume(volume.data, norm, "t1")
    _, scale_t2, _ = normalise_volume(volume.data, norm, "t2")
    assert scale_t1 == pytest.approx(np.percentile(foreground, 90), rel=0.02)
    assert scale_t2 == pytest.approx(np.percentile(foreground, 99.5), rel=0.02)
    # translate_volume normalises a T1w source with the T1 percentile: the same generator gives
    # another output than under the plain card, and the output is scaled back by that scale
    torch.manual_seed(1)
    nets = {d: ResnetGenerator(CONFIG) for d in ck.DIRECTIONS}
    for net in nets.values():
        init_weights(net)
    plain = ck.load_model(ck.save_model(tmp_path / "plain.safetensors", nets, ck.make_card(CONFIG, ck.DIRECTIONS)))
    per_contrast = ck.load_model(
        ck.save_model(tmp_path / "t1at90.safetensors", nets, ck.make_card(CONFIG, ck.DIRECTIONS, norm))
    )
    a = translate_volume(volume, plain, "t1-to-t2").data
    b = translate_volume(volume, per_contrast, "t1-to-t2").data
    assert not np.allclose(a, b)
    assert b.max() <= scale_t1 * 1.0001
    # T2w sources are unchanged (no "t2" entry): the general 99.5th percentile
    assert np.allclose(
        translate_volume(volume, plain, "t2-to-t1").data, translate_volume(volume, per_contrast, "t2-to-t1").data
    )


def test_commands_keep_freed_memory_on_linux():
    # glibc's mallopt accepts each setting; elsewhere nothing is changed
    assert keep_freed_memory() is sys.platform.startswith("linux")
