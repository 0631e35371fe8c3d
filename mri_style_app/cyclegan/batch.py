"""Translating many volumes with one loaded model: result names, the BIDS layout, skip or
overwrite, and a report of what was done. The CLI (`translate IN... --out-dir DIR`) and the
Translate panel's "Translate a folder..." both run `translate_batch`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mri_style_app.imaging import dicom
from mri_style_app.imaging.volume import READABLE_SUFFIXES, VolumeError, load_volume, save_volume

FORMATS = ("nifti", "dicom")
RESULT_TAGS = {"t1-to-t2": "t2w-synth", "t2-to-t1": "t1w-synth"}
CONTRASTS = {"t1": "T1w", "t2": "T2w"}


@dataclass
class BatchItem:
    source: Path
    output: Path
    status: str = "to do"  # to do, done, skipped, failed, cancelled
    message: str = ""
    seconds: float = 0.0


def input_stem(path: Path) -> str:
    """A volume's name without its file type: sub-01_T1w.nii.gz -> sub-01_T1w, enhanced.dcm ->
    enhanced; a folder's own name. A DICOM file loses only a .dcm: its names are often UIDs, whose
    dots are not a file type."""
    name = path.name
    for suffix in sorted(READABLE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    if not path.is_file():
        return name
    if dicom.is_dicom_file(path):
        return name[: -len(".dcm")] if name.lower().endswith(".dcm") else name
    return Path(name).stem


def bids_folder(path: Path) -> Path:
    """The folders from the subject on (sub-01/ses-1/anat), for a file in a BIDS layout; else none."""
    parts = path.resolve().parent.parts
    for i, part in enumerate(parts):
        if part.startswith("sub-"):
            return Path(*parts[i:])
    return Path()


def result_path(source: Path, out_dir: Path, direction: str, fmt: str) -> Path:
    name = f"{input_stem(source)}_{RESULT_TAGS[direction]}"
    return Path(out_dir) / bids_folder(source) / (name + (".nii.gz" if fmt == "nifti" else ""))


def find_inputs(folder: Path) -> list[Path]:
    """The volumes inside `folder`, for a folder chosen in the GUI: NIfTI/Analyze files anywhere
    below it, and each folder that holds DICOM files directly (one series folder per input)."""
    found: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        root = Path(root)
        volumes = [
            root / n
            for n in sorted(names)
            if n.lower().endswith(READABLE_SUFFIXES) and not n.lower().endswith((".img", ".img.gz"))
        ]
        found += volumes
        if not volumes and any(dicom.is_dicom_file(root / n) for n in names if not n.startswith(".")):
            found.append(root)
    return found


def plan_batch(inputs, out_dir, direction: str, fmt: str = "nifti") -> list[BatchItem]:
    """One item per input; an input whose result name another input already takes fails."""
    items, claimed = [], {}
    for source in map(Path, inputs):
        item = BatchItem(source, result_path(source, Path(out_dir), direction, fmt))
        key = item.output.resolve()
        if key in claimed:
            item.status, item.message = "failed", f"its result would be {item.output}, as for {claimed[key]}"
        claimed.setdefault(key, source)
        items.append(item)
    return items


def synthetic_descriptions(model_name: str, direction: str, source_name: str) -> tuple[str, str]:
    """(SeriesDescription, DerivationDescription) of a translated series."""
    source, target = (CONTRASTS[c] for c in direction.split("-to-"))
    from mri_style_app import __version__

    return (
        f"Synthetic {target} (MRI Style, {model_name})",
        f"Synthetic {target} computed by MRI Style {__version__} from the {source} image '{source_name}' with the "
        f"CycleGAN model {model_name}; not an acquired image",
    )


def save_result(result, output: Path, fmt: str, model_name: str, direction: str, source_name: str, overwrite=False):
    """Write a translation as NIfTI or as a DICOM series (a derived series for a DICOM source)."""
    if fmt == "dicom":
        description, derivation = synthetic_descriptions(model_name, direction, source_name)
        return dicom.write_series(result, output, description, derivation, overwrite=overwrite)
    return save_volume(result, output)


def translate_batch(
    items: list[BatchItem],
    model,
    direction: str,
    fmt: str = "nifti",
    planes: str = "axial",
    device="auto",
    overwrite: bool = False,
    progress: Callable[[float, str], None] | None = None,
    cancel=None,
    on_item: Callable[[BatchItem], None] | None = None,
) -> list[BatchItem]:
    """Translate each item that is still to do; a bad input fails alone and the rest go on."""
    from mri_style_app.cyclegan.translate import TranslationCancelled, translate_volume

    todo = [item for item in items if item.status == "to do"]
    for n, item in enumerate(todo):
        if cancel is not None and cancel.is_set():
            item.status, item.message = "cancelled", "not started"
            continue
        started = time.monotonic()
        if item.output.exists() and not overwrite:
            item.status, item.message = "skipped", "the result exists (--overwrite replaces it)"
        else:

            def part(fraction: float, message: str = "", n=n, item=item) -> None:
                if progress is not None:
                    progress((n + fraction) / len(todo), f"{item.source.name}: {message or 'translating'}")

            try:
                volume = load_volume(item.source)
                result = translate_volume(
                    volume, model, direction, planes=planes, device=device, progress=part, cancel=cancel
                )
                item.output.parent.mkdir(parents=True, exist_ok=True)
                save_result(result, item.output, fmt, model.name, direction, volume.name, overwrite=overwrite)
                item.status = "done"
            except TranslationCancelled:
                item.status, item.message = "cancelled", "nothing written"
            except (VolumeError, OSError) as exc:
                item.status, item.message = "failed", str(exc).splitlines()[0]
        item.seconds = time.monotonic() - started
        if progress is not None:
            progress((n + 1) / len(todo), f"{item.source.name}: {item.status}")
        if on_item is not None:
            on_item(item)
    return items


def status_counts(items: list[BatchItem]) -> dict[str, int]:
    """How many items ended done, skipped, failed and cancelled, in that order."""
    return {s: sum(item.status == s for item in items) for s in ("done", "skipped", "failed", "cancelled")}


def report(items: list[BatchItem]) -> str:
    """A table of every input: what happened, where the result is, why one failed."""
    width = max([len(str(item.source)) for item in items] + [5])
    lines = [f"{'input':<{width}}  {'status':<9}  {'seconds':>7}  result"]
    for item in items:
        where = str(item.output) if item.status in ("done", "skipped") else item.message
        extra = f" ({item.message})" if item.status == "skipped" else ""
        lines.append(f"{str(item.source):<{width}}  {item.status:<9}  {item.seconds:7.1f}  {where}{extra}")
    lines.append(", ".join(f"{n} {s}" for s, n in status_counts(items).items() if n or s in ("done", "failed")))
    return "\n".join(lines)
