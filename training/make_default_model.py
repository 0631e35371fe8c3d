"""Reproduce the bundled default model and its evidence (issue 6), step by step.

The model is a `voxel-headroom` CycleGAN (one 3x3 convolution, then 1x1 ones, per direction; the
`voxel` layers with the output range [-1, 1.1]) trained in four stages, each a plain `mri-style train --recipe`:
  1. training/recipes/default_t1_t2_voxel.toml: from random weights, the unpaired domains (real
     seed slices and simulations) plus the 1.5 T reference scans of 10 simulated heads, paired;
  2. training/recipes/default_t1_t2_voxel_stage2.toml: stage 1 continued (init_from) with the
     adversarial terms off: the paired and cycle terms alone;
  3. training/recipes/default_t1_t2_voxel_stage3.toml: stage 2 continued at half the learning rate;
  4. training/recipes/default_t1_t2_voxel_stage4.toml: stage 3 continued as voxel-headroom, with
     two more T1w inputs per head whose CSF is darker (a longer CSF T1), as in real T1w scans.

    .venv/bin/python training/make_default_model.py prepare   # simulated + seed training folders
    .venv/bin/python training/make_default_model.py train     # all stages (each resumes)
    .venv/bin/python training/make_default_model.py export    # run -> resources/models/
    .venv/bin/python training/make_default_model.py evaluate  # metrics (mri-style evaluate), figures
    .venv/bin/python training/make_default_model.py all

`train` can be stopped at any time (Ctrl-C: the trainer checkpoints) and run again to resume.
`export` takes the finished model, or the latest checkpoint of an unfinished run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "training" / "recipes"
DATA = REPO / "runs" / "default-data"
# (recipe, run folder) per stage, in order; the last run is the shipped model
STAGES = [(RECIPES / "default_t1_t2_voxel.toml", REPO / "runs" / "default-model-voxel"),
          (RECIPES / "default_t1_t2_voxel_stage2.toml", REPO / "runs" / "default-model-voxel-stage2"),
          (RECIPES / "default_t1_t2_voxel_stage3.toml", REPO / "runs" / "default-model-voxel-stage3"),
          (RECIPES / "default_t1_t2_voxel_stage4.toml", REPO / "runs" / "default-model-voxel-stage4")]
RUN = STAGES[-1][1]
EVIDENCE = REPO / "docs" / "default_model"
CLI = [sys.executable, "-m", "mri_style_app"]
DIFFERENCE = "|difference|"  # the evidence figures' last row


def _run_script(name: str, *options: str) -> None:
    """Run training/NAME with --out DATA and `options`; stop if it fails."""
    subprocess.run([sys.executable, str(REPO / "training" / name), "--out", str(DATA), *options], check=True)


def prepare() -> None:
    # the unpaired domains (seed slices, the template, simulations); its random-protocol pairs are
    # not used by these stages (--pairs 0; the domains are drawn from their own random stream)
    _run_script("prepare_default_data.py", "--pairs", "0")
    # The voxel stages pair reference scans only, all at 1.5 T (the output contrast is one protocol
    # at one field: a T2w does not say which field a T1w partner was scanned at), other heads.
    reference_pairs = ("--variants", "0", "--reference-field", "1.5", "--seed", "4343")
    _run_script("prepare_reference_pairs.py", *reference_pairs, "--folder-prefix", "refs")
    # stage 4: the same heads and reference scans, plus two dark-CSF T1w inputs per head
    _run_script("prepare_reference_pairs.py", *reference_pairs, "--folder-prefix", "refsdark", "--dark-csf-variants", "2")


def train() -> None:
    from mri_style_app.cyclegan.events import read_events

    for recipe, run in STAGES:
        if any(e.get("type") == "done" for e in read_events(run)):
            continue  # finished before
        # --resume continues the run in --out with the settings saved there
        resume = ["--resume", "--out", str(run)] if (run / "checkpoints" / "latest.pt").exists() else []
        subprocess.run([*CLI, "train", "--recipe", str(recipe), *resume], check=True)


def export() -> Path:
    import torch

    from mri_style_app.cyclegan import checkpoint as model_files
    from mri_style_app.cyclegan.events import read_events
    from mri_style_app.cyclegan.networks import build_generator
    from mri_style_app.paths import default_model_path

    config = json.loads((RUN / "config.json").read_text())["config"]
    finished = RUN / "model.safetensors"
    if finished.exists():
        model = model_files.load_model(finished)
        generators, card = model.generators, model.card
    else:  # an unfinished run: its latest checkpoint (loaded without unpickling code)
        state = torch.load(RUN / "checkpoints" / "latest.pt", map_location="cpu", weights_only=True)
        generators = {}
        for direction, name in (("t1-to-t2", "G_A"), ("t2-to-t1", "G_B")):
            net = build_generator(config["preset"])
            net.load_state_dict(state["nets"][name])
            generators[direction] = net.eval()
        steps = [e for e in read_events(RUN) if e.get("type") == "step"]
        # the input scaling the run trained with, as train.py writes it into a finished model
        normalisation = model_files.training_normalisation(config.get("percentile_a", 99.5),
                                                           config.get("percentile_b", 99.5))
        card = model_files.make_card(config["preset"], model_files.DIRECTIONS, normalisation, training={
            "iterations": int(state["iteration"]), "seconds": round(float(state["seconds"]), 1),
            "finished": False, "last_losses": {k: steps[-1][k] for k in ("G_A", "G_B", "D_A", "D_B", "cycle_A", "cycle_B")} if steps else {}})
    card["training"] = {**card.get("training", {}),
                        "recipes": [recipe.relative_to(REPO).as_posix() for recipe, _ in STAGES],
                        "reproduce": "python training/make_default_model.py all",
                        "settings": {k: config[k] for k in ("preset", "size", "plane", "batch_size", "lr", "lambda_cycle",
                                             "lambda_identity", "lambda_paired", "lambda_adversarial", "percentile_a", "seed")
                                     if k in config},
                        "data": {"A (T1w), unpaired": "43 real BrainWeb T1w seed slices (../shared/data/seed-t1-t2/T1), the "
                                                      "real ICBM 2009a T1 template, 6 spoiled-gradient-echo T1w volumes "
                                                      "simulated from the ICBM tissue maps with random 1.5 T/3 T relaxation "
                                                      "times (+-10 %), TR/TE/flip, bias field and Rician noise",
                                 "B (T2w), unpaired": "46 real BrainWeb T2w seed slices (../shared/data/seed-t1-t2/T2), 6 "
                                                      "spin-echo T2w volumes simulated the same way with random TR/TE",
                                 "pairs": "10 heads: the ICBM tissue maps under random smooth deformations, each "
                                          "scanned once per contrast with the reference protocols (T1w GRE TR 18/TE "
                                          "10/30 deg, T2w SE TR 3300/TE 120) and the 1.5 T literature relaxation "
                                          "values, no noise or bias; paired L1 loss x 300; in stage 4 each head "
                                          "also has two T1w inputs of the same protocol with a longer CSF T1 "
                                          "(3000-4500 ms: CSF at 0.17-0.26 of white matter instead of 0.30, as "
                                          "in real T1w scans), paired with the same reference T2w",
                                 "stages": "1: 1500 iterations from random weights, adversarial, cycle (x 1) and "
                                           "paired terms, lr 5e-4; 2: 1500 more without the adversarial terms; "
                                           "3: 1500 more at lr 2.5e-4; 4: 1500 more as voxel-headroom (output "
                                           "range [-1, 1.1]) with the dark-CSF T1w inputs",
                                 "output contrast": "the 1.5 T reference protocols above, whatever the input's "
                                                    "field and protocol",
                                 "T1w input": "scaled by its 90th foreground percentile (white matter at 1), "
                                              "T2w input by its 99.5th",
                                 "caveat": "every simulated head is the ICBM anatomy, deformed; the demo pair is the "
                                           "undeformed anatomy (the template itself is never paired, but is one of "
                                           "the unpaired T1w images); the 3 T robustness pair is held out in its "
                                           "parameters, noise, bias and axis order, not in its anatomy"}}
    out = model_files.save_model(default_model_path(), generators, card)
    print(f"exported {out}")
    return out


def _evaluate_cli(pred: Path, ref: Path, mask: Path) -> dict:
    result = subprocess.run([*CLI, "evaluate", str(pred), str(ref), "--mask", str(mask), "--json"],
                            check=True, capture_output=True, text=True)
    scores = json.loads(result.stdout)
    for key in ("mask", "pred", "ref"):  # paths relative to the repository, not to this machine
        if key in scores:
            scores[key] = Path(scores[key]).resolve().relative_to(REPO).as_posix()
    return scores


def _qt_application():
    """The Qt application the figures are drawn in (offscreen unless a platform is set)."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


