"""`mri-style translate IN OUT --direction t1-to-t2|t2-to-t1`: translate a volume headless.

OUT gets exactly IN's grid: shape, affine and axis order (save_volume writes in the source's own
orientation). Every problem with the input, the model, the device or OUT is found before any
work is done and ends in one `error: ...` line on stderr, exit status 2, and no file written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

EXIT_BAD_INPUT = 2
BAR_WIDTH = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="the volume to translate (.nii, .nii.gz or .hdr/.img)")
    parser.add_argument("output", metavar="OUT", help="where to write the translation (.nii or .nii.gz)")
    parser.add_argument("--direction", required=True, choices=("t1-to-t2", "t2-to-t1"), help="which way to translate")
    parser.add_argument("--model", default=None, help="a .safetensors model file (default: the bundled default model)")
    parser.add_argument(
        "--planes",
        default="axial",
        choices=("axial", "coronal", "sagittal", "tri"),
        help="slice plane, or tri: all three fused (removes slice stripes, 3x the time)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="where to run: auto takes the GPU when there is one",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _check_output(out: Path, source: Path) -> str | None:
    """Why OUT cannot be written, or None."""
    name = out.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        return f"{out}: the output must be NIfTI, a name ending in .nii or .nii.gz"
    if out.resolve() == source.resolve() or (out.exists() and source.exists() and os.path.samefile(out, source)):
        return f"{out}: is the input file; the source is never overwritten. Choose another output name"
    parent = out.resolve().parent
    if not parent.is_dir():
        return f"{out}: the folder {parent} does not exist. Create it or choose another folder"
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        return f"{out}: cannot be written (permission denied). Choose a folder you can write to"
    if out.is_dir():
        return f"{out}: is a folder. Give a file name ending in .nii.gz"
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
        self.stream.write(f"\r[{bar}] {percent:3d}%  {message}  {time.monotonic() - self.started:.1f} s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.last >= 0:
            self.stream.write("\n")
            self.stream.flush()


def run(args) -> int:
    from mri_style_app.imaging.volume import VolumeError, load_volume, save_volume

    source, out = Path(args.input), Path(args.output)
    problem = _check_output(out, source)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        volume = load_volume(source)
    except VolumeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    from mri_style_app import paths
    from mri_style_app.cyclegan.checkpoint import ModelError, load_model
    from mri_style_app.cyclegan.device import DeviceError, choose_device, configure_threads, describe_device
    from mri_style_app.cyclegan.translate import translate_volume, usable_planes

    model_path = Path(args.model) if args.model else paths.default_model_path()
    try:
        model = load_model(model_path)
        model.generator(args.direction)
        device = choose_device(args.device)
    except ModelError as exc:
        hint = "" if args.model else " (the bundled default model; pass --model FILE to use another)"
        print(f"error: {exc}{hint}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DeviceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    if device.type == "cpu":
        # Set once, here, before any work: torch's thread count is never changed while other
        # threads may run OpenMP regions (the GUI's translations run in worker threads).
        configure_threads()
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
        save_volume(result, out)
    except VolumeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.quiet:
        print(f"wrote {out} ({time.monotonic() - started:.1f} s)", file=sys.stderr)
    return 0
