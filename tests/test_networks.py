"""The CycleGAN networks: shapes, ranges and the reference layout (real forward passes)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from earlier_models import EARLIER

from mri_style_app.cyclegan.networks import (
    PRESETS,
    SIZE_MULTIPLE,
    GeneratorConfig,
    PatchDiscriminator,
    ResnetGenerator,
    build_generator,
    init_weights,
)


@pytest.mark.parametrize("preset", ["lite", "standard"])
def test_generator_keeps_size_and_range(preset):
    net = build_generator(preset).eval()
    init_weights(net)
    x = torch.rand(2, 1, 8 * SIZE_MULTIPLE, 5 * SIZE_MULTIPLE) * 2 - 1
    with torch.inference_mode():
        y = net(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1.0 and y.std() > 0


def test_the_presets_are_the_cpu_default_the_bundled_u_nets_and_the_reference_generator():
    assert list(PRESETS) == ["lite", "unet", "unet-fast", "standard"]
    assert PRESETS["lite"] == GeneratorConfig(ngf=8, n_blocks=6)
    assert PRESETS["unet"] == GeneratorConfig(ngf=16, n_blocks=4, generator="unet")
    assert PRESETS["unet-fast"] == GeneratorConfig(ngf=8, n_blocks=4, generator="unet")
    assert PRESETS["standard"] == GeneratorConfig(ngf=64, n_blocks=9)


def test_standard_rgb_generator_matches_the_reference_parameter_count():
    # The reference CycleGAN prints 11.378 M parameters for its ResNet-9 ngf 64 RGB generator.
    net = ResnetGenerator(GeneratorConfig(ngf=64, n_blocks=9, in_channels=3, out_channels=3))
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 3) == 11.378


def test_state_dict_keys_follow_the_reference_module_order():
    keys = set(build_generator("standard").state_dict())
    # stem conv, two downsamplings, 9 blocks at 10..18, two transposed convs, head conv at 26
    for key in (
        "model.1.weight",
        "model.4.weight",
        "model.7.weight",
        "model.10.conv_block.1.weight",
        "model.18.conv_block.5.weight",
        "model.19.weight",
        "model.22.weight",
        "model.26.weight",
    ):
        assert key in keys, key
    assert not any("running_mean" in k for k in keys)  # instance norm without running statistics


def test_build_generator_rejects_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset"):
        build_generator("huge")


def test_patch_discriminator_scores_patches():
    net = PatchDiscriminator()
    with torch.inference_mode():
        scores = net(torch.zeros(1, 1, 64, 64))
    assert scores.shape == (1, 1, 6, 6)  # 70x70 receptive fields over a 64x64 image


def test_intensity_branch_starts_at_zero_and_then_adds_a_per_voxel_mapping():
    plain, with_branch = build_generator("lite"), build_generator(EARLIER["lite-intensity"])
    init_weights(plain)
    init_weights(with_branch)  # the reference init must not wake the branch up
    missing, unexpected = with_branch.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("intensity.") for k in missing)
    x = torch.rand(2, 1, 48, 40) * 2 - 1
    with torch.inference_mode():
        assert torch.allclose(with_branch(x), plain(x), atol=1e-6)  # same model until trained
        with_branch.intensity[-1].bias.fill_(0.5)
        assert torch.allclose(
            with_branch(x), torch.tanh(torch.atanh(plain(x).clamp(-0.999999, 0.999999)) + 0.5), atol=1e-3
        )
    # the branch works at full resolution: a one-voxel change reaches the output at that voxel
    nn_branch = build_generator(EARLIER["lite-intensity"])
    torch.nn.init.normal_(nn_branch.intensity[-1].weight, 0, 1.0)
    y = x.clone()
    y[0, 0, 20, 20] += 0.5
    with torch.inference_mode():
        a, b = nn_branch.intensity(x), nn_branch.intensity(y)
    changed = (a - b).abs()[0, 0] > 1e-6
    assert changed[20, 20] and changed.sum() <= 9  # a 3x3 neighbourhood at most


def test_every_preset_has_a_discriminator_width_and_the_wizard_offers_every_preset():
    from mri_style_app.cyclegan.presets import DISCRIMINATOR_NDF
    from mri_style_app.ui.training_wizard import PRESET_NAMES

    assert DISCRIMINATOR_NDF.keys() == PRESETS.keys()
    assert PRESET_NAMES == tuple(PRESETS)


@pytest.mark.parametrize("preset, depth", [("local", 4), ("voxel", 1)])
def test_a_local_generator_is_the_intensity_branch_alone_at_full_resolution(preset, depth):
    torch.manual_seed(0)
    net = build_generator(EARLIER[preset])
    init_weights(net)
    assert net.model is None and all(k.startswith("intensity.") for k in net.state_dict())
    assert EARLIER[preset].intensity_depth == depth
    # Not zero at the start (it is the whole generator), any size works (no downsampling), and a
    # one-voxel change reaches only its neighbourhood: `depth` 3x3 convolutions, then 1x1 ones.
    x = torch.rand(1, 1, 33, 27) * 2 - 1
    y = x.clone()
    y[0, 0, 16, 13] += 0.5
    with torch.inference_mode():
        a, b = net(x), net(y)
    assert a.shape == x.shape and a.std() > 0 and net.intensity[-1].weight.abs().sum() > 0
    changed = ((a - b).abs()[0, 0] > 1e-7).nonzero()
    assert changed.numel() and (changed - torch.tensor([16, 13])).abs().max() == depth
    with pytest.raises(ValueError, match="needs a ResNet branch"):
        GeneratorConfig(ngf=0, n_blocks=0)


def test_output_top_lets_a_generator_reach_the_brightest_target():
    """A plain tanh only approaches 1.0, where the brightest training targets sit; an output_top
    of 1.1 reaches it at a finite activation, stays below its top and keeps -1 (background) at the bottom."""
    torch.manual_seed(0)
    plain, headroom = build_generator(EARLIER["voxel"]), build_generator(EARLIER["voxel-headroom"])
    headroom.load_state_dict(plain.state_dict())  # the range is no weight: the same layers
    x = torch.rand(1, 1, 20, 20) * 2 - 1
    with torch.inference_mode():
        assert torch.allclose(headroom(x), (plain(x) + 1) * 1.05 - 1)
        for net in (plain, headroom):
            torch.nn.init.constant_(net.intensity[-1].bias, 3.0)  # tanh(3 + ...) = 0.995 and up
        assert plain(x).max() < 1.0 < headroom(x).min() and headroom(x).max() <= 1.1
        for net in (plain, headroom):
            torch.nn.init.constant_(net.intensity[-1].bias, -30.0)  # tanh -> -1
        assert torch.allclose(headroom(x), torch.full_like(x, -1.0))
    with pytest.raises(ValueError, match="output_top"):
        GeneratorConfig(output_top=0.5)


def test_a_unet_sees_context_takes_any_size_and_has_no_normalisation():
    torch.manual_seed(0)
    net = build_generator("unet")
    init_weights(net)
    assert not any(
        isinstance(m, (torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d, torch.nn.GroupNorm)) for m in net.modules()
    )
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())  # no checkerboards
    for h, w in [(61, 47), (8, 8), (1, 40)]:
        with torch.inference_mode():
            assert net(torch.rand(2, 1, h, w) * 2 - 1).shape == (2, 1, h, w)
    # a change far from a voxel reaches it (context), and the output is not stuck at -1
    x = torch.full((1, 1, 96, 96), -1.0)
    x[..., 20:76, 20:76] = 0.3
    y = x.clone()
    y[..., 70:74, 70:74] = 0.9
    with torch.inference_mode():
        a, b = net(x), net(y)
    assert (a - b).abs()[0, 0, 30, 30] > 1e-6  # 40 pixels away
    assert a.std() > 0 and a.min() > -10 and a.max() < 10
    with pytest.raises(ValueError, match="U-Net"):
        GeneratorConfig(ngf=16, n_blocks=4, generator="unet", output_top=1.1)
    with pytest.raises(ValueError, match="unknown generator"):
        GeneratorConfig(generator="vit")


def test_a_unet_runs_any_slice_on_a_canvas_that_halves_exactly_at_every_level():
    """A slice whose sides are not a multiple of 2 ** n_blocks is translated as if air filled it out
    to one: every upsampling then doubles exactly, so the deep features meet the skip connection's
    where they belong, instead of a stretch that moves them by up to a few voxels across the slice."""
    torch.manual_seed(0)
    net = build_generator("unet")
    init_weights(net)
    x = torch.rand(1, 1, 61, 47) * 2 - 1
    canvas = torch.nn.functional.pad(x, (0, 1, 0, 3), value=-1.0)  # 64 x 48
    with torch.inference_mode():
        assert torch.equal(net(x), net(canvas)[..., :61, :47])


def test_a_unet_model_file_round_trips(tmp_path):
    from mri_style_app.cyclegan import checkpoint as ck

    torch.manual_seed(1)
    nets = {d: build_generator("unet") for d in ck.DIRECTIONS}
    for net in nets.values():
        init_weights(net)
    path = ck.save_model(tmp_path / "u.safetensors", nets, ck.make_card("unet", ck.DIRECTIONS))
    model = ck.load_model(path)
    assert model.preset == "unet" and model.config.generator == "unet" and model.pixel_size == 1.0
    x = torch.rand(1, 1, 40, 36) * 2 - 1
    with torch.inference_mode():
        assert torch.equal(model.generator("t1-to-t2")(x), nets["t1-to-t2"](x))


def _alternation(image: torch.Tensor) -> float:
    """How far each row departs from the mean of its neighbours, against the image's spread: near 0
    for a smooth image, near 1 for a checkerboard of period 2."""
    return float((image[1:-1] - (image[:-2] + image[2:]) / 2).abs().mean() / image.std())


@pytest.mark.parametrize("seed", [0, 1])
def test_resize_upsampling_leaves_no_checkerboard_where_transposed_convolutions_do(seed):
    rows, cols = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    ramp = (0.6 * cols + 0.3 * rows)[None, None]
    alternation = {}
    for upsample in ("transpose", "resize"):
        torch.manual_seed(seed)
        net = build_generator(GeneratorConfig(ngf=8, n_blocks=2, upsample=upsample)).eval()
        init_weights(net)
        with torch.inference_mode():
            alternation[upsample] = _alternation(net(ramp)[0, 0, 8:-8, 8:-8])
    assert alternation["transpose"] > 0.5
    assert alternation["resize"] < 0.15


def test_the_upsampling_round_trips_and_old_cards_mean_transposed_convolutions(tmp_path):
    from mri_style_app.cyclegan import checkpoint as ck

    resize = replace(PRESETS["lite"], upsample="resize")
    nets = {d: build_generator(resize) for d in ck.DIRECTIONS}
    card = ck.make_card(resize, ck.DIRECTIONS)
    model = ck.load_model(ck.save_model(tmp_path / "r.safetensors", nets, card))
    assert model.preset == "custom" and model.config.upsample == "resize"
    x = torch.rand(1, 1, 40, 36) * 2 - 1
    with torch.inference_mode():
        assert torch.equal(model.generator("t1-to-t2")(x), nets["t1-to-t2"](x))
    del card["architecture"]["upsample"]  # a card written before the choice existed
    assert ck._config_from_architecture(card["architecture"]).upsample == "transpose"
    with pytest.raises(ValueError, match="unknown upsampling"):
        GeneratorConfig(upsample="nearest")
