"""What the training wizard works out before a run, without Qt: what a training folder holds,
the validation and paired folders' summaries, the `mri-style train` command line, the bundled
model to fine-tune. Torch is imported only inside the folder scans (they read through the
trainer's own loaders), so the wizard starts without it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mri_style_app import paths
from mri_style_app.cyclegan.presets import PRESETS


@dataclass
class FolderScan:
    """What a training folder holds, for the data page."""

    folder: Path
    count: int = 0
    kinds: str = ""
    thumbnails: list[np.ndarray] = field(default_factory=list)  # 2D float images, any range
    warnings: list[str] = field(default_factory=list)
    error: str = ""


MIN_SLICES_FOR_A_MODEL = 200  # fewer trains, but teaches little beyond a test of the pipeline


def scan_folder(folder, n_thumbnails: int = 4) -> FolderScan:
    """Count a folder's training slices and take a few to show, through the trainer's own
    loader (cyclegan/data.py), so what the wizard shows is what training will read."""
    from mri_style_app.cyclegan import data

    folder = Path(folder)
    scan = FolderScan(folder)
    try:
        dataset = data.load_domain(folder)
    except data.DataError as exc:
        scan.error = str(exc)
        return scan
    summary = dataset.summary()
    scan.count = len(dataset)
    parts = []
    if summary["png_files"]:
        parts.append(f"{summary['png_files']} PNG slice(s)")
    if summary["volumes"]:
        parts.append(f"axial slices of {summary['volumes']} volume(s)")
    sizes = ", ".join(f"{shape} ({n})" for shape, n in dataset.shapes.items())
    scan.kinds = f"{' and '.join(parts)}; sizes (height x width) {sizes}"
    if scan.count < MIN_SLICES_FOR_A_MODEL:
        scan.warnings.append(
            f"only {scan.count} slices: enough to try the wizard, too few for a "
            f"useful model (aim for {MIN_SLICES_FOR_A_MODEL} or more)"
        )
    if len(dataset.shapes) > 1:
        scan.warnings.append(
            "images of different sizes: each is padded to a square and resized "
            "to the training size, so their scales may differ"
        )
    if dataset.ignored:
        shown = ", ".join(dataset.ignored[:3]) + (" ..." if len(dataset.ignored) > 3 else "")
        scan.warnings.append(f"{len(dataset.ignored)} file(s) not used (not images, or blank): {shown}")
    picks = np.linspace(0, scan.count - 1, min(n_thumbnails, scan.count)).round().astype(int)
    scan.thumbnails = [dataset.slice(int(i)) for i in picks]
    return scan


def scan_validation(folder_a, folder_b) -> str:
    """A one-line summary of the validation pairs, read through the trainer's own loader; raises
    data.DataError (with a message for people) when they cannot be used."""
    from mri_style_app.cyclegan import validation

    pairs = validation.load_validation_pairs(folder_a, folder_b)
    voxels = sum(int(p.head.sum()) for p in pairs)
    return f"{len(pairs)} pair(s), {voxels} head voxels: scored as the run goes; the best model is kept"


def scan_pairs(folder_a, folder_b) -> str:
    """A one-line summary of a pair of co-registered folders, read through the trainer's own
    loader; raises data.DataError (with a message for people) when they cannot be used."""
    from mri_style_app.cyclegan import data

    pairs = data.load_pairs(folder_a, folder_b)
    summary = pairs.summary()
    variants = f", {summary['variants']} extra input scan(s)" if summary["variants"] else ""
    return f"{summary['pairs']} pair(s){variants}: {summary['slices']} paired slices"


def train_command(
    domain_a,
    domain_b,
    run_dir,
    preset: str,
    size: int,
    iterations: int | None,
    device: str = "auto",
    resume: bool = False,
    extra: list[str] | None = None,
    minutes: float | None = None,
) -> list[str]:
    """The `mri-style train ...` command line (the same executable in the packaged app): for
    `iterations`, or for `minutes` when given."""
    if resume:
        return paths.self_command() + ["train", "--out", str(run_dir), "--resume"]
    length = ["--minutes", f"{minutes:g}"] if minutes else ["--iterations", str(iterations)]
    size_option = ["--size", str(size)] if size else []  # none: whole slices at their own scale
    every = log_interval(iterations) if not minutes else 10
    return [
        *paths.self_command(), "train", "--domain-a", str(domain_a), "--domain-b", str(domain_b),
        "--out", str(run_dir), "--preset", preset, *size_option, *length,
        "--device", device, "--log-every", str(every), *(extra or []),
    ]  # fmt: skip


def bundled_model() -> tuple[Path, str] | None:
    """The bundled default model and its preset (read from its card beside it), or None."""
    path = paths.default_model_path()
    try:
        card = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        preset = card["architecture"]["preset"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (path, preset) if path.is_file() and preset in PRESETS else None


def log_interval(iterations: int) -> int:
    """A loss point every 10 iterations, denser for short runs so their curves still show a shape."""
    return max(1, min(10, iterations // 100))
