"""`mri-style render FILE --out PNG`: draw the tri-planar viewer headless to a PNG.

The picture is drawn by the same TriPlanarView widget the app shows, in RAS display space, so
it does not depend on the order in which the file stores its axes. Readouts that do depend on
it (voxel indices in the file's own order, the file orientation) are left out of the picture.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2  # as in __main__: bad input from the person, not a bug

DEFAULT_SIZE = (1200, 900)


def add_arguments(parser) -> None:
    parser.add_argument("file", help="NIfTI or Analyze volume, or a DICOM series folder")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument(
        "--size",
        default=f"{DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}",
        help="picture size WxH in pixels (default %(default)s)",
    )
    parser.add_argument(
        "--at",
        default=None,
        metavar="X,Y,Z",
        help="crosshair at this world position in mm (default: the volume centre)",
    )
    parser.add_argument("--colormap", default="grey", help="grey, 'inverted grey', hot or viridis")
    parser.add_argument(
        "--neurological", action="store_true", help="patient left on the screen's left (default: radiological)"
    )
    parser.add_argument("--volume", type=int, default=0, help="volume of a 4D file, from 0 (default 0)")
    parser.add_argument("--series", metavar="N", help="the series of a DICOM folder that holds several (number or UID)")


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size {text!r} is not WxH (for example 1200x900)") from None
    if not (200 <= w <= 8000 and 200 <= h <= 8000):
        raise ValueError(f"--size {text!r}: width and height must be between 200 and 8000 pixels")
    return w, h


def _parse_position(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise ValueError(f"--at {text!r} is not X,Y,Z in mm (for example 0,-18,12)")
    return values  # type: ignore[return-value]


def render_volume(
    volume, out: Path, size=DEFAULT_SIZE, at=None, colormap_name: str = "grey", radiological: bool = True
) -> Path:
    """Draw `volume` with a TriPlanarView to `out` (a QApplication must exist)."""
    from PySide6.QtWidgets import QApplication

    from mri_style_app.ui.triplanar import TriPlanarView

    view = TriPlanarView(show_file_order=False)
    view.resize(*size)
    view.set_radiological(radiological)
    view.set_colormap(colormap_name)
    view.show()
    view.set_volume(volume)
    if at is not None:
        view.set_crosshair_world(at)
    QApplication.processEvents()
    view.reset_view()  # after the layout gave the views their final size
    QApplication.processEvents()
    image = view.grab()
    view.close()
    if not image.save(str(out), "PNG"):
        raise OSError(f"{out}: could not be written")
    return out


def run(args) -> int:
    from mri_style_app.imaging.volume import VolumeError, load_volume
    from mri_style_app.ui import display

    try:
        size = _parse_size(args.size)
        at = _parse_position(args.at) if args.at is not None else None
    except ValueError as exc:
        return _error(str(exc))
    names = (*display.COLORMAP_NAMES, display.DIFFERENCE_COLORMAP)
    if args.colormap not in names:
        return _error(f"--colormap {args.colormap!r} is unknown; choose one of {', '.join(names)}")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        return _error(f"--out {out}: the picture is a PNG; give a name ending in .png")
    if not out.parent.exists():
        return _error(f"--out {out}: the folder {out.parent} does not exist")
    try:
        volume = load_volume(args.file, args.volume, series=args.series)
    except VolumeError as exc:
        return _error(str(exc))
    if at is not None:
        import numpy as np

        ijk = np.rint(np.round(volume.index_of(at), 3))
        if np.any(ijk < 0) or np.any(ijk >= np.array(volume.shape)):
            return _error(
                f"--at {args.at}: this position lies outside the volume "
                f"({args.file}); give a point inside it, in world mm"
            )

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and sys.platform.startswith("linux"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from mri_style_app.ui.app import create_application

    create_application()
    try:
        render_volume(volume, out, size, at, args.colormap, not args.neurological)
    except OSError as exc:
        return _error(str(exc))
    print(out)
    return 0
