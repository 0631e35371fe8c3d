"""Shared test set-up: headless Qt, and where the real data lives."""

from __future__ import annotations

import os
from pathlib import Path

# Qt must know it is headless before anything imports it.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

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
