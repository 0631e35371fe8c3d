"""Reproduce the bundled default model and its evidence, step by step.

The model is a `unet` CycleGAN (a U-Net per direction, no normalisation layers) trained by one
recipe, training/recipes/default_t1_t2.toml, a plain `mri-style train --recipe`, on the seed
train split (whole heads) and simulated ICBM brains, as pairs and unpaired. The seed test split
is never read by training.

    .venv/bin/python training/make_default_model.py prepare   # training folders under runs/default-data
    .venv/bin/python training/make_default_model.py train     # the run (resumes where it stopped)
    .venv/bin/python training/make_default_model.py export    # run -> resources/models/
    .venv/bin/python training/make_default_model.py evaluate  # score table, sweep, figures, card
    .venv/bin/python training/make_default_model.py all

`train` can be stopped at any time (Ctrl-C: the trainer checkpoints) and run again to resume.
`export` takes the finished model, or the latest checkpoint of an unfinished run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "training"))

RECIPE = REPO / "training" / "recipes" / "default_t1_t2.toml"
RUN = REPO / "runs" / "default-model"
DATA = REPO / "runs" / "default-data"
EVIDENCE = REPO / "docs" / "default_model"
CLI = [sys.executable, "-m", "mri_style_app"]
CH2 = Path("/usr/share/mricron/templates/ch2.nii.gz")
DATA_DESCRIPTION = {
    "whole heads": "the seed train split of ../shared/data/seed-t1-t2 (BrainWeb Colin27 T1w/T2w, skin, fat, "
                   "skull, marrow and brain; axial slices z 69-78 and 82-99: 28 exact pairs); the test split "
                   "(z 110-124) is read by no training",
    "brains": "3 ICBM 2009a brains under random smooth deformations (never the undeformed demo anatomy), "
              "each scanned with the BrainWeb 1.5 T reference protocols (T1w spoiled gradient echo TR 18 / "
              "TE 10 ms / 30 deg, T2w spin echo TR 3300 / TE 120 ms, no noise) as targets, and as inputs "
              "also 3 random protocols (1.5 or 3 T, +-10 % tissue values, TR/TE/flip, bias field, Rician "
              "noise) and one T1w with a longer CSF T1 (3000-4500 ms)",
    "sampling": "every head (a seed volume or a simulated brain) drawn about equally often",
    "augmentation": "left-right flips, rotation +-10 deg, scale +-10 %, an elastic warp (all sides alike); "
                    "the input side alone: gamma, intensity scale, bias field +-10 %, a coarser in-plane "
                    "resolution (up to 2x, p 0.3) and Rician noise up to 3 %",
    "objective": "CycleGAN: LSGAN adversarial terms (weight 0.1), cycle L1 (weight 1), no identity term, "
                 "plus the paired L1 of each translation against its reference (weight 10)",
    "output contrast": "the BrainWeb 1.5 T reference protocols, whatever the input's field and protocol",
}


def prepare() -> None:
    from mri_style_app.cyclegan import seed_slices

    pairs = [DATA / "pairs-A-t1w", DATA / "pairs-B-t2w"]
    for folder in pairs:
        shutil.rmtree(folder, ignore_errors=True)
    names = seed_slices.write_split(DATA / "seed-train", "train")
    for folder, contrast in zip(pairs, ("t1w", "t2w")):
        folder.mkdir(parents=True)
        for name in names:
            shutil.copy2(DATA / "seed-train" / contrast / f"{name}.nii.gz", folder / f"{name}.nii.gz")
    subprocess.run([sys.executable, str(REPO / "training" / "prepare_reference_pairs.py"), "--out", str(DATA),
                    "--heads", "3", "--variants", "3", "--reference-field", "1.5", "--dark-csf-variants", "1",
                    "--folder-prefix", "pairs", "--seed", "1515"], check=True)


def train() -> None:
    from mri_style_app.cyclegan.events import read_events

    if any(e.get("type") == "done" for e in read_events(RUN)):
        return
    # --resume continues the run in --out with the settings saved there
    resume = ["--resume", "--out", str(RUN)] if (RUN / "checkpoints" / "latest.pt").exists() else []
    subprocess.run([*CLI, "train", "--recipe", str(RECIPE), *resume], check=True)


def export() -> Path:
    import torch

    from mri_style_app.cyclegan import checkpoint as model_files
    from mri_style_app.cyclegan.events import read_events
    from mri_style_app.cyclegan.networks import build_generator
    from mri_style_app.paths import default_model_path

    config = json.loads((RUN / "config.json").read_text())["config"]
    normalisation = model_files.training_normalisation(config["percentile_a"], config["percentile_b"], 1.0)
    finished = RUN / "model.safetensors"
    if finished.exists():
        model = model_files.load_model(finished)
        generators, training = model.generators, dict(model.card.get("training", {}))
    else:  # an unfinished run: its latest checkpoint (loaded without unpickling code)
        state = torch.load(RUN / "checkpoints" / "latest.pt", map_location="cpu", weights_only=True)
        generators = {}
        for direction, name in (("t1-to-t2", "G_A"), ("t2-to-t1", "G_B")):
            net = build_generator(config["preset"])
            net.load_state_dict(state["nets"][name])
            generators[direction] = net.eval()
        steps = [e for e in read_events(RUN) if e.get("type") == "step"]
        training = {"iterations": int(state["iteration"]), "seconds": round(float(state["seconds"]), 1),
                    "finished": False, "last_losses": {k: steps[-1][k] for k in ("paired_A", "paired_B")} if steps else {}}
    training.pop("data", None)  # absolute folders of the machine that trained it
    training.update({"recipe": RECIPE.relative_to(REPO).as_posix(),
                     "reproduce": "python training/make_default_model.py all",
                     "settings": {k: config[k] for k in ("preset", "size", "plane", "batch_size", "lr", "lambda_cycle",
                                                         "lambda_identity", "lambda_paired", "lambda_adversarial",
                                                         "percentile_a", "percentile_b", "iterations", "seed")},
                     "data": DATA_DESCRIPTION})
    card = model_files.make_card(config["preset"], model_files.DIRECTIONS, normalisation, training=training)
    out = model_files.save_model(default_model_path(), generators, card)
    print(f"exported {out}")
    return out


# ---------------------------------------------------------------- figures
def _qt_application():
    """The Qt application the figures are drawn in (offscreen unless a platform is set)."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