def _figure(rows: list[tuple[str, np.ndarray]], mask: np.ndarray, path: Path, title: str) -> None:
    """Rows of volumes (source, translation, reference, |difference|) x axial/coronal/sagittal centre
    slices, each row and column labelled, drawn with Qt (offscreen) and saved as a PNG."""
    app = _qt_application()  # noqa: F841 - fonts need a Qt application
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QFont, QImage, QPainter

    from mri_style_app.imaging.intensity import normalize_unit

    centre = [int(np.mean(np.nonzero(mask.any(axis=tuple(a for a in range(3) if a != ax)))[0])) for ax in range(3)]
    tiles = []
    for label, data in rows:
        # images scaled by their 99.5th percentile in the brain; the difference (already in those
        # units) on the same scale, so its brightness is the error's size
        unit = np.clip(data, 0, 1) if label == DIFFERENCE else normalize_unit(data, mask)
        # sagittal with anterior on the left, as the viewer shows it
        views = [np.rot90(unit[:, :, centre[2]]), np.rot90(unit[:, centre[1], :]), np.fliplr(np.rot90(unit[centre[0], :, :]))]
        height = max(v.shape[0] for v in views)
        tiles.append([np.pad(v, ((0, height - v.shape[0]), (0, 0))) for v in views])
    widths = [max(row[c].shape[1] for row in tiles) for c in range(3)]
    heights = [row[0].shape[0] for row in tiles]
    left, top, gap = 110, 44, 4
    image = QImage(left + sum(widths) + 2 * gap, top + sum(heights) + 3 * gap, QImage.Format_RGB32)
    image.fill(QColor("black"))
    painter = QPainter(image)
    painter.setPen(QColor("white"))
    painter.setFont(QFont("DejaVu Sans", 11))
    painter.drawText(6, 4, image.width() - 12, 20, Qt.AlignLeft, title)
    x = left
    for c, name in enumerate(("axial", "coronal", "sagittal")):
        painter.drawText(x, 22, widths[c], 20, Qt.AlignHCenter, name)
        x += widths[c] + gap
    y = top
    for (label, _), row, height in zip(rows, tiles, heights):
        painter.drawText(4, y, left - 8, height, Qt.AlignVCenter | Qt.AlignRight, label)
        x = left
        for c, view in enumerate(row):
            grey = np.ascontiguousarray((view * 255).astype(np.uint8))
            tile = QImage(grey.data, grey.shape[1], grey.shape[0], grey.strides[0], QImage.Format_Grayscale8)
            painter.drawImage(x, y, tile)
            x += widths[c] + gap
        y += height + gap
    painter.end()
    if not image.save(str(path)):
        raise OSError(f"could not write {path}")


