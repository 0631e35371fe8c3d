"""What the viewer shows, apart from how: colormaps, plane geometry, the volume histogram.

Display space is the volume's canonical RAS voxel grid scaled to millimetres: along canonical
axis a, voxel i sits at `origin[a] + i * spacing[a]`. For the usual non-oblique affine that
is exactly world mm, so two volumes on different grids still line up by position.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg

from mri_style_app.imaging.intensity import robust_range

COLORMAP_NAMES = ("grey", "inverted grey", "hot", "viridis")
DIFFERENCE_COLORMAP = "difference"


def _from_stops(stops: list[tuple[float, tuple[int, int, int]]]) -> pg.ColorMap:
    positions = [p for p, _ in stops]
    colors = [(*c, 255) for _, c in stops]
    return pg.ColorMap(positions, colors)


def colormap(name: str) -> pg.ColorMap:
    """A colormap by its menu name (see COLORMAP_NAMES, plus 'difference' for signed maps)."""
    if name == "grey":
        return _from_stops([(0.0, (0, 0, 0)), (1.0, (255, 255, 255))])
    if name == "inverted grey":
        return _from_stops([(0.0, (255, 255, 255)), (1.0, (0, 0, 0))])
    if name == "hot":
        return _from_stops([(0.0, (0, 0, 0)), (0.375, (255, 0, 0)), (0.75, (255, 255, 0)), (1.0, (255, 255, 255))])
    if name == "viridis":  # 16 stops of pyqtgraph's viridis: smooth, and few gradient ticks
        positions = np.linspace(0.0, 1.0, 16)
        return pg.ColorMap(positions, pg.colormap.get("viridis").map(positions, mode="byte"))
    if name == DIFFERENCE_COLORMAP:  # blue (negative) - white (zero) - red (positive)
        return _from_stops([(0.0, (40, 70, 200)), (0.5, (255, 255, 255)), (1.0, (200, 40, 40))])
    raise ValueError(f"unknown colormap {name!r}; choose one of {', '.join(COLORMAP_NAMES)}")


def lookup_table(name: str, n: int = 256) -> np.ndarray:
    """(n, 3) uint8 lookup table for an ImageItem."""
    return colormap(name).getLookupTable(0.0, 1.0, n, alpha=False)


@dataclass(frozen=True)
class Plane:
    """One of the three views: which canonical axis it slices and which it shows across/up."""

    name: str
    slice_axis: int
    h_axis: int  # screen horizontal
    v_axis: int  # screen vertical, growing upwards


AXIAL = Plane("axial", slice_axis=2, h_axis=0, v_axis=1)
CORONAL = Plane("coronal", slice_axis=1, h_axis=0, v_axis=2)
SAGITTAL = Plane("sagittal", slice_axis=0, h_axis=1, v_axis=2)
PLANES = (AXIAL, CORONAL, SAGITTAL)

# The letter at the low and high end of each canonical axis (RAS+: +x is patient Right).
_AXIS_LETTERS = (("L", "R"), ("P", "A"), ("I", "S"))


def flips_horizontally(plane: Plane, radiological: bool) -> bool:
    """Whether the plane's horizontal axis runs right-to-left on screen.

    Radiological: the patient's right is on the screen's left, so +x (Right) runs leftwards.
    Sagittal views show the face on the left (as FSLeyes and ITK-SNAP do), so +y runs leftwards.
    """
    if plane.h_axis == 0:
        return radiological
    return True


def edge_letters(plane: Plane, radiological: bool) -> dict[str, str]:
    """Orientation letters for the screen edges: keys left, right, top, bottom."""
    low, high = _AXIS_LETTERS[plane.h_axis]
    if flips_horizontally(plane, radiological):
        low, high = high, low
    bottom, top = _AXIS_LETTERS[plane.v_axis]
    return {"left": low, "right": high, "top": top, "bottom": bottom}


def display_grid(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(origin, spacing) of the canonical grid in display mm, rounded so that the same image
    stored in another axis order (a slightly different float affine) draws identical pixels."""
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    origin = affine[:3, 3].copy()
    return np.round(origin, 4), np.round(spacing, 5)


def volume_histogram(data: np.ndarray, bins: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of a whole volume (sampled), computed once per volume, never per slice.

    The exact zeros of the air around a head are left out so the tissue peaks stay visible.
    """
    flat = data.ravel()
    step = max(1, flat.size // 1_000_000)
    values = flat[::step]
    nonzero = values[values != 0]
    if nonzero.size:
        values = nonzero
    lo, hi = float(values.min()), float(values.max())
    if not hi > lo:
        hi = lo + 1.0
    if hi - lo < 4 * bins and np.all(values[:10_000] == np.round(values[:10_000])):
        # integer-valued data: one bin per integer (or per few), so the histogram has no comb
        width = max(1, int(np.ceil((hi - lo + 1) / bins)))
        lo, hi = lo - 0.5, lo - 0.5 + width * np.ceil((hi - lo + 1) / width)
        bins = int(round((hi - lo) / width))
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    return centres, counts.astype(np.float64)


def auto_window(data: np.ndarray) -> tuple[float, float]:
    """Default window: robust percentiles of the tissue."""
    return robust_range(data, 0.5, 99.5)


def difference_window(data: np.ndarray) -> tuple[float, float]:
    """Symmetric window around zero for a signed difference map."""
    lo, hi = robust_range(np.abs(data), 0.0, 99.5)
    bound = max(hi, 1e-6)
    return -bound, bound


@dataclass(frozen=True)
class VolumeStats:
    """What showing a volume needs from all its voxels, computed once per data array."""

    centres: np.ndarray  # histogram bins
    counts: np.ndarray
    window: tuple[float, float]  # auto window
    span: float  # max - min, at least a tiny positive number


_stats_cache: dict[int, tuple[weakref.ref, VolumeStats]] = {}
_stats_lock = threading.Lock()


def volume_stats(data: np.ndarray) -> VolumeStats:
    """Histogram, auto window and range of `data`, cached while the array lives.

    Workers call it on the volumes they make (a loaded file, a translation), so showing the
    result on the GUI thread finds the figures ready instead of scanning millions of voxels.
    """
    key = id(data)
    with _stats_lock:
        entry = _stats_cache.get(key)
    if entry is not None and entry[0]() is data:
        return entry[1]
    centres, counts = volume_histogram(data)
    stats = VolumeStats(centres, counts, auto_window(data), float(data.max() - data.min()) or 1.0)

    def forget(_ref, key=key):
        with _stats_lock:
            if _stats_cache.get(key, (None,))[0] is _ref:
                del _stats_cache[key]

    with _stats_lock:
        _stats_cache[key] = (weakref.ref(data, forget), stats)
    return stats