def grid_figure(tiles: list[list[np.ndarray]], row_labels: list[str], column_labels: list[str],
                title: str, path: Path) -> Path:
    """A labelled grid of [0, 1] images (rows x columns), drawn with Qt offscreen, saved as PNG."""
    app = _qt_application()  # noqa: F841 - fonts need a Qt application
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QFont, QImage, QPainter

    widths = [max(row[c].shape[1] for row in tiles) for c in range(len(column_labels))]
    heights = [max(t.shape[0] for t in row) for row in tiles]
    left, top, gap = 110, 44, 4
    image = QImage(left + sum(widths) + len(widths) * gap, top + sum(heights) + len(heights) * gap,
                   QImage.Format_RGB32)
    image.fill(QColor("black"))
    painter = QPainter(image)
    painter.setPen(QColor("white"))
    painter.setFont(QFont("DejaVu Sans", 11))
    painter.drawText(6, 4, image.width() - 12, 20, Qt.AlignLeft, title)
    x = left
    for c, name in enumerate(column_labels):
        painter.drawText(x, 22, widths[c], 20, Qt.AlignHCenter, name)
        x += widths[c] + gap
    y = top
    for label, row, height in zip(row_labels, tiles, heights):
        painter.drawText(4, y, left - 8, height, Qt.AlignVCenter | Qt.AlignRight, label)
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
    return [np.rot90(unit[:, :, centre[2]]), np.rot90(unit[:, centre[1], :]), np.fliplr(np.rot90(unit[centre[0], :, :]))]


