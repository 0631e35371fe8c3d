"""The layering rule of DESIGN.md: imaging/ imports neither Qt nor torch; cyclegan/ never Qt.

Each module is imported in a fresh interpreter, so nothing imported by other tests can hide
or fake a violation. Modules are discovered, so new ones are checked as soon as they exist.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import mri_style_app.cyclegan
import mri_style_app.imaging

QT = ("PySide6", "shiboken6", "pyqtgraph")


def _modules(package) -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."))


def _heavy_imports(module: str, forbidden: tuple[str, ...]) -> list[str]:
    probe = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        "import json\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({forbidden!r}))))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_packages_are_found_and_the_probe_sees_qt():
    assert "mri_style_app.imaging.volume" in _modules(mri_style_app.imaging)
    assert "mri_style_app.cyclegan.networks" in _modules(mri_style_app.cyclegan)
    assert "PySide6" in _heavy_imports("mri_style_app.ui.workers", QT)  # the check can fail


@pytest.mark.parametrize("module", [*_modules(mri_style_app.imaging), "mri_style_app.files", "mri_style_app.paths"])
def test_imaging_imports_neither_qt_nor_torch(module):
    assert _heavy_imports(module, QT + ("torch",)) == []


@pytest.mark.parametrize("module", _modules(mri_style_app.cyclegan))
def test_cyclegan_does_not_import_qt(module):
    assert _heavy_imports(module, QT) == []


@pytest.mark.parametrize(
    "module",
    [
        "mri_style_app.cyclegan.presets",
        "mri_style_app.cyclegan.time_budget",
        "mri_style_app.cyclegan.events",
        "mri_style_app.cyclegan.run_progress",
        "mri_style_app.cyclegan.run_setup",  # its folder scans import torch only when they run
    ],
)
def test_what_the_wizard_reads_loads_without_torch_so_it_starts_fast(module):
    assert _heavy_imports(module, QT + ("torch",)) == []
