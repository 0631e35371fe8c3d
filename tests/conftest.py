"""Shared test set-up: headless Qt, and where the real data lives."""

from __future__ import annotations

import os
from pathlib import Path

# Qt must know it is headless before anything imports it.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# One torch thread for the whole test process, fixed before torch loads, so no test changes the
# count while a worker thread computes: full runs that changed it per test (2 -> 1 -> 2) crashed in
# a later test's worker convolution, runs with one thread throughout did not. Training timings
# are steadier on a shared CPU too.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def seed_dir() -> Path:
    """The real, unpaired T1/T2 slices (../shared/data/seed-t1-t2 beside the repository)."""
    path = SHARED_DIR / "data" / "seed-t1-t2"
    if not (path / "T1").is_dir():
        pytest.skip(f"seed slices not found at {path}")
    return path


@pytest.fixture(scope="session")
def nibabel_data_dir() -> Path:
    """nibabel's own test images, shipped inside the installed nibabel package."""
    import nibabel

    path = Path(nibabel.__file__).resolve().parent / "tests" / "data"
    if not (path / "anatomical.nii").is_file():
        pytest.skip(f"nibabel's test data is not installed at {path}")
    return path