def seed_figure(model, scores: dict, path: Path, z_index: int = 7) -> Path:
    """One seed test slice, whole head: source, translation, reference, |difference|, both directions."""
    from mri_style_app.cyclegan.translate import translate_volume
    from mri_style_app.imaging.intensity import normalize_unit
    from mri_style_app.imaging.metrics import head_mask
    from score_table import seed_volumes

    seed = seed_volumes(REPO / "runs" / "scores" / "seed", "test")
    head = head_mask(seed["t1"].data, seed["t2"].data)
    columns, labels = [], []
    for direction in ("t1-to-t2", "t2-to-t1"):
        source, target = (seed[k] for k in direction.split("-to-"))
        pred = normalize_unit(translate_volume(source, model, direction).data, head)
        ref = normalize_unit(target.data, head)
        columns.append([_axial(normalize_unit(source.data, head), z_index), _axial(pred, z_index),
                        _axial(ref, z_index), _axial(np.abs(pred - ref) * head, z_index)])
        s = scores["model"]["seed test, whole head"][direction]
        labels.append(f"{direction}: {s['ssim']:.3f} / {s['psnr']:.1f} dB")
    z = int(round(seed["t1"].affine[2, 3] + 71)) + z_index  # the Colin27 grid's slice number
    tiles = [[columns[c][r] for c in range(2)] for r in range(4)]
    return grid_figure(tiles, ["source", "translation", "reference", "|difference|"], labels,
                       f"seed test slice z {z} (never trained on), whole head; SSIM / PSNR over the 15 test slices", path)


def ch2_figure(model, path: Path) -> Path:
    """The real whole-head Colin27 T1w (mricron-data ch2.nii.gz) and its T2w translation, three planes."""
    from mri_style_app.cyclegan.translate import translate_volume
    from mri_style_app.imaging.intensity import normalize_unit
    from mri_style_app.imaging.metrics import head_mask
    from mri_style_app.imaging.volume import load_volume

    t1 = load_volume(CH2)
    head = head_mask(t1.data)
    t2 = translate_volume(t1, model, "t1-to-t2")
    centre = (90, 120, 72)
    rows = [_three_planes(normalize_unit(v.data, head), centre) for v in (t1, t2)]
    return grid_figure(rows, ["ch2 T1w", "T2w translation"], ["axial", "coronal", "sagittal"],
                       "real whole-head T1w (Colin27 ch2.nii.gz, mricron-data) translated to T2w", path)


def curves_figure(path: Path) -> Path:
    """The run's loss curves as the wizard draws them (offscreen), saved as a PNG."""
    app = _qt_application()  # Qt must live while we draw
    from mri_style_app.cyclegan.events import read_events
    from mri_style_app.ui.loss_plot import LossPlot

    plot = LossPlot()
    plot.resize(900, 420)
    plot.set_log_scale(True)
    plot.add_steps([e for e in read_events(RUN) if e.get("type") == "step"])
    plot.show()
    app.processEvents()
    if not plot.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    plot.close()
    return path


def evaluate() -> dict:
    import protocol_sweep
    from score_table import markdown, print_table, score_table

    from mri_style_app.cyclegan import checkpoint as model_files
    from mri_style_app.paths import default_model_path

    EVIDENCE.mkdir(parents=True, exist_ok=True)
    model = model_files.load_model(default_model_path())
    rows = score_table(default_model_path())
    print_table(rows)
    (EVIDENCE / "metrics.json").write_text(json.dumps(rows, indent=2) + "\n")
    (EVIDENCE / "score_table.md").write_text(markdown(rows))
    sweep = protocol_sweep.sweep(default_model_path())
    (EVIDENCE / "protocol_sweep.md").write_text(protocol_sweep.markdown(sweep))
    seed_figure(model, rows, EVIDENCE / "seed_test_whole_head.png")
    ch2_figure(model, EVIDENCE / "ch2_t1w_to_t2w.png")
    if (RUN / "events.jsonl").exists():
        curves_figure(EVIDENCE / "training_curves.png")
    worst = {d: {"ssim": round(min(r[d]["ssim"] for r in sweep), 4), "psnr": round(min(r[d]["psnr"] for r in sweep), 4)}
             for d in ("t1-to-t2", "t2-to-t1")}
    card = dict(model.card)
    card["metrics"] = {"protocol": "../shared/data/seed-t1-t2/README.md: each image scaled to [0, 1] by its own 99.5th "
                                   "percentile in the region; SSIM = scikit-image's default 2D SSIM map per axial "
                                   "slice, averaged over the region; PSNR and MAE over the region",
                       "table": rows, "protocol sweep, worst brain figure": worst}
    model_files.save_model(default_model_path(), model.generators, card)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("prepare", "train", "export", "evaluate", "all"))
    step = parser.parse_args().step
    if step in ("prepare", "all"):
        prepare()
    if step in ("train", "all"):
        train()
    if step in ("export", "all"):
        export()
    if step in ("evaluate", "all"):
        evaluate()


if __name__ == "__main__":
    main()
