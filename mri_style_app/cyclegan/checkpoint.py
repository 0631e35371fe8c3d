"""Model files: generator weights in safetensors plus a JSON model card (torch, no Qt).

A model file `NAME.safetensors` holds one generator per direction, its tensors named
`<direction>.<state-dict key>` (for example `t1-to-t2.model.1.weight`), and the model card as
JSON in the safetensors metadata under "model_card". The same card is written beside it as
`NAME.json` for people to read; loading uses only the embedded card.

Model files are data, not code: nothing here ever unpickles. Reference CycleGAN `.pth`
generators are imported through `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from mri_style_app import __version__
from mri_style_app.cyclegan.networks import PRESETS, Generator, GeneratorConfig, build_generator
from mri_style_app.files import write_atomically

DIRECTIONS = ("t1-to-t2", "t2-to-t1")
FORMAT_NAME = "mri-style-cyclegan"
FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
CARD_KEY = "model_card"

# What translate.py does to a volume before the generator sees it (and what training does).
DEFAULT_NORMALISATION = {
    "method": "foreground-percentile",
    "foreground_fraction": 0.05,  # foreground = voxels above 5 % of the robust maximum
    "percentile": 99.5,  # this percentile of the foreground maps to 1, clipped to [0, 1]
    # per source contrast, where a model was trained otherwise ({"t1": 90.0}: a T1w's white
    # matter, not its brightest 0.5 %, maps to 1); contrasts not named use "percentile"
    "contrast_percentiles": {},
    "model_range": [-1.0, 1.0],  # then [0, 1] -> [-1, 1]
    "slice_orientation": "rot90 of the canonical RAS slice (superior or anterior up)",
    # in-plane pixel size (mm) of the training slices: translation resamples each slice to it
    "pixel_size_mm": 1.0,
}


class ModelError(Exception):
    """A model file cannot be used; the message says which file, what is wrong, what to do."""


def _fail(path, problem: str, advice: str) -> ModelError:
    return ModelError(f"{path}: {problem}. {advice}")


# ---------------------------------------------------------------- the model in memory
@dataclass
class CycleGANModel:
    path: Path | None
    card: dict
    generators: dict[str, Generator]  # direction -> generator, eval mode, on the CPU

    def generator(self, direction: str) -> Generator:
        if direction not in self.generators:
            have = ", ".join(self.card.get("directions") or self.directions) or "none"
            raise ModelError(
                f"{self.path or 'this model'}: has no {direction} generator (it holds: {have}). "
                "Choose another direction or a model trained for it"
            )
        return self.generators[direction]

    @property
    def directions(self) -> tuple[str, ...]:
        return tuple(d for d in DIRECTIONS if d in self.generators)

    @property
    def architecture(self) -> dict:
        return self.card.get("architecture", {})

    @property
    def preset(self) -> str:
        return self.architecture.get("preset", "custom")

    @property
    def config(self) -> GeneratorConfig:
        return _config_from_architecture(self.architecture)

    @property
    def normalisation(self) -> dict:
        return self.card.get("normalisation") or dict(DEFAULT_NORMALISATION)

    @property
    def pixel_size(self) -> float:
        return float({**DEFAULT_NORMALISATION, **self.normalisation}["pixel_size_mm"])

    @property
    def name(self) -> str:
        return self.path.name if self.path else self.card.get("name", "model")


# ---------------------------------------------------------------- model cards
def _config_of(preset_or_config) -> tuple[str, GeneratorConfig]:
    """(preset name or 'custom', config) for a preset name, a GeneratorConfig or a dict."""
    if isinstance(preset_or_config, str):
        if preset_or_config not in PRESETS:
            raise ValueError(f"unknown preset {preset_or_config!r}; choose one of {', '.join(PRESETS)}")
        return preset_or_config, PRESETS[preset_or_config]
    if isinstance(preset_or_config, dict):
        preset_or_config = GeneratorConfig(**preset_or_config)
    if isinstance(preset_or_config, nn.Module):
        preset_or_config = preset_or_config.config
    name = next((n for n, c in PRESETS.items() if c == preset_or_config), "custom")
    return name, preset_or_config


def make_card(
    preset_or_config,
    directions,
    normalisation: dict | None = None,
    training: dict | None = None,
    metrics: dict | None = None,
) -> dict:
    """The JSON model card for a model of this architecture and these directions."""
    preset, config = _config_of(preset_or_config)
    directions = [directions] if isinstance(directions, str) else list(directions)
    for d in directions:
        if d not in DIRECTIONS:
            raise ValueError(f"unknown direction {d!r}; choose from {', '.join(DIRECTIONS)}")
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "app_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "architecture": {"preset": preset, **config.to_dict()},
        "directions": directions,
        "normalisation": dict(normalisation or DEFAULT_NORMALISATION),
        "training": dict(training or {}),
        "metrics": dict(metrics or {}),
    }


def training_normalisation(percentile_t1: float, percentile_t2: float, pixel_size_mm: float = 1.0) -> dict:
    """The card's input normalisation for a model trained with these per-contrast percentiles
    (a run's percentile_a and percentile_b) on slices of this in-plane pixel size."""
    return {
        **DEFAULT_NORMALISATION,
        "contrast_percentiles": {"t1": percentile_t1, "t2": percentile_t2},
        "pixel_size_mm": round(float(pixel_size_mm), 4),
    }


def contrast_percentile(normalisation: dict, contrast: str | None) -> float:
    """The foreground percentile that maps to 1 for an image of `contrast` ("t1", "t2")."""
    norm = {**DEFAULT_NORMALISATION, **(normalisation or {})}
    return float((norm.get("contrast_percentiles") or {}).get(contrast, norm["percentile"]))


def _config_from_architecture(arch: dict) -> GeneratorConfig:
    return GeneratorConfig(
        ngf=int(arch["ngf"]),
        n_blocks=int(arch["n_blocks"]),
        in_channels=int(arch.get("in_channels", 1)),
        out_channels=int(arch.get("out_channels", 1)),
        intensity_path=int(arch.get("intensity_path", 0)),
        intensity_depth=int(arch.get("intensity_depth", 1)),
        output_top=float(arch.get("output_top", 1.0)),
        generator=str(arch.get("generator", "resnet")),
        upsample=str(arch.get("upsample", "transpose")),
    )


# ---------------------------------------------------------------- writing
def save_model(path, generators: dict[str, nn.Module], card: dict) -> Path:
    """Write the generators and card to `path` (.safetensors) and the card to `<stem>.json`.

    Both files go to a temporary name in the same folder first, then are renamed into place.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    if not path.parent.is_dir():
        raise ModelError(f"{path}: the folder {path.parent} does not exist. Choose an existing folder")
    card = dict(card)
    card["directions"] = [d for d in DIRECTIONS if d in generators]
    unknown = set(generators) - set(DIRECTIONS)
    if unknown:
        raise ValueError(f"unknown direction(s) {sorted(unknown)}; choose from {', '.join(DIRECTIONS)}")
    tensors = {}
    for direction, net in generators.items():
        net = getattr(net, "module", net)  # a DistributedDataParallel wrapper
        for key, value in net.state_dict().items():
            tensors[f"{direction}.{key}"] = value.detach().to("cpu", torch.float32).contiguous()
    text = json.dumps(card, indent=2, sort_keys=False, default=str)
    try:
        write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata={CARD_KEY: text}))
        sidecar = path.with_suffix(".json")
        write_atomically(sidecar, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"{path}: could not be written ({exc}). Check free disk space and permissions") from None
    return path


# ---------------------------------------------------------------- reading
def _check_container(path: Path) -> None:
    """Say clearly what a file is when it is not safetensors (a .pth pickle, a zip, junk)."""
    if not path.exists():
        raise _fail(path, "no such model file", "Check the path, or choose another model")
    if path.is_dir():
        raise _fail(path, "is a folder, not a model file", "Choose a .safetensors model file")
    size = path.stat().st_size
    if size == 0:
        raise _fail(path, "the model file is empty (0 bytes)", "It may be an interrupted copy; get the file again")
    with open(path, "rb") as fh:
        head = fh.read(9)
    header_len = int.from_bytes(head[:8], "little")
    if len(head) == 9 and head[8:9] == b"{" and 1 < header_len <= size - 8:
        return  # the shape of a safetensors file; safetensors itself checks the rest
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        raise _fail(
            path,
            "is a PyTorch pickle checkpoint (.pth/.pt), not a safetensors model file; "
            "pickles can run code and are never opened directly",
            "Import it instead (Load model file... accepts reference CycleGAN generators such as "
            "latest_net_G_A.pth, or call checkpoint.import_reference_generator)",
        )
    if len(head) < 9:
        raise _fail(path, f"is too short ({size} bytes) to be a safetensors file", "Get the file again")
    raise _fail(
        path,
        "is not a safetensors model file, or it is truncated (its header "
        f"{'does not fit in the file' if head[8:9] == b'{' else 'is missing'})",
        "Choose a .safetensors model saved by MRI Style, or get the file again",
    )


def _read_card(path: Path, metadata: dict | None) -> dict:
    if not metadata or CARD_KEY not in metadata:
        raise _fail(
            path,
            "is a safetensors file without an MRI Style model card",
            "It was not saved by MRI Style; import reference CycleGAN weights from their .pth instead",
        )
    try:
        card = json.loads(metadata[CARD_KEY])
    except json.JSONDecodeError as exc:
        raise _fail(path, f"the model card is not valid JSON ({exc})", "The file is damaged; get it again") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT_NAME:
        raise _fail(path, "the model card is not an MRI Style CycleGAN card", "Choose a model saved by MRI Style")
    version = card.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        newer = isinstance(version, int) and version > max(SUPPORTED_FORMAT_VERSIONS)
        raise _fail(
            path,
            f"model format version {version!r} is not supported (this app reads version "
            f"{', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))})",
            "Update MRI Style to open it" if newer else "Save the model again with this version",
        )
    arch = card.get("architecture")
    if not isinstance(arch, dict) or arch.get("generator") not in ("resnet", "unet"):
        raise _fail(
            path,
            "the model card does not describe a ResNet or U-Net generator",
            "The file is damaged, foreign, or needs a newer MRI Style",
        )
    try:
        config = _config_from_architecture(arch)
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(path, f"the model card's architecture is incomplete ({exc})", "The file is damaged") from None
    if not (
        0 <= config.ngf <= 1024
        and 0 <= config.n_blocks <= 64
        and config.intensity_path <= 1024
        and 1 <= config.intensity_depth <= 16
        and config.in_channels == 1
        and config.out_channels == 1
    ):
        raise _fail(path, f"unsupported architecture {arch}", "Only 1-channel generators can be used")
    directions = card.get("directions")
    if not isinstance(directions, list) or not directions or any(d not in DIRECTIONS for d in directions):
        raise _fail(
            path,
            f"the model card lists no valid directions ({directions!r})",
            f"Directions must be among {', '.join(DIRECTIONS)}",
        )
    return card


def _load_generator(path: Path, direction: str, config: GeneratorConfig, tensors: dict) -> Generator:
    net = build_generator(config)
    expected = net.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        detail = (
            (f"{len(missing)} missing (first: {direction}.{missing[0]})" if missing else "")
            + ("; " if missing and unexpected else "")
            + (f"{len(unexpected)} unexpected (first: {direction}.{unexpected[0]})" if unexpected else "")
        )
        raise _fail(
            path,
            f"the {direction} weights do not match the architecture in its card "
            f"(ngf {config.ngf}, {config.n_blocks} blocks): {detail}",
            "The file is damaged or was edited; get it again or re-train",
        )
    for key, ref in expected.items():
        if tuple(tensors[key].shape) != tuple(ref.shape):
            raise _fail(
                path,
                f"tensor {direction}.{key} has shape {tuple(tensors[key].shape)} but the card's "
                f"architecture needs {tuple(ref.shape)}",
                "The file is damaged or mismatched; get it again",
            )
        if not torch.isfinite(tensors[key]).all():
            raise _fail(
                path,
                f"tensor {direction}.{key} holds NaN or infinite values",
                "The training that made it diverged; use an earlier checkpoint or re-train",
            )
    net.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    return net.eval().requires_grad_(False)


def load_model(path, only: str | None = None) -> CycleGANModel:
    """Read and check a model file; raises ModelError with a message for people. With `only`
    (a direction), only that generator is read and checked: a command that runs one direction
    need not build the other."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    _check_container(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            card = _read_card(path, fh.metadata())
            config = _config_from_architecture(card["architecture"])
            generators = {}
            keys = list(fh.keys())
            for direction in [d for d in card["directions"] if only in (None, d)]:
                prefix = direction + "."
                tensors = {k[len(prefix) :]: fh.get_tensor(k) for k in keys if k.startswith(prefix)}
                if not tensors:
                    raise _fail(
                        path,
                        f"the card lists {direction} but the file holds no {direction} weights",
                        "The file is damaged; get it again",
                    )
                generators[direction] = _load_generator(path, direction, config, tensors)
    except ModelError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError, json.JSONDecodeError) as exc:
        detail = " ".join(str(exc).split())
        raise _fail(
            path,
            f"is not a readable safetensors model file; it may be truncated or damaged ({detail})",
            "Get the file again, or choose another model",
        ) from None
    return CycleGANModel(path=path.resolve(), card=card, generators=generators)


