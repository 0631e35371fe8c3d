"""The named model sizes, torch-free: the training wizard lists them without loading torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass

GENERATORS = ("resnet", "unet")
UPSAMPLING = ("transpose", "resize")


@dataclass(frozen=True)
class GeneratorConfig:
    ngf: int = 32  # filters of the first layer (U-Net: of the full-resolution level)
    n_blocks: int = 6  # residual blocks (U-Net: downsampling levels)
    in_channels: int = 1
    out_channels: int = 1
    intensity_path: int = 0  # width of the full-resolution intensity branch; 0: the reference generator
    intensity_depth: int = 1  # 3x3 convolutions in that branch (then two 1x1 ones)
    # The output range is [-1, output_top] (the tanh stretched upwards). Targets reach 1.0 (a T1w's
    # white matter, a T2w's CSF), which a plain tanh only approaches: the brightest tissue ends a
    # little low and every contrast is squeezed. With a top above 1 the generator reaches 1.0 at a
    # finite activation; the bottom stays -1, the background, which the asymptote suits.
    output_top: float = 1.0
    # "resnet": the reference CycleGAN generator (instance norm). "unet": a U-Net without any
    # normalisation layer, so no statistic over the field of view changes a voxel's answer.
    generator: str = "resnet"
    # How the ResNet generator doubles its resolution. "transpose": the reference's stride-2
    # transposed convolutions, whose uneven kernel overlap leaves a checkerboard. "resize":
    # bilinear upsampling, then a 3x3 convolution (Odena et al. 2016, "Deconvolution and
    # Checkerboard Artifacts"), which has none.
    upsample: str = "transpose"
    # ngf = 0: no downsampling ResNet branch at all, the generator is the intensity branch alone
    # (a "local" generator: each voxel from its neighbourhood, at full resolution)

    def __post_init__(self):
        if self.ngf < 0 or self.n_blocks < 0 or self.intensity_path < 0 or self.intensity_depth < 1:
            raise ValueError(f"invalid generator sizes: {self}")
        if not 1.0 <= self.output_top <= 2.0:
            raise ValueError(f"output_top must lie in [1, 2], not {self.output_top}")
        if self.generator not in GENERATORS:
            raise ValueError(f"unknown generator {self.generator!r}; choose one of {', '.join(GENERATORS)}")
        if self.upsample not in UPSAMPLING:
            raise ValueError(f"unknown upsampling {self.upsample!r}; choose one of {', '.join(UPSAMPLING)}")
        if self.generator == "unet" and (
            self.ngf < 1 or not 1 <= self.n_blocks <= 6 or self.intensity_path or self.output_top != 1.0
        ):
            raise ValueError(
                f"a U-Net needs ngf >= 1, 1-6 levels (n_blocks), no intensity branch and "
                f"output_top 1 (its output is linear): {self}"
            )
        if self.ngf == 0 and self.intensity_path == 0:
            raise ValueError("a generator needs a ResNet branch (ngf > 0) or an intensity branch (intensity_path > 0)")

    def to_dict(self) -> dict:
        return asdict(self)


# name -> generator width and depth
PRESETS: dict[str, GeneratorConfig] = {
    "lite": GeneratorConfig(ngf=8, n_blocks=6),  # a volume in seconds on 2 CPU cores
    "lite-resize": GeneratorConfig(ngf=8, n_blocks=6, upsample="resize"),
    "lite-intensity": GeneratorConfig(ngf=8, n_blocks=6, intensity_path=16),
    # Four 3x3 convolutions at full resolution (a 9x9 neighbourhood), no downsampling: context
    # learned from simulated pairs did not carry over to a real T1w, a local mapping carried over
    # better (docs/default_model.md).
    "local": GeneratorConfig(ngf=0, n_blocks=0, intensity_path=16, intensity_depth=4),
    # One 3x3 convolution, then two 1x1 ones: each voxel from its 3x3 in-plane neighbourhood,
    # nearly a per-voxel intensity mapping (docs/default_model.md).
    "voxel": GeneratorConfig(ngf=0, n_blocks=0, intensity_path=32, intensity_depth=1),
    # voxel whose output can reach the brightest targets (output_top)
    "voxel-headroom": GeneratorConfig(ngf=0, n_blocks=0, intensity_path=32, intensity_depth=1, output_top=1.1),
    # U-Net of 4 levels (16 to 128 filters, a receptive field of about 140 pixels): sees the
    # context that tells bone from CSF and fat from fluid in whole heads; the default model
    "unet": GeneratorConfig(ngf=16, n_blocks=4, generator="unet"),
    "tiny": GeneratorConfig(ngf=16, n_blocks=6),
    "small": GeneratorConfig(ngf=32, n_blocks=6),
    "standard": GeneratorConfig(ngf=64, n_blocks=9),
}

# What `mri-style train` and the wizard use unless told otherwise: learns the contrast from
# unpaired slices on a CPU in minutes (docs/training.md)
DEFAULT_PRESET = "lite"

# Discriminator width per preset: the reference 64, narrower for the small generators so the
# discriminator does not overwhelm them.
DISCRIMINATOR_NDF = {
    "lite": 32,
    "lite-resize": 32,
    "lite-intensity": 32,
    "local": 32,
    "voxel": 32,
    "voxel-headroom": 32,
    "unet": 32,
    "tiny": 32,
    "small": 64,
    "standard": 64,
}
