"""Model files: roundtrip, clear errors for bad files, never unpickling, reference import."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from earlier_models import EARLIER, card_naming

from mri_style_app.cyclegan import checkpoint as ck
from mri_style_app.cyclegan.networks import GeneratorConfig, ResnetGenerator, build_generator, init_weights

SMALL = GeneratorConfig(ngf=8, n_blocks=2)


def _generators(config=SMALL, seed=0):
    torch.manual_seed(seed)
    nets = {d: ResnetGenerator(config) for d in ck.DIRECTIONS}
    for net in nets.values():
        init_weights(net)
        for p in net.parameters():  # non-zero biases too, so a lost bias shows
            p.data += 0.01 * torch.randn_like(p)
    return nets


@pytest.fixture()
def saved(tmp_path):
    nets = _generators()
    card = ck.make_card(SMALL, ck.DIRECTIONS, training={"iterations": 10}, metrics={"psnr": 20.0})
    return ck.save_model(tmp_path / "model.safetensors", nets, card), nets


def test_roundtrip_gives_identical_outputs(saved):
    path, nets = saved
    model = ck.load_model(path)
    assert model.directions == ck.DIRECTIONS
    assert model.config == SMALL and model.preset == "custom"
    x = torch.rand(2, 1, 24, 20) * 2 - 1
    with torch.inference_mode():
        for d in ck.DIRECTIONS:
            assert torch.equal(model.generator(d)(x), nets[d].eval()(x))
    assert not model.generator("t1-to-t2").training


def test_card_is_embedded_and_beside_the_file(saved):
    path, _ = saved
    sidecar = json.loads(path.with_suffix(".json").read_text())
    card = ck.load_model(path).card
    assert sidecar == card
    assert card["format_version"] == ck.FORMAT_VERSION and card["app_version"]
    assert card["architecture"] == {
        "generator": "resnet",
        "upsample": "transpose",
        "preset": "custom",
        "ngf": 8,
        "n_blocks": 2,
        "in_channels": 1,
        "out_channels": 1,
        "intensity_path": 0,
        "intensity_depth": 1,
        "output_top": 1.0,
    }
    assert card["normalisation"]["percentile"] == 99.5 and card["training"] == {"iterations": 10}
    assert card["metrics"] == {"psnr": 20.0} and card["created"]
    # The sidecar is for people: the embedded card is what counts.
    path.with_suffix(".json").unlink()
    assert ck.load_model(path).card == card


def test_tensor_names_carry_the_direction(saved):
    from safetensors import safe_open

    path, _ = saved
    with safe_open(str(path), framework="pt") as fh:
        keys = set(fh.keys())
    assert "t1-to-t2.model.1.weight" in keys and "t2-to-t1.model.1.weight" in keys


def test_loading_only_one_direction_reads_that_generator_and_names_the_others(saved):
    path, nets = saved
    model = ck.load_model(path, only="t2-to-t1")
    assert model.directions == ("t2-to-t1",)
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    with torch.inference_mode():
        assert torch.equal(model.generator("t2-to-t1")(x), nets["t2-to-t1"].eval()(x))
    with pytest.raises(ck.ModelError, match="it holds: t1-to-t2, t2-to-t1"):
        model.generator("t1-to-t2")


def test_preset_is_named_and_one_direction_models_say_what_they_lack(tmp_path):
    net = build_generator("lite")
    path = ck.save_model(tmp_path / "one.safetensors", {"t2-to-t1": net}, ck.make_card("lite", ["t2-to-t1"]))
    model = ck.load_model(path)
    assert model.preset == "lite" and model.directions == ("t2-to-t1",)
    with pytest.raises(ck.ModelError, match="no t1-to-t2 generator"):
        model.generator("t1-to-t2")


def test_missing_empty_and_folder(tmp_path):
    with pytest.raises(ck.ModelError, match="no such model file"):
        ck.load_model(tmp_path / "absent.safetensors")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(ck.ModelError, match="empty"):
        ck.load_model(tmp_path / "empty.safetensors")
    with pytest.raises(ck.ModelError, match="folder"):
        ck.load_model(tmp_path)


def test_truncated_file(saved, tmp_path):
    path, _ = saved
    raw = path.read_bytes()
    for cut in (4, 100, len(raw) // 2, len(raw) - 10):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(raw[:cut])
        with pytest.raises(ck.ModelError, match="truncated|too short") as info:
            ck.load_model(bad)
        assert str(bad) in str(info.value)


def test_corrupt_header_and_junk(saved, tmp_path):
    path, _ = saved
    raw = bytearray(path.read_bytes())
    raw[9:20] = b"#" * 11  # the JSON header is no longer JSON
    (tmp_path / "corrupt.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ck.ModelError, match="not a readable safetensors"):
        ck.load_model(tmp_path / "corrupt.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"this is a text file, not a model\n" * 10)
    with pytest.raises(ck.ModelError, match="not a safetensors"):
        ck.load_model(tmp_path / "junk.safetensors")


def _rewrite(tmp_path, tensors, card_text, name="edited.safetensors"):
    from safetensors.torch import save_file

    path = tmp_path / name
    save_file(tensors, str(path), metadata=None if card_text is None else {ck.CARD_KEY: card_text})
    return path


def _tensors_and_card(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, json.loads(fh.metadata()[ck.CARD_KEY])


def test_card_problems(saved, tmp_path):
    path, _ = saved
    tensors, card = _tensors_and_card(path)
    with pytest.raises(ck.ModelError, match="without an MRI Style model card"):
        ck.load_model(_rewrite(tmp_path, tensors, None))
    with pytest.raises(ck.ModelError, match="not valid JSON"):
        ck.load_model(_rewrite(tmp_path, tensors, "{not json"))
    newer = dict(card, format_version=99)
    with pytest.raises(ck.ModelError, match="version 99 is not supported.*Update"):
        ck.load_model(_rewrite(tmp_path, tensors, json.dumps(newer)))
    bad_dir = dict(card, directions=["t1-to-flair"])
    with pytest.raises(ck.ModelError, match="no valid directions"):
        ck.load_model(_rewrite(tmp_path, tensors, json.dumps(bad_dir)))


def test_mismatched_architecture_and_tensors(saved, tmp_path):
    path, _ = saved
    tensors, card = _tensors_and_card(path)
    wider = json.loads(json.dumps(card))
    wider["architecture"]["ngf"] = 16
    with pytest.raises(ck.ModelError, match=r"has shape .* needs"):
        ck.load_model(_rewrite(tmp_path, tensors, json.dumps(wider)))
    deeper = json.loads(json.dumps(card))
    deeper["architecture"]["n_blocks"] = 3
    with pytest.raises(ck.ModelError, match="do not match the architecture.*missing"):
        ck.load_model(_rewrite(tmp_path, tensors, json.dumps(deeper)))
    fewer = {k: v for k, v in tensors.items() if k != "t2-to-t1.model.4.bias"}
    with pytest.raises(ck.ModelError, match="t2-to-t1.model.4.bias"):
        ck.load_model(_rewrite(tmp_path, fewer, json.dumps(card)))
    nan = dict(tensors)
    nan["t1-to-t2.model.1.weight"] = torch.full_like(tensors["t1-to-t2.model.1.weight"], float("nan"))
    with pytest.raises(ck.ModelError, match="NaN"):
        ck.load_model(_rewrite(tmp_path, nan, json.dumps(card)))


def test_pickle_is_refused_with_advice_to_import(tmp_path):
    net = ResnetGenerator(SMALL)
    torch.save(net.state_dict(), tmp_path / "latest_net_G_A.pth")  # zip container
    with pytest.raises(ck.ModelError, match="pickle.*Import it"):
        ck.load_model(tmp_path / "latest_net_G_A.pth")
    torch.save(net.state_dict(), tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    with pytest.raises(ck.ModelError, match="pickle"):
        ck.load_model(tmp_path / "legacy.pth")


def _reference_rgb_generator(tmp_path, ngf=8, n_blocks=3, wrap=None, prefix=""):
    torch.manual_seed(1)
    ref = ResnetGenerator(GeneratorConfig(ngf=ngf, n_blocks=n_blocks, in_channels=3, out_channels=3))
    init_weights(ref)
    for p in ref.parameters():
        p.data += 0.01 * torch.randn_like(p)
    state = {prefix + k: v for k, v in ref.state_dict().items()}
    path = tmp_path / "latest_net_G_A.pth"
    torch.save(state if wrap is None else {wrap: state, "epoch": 200}, path)
    return ref.eval(), path


@pytest.mark.parametrize("wrap,prefix", [(None, ""), ("state_dict", "module.")])
def test_reference_import_adapts_rgb_to_grey(tmp_path, wrap, prefix):
    ref, path = _reference_rgb_generator(tmp_path, wrap=wrap, prefix=prefix)
    model = ck.import_reference_generator(path, "t1-to-t2")
    assert model.directions == ("t1-to-t2",) and model.config == GeneratorConfig(ngf=8, n_blocks=3)
    grey = torch.rand(2, 1, 32, 28) * 2 - 1
    with torch.inference_mode():
        ours = model.generator("t1-to-t2").model[:-1](grey)  # before tanh
        theirs = ref.model[:-1](grey.repeat(1, 3, 1, 1)).mean(dim=1, keepdim=True)
    assert torch.allclose(ours, theirs, atol=1e-5)
    # Imported models save and load like any other.
    saved = ck.save_model(tmp_path / "imported.safetensors", model.generators, model.card)
    again = ck.load_model(saved)
    with torch.inference_mode():
        assert torch.equal(again.generator("t1-to-t2")(grey), model.generator("t1-to-t2")(grey))
    assert again.card["training"]["source"] == "imported reference CycleGAN generator"


def test_reference_import_refuses_code_and_wrong_networks(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"model.1.weight": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(ck.ModelError, match="weights-only"):
        ck.import_reference_generator(tmp_path / "evil.pth", "t1-to-t2")
    torch.save({"model.0.weight": torch.zeros(64, 3, 4, 4)}, tmp_path / "net_D_A.pth")
    with pytest.raises(ck.ModelError, match="not a discriminator"):
        ck.import_reference_generator(tmp_path / "net_D_A.pth", "t1-to-t2")
    _, path = _reference_rgb_generator(tmp_path)
    with pytest.raises(ck.ModelError, match="ngf 8 and 3 blocks, not ngf 64"):
        ck.import_reference_generator(path, "t2-to-t1", "standard")


def test_save_is_atomic_and_checks_the_folder(tmp_path):
    with pytest.raises(ck.ModelError, match="does not exist"):
        ck.save_model(tmp_path / "nope" / "m.safetensors", _generators(), ck.make_card(SMALL, ck.DIRECTIONS))
    ck.save_model(tmp_path / "m.safetensors", _generators(), ck.make_card(SMALL, ck.DIRECTIONS))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]
    assert struct.unpack("<Q", (tmp_path / "m.safetensors").read_bytes()[:8])[0] > 0


def _round_trip(tmp_path, preset: str, net, normalisation: dict | None = None):
    """`net` saved as an earlier release saved a one-direction model of its `preset` (one the app
    no longer offers) and loaded back; it must translate alike."""
    from mri_style_app.cyclegan import checkpoint as model_files

    path = model_files.save_model(
        tmp_path / "m.safetensors", {"t1-to-t2": net}, card_naming(preset, ["t1-to-t2"], normalisation)
    )
    model = model_files.load_model(path)
    x = torch.rand(1, 1, 40, 32) * 2 - 1
    with torch.inference_mode():
        assert torch.equal(model.generator("t1-to-t2")(x), net.eval()(x))
    return model


def test_a_model_with_the_intensity_branch_round_trips(tmp_path):
    from mri_style_app.cyclegan.networks import build_generator

    net = build_generator(EARLIER["lite-intensity"])
    torch.nn.init.normal_(net.intensity[-1].weight, 0, 0.1)
    model = _round_trip(tmp_path, "lite-intensity", net)
    assert model.preset == "lite-intensity" and model.config.intensity_path == 16


def test_a_model_with_an_output_top_round_trips_and_older_cards_mean_the_plain_range(tmp_path):
    from mri_style_app.cyclegan import checkpoint as model_files
    from mri_style_app.cyclegan.networks import build_generator, init_weights

    net = build_generator(EARLIER["voxel-headroom"])
    init_weights(net)
    model = _round_trip(tmp_path, "voxel-headroom", net)
    assert model.preset == "voxel-headroom" and model.config.output_top == 1.1
    # a card written before output_top existed: [-1, 1], a plain tanh
    card = card_naming("voxel", ["t1-to-t2"])
    del card["architecture"]["output_top"]
    old = model_files.save_model(tmp_path / "old.safetensors", {"t1-to-t2": build_generator(EARLIER["voxel"])}, card)
    assert model_files.load_model(old).config == EARLIER["voxel"]


def test_a_local_model_round_trips_with_its_depth_and_contrast_percentiles(tmp_path):
    from mri_style_app.cyclegan import checkpoint as model_files
    from mri_style_app.cyclegan.networks import build_generator, init_weights

    net = build_generator(EARLIER["local"])
    init_weights(net)
    normalisation = {**model_files.DEFAULT_NORMALISATION, "contrast_percentiles": {"t1": 90.0, "t2": 99.5}}
    model = _round_trip(tmp_path, "local", net, normalisation)
    assert model.preset == "local" and model.config.intensity_depth == 4 and model.config.ngf == 0
    assert model_files.contrast_percentile(model.normalisation, "t1") == 90.0
    assert model_files.contrast_percentile(model.normalisation, "t2") == 99.5
    # a card from before contrast percentiles: every contrast gets the general one
    assert model_files.contrast_percentile({"percentile": 99.5}, "t1") == 99.5
