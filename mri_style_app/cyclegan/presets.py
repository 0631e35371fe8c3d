"""The named model sizes, torch-free: the training wizard lists them without loading torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GeneratorConfig:
    ngf: int = 32
    n_blocks: int = 6
    in_channels: int = 1
    out_channels: int = 1
    intensity_path: int = 0  # width of the full-resolution intensity branch; 0: the reference generator

    def to_dict(self) -> dict:
        return asdict(self)


# name -> generator width and depth
PRESETS: dict[str, GeneratorConfig] = {
    "lite": GeneratorConfig(ngf=8, n_blocks=6),  # a volume in seconds on 2 CPU cores
    "lite-intensity": GeneratorConfig(ngf=8, n_blocks=6, intensity_path=16),  # the default model
    "tiny": GeneratorConfig(ngf=16, n_blocks=6),
    "small": GeneratorConfig(ngf=32, n_blocks=6),
    "standard": GeneratorConfig(ngf=64, n_blocks=9),
}

# Discriminator width per preset: the reference 64, narrower for the small generators so the
# discriminator does not overwhelm them.
DISCRIMINATOR_NDF = {"lite": 32, "lite-intensity": 32, "tiny": 32, "small": 64, "standard": 64}
