"""MRI Style: tri-planar NIfTI viewer with CycleGAN contrast translation."""

__version__ = "0.1.0"
