"""Where the app finds its bundled resources, in a source checkout and in the frozen app."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The `resources/` folder: beside the package in a checkout, inside the bundle when frozen."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def demo_t1_path() -> Path:
    return resources_dir() / "demo" / "icbm152_2009a_t1w.nii.gz"


def demo_t2_path() -> Path:
    return resources_dir() / "demo" / "icbm152_2009a_t2w_sim.nii.gz"


def demo_mask_path() -> Path:
    return resources_dir() / "demo" / "icbm152_2009a_brain_mask.nii.gz"


def default_model_path() -> Path:
    return resources_dir() / "models" / "t1_t2_default.safetensors"


def fast_model_path() -> Path:
    """The bundled fast model: the default's U-Net at half the width, for slow CPUs."""
    return resources_dir() / "models" / "t1_t2_fast.safetensors"


def bundled_models() -> dict[str, Path]:
    """The models the app ships, by name, in the order the Translate panel offers them."""
    return {"default": default_model_path(), "fast": fast_model_path()}


def self_command() -> list[str]:
    """The command that runs this same program again (for training subprocesses).

    In the frozen app that is the executable itself; from source it is this Python
    running the package, so it works without the console script on PATH.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "mri_style_app"]
