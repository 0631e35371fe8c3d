"""`mri-style translate IN OUT --direction t1-to-t2|t2-to-t1`: translate a volume headless.

IN is a NIfTI/Analyze file or a DICOM series folder. OUT gets exactly IN's grid: shape, affine and
axis order (save_volume writes in the source's own orientation); with `--format dicom` OUT is a
folder that receives a DICOM series (a derived series in the source's study for a DICOM source).
Every problem with the input, the model, the device or OUT is found before any work is done and
ends in one `error: ...` line on stderr, exit status 2, and no file written.

`mri-style translate IN... --out-dir DIR` translates many inputs with the model loaded once:
results are named after their inputs (cyclegan/batch.py), a bad input fails alone, and a table
at the end says what happened to each (exit status 2 if any failed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

EXIT_BAD_INPUT = 2
BAR_WIDTH = 30
LINE_WIDTH = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="IN [OUT]",
        help="IN OUT: one volume (.nii, .nii.gz, .hdr/.img or a DICOM series folder) and where to write its "
        "translation; with --out-dir, any number of inputs",
    )
    parser.add_argument(
        "--out-dir", metavar="DIR", help="translate every IN into DIR, each named <name>_t2w-synth (or _t1w-synth)"
    )
    parser.add_argument(
        "--format",
        default="nifti",
        choices=("nifti", "dicom"),
        help="nifti (default) or dicom: a DICOM series in a folder, derived from a DICOM source's study",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace results that exist (default: skip them)")
    parser.add_argument("--series", metavar="N", help="the series of a DICOM folder that holds several (number or UID)")
    parser.add_argument("--direction", required=True, choices=("t1-to-t2", "t2-to-t1"), help="which way to translate")
    parser.add_argument("--model", default=None, help="a .safetensors model file (default: the bundled default model)")
    parser.add_argument(
        "--planes",
        default="axial",
        choices=("axial", "coronal", "sagittal", "tri"),
        help="slice plane (its slices evened out across slices), or tri: the median of all three (3x the time)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="where to run: auto takes the GPU when there is one",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _check_output(out: Path, source: Path, fmt: str = "nifti", overwrite: bool = False) -> str | None:
    """Why OUT cannot be written, or None."""
    name = out.name.lower()
    if fmt == "nifti" and not (name.endswith(".nii") or name.endswith(".nii.gz")):
        return f"{out}: the output must be NIfTI, a name ending in .nii or .nii.gz (or use --format dicom)"
    if fmt == "dicom" and name.endswith((".nii", ".nii.gz")):
        return f"{out}: a DICOM series is written into a folder; give a folder name, not a .nii file"
    if out.resolve() == source.resolve() or (out.exists() and source.exists() and os.path.samefile(out, source)):
        return f"{out}: is the input; the source is never overwritten. Choose another output name"
    parent = out.resolve().parent
    if not parent.is_dir():
        return f"{out}: the folder {parent} does not exist. Create it or choose another folder"
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        return f"{out}: cannot be written (permission denied). Choose a folder you can write to"
    if fmt == "nifti" and out.is_dir():
        return f"{out}: is a folder. Give a file name ending in .nii.gz"
    if fmt == "dicom" and out.exists() and not out.is_dir():
        return f"{out}: is a file; a DICOM series is written into a folder. Give a folder name"
    if fmt == "dicom" and out.is_dir() and any(out.iterdir()) and not overwrite:
        return f"{out}: the folder is not empty. Choose a new or empty folder, or pass --overwrite"
    return None


class _ProgressBar:
    def __init__(self, stream, enabled: bool):
        self.stream, self.enabled, self.started = stream, enabled, time.monotonic()
        self.last = -1

    def __call__(self, fraction: float, message: str) -> None:
        percent = int(100 * fraction)
        if not self.enabled or percent == self.last:
            return
        self.last = percent
        filled = int(BAR_WIDTH * fraction)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        line = f"[{bar}] {percent:3d}%  {message}  {time.monotonic() - self.started:.1f} s"
        self.stream.write(f"\r{line:<{LINE_WIDTH}}")  # padded: a shorter line leaves no stale text
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.last >= 0:
            self.stream.write("\n")
            self.stream.flush()


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _load_model(args):
    """(model, device) or an error message; the generator for the direction is checked here."""
    from mri_style_app import paths
    from mri_style_app.cyclegan.checkpoint import ModelError, load_model
    from mri_style_app.cyclegan.device import DeviceError, choose_device, configure_threads, keep_freed_memory

    model_path = Path(args.model) if args.model else paths.default_model_path()
    try:
        model = load_model(model_path, args.direction)
        model.generator(args.direction)  # says which directions the file holds if not this one
        device = choose_device(args.device)
    except ModelError as exc:
        hint = "" if args.model else " (the bundled default model; pass --model FILE to use another)"
        return None, f"{exc}{hint}"
    except DeviceError as exc:
        return None, str(exc)
    if device.type == "cpu":
        # Set once, here, before any work: torch's thread count is never changed while other
        # threads may run OpenMP regions (the GUI's translations run in worker threads).
        configure_threads()
        keep_freed_memory()
    return (model, device), None


def run(args) -> int:
    if args.out_dir is not None:
        return _run_batch(args)
    if len(args.paths) != 2:
        return _error(
            f"give one input and one output (IN OUT), or any number of inputs with --out-dir DIR; got {len(args.paths)} path(s)"
        )
    return _run_one(args, Path(args.paths[0]), Path(args.paths[1]))


def _run_batch(args) -> int:
    from mri_style_app.cyclegan import batch
    from mri_style_app.cyclegan.device import describe_device

    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        return _error(f"{out_dir}: is a file; --out-dir needs a folder")
    if not out_dir.resolve().parent.is_dir():
        return _error(f"{out_dir}: the folder {out_dir.resolve().parent} does not exist. Create it first")
    if args.series is not None:
        return _error("--series picks a series of one folder; in a batch give each series' own folder as an input")
    loaded, problem = _load_model(args)
    if problem:
        return _error(problem)
    model, device = loaded
    items = batch.plan_batch(args.paths, out_dir, args.direction, args.format)
    out_dir.mkdir(exist_ok=True)
    if not args.quiet:
        print(
            f"{len(items)} input(s), {args.direction}, {model.name} ({model.preset}) loaded once, on "
            f"{describe_device(device)}",
            file=sys.stderr,
        )
    bar = _ProgressBar(sys.stderr, not args.quiet)
    try:
        batch.translate_batch(
            items,
            model,
            args.direction,
            fmt=args.format,
            planes=args.planes,
            device=device,
            overwrite=args.overwrite,
            progress=bar,
        )
    except KeyboardInterrupt:
        bar.close()
        print(batch.report(items), file=sys.stderr)
        print("error: cancelled; the results listed as done are complete", file=sys.stderr)
        return 130
    bar.close()
    print(batch.report(items))
    return EXIT_BAD_INPUT if any(item.status == "failed" for item in items) else 0


def _run_one(args, source: Path, out: Path) -> int:
    from mri_style_app.imaging.volume import VolumeError, load_volume

    problem = _check_output(out, source, args.format, args.overwrite)
    if problem:
        return _error(problem)
    try:
        volume = load_volume(source, series=args.series)
    except VolumeError as exc:
        return _error(str(exc))

    from mri_style_app.cyclegan.batch import save_result
    from mri_style_app.cyclegan.device import describe_device
    from mri_style_app.cyclegan.translate import translate_volume, usable_planes

    loaded, problem = _load_model(args)
    if problem:
        return _error(problem)
    model, device = loaded
    bar = _ProgressBar(sys.stderr, not args.quiet)
    if not args.quiet:
        planes = usable_planes(volume.shape, args.planes)
        plane_text = args.planes if len(planes) > 1 or planes[0] == args.planes else f"{planes[0]} (a single slice)"
        print(
            f"{source.name}: {args.direction}, {plane_text}, {model.name} ({model.preset}) on "
            f"{describe_device(device)}",
            file=sys.stderr,
        )
    started = time.monotonic()
    try:
        result = translate_volume(volume, model, args.direction, planes=args.planes, device=device, progress=bar)
    except KeyboardInterrupt:
        bar.close()
        print("error: cancelled; nothing written", file=sys.stderr)
        return 130
    bar.close()
    try:
        save_result(result, out, args.format, model.name, args.direction, volume.name, overwrite=args.overwrite)
    except VolumeError as exc:
        return _error(str(exc))
    if not args.quiet:
        print(f"wrote {out} ({time.monotonic() - started:.1f} s)", file=sys.stderr)
    return 0
