"""The bundled default model (issue 6): it is there, its card holds its evidence, it holds up on
a paired volume it was not tuned to, the app starts with it selected and the self-test passes.

The quality tests run the real model through the real command line on real NIfTI files. On the
3 T pair they check the issue's goal itself (SSIM 0.85 / PSNR 23 dB); on the demo pair the SSIM
goal (0.90) both ways, the PSNR goal (27 dB) from T1w to T2w, and the card's figures; T2w -> T1w
is short of 27 dB (README "Default model").
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mri_style_app import paths
from mri_style_app.cyclegan import checkpoint
from mri_style_app.imaging import simulate
from mri_style_app.imaging.volume import load_volume, save_volume

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "mri_style_app"]
DIRECTIONS = (("t1-to-t2", "t1w", "t2w"), ("t2-to-t1", "t2w", "t1w"))
# The goal on a 3 T pair: the shipped model measured SSIM 0.898 / 26.6 dB (T1w -> T2w) and
# 0.895 / 28.7 dB (T2w -> T1w) with simulation seed 3 (its card); this test draws another seed.
FLOOR_3T = {"t1-to-t2": (0.85, 23.0), "t2-to-t1": (0.85, 23.0)}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600)


def test_default_model_is_bundled_with_its_evidence():
    model = checkpoint.load_model(paths.default_model_path())
    assert set(model.directions) == {"t1-to-t2", "t2-to-t1"}
    card = model.card
    assert card["training"]["recipes"] == ["training/recipes/default_t1_t2_voxel.toml",
                                           "training/recipes/default_t1_t2_voxel_stage2.toml",
                                           "training/recipes/default_t1_t2_voxel_stage3.toml",
                                           "training/recipes/default_t1_t2_voxel_stage4.toml"]
    assert card["architecture"]["preset"] == "voxel-headroom" and card["architecture"]["output_top"] == 1.1
    assert card["normalisation"]["contrast_percentiles"]["t1"] == 90.0
    metrics = card["metrics"]
    for direction in ("t1-to-t2", "t2-to-t1"):
        for pair in ("demo", "3T noisy LIA"):
            assert {"ssim", "psnr", "mae"} <= set(metrics[f"{pair} {direction}"]), (pair, direction)
    # the model must beat plain inversion of the T1w, the baseline the issue names
    baseline, model_t2 = metrics["baseline: inverted T1 vs T2"], metrics["demo t1-to-t2"]
    assert model_t2["ssim"] > baseline["ssim"] and model_t2["psnr"] > baseline["psnr"]


def test_the_recipes_that_made_the_default_model_are_valid_and_chained():
    """Each recipe the card names reads as a training run with the card's layers (the last one with
    its preset and settings); each stage after the first starts from the model of the stage before it."""
    from dataclasses import replace

    from mri_style_app.commands.train import read_recipe
    from mri_style_app.cyclegan.presets import PRESETS
    from mri_style_app.cyclegan.train import TrainConfig

    card = checkpoint.load_model(paths.default_model_path()).card
    configs = [TrainConfig.from_dict(read_recipe(REPO / recipe)) for recipe in card["training"]["recipes"]]
    for config in configs:
        config.check()
    for before, after in zip(configs, configs[1:]):
        assert after.init_from == str(Path(before.out) / "model.safetensors")
    last = configs[-1]
    assert {k: getattr(last, k) for k in card["training"]["settings"]} == card["training"]["settings"]
    assert last.preset == card["architecture"]["preset"]
    layers = replace(PRESETS[last.preset], output_top=1.0)  # the output range is no weight
    assert all(replace(PRESETS[c.preset], output_top=1.0) == layers and c.percentile_a == 90.0 for c in configs)


@pytest.fixture(scope="module")
def pair_3t_lia(tmp_path_factory):
    """A paired T1w/T2w simulated with 3 T relaxation times, other sequences, 2 % Rician noise
    and a bias field, stored in LIA axis order (the demo volumes are RAS)."""
    folder = tmp_path_factory.mktemp("sim3t")
    demo = paths.resources_dir() / "demo"
    template = load_volume(paths.demo_t1_path())
    gm = load_volume(demo / "icbm152_2009a_gm.nii.gz").data / 255.0
    wm = load_volume(demo / "icbm152_2009a_wm.nii.gz").data / 255.0
    mask = load_volume(paths.demo_mask_path()).data > 0
    t1w, t2w = simulate.simulate_3t_pair(gm, wm, mask, seed=11)
    files = {}
    for name, data in (("t1w", t1w), ("t2w", t2w)):
        files[name] = save_volume(template.with_data(data, name=name).stored_as("LIA"), folder / f"{name}.nii.gz")
    files["mask"] = save_volume(template.with_data(mask.astype(np.float32), name="mask").stored_as("LIA"),
                                folder / "mask.nii.gz")
    assert nib.aff2axcodes(nib.load(files["t1w"]).affine) == ("L", "I", "A")
    return files


@pytest.mark.parametrize("direction,source,reference", DIRECTIONS)
def test_default_model_holds_on_a_3t_noisy_lia_pair(pair_3t_lia, tmp_path, direction, source, reference):
    out = tmp_path / f"{direction}.nii.gz"
    done = _cli("translate", str(pair_3t_lia[source]), str(out), "--direction", direction)
    assert done.returncode == 0, done.stderr
    source_image, result = nib.load(pair_3t_lia[source]), nib.load(out)
    assert result.shape == source_image.shape and np.allclose(result.affine, source_image.affine)
    scores = _cli("evaluate", str(out), str(pair_3t_lia[reference]), "--mask", str(pair_3t_lia["mask"]), "--json")
    assert scores.returncode == 0, scores.stderr
    metrics = json.loads(scores.stdout)
    min_ssim, min_psnr = FLOOR_3T[direction]
    assert metrics["ssim"] >= min_ssim and metrics["psnr"] >= min_psnr, metrics
    if direction == "t1-to-t2":  # and it beats inverting the T1w on this pair too
        from mri_style_app.imaging.intensity import normalize_unit
        from mri_style_app.imaging.metrics import evaluate_pair

        mask = load_volume(pair_3t_lia["mask"]).data > 0
        t1w, t2w = load_volume(pair_3t_lia["t1w"]).data, load_volume(pair_3t_lia["t2w"]).data
        inverted = evaluate_pair(np.where(mask, 1 - normalize_unit(t1w, mask), 0), t2w, mask)
        assert metrics["ssim"] > inverted["ssim"] and metrics["psnr"] > inverted["psnr"], (metrics, inverted)


@pytest.mark.parametrize("direction,source,reference", DIRECTIONS)
def test_default_model_on_the_demo_pair_meets_the_goals_and_its_card(tmp_path, direction, source, reference):
    """Through the command line, as a user would: the issue's SSIM goal (0.90) in both directions,
    its PSNR goal (27 dB) from T1w to T2w, and the card's own evidence reproduced (PSNR within 0.3
    dB). T2w -> T1w does not reach 27 dB yet (README "Default model")."""
    files = {"t1w": paths.demo_t1_path(), "t2w": paths.demo_t2_path()}
    out = tmp_path / f"demo_{direction}.nii.gz"
    done = _cli("translate", str(files[source]), str(out), "--direction", direction)
    assert done.returncode == 0, done.stderr
    scores = _cli("evaluate", str(out), str(files[reference]), "--mask", str(paths.demo_mask_path()), "--json")
    assert scores.returncode == 0, scores.stderr
    metrics = json.loads(scores.stdout)
    card = checkpoint.load_model(paths.default_model_path()).card["metrics"][f"demo {direction}"]
    assert metrics["ssim"] >= 0.90, metrics
    if direction == "t1-to-t2":
        assert metrics["psnr"] >= 27.0, metrics
    assert abs(metrics["psnr"] - card["psnr"]) < 0.3 and abs(metrics["ssim"] - card["ssim"]) < 0.005, (metrics, card)


def test_selftest_passes_with_the_default_model(tmp_path):
    done = _cli("selftest", "--keep", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "selftest: passed" in done.stdout
    assert (tmp_path / "selftest_views.png").exists() and (tmp_path / "selftest_t1_to_t2.nii.gz").exists()


def test_app_starts_with_the_default_model_selected(qtbot):
    from mri_style_app.ui.app import MainWindow, _install_panels

    window = MainWindow()
    _install_panels(window)  # as run_gui does
    qtbot.addWidget(window)
    combo = window.translate_panel.model_combo
    assert combo.currentData() == str(paths.default_model_path())
    assert "default" in combo.currentText().lower()