def curves_figure(path: Path) -> Path:
    """The run's loss curves as the wizard draws them (offscreen), saved as a PNG."""
    app = _qt_application()  # Qt must live while we draw
    from mri_style_app.cyclegan.events import read_events
    from mri_style_app.ui.loss_plot import LossPlot

    plot = LossPlot()
    plot.resize(900, 420)
    plot.set_log_scale(True)
    offset = 0
    for _, run in STAGES:  # one x axis: each stage continues where the one before ended
        steps = [{**e, "iteration": e["iteration"] + offset} for e in read_events(run) if e.get("type") == "step"]
        plot.add_steps(steps)
        offset = steps[-1]["iteration"] if steps else offset
    plot.show()
    app.processEvents()
    if not plot.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    plot.close()
    return path


def evaluate() -> dict:
    from mri_style_app.cyclegan import checkpoint as model_files
    from mri_style_app.cyclegan.translate import translate_volume
    from mri_style_app.imaging import simulate
    from mri_style_app.imaging.intensity import normalize_unit
    from mri_style_app.imaging.metrics import evaluate_pair
    from mri_style_app.imaging.volume import load_volume, save_volume
    from mri_style_app.paths import default_model_path, demo_mask_path, demo_t1_path, demo_t2_path, resources_dir

    EVIDENCE.mkdir(parents=True, exist_ok=True)
    work = RUN / "evaluation"
    work.mkdir(parents=True, exist_ok=True)
    model = model_files.load_model(default_model_path())
    t1, t2, mask_vol = load_volume(demo_t1_path()), load_volume(demo_t2_path()), load_volume(demo_mask_path())
    mask = mask_vol.data > 0
    metrics: dict = {}
    for direction, source, reference in (("t1-to-t2", t1, t2), ("t2-to-t1", t2, t1)):
        pred = translate_volume(source, model, direction)
        pred_path = save_volume(pred, work / f"demo_{direction}.nii.gz")
        metrics[f"demo {direction}"] = _evaluate_cli(pred_path, reference.source_path, demo_mask_path())
        diff = np.abs(normalize_unit(pred.data, mask) - normalize_unit(reference.data, mask))
        scores = metrics[f"demo {direction}"]
        _figure([("source", source.data), ("translation", pred.data), ("reference", reference.data),
                 (DIFFERENCE, diff)], mask, EVIDENCE / f"demo_{direction}.png",
                f"demo {direction}: PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f} in the brain")
    # The baseline a model must beat: T1 intensities inverted inside the brain.
    inverted = t1.with_data(np.where(mask, 1.0 - normalize_unit(t1.data, mask), 0.0), name="t1_inverted")
    metrics["baseline: inverted T1 vs T2"] = evaluate_pair(inverted.data, t2.data, mask)
    # Held out: 3 T relaxation, other sequences, 2 % Rician noise, bias field, stored as LIA.
    gm = load_volume(resources_dir() / "demo" / "icbm152_2009a_gm.nii.gz").data / 255.0
    wm = load_volume(resources_dir() / "demo" / "icbm152_2009a_wm.nii.gz").data / 255.0
    t1_3t, t2_3t = simulate.simulate_3t_pair(gm, wm, mask, seed=3)
    for name, data in (("t1w", t1_3t), ("t2w", t2_3t)):
        save_volume(t1.with_data(data, name=f"sim3t_{name}").stored_as("LIA"), work / f"sim3t_{name}_LIA.nii.gz")
    for direction, source, reference in (("t1-to-t2", "t1w", "t2w"), ("t2-to-t1", "t2w", "t1w")):
        src = load_volume(work / f"sim3t_{source}_LIA.nii.gz")
        pred_path = save_volume(translate_volume(src, model, direction), work / f"sim3t_{direction}.nii.gz")
        metrics[f"3T noisy LIA {direction}"] = _evaluate_cli(pred_path, work / f"sim3t_{reference}_LIA.nii.gz",
                                                             demo_mask_path())
    curves_figure(EVIDENCE / "training_curves.png")
    for key, value in metrics.items():
        print(f"{key:32s} PSNR {value['psnr']:6.2f} dB  SSIM {value['ssim']:.3f}  MAE {value['mae']:.4f}")
    (EVIDENCE / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    card = dict(model.card)
    card["metrics"] = {"protocol": "each volume scaled to [0,1] by its 99.5th percentile in the brain mask; PSNR and MAE "
                                   "over brain voxels; SSIM = mean of the SSIM map over brain voxels",
                       **{k: {m: round(v, 4) for m, v in vals.items() if isinstance(v, float)} for k, vals in metrics.items()}}
    model_files.save_model(default_model_path(), model.generators, card)
    return metrics


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
