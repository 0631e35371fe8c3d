"""The evidence of a T1w <-> T2w model: its score table, the protocol sweep and the figures
(a seed test slice, whole head; the real whole-head ch2.nii.gz in three planes; a synthetic head
no run trained on, both ways, in three planes; training curves).
Used by make_default_model.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "training"))

CH2 = Path("/usr/share/mricron/templates/ch2.nii.gz")
SCORES = REPO / "runs" / "scores"
STRIPE_KEY = "stripe index, ch2.nii.gz T1w -> T2w"
SYNTHETIC_KEY = "synthetic whole head no run trained on"


# ---------------------------------------------------------------- figures
def _qt_application():
    """The Qt application the figures are drawn in (offscreen unless a platform is set)."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


def grid_figure(
    tiles: list[list[np.ndarray]], row_labels: list[str], column_labels: list[str], title: str, path: Path
) -> Path:
    """A labelled grid of [0, 1] images (rows x columns), drawn with Qt offscreen, saved as PNG."""
    app = _qt_application()  # noqa: F841 - fonts need a Qt application
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QFont, QImage, QPainter

    widths = [max(row[c].shape[1] for row in tiles) for c in range(len(column_labels))]
    heights = [max(t.shape[0] for t in row) for row in tiles]
    left, top, gap = 150, 64, 4
    image = QImage(
        max(left + sum(widths) + len(widths) * gap, 620), top + sum(heights) + len(heights) * gap, QImage.Format_RGB32
    )
    image.fill(QColor("black"))
    painter = QPainter(image)
    painter.setPen(QColor("white"))
    painter.setFont(QFont("DejaVu Sans", 11))
    painter.drawText(6, 2, image.width() - 12, 40, Qt.AlignLeft | Qt.TextWordWrap, title)
    x = left
    for c, name in enumerate(column_labels):
        painter.drawText(x, 42, widths[c], 20, Qt.AlignHCenter, name)
        x += widths[c] + gap
    y = top
    for label, row, height in zip(row_labels, tiles, heights):
        painter.drawText(4, y, left - 8, height, Qt.AlignVCenter | Qt.AlignRight | Qt.TextWordWrap, label)
        x = left
        for c, view in enumerate(row):
            grey = np.ascontiguousarray((np.clip(view, 0, 1) * 255).astype(np.uint8))
            tile = QImage(grey.data, grey.shape[1], grey.shape[0], grey.strides[0], QImage.Format_Grayscale8)
            painter.drawImage(x, y, tile)
            x += widths[c] + gap
        y += height + gap
    painter.end()
    if not image.save(str(path)):
        raise OSError(f"could not write {path}")
    return path


def _axial(unit: np.ndarray, z: int) -> np.ndarray:
    return np.rot90(unit[:, :, z])  # anterior up, patient right on the left (radiological)


def _three_planes(unit: np.ndarray, centre) -> list[np.ndarray]:
    # sagittal with anterior on the left, as the viewer shows it
    return [
        np.rot90(unit[:, :, centre[2]]),
        np.rot90(unit[:, centre[1], :]),
        np.fliplr(np.rot90(unit[centre[0], :, :])),
    ]


def seed_figure(model, scores: dict, path: Path, z_index: int = 7) -> Path:
    """One seed test slice, whole head: source, translation, reference, |difference|, both directions."""
    from score_table import seed_volumes

    from mri_style_app.cyclegan.translate import translate_volume
    from mri_style_app.imaging.intensity import normalize_unit
    from mri_style_app.imaging.metrics import head_mask

    seed = seed_volumes(SCORES / "seed", "test")
    head = head_mask(seed["t1"].data, seed["t2"].data)
    columns, labels = [], []
    for direction in ("t1-to-t2", "t2-to-t1"):
        source, target = (seed[k] for k in direction.split("-to-"))
        pred = normalize_unit(translate_volume(source, model, direction).data, head)
        ref = normalize_unit(target.data, head)
        columns.append(
            [
                _axial(normalize_unit(source.data, head), z_index),
                _axial(pred, z_index),
                _axial(ref, z_index),
                _axial(np.abs(pred - ref) * head, z_index),
            ]
        )
        s = scores["model"]["seed test, whole head"][direction]
        labels.append(f"{direction} {s['ssim']:.3f} / {s['psnr']:.1f} dB")
    z = int(round(seed["t1"].affine[2, 3] + 71)) + z_index  # the Colin27 grid's slice number
    tiles = [[columns[c][r] for c in range(2)] for r in range(4)]
    return grid_figure(
        tiles,
        ["source", "translation", "reference", "|difference|"],
        labels,
        f"seed test slice z {z}, whole head (never trained on); SSIM / PSNR over all 15 test slices",
        path,
    )


def ch2_figure(model, path: Path) -> float:
    """The real whole-head Colin27 T1w (mricron-data ch2.nii.gz) and its T2w translation, three
    planes, into `path`; returns that translation's stripe index (imaging.metrics.stripe_index)."""
    from mri_style_app.cyclegan.translate import translate_volume
    from mri_style_app.imaging.intensity import normalize_unit
    from mri_style_app.imaging.metrics import head_mask, stripe_index
    from mri_style_app.imaging.volume import load_volume

    t1 = load_volume(CH2)
    head = head_mask(t1.data)
    t2 = translate_volume(t1, model, "t1-to-t2")
    centre = (90, 120, 72)
    rows = [_three_planes(normalize_unit(v.data, head), centre) for v in (t1, t2)]
    grid_figure(
        rows,
        ["ch2 T1w", "T2w translation"],
        ["axial", "coronal", "sagittal"],
        "real whole-head T1w (Colin27 ch2.nii.gz, mricron-data) translated to T2w",
        path,
    )
    return stripe_index(t1.data, t2.data)


