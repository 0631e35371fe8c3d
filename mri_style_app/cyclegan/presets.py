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
    # A full-resolution intensity branch beside the ResNet (or alone, with ngf = 0), and the output
    # range below: no preset uses them; models made with them load and translate.
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


# The generators the app ships or recommends, by name. Model files of other architectures (the
# card records the layers, not just a name) still load and translate.
PRESETS: dict[str, GeneratorConfig] = {
    # The reference CycleGAN generator at 8 filters: learns T1w <-> T2w from unpaired slices on a
    # CPU in minutes, and translates a volume in seconds. For training from scratch.
    "lite": GeneratorConfig(ngf=8, n_blocks=6),
    # U-Net of 4 levels (16 to 128 filters, a receptive field of about 140 pixels), the bundled
    # model's: sees the context that tells bone from CSF and fat from fluid in whole heads. For
    # fine-tuning the bundled model and for training with co-registered pairs.
    "unet": GeneratorConfig(ngf=16, n_blocks=4, generator="unet"),
    # The same U-Net at half the width (8 to 64 filters, the same receptive field): a quarter of
    # the arithmetic, for translating on a slow CPU (the bundled fast model's).
    "unet-fast": GeneratorConfig(ngf=8, n_blocks=4, generator="unet"),
    # The reference CycleGAN generator (64 filters, 9 residual blocks). For a GPU and hours.
    "standard": GeneratorConfig(ngf=64, n_blocks=9),
}

# What `mri-style train` and the wizard use unless told otherwise (docs/training.md)
DEFAULT_PRESET = "lite"

# Discriminator width per preset: the reference 64, narrower for the small generators so the
# discriminator does not overwhelm them.
DISCRIMINATOR_NDF = {"lite": 32, "unet": 32, "unet-fast": 32, "standard": 64}