# ---------------------------------------------------------------- reference CycleGAN import
def _find_state_dict(obj) -> dict:
    """The tensor dict inside a checkpoint: plain, or wrapped as {'state_dict': ...} and the like."""
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model", "netG", "netG_A", "generator", "G_A"):
            if key in obj:
                try:
                    return _find_state_dict(obj[key])
                except ValueError:
                    pass
    raise ValueError("no dictionary of tensors found")


def _reference_to_ours(state: dict) -> dict:
    """Strip DataParallel prefixes; drop the dropout shift of reference blocks built with dropout."""
    out = {}
    for key, value in state.items():
        for prefix in ("module.",):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        if not key.startswith("model."):
            key = "model." + key
        # With --use_dropout the block is [pad, conv, norm, relu, dropout, pad, conv, norm]:
        # the second conv sits at index 6 instead of 5.
        key = key.replace(".conv_block.6.", ".conv_block.5.")
        out[key] = value
    return out


def import_reference_generator(pth_path, direction: str, preset_or_config=None) -> CycleGANModel:
    """A reference CycleGAN ResNet generator (`latest_net_G_A.pth` ...) as a one-direction model.

    Width and depth are read from the tensors (or taken from `preset_or_config`); 3-channel
    (RGB) first and last layers become 1-channel: a grey image fed as R = G = B sees the sum
    of the input-channel weights, and a grey output is the mean of the three output channels.
    """
    path = Path(pth_path)
    if direction not in DIRECTIONS:
        raise ModelError(f"{path}: unknown direction {direction!r}. Choose one of {', '.join(DIRECTIONS)}")
    if not path.is_file():
        raise _fail(path, "no such file", "Check the path to the reference .pth checkpoint")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for objects beyond tensors, RuntimeError for junk
        detail = " ".join(str(exc).split())[:300]
        raise _fail(
            path,
            f"cannot be read as a weights-only PyTorch checkpoint ({detail})",
            "Only plain state dicts of tensors are imported (nothing that needs unpickling code); "
            "save the generator's state_dict() and try again",
        ) from None
    try:
        state = _reference_to_ours(_find_state_dict(obj))
    except ValueError:
        raise _fail(
            path,
            "holds no generator weights (no dictionary of tensors)",
            "Choose a reference CycleGAN generator file such as latest_net_G_A.pth",
        ) from None
    first = state.get("model.1.weight")
    if first is None or first.ndim != 4 or first.shape[-1] != 7:
        raise _fail(
            path,
            "does not look like a CycleGAN ResNet generator (no 7x7 first convolution 'model.1')",
            "Choose a generator (net_G_A / net_G_B), not a discriminator or another network",
        )
    if any("running_mean" in k for k in state):
        raise _fail(
            path,
            "uses batch normalisation; only instance-norm generators (the CycleGAN default) can be imported",
            "Re-train the reference model with --norm instance",
        )
    ngf = int(first.shape[0])
    blocks = {int(k.split(".")[1]) for k in state if ".conv_block." in k}
    if preset_or_config is None:
        config = GeneratorConfig(ngf=ngf, n_blocks=len(blocks))
    else:
        config = _config_of(preset_or_config)[1]
        if config.ngf != ngf or config.n_blocks != len(blocks):
            raise _fail(
                path,
                f"holds a generator with ngf {ngf} and {len(blocks)} blocks, not ngf "
                f"{config.ngf} and {config.n_blocks} blocks",
                "Leave the architecture out to detect it",
            )
    state["model.1.weight"] = first.sum(dim=1, keepdim=True) if first.shape[1] != 1 else first
    last_key = f"model.{max(int(k.split('.')[1]) for k in state)}"
    last_w, last_b = state[last_key + ".weight"], state.get(last_key + ".bias")
    if last_w.shape[0] != 1:
        state[last_key + ".weight"] = last_w.mean(dim=0, keepdim=True)
        if last_b is not None:
            state[last_key + ".bias"] = last_b.mean(dim=0, keepdim=True)
    card = make_card(
        config,
        [direction],
        training={
            "source": "imported reference CycleGAN generator",
            "file": path.name,
            "input_channels": int(first.shape[1]),
            "note": "RGB first layer summed, last layer averaged to one channel",
        },
    )
    generator = _load_generator(path, direction, config, state)
    return CycleGANModel(path=None, card=card, generators={direction: generator})