# The synthetic head of the figure: make_synthetic_heads.py's heads draw seed [2025, k]; this one no run reads.
FIGURE_HEAD_SEED = (7, 0)


def synthetic_figure(model, path: Path) -> dict:
    """A synthetic whole head (training/make_synthetic_heads.py, a seed no training set uses)
    under the reference protocols, translated both ways, in three planes; returns its whole-head
    figures per direction (the seed README's protocol, the head of the synthetic volume as mask)."""
    import make_synthetic_heads as synth

    from mri_style_app.cyclegan.translate import translate_volume
    from mri_style_app.imaging.intensity import normalize_unit
    from mri_style_app.imaging.metrics import evaluate_pair, head_mask
    from mri_style_app.imaging.volume import Volume

    ((t1, t2, affine),) = synth.reference_heads([FIGURE_HEAD_SEED])
    volumes = {
        "t1": Volume(data=t1, affine=affine, name="synthetic_t1w"),
        "t2": Volume(data=t2, affine=affine, name="synthetic_t2w"),
    }
    head = head_mask(t1, t2)
    centre = tuple(int(round(c)) for c in np.argwhere(head).mean(axis=0))
    rows, row_labels, scores = [], [], {}
    for direction in ("t1-to-t2", "t2-to-t1"):
        source_name, target_name = (name.upper() for name in direction.split("-to-"))
        source, target = volumes[source_name.lower()], volumes[target_name.lower()]
        pred = translate_volume(source, model, direction)
        figures = evaluate_pair(pred.data, target.data, head)
        scores[direction] = {k: round(float(figures[k]), 4) for k in ("ssim", "psnr")}
        rows += [_three_planes(normalize_unit(v, head), centre) for v in (source.data, pred.data, target.data)]
        row_labels += [
            f"{source_name}w source",
            f"{target_name}w translation {scores[direction]['ssim']:.3f} / {scores[direction]['psnr']:.1f} dB",
            f"{target_name}w reference",
        ]
    grid_figure(
        rows,
        row_labels,
        ["axial", "coronal", "sagittal"],
        "a synthetic whole head no run trained on (make_synthetic_heads.py), reference protocols; SSIM / PSNR, whole head",
        path,
    )
    return scores


def curves_figure(runs: list[Path], path: Path) -> Path:
    """The runs' loss curves on one axis (each continues where the one before ended), as the
    wizard draws them (offscreen), saved as a PNG."""
    app = _qt_application()  # Qt must live while we draw
    from mri_style_app.cyclegan.events import read_events
    from mri_style_app.ui.loss_plot import LossPlot

    plot = LossPlot()
    plot.resize(900, 420)
    plot.set_log_scale(True)
    offset = 0
    for run in runs:
        steps = [{**e, "iteration": e["iteration"] + offset} for e in read_events(run) if e.get("type") == "step"]
        plot.add_steps(steps)
        offset = steps[-1]["iteration"] if steps else offset
    plot.show()
    app.processEvents()
    if not plot.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    plot.close()
    return path


def evaluate_model(model_path: Path, evidence: Path, runs: list[Path]) -> dict:
    """Score table, protocol sweep and figures of a model into `evidence`; returns the card's
    metrics (the table and the sweep's worst brain figures)."""
    import protocol_sweep
    from score_table import markdown, print_table, score_table

    from mri_style_app.cyclegan import checkpoint as model_files

    evidence.mkdir(parents=True, exist_ok=True)
    model = model_files.load_model(model_path)
    rows = score_table(model_path)
    print_table(rows)
    (evidence / "metrics.json").write_text(json.dumps(rows, indent=2) + "\n")
    (evidence / "score_table.md").write_text(markdown(rows))
    sweep = protocol_sweep.sweep(model_path)
    (evidence / "protocol_sweep.md").write_text(protocol_sweep.markdown(sweep))
    seed_figure(model, rows, evidence / "seed_test_whole_head.png")
    stripes = ch2_figure(model, evidence / "ch2_t1w_to_t2w.png")
    synthetic = synthetic_figure(model, evidence / "synthetic_head.png")
    if all((run / "events.jsonl").exists() for run in runs):
        curves_figure(runs, evidence / "training_curves.png")
    worst = {
        d: {"ssim": round(min(r[d]["ssim"] for r in sweep), 4), "psnr": round(min(r[d]["psnr"] for r in sweep), 4)}
        for d in ("t1-to-t2", "t2-to-t1")
    }
    return {
        "protocol": "../shared/data/seed-t1-t2/README.md: each image scaled to [0, 1] by its own 99.5th "
        "percentile in the region; SSIM = scikit-image's default 2D SSIM map per axial slice, "
        "averaged over the region; PSNR and MAE over the region",
        "table": rows,
        "protocol sweep, worst brain figure": worst,
        STRIPE_KEY: round(stripes, 4),
        SYNTHETIC_KEY: synthetic,
    }


def checkpoint_generators(run: Path, preset: str) -> tuple[dict, dict]:
    """({direction: generator}, checkpoint state) from an unfinished run's latest checkpoint,
    loaded without unpickling code."""
    import torch

    from mri_style_app.cyclegan.networks import build_generator

    state = torch.load(run / "checkpoints" / "latest.pt", map_location="cpu", weights_only=True)
    generators = {}
    for direction, name in (("t1-to-t2", "G_A"), ("t2-to-t1", "G_B")):
        net = build_generator(preset)
        net.load_state_dict(state["nets"][name])
        generators[direction] = net.eval()
    return generators, state
