"""CycleGAN networks for single-channel MRI slices (torch, no Qt).

The generator follows the reference CycleGAN ResNet generator (Zhu et al. 2017): a 7x7 stem,
two stride-2 downsamplings, residual blocks, two upsamplings and a 7x7 head, with instance norm
and reflection padding. The upsamplings are the reference's transposed convolutions, or
resize-convolutions (`upsample` "resize"). With transposed convolutions the module order matches
the reference implementation, so its `model.N...` state-dict keys line up when importing
reference weights.
The discriminator is the 70x70 PatchGAN.

Optionally (`intensity_path` > 0) the generator has a second, full-resolution branch: a small
per-voxel network of the input intensity (a 3x3 convolution, then 1x1 ones), added to the
reference branch before the final tanh. Most of a T1w <-> T2w translation is a per-voxel tissue
mapping; the reference branch sees it only through a 4x-downsampled, instance-normalised
bottleneck and returns it blurred. The extra branch starts at zero, so a model is its reference
generator until training gives the branch weight. With `ngf` = 0 the generator is that branch
alone, deepened (`intensity_depth` 3x3 convolutions): a local, full-resolution translation.

`UNetGenerator` (config.generator "unet") is an encoder-decoder with skip connections and no
normalisation layer: each output voxel depends only on the input within its receptive field.
Downsampling is a stride-2 convolution; upsampling is bilinear, then a convolution (no
transposed convolutions, which leave checkerboards). It pads its input with air to a multiple of
2 ** n_blocks along each axis and crops the result back: on any other size some level's
upsampling stretches by other than 2, its features land up to a few voxels from the skip
connection's, and edges blur (weights fitted to skull-stripped brains put their outermost voxel,
bright CSF in a T2w at 0.81 of the scale, at 0.46-0.52 on such sizes and 0.77-0.80 padded). Its
output is linear inside [-1, 1] and leaky beyond (slope LEAK): under the paired L1 loss a tanh
output saturated at the background's -1 everywhere within 40 iterations and never recovered,
whatever the learning rate; a fully linear output trained well until, after 1600 CycleGAN
iterations, out-of-range values fed from one generator into the other made the cycle loss explode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mri_style_app.cyclegan.presets import PRESETS, GeneratorConfig  # noqa: F401  (re-exported)

# Spatial sizes must be a multiple of this (two stride-2 downsamplings).
SIZE_MULTIPLE = 4
# Slope of the U-Net's output beyond the image range [-1, 1]
LEAK = 0.01


def memory_format(config: GeneratorConfig) -> torch.memory_format:
    """The tensor layout a generator runs fastest in on a CPU, in training and translation alike:
    channels-last for a U-Net (oneDNN runs its convolutions, bilinear upsampling and skip
    concatenations without layout reorders; docs/training.md and docs/translation.md), the
    default layout for the ResNet generators, which channels-last does not speed up."""
    return torch.channels_last if config.generator == "unet" else torch.contiguous_format


class ResnetBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=True),
            nn.InstanceNorm2d(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=True),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """Image in [-1, 1] -> image in [-1, output_top], same size (a multiple of SIZE_MULTIPLE)."""

    def __init__(self, config: GeneratorConfig = PRESETS["lite"]):
        super().__init__()
        self.config = config
        self.model = self._resnet_branch(config) if config.ngf > 0 else None
        self.intensity = self._intensity_branch(config) if config.intensity_path > 0 else None
        self.zero_intensity_output()

    @staticmethod
    def _resnet_branch(config: GeneratorConfig) -> nn.Sequential:
        ngf = config.ngf
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(config.in_channels, ngf, 7, bias=True),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(True),
        ]
        channels = ngf
        for _ in range(2):
            layers += [
                nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1, bias=True),
                nn.InstanceNorm2d(channels * 2),
                nn.ReLU(True),
            ]
            channels *= 2
        layers += [ResnetBlock(channels) for _ in range(config.n_blocks)]
        for _ in range(2):
            if config.upsample == "resize":
                layers += [
                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                    nn.ReflectionPad2d(1),
                    nn.Conv2d(channels, channels // 2, 3, bias=True),
                ]
            else:
                layers += [
                    nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1, bias=True)
                ]
            layers += [
                nn.InstanceNorm2d(channels // 2),
                nn.ReLU(True),
            ]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, config.out_channels, 7), nn.Tanh()]
        return nn.Sequential(*layers)

    @staticmethod
    def _intensity_branch(config: GeneratorConfig) -> nn.Sequential:
        width = config.intensity_path
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(config.in_channels, width, 3), nn.ReLU(True)]
        for _ in range(config.intensity_depth - 1):
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), nn.ReLU(True)]
        layers += [nn.Conv2d(width, width, 1), nn.ReLU(True), nn.Conv2d(width, config.out_channels, 1)]
        return nn.Sequential(*layers)

    def zero_intensity_output(self) -> None:
        """An intensity branch beside a ResNet branch adds nothing until trained (also after
        init_weights). Alone (ngf = 0) it is the whole generator and keeps its initial weights."""
        if self.intensity is not None and self.model is not None:
            nn.init.zeros_(self.intensity[-1].weight)
            nn.init.zeros_(self.intensity[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.intensity is None:
            out = self.model(x)
        elif self.model is None:
            out = torch.tanh(self.intensity(x))
        else:
            out = torch.tanh(self.model[:-1](x) + self.intensity(x))
        top = self.config.output_top  # above 1 the output may pass 1: translation clips it to the image range
        return out if top == 1.0 else (out + 1.0) * (0.5 * (top + 1.0)) - 1.0


def _unet_level(in_channels: int, out_channels: int, stride: int = 1, convs: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k in range(convs):
        layers += [
            nn.Conv2d(
                in_channels if k == 0 else out_channels, out_channels, 3, stride=stride if k == 0 else 1, padding=1
            ),
            nn.LeakyReLU(0.2, True),
        ]
    return nn.Sequential(*layers)


def unet_size_multiple(config: GeneratorConfig) -> int:
    """Sides a U-Net of `config` runs without padding: it halves its input n_blocks times."""
    return 2**config.n_blocks


class UNetGenerator(nn.Module):
    """Image in [-1, 1] -> image in about [-1, 1] (leaky beyond), any size. `ngf` filters at full
    resolution, doubling per level up to 8 x ngf, `n_blocks` downsampling levels."""

    def __init__(self, config: GeneratorConfig = PRESETS["unet"]):
        super().__init__()
        self.config = config
        widths = [config.ngf * 2 ** min(i, 3) for i in range(config.n_blocks + 1)]
        self.encoder = nn.ModuleList([_unet_level(config.in_channels, widths[0])])
        self.encoder.extend(_unet_level(widths[i - 1], widths[i], stride=2) for i in range(1, len(widths)))
        # Decoder level i merges level i + 1 (upsampled) with the skip of level i; the
        # full-resolution level has one convolution, where each one costs the most.
        self.decoder = nn.ModuleList(
            _unet_level(widths[i + 1] + widths[i], widths[i], convs=1 if i == 0 else 2)
            for i in reversed(range(len(widths) - 1))
        )
        self.head = nn.Conv2d(widths[0], config.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        multiple = unet_size_multiple(self.config)
        if h % multiple or w % multiple:  # air (-1) below and to the right, cropped off at the end
            return self.forward(F.pad(x, (0, -w % multiple, 0, -h % multiple), value=-1.0))[..., :h, :w]
        skips = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
        x = skips.pop()
        for level in self.decoder:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = level(torch.cat([x, skip], dim=1))
        out = self.head(x)
        return out.clamp(-1.0, 1.0) + LEAK * (out - out.clamp(-1.0, 1.0))


Generator = ResnetGenerator | UNetGenerator


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN: a map of real/fake scores, one per overlapping image patch."""

    def __init__(self, in_channels: int = 1, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=True),
                nn.InstanceNorm2d(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """Reference initialisation: conv weights N(0, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    if isinstance(module, UNetGenerator):
        # No normalisation layers: N(0, 0.02), or PyTorch's default, shrinks the signal layer after
        # layer and the deep levels learn slowly; He initialisation for leaky ReLUs keeps its scale.
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(module.head.weight, 0.0, 0.01)
    if isinstance(module, ResnetGenerator):
        if module.model is None:
            # A local generator has no normalisation layers: N(0, 0.02) would shrink its signal
            # layer after layer, so it keeps PyTorch's default (Kaiming-uniform) initialisation.
            for m in module.intensity.modules():
                if isinstance(m, nn.Conv2d):
                    m.reset_parameters()
        module.zero_intensity_output()


def build_generator(preset_or_config: str | GeneratorConfig | dict) -> Generator:
    if isinstance(preset_or_config, str):
        if preset_or_config not in PRESETS:
            raise ValueError(f"unknown preset {preset_or_config!r}; choose one of {', '.join(PRESETS)}")
        config = PRESETS[preset_or_config]
    elif isinstance(preset_or_config, dict):
        config = GeneratorConfig(**preset_or_config)
    else:
        config = preset_or_config
    return UNetGenerator(config) if config.generator == "unet" else ResnetGenerator(config)
