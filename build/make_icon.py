"""Draw the MRI Style icon with QPainter and save it as PNGs in resources/icons/.

The motif: a round "brain slice" split down the middle, dark T1 contrast on the left
(bright white matter, grey cortex) and T2 contrast on the right (dark white matter,
bright fluid), the same two tissues swapped, which is what the app does.
Run: .venv/bin/python build/make_icon.py
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPointF, QRectF, Qt  # noqa: E402
from PySide6.QtGui import (  # noqa: E402
    QColor,
    QGuiApplication,
    QImage,
    QPainter,
    QPen,
    QPolygonF,
)

ICON_DIR = Path(__file__).resolve().parents[1] / "resources" / "icons"
SIZES = (256, 64)

# Grey levels of (background, cortex, white matter, ventricles/fluid) in each contrast.
T1 = {"cortex": 120, "white": 225, "fluid": 30}
T2 = {"cortex": 150, "white": 80, "fluid": 245}


def _brain_outline(c: float, r: float, folds: float) -> QPolygonF:
    """An axial-slice-like outline: an ellipse a little taller than wide, with gyri as ripples."""
    points = []
    for i in range(360):
        angle = 2 * math.pi * i / 360
        ripple = 1 + folds * math.sin(18 * angle)
        points.append(QPointF(c + r * 0.86 * ripple * math.sin(angle), c - r * ripple * math.cos(angle)))
    # One polygon, not 360 QPainterPath.lineTo calls: each void PySide6 6.12 call on
    # Python 3.11 drops a reference to None, and thousands of them abort the interpreter.
    return QPolygonF(points)


def _draw_half(p: QPainter, size: float, tissue: dict, clip: QRectF) -> None:
    c, r = size / 2, size * 0.42
    p.save()
    p.setClipRect(clip)
    grey = lambda v: QColor(v, v, v)  # noqa: E731
    p.setPen(Qt.NoPen)
    p.setBrush(grey(tissue["cortex"]))
    p.drawPolygon(_brain_outline(c, r, 0.015))
    # White matter: folded like the cortex, deeper ripples.
    p.setBrush(grey(tissue["white"]))
    p.drawPolygon(_brain_outline(c, r * 0.78, 0.07))
    # Lateral ventricles: two slim shapes hugging the midline.
    p.setBrush(grey(tissue["fluid"]))
    for side in (-1, 1):
        p.save()
        p.translate(c + side * r * 0.13, c - r * 0.02)
        p.rotate(side * -12)
        p.drawEllipse(QPointF(0, 0), r * 0.07, r * 0.3)
        p.restore()
    p.restore()


def draw_icon(size: int) -> QImage:
    image = QImage(size, size, QImage.Format_ARGB32)
    image.fill(Qt.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.Antialiasing)
    # Dark rounded square background, like a scanner display.
    p.setPen(Qt.NoPen)
    p.setBrush(QColor(18, 24, 38))
    radius = size * 0.18
    p.drawRoundedRect(QRectF(0, 0, size, size), radius, radius)
    _draw_half(p, size, T1, QRectF(0, 0, size / 2, size))
    _draw_half(p, size, T2, QRectF(size / 2, 0, size / 2, size))
    # The split: a thin accent line where the contrast changes.
    pen = QPen(QColor(255, 170, 40), max(1.0, size / 64))
    p.setPen(pen)
    p.drawLine(QPointF(size / 2, size * 0.05), QPointF(size / 2, size * 0.95))
    p.end()
    return image


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (fonts/paint need it)
    ICON_DIR.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        target = ICON_DIR / f"mri-style-{size}.png"
        if not draw_icon(size).save(str(target)):
            print(f"error: could not write {target}", file=sys.stderr)
            return 1
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
