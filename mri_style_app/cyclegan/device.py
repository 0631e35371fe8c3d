"""Where inference runs: the device choice, CPU thread count and a description for people (no Qt)."""

from __future__ import annotations

import ctypes
import os
import sys

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


class DeviceError(Exception):
    """The requested device cannot be used; the message says what to do instead."""


def physical_cores() -> int:
    """Physical CPU cores this process may use (hyper-threads share a core's arithmetic units)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    cores = set()
    try:
        with open("/proc/cpuinfo") as fh:
            physical = core = None
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    physical = value.strip()
                elif key == "core id":
                    core = value.strip()
                elif not line.strip() and core is not None:
                    cores.add((physical, core))
                    physical = core = None
            if core is not None:
                cores.add((physical, core))
    except OSError:
        pass
    return max(1, min(usable, len(cores) or usable))


def configure_threads() -> int:
    """Use one torch thread per physical core (more only adds contention); returns the count."""
    n = physical_cores()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


# glibc's mallopt options (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> bool:
    """Have glibc's allocator keep the memory torch and numpy free for their next arrays instead of
    handing it back to the system: otherwise each batch's activations are mapped afresh and
    page-faulted in, a third of a translation's time in a fresh process (docs/translation.md). The
    process then keeps its peak memory until it exits, so this is for commands, not the GUI.
    Returns whether it applied (Linux with glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    settings = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 256 << 20))
    return all(mallopt(option, value) == 1 for option, value in settings)


def native_bfloat16(device: torch.device) -> bool:
    """Whether `device` computes in bfloat16 natively: a GPU that supports it, or a CPU with
    AVX512-BF16 or AMX instructions. Elsewhere bfloat16 is emulated, many times slower than
    float32 on a CPU."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's, since 2.1
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def cuda_available() -> bool:
    return torch.cuda.is_available()


def choose_device(preference: str = "auto") -> torch.device:
    """'auto' takes CUDA where there is a GPU, else the CPU; 'cuda' without a GPU is an error."""
    if preference not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {preference!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if preference == "cuda" and not cuda_available():
        raise DeviceError(
            "CUDA was requested but no usable NVIDIA GPU was found (torch "
            f"{torch.__version__} {'has no CUDA support' if torch.version.cuda is None else 'sees no GPU'}). "
            "Use --device cpu or --device auto"
        )
    if preference == "auto":
        return torch.device("cuda" if cuda_available() else "cpu")
    return torch.device(preference)


def describe_device(device) -> str:
    """'NVIDIA H100 80GB HBM3 (CUDA)' or 'CPU (2 threads)'."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    n = physical_cores()
    return f"CPU ({n} thread{'s' if n != 1 else ''})"
