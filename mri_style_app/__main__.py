"""`mri-style` command line.

`mri-style [FILE ...]` opens the GUI; subcommands do the same work headless.
Each subcommand lives in `commands/<name>.py` with `add_arguments(parser)` and `run(args) -> int`.
Those modules import Qt or torch only inside `run`, so `--version` and `info` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from mri_style_app import __version__

# name -> one-line help; the module is mri_style_app.commands.<name>
SUBCOMMANDS = {
    "info": "print the geometry and intensity summary of a volume",
    "render": "draw the tri-planar viewer for a volume to a PNG, headless",
    "translate": "translate a volume T1w <-> T2w with a CycleGAN model",
    "train": "train a CycleGAN model on two folders of unpaired images",
    "evaluate": "PSNR, SSIM and MAE of a prediction against a reference",
    "selftest": "open the demo volume, render, translate and check the quality",
}

EXIT_BAD_INPUT = 2
# Subcommands whose process ends without the interpreter's teardown once they return: their files
# are written and renamed into place by then, and tearing down torch's modules and objects takes
# about half a second, a sixth of translating the demo volume from a fresh process
# (docs/translation.md).
QUICK_EXIT = {"translate"}


def _stream_guard() -> None:
    """A windowed (no console) frozen app has no stdout/stderr; printing must not crash it."""
    import os

    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))


def _subcommand_parser(name: str) -> argparse.ArgumentParser:
    module = importlib.import_module(f"mri_style_app.commands.{name}")
    parser = argparse.ArgumentParser(prog=f"mri-style {name}", description=SUBCOMMANDS[name])
    module.add_arguments(parser)
    parser.set_defaults(_run=module.run)
    return parser


def _gui_parser() -> argparse.ArgumentParser:
    commands = "\n".join(f"  {name:<10} {text}" for name, text in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="mri-style",
        description="MRI Style: view NIfTI volumes and translate T1w <-> T2w.",
        epilog=f"subcommands (mri-style SUBCOMMAND --help):\n{commands}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="*", help="NIfTI files or DICOM series folders to open (two: compare mode)")
    parser.add_argument("--version", action="version", version=f"mri-style {__version__}")
    parser.add_argument("--selftest", action="store_true", help="same as the selftest subcommand")
    parser.add_argument("--no-demo", action="store_true", help="start empty instead of opening the demo volume")
    return parser


def main(argv: list[str] | None = None) -> int:
    _stream_guard()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        args = _subcommand_parser(argv[0]).parse_args(argv[1:])
        return int(args._run(args) or 0)
    args = _gui_parser().parse_args(argv)
    if args.selftest:
        return main(["selftest"])
    from mri_style_app.ui.app import run_gui

    return run_gui(args.files, open_demo=not args.no_demo)


def entry() -> None:
    """The process's entry point (`mri-style`, `python -m mri_style_app`, the packaged app): main()
    and its exit status; a QUICK_EXIT subcommand flushes its output and ends the process at once."""
    code = main()
    if sys.argv[1:2] and sys.argv[1] in QUICK_EXIT:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
