"""Optional paired training: co-registered volumes (same file names in two folders) add an L1
loss next to the unpaired CycleGAN losses. Real NIfTI files, real short runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch

from mri_style_app import paths
from mri_style_app.cyclegan import events
from mri_style_app.cyclegan.checkpoint import load_model
from mri_style_app.cyclegan.data import DataError, PairedBatches, _view_slice, load_pairs
from mri_style_app.cyclegan.losses import BRIGHT_MODEL, outer_layer, paired_l1
from mri_style_app.cyclegan.train_config import SetupError, TrainConfig
from mri_style_app.imaging import simulate
from mri_style_app.imaging.volume import load_volume

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def pair_folders(tmp_path_factory):
    """Three small simulated T1w/T2w pairs (every 4th voxel of the ICBM tissue maps)."""
    root = tmp_path_factory.mktemp("pairs")
    demo = paths.resources_dir() / "demo"
    sub = (slice(None, None, 4),) * 3
    gm = load_volume(demo / "icbm152_2009a_gm.nii.gz").data[sub] / 255.0
    wm = load_volume(demo / "icbm152_2009a_wm.nii.gz").data[sub] / 255.0
    mask = load_volume(paths.demo_mask_path()).data[sub] > 0
    folders = [root / "A", root / "B"]
    for folder in folders:
        folder.mkdir()
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    for i in range(3):
        t1w, t2w = simulate.simulate_3t_pair(gm, wm, mask, seed=i)
        for folder, data in zip(folders, (t1w, t2w)):
            nib.save(nib.Nifti1Image(data.astype(np.float32), affine), folder / f"head_{i}.nii.gz")
    return folders


def test_pairs_are_matched_by_name_and_sliced_alike(pair_folders):
    pairs = load_pairs(*pair_folders)
    assert pairs.files == ["head_0.nii.gz", "head_1.nii.gz", "head_2.nii.gz"] and len(pairs) > 10
    input_a, a, input_b, b = pairs.slices(len(pairs) // 2)
    assert np.array_equal(input_a, a) and np.array_equal(input_b, b)  # no variants: each reference is its input
    assert a.shape == b.shape and a.min() >= -1 and a.max() <= 1
    # same place: the brain outlines agree; different contrast: WM bright in A, dark in B
    inside_a, inside_b = a > -0.9, b > -0.9
    assert (inside_a & inside_b).sum() / (inside_a | inside_b).sum() > 0.8
    assert np.corrcoef(a[inside_a & inside_b], b[inside_a & inside_b])[0, 1] < 0


def test_paired_batches_move_both_sides_the_same_way(pair_folders, tmp_path):
    # a pair whose two sides are the same volume: after flips, affine and warp the targets must
    # still agree; the inputs are the same anatomy under another scanner (gamma, bias, noise)
    same = [tmp_path / "A", tmp_path / "B"]
    for folder in same:
        folder.mkdir()
        (folder / "x.nii.gz").write_bytes((pair_folders[0] / "head_0.nii.gz").read_bytes())
    batches = PairedBatches(load_pairs(*same), size=48, batch_size=4)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        sides = batches.next(generator)
        assert len(sides) == 4 and sides[0].shape == (4, 1, 48, 48)
        assert torch.equal(sides[1], sides[3])
        for augmented in (sides[0], sides[2]):
            assert not torch.equal(augmented, sides[1]) and augmented.min() >= -1 and augmented.max() <= 1
            for scan, target in zip(augmented, sides[1]):
                head = target > -0.9
                assert np.corrcoef(scan[head].numpy(), target[head].numpy())[0, 1] > 0.8
    state = batches.state_dict()
    again = PairedBatches(load_pairs(*same), size=48, batch_size=4)
    again.load_state_dict(state)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(batches.next(g1)[0], again.next(g2)[0])


def test_variants_are_inputs_of_their_head_never_targets(pair_folders, tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir(), b.mkdir()
    for folder, source in ((a, pair_folders[0]), (b, pair_folders[1])):
        (folder / "x.nii.gz").write_bytes((source / "head_0.nii.gz").read_bytes())
    (a / "x~other.nii.gz").write_bytes((pair_folders[0] / "head_1.nii.gz").read_bytes())  # another T1w of x
    pairs = load_pairs(a, b)
    assert pairs.files == ["x.nii.gz", "A/x~other.nii.gz"] and pairs.summary()["variants"] == 1
    i = len(pairs) // 2
    reference_input, reference_a, _, reference_b = pairs.slices(i, variant_a=0)
    variant_input, target_a, _, target_b = pairs.slices(i, variant_a=1)
    assert np.array_equal(reference_input, reference_a) and not np.array_equal(variant_input, reference_a)
    assert np.array_equal(target_a, reference_a) and np.array_equal(target_b, reference_b)
    # over a few batches both scans of x are drawn as the A input; the targets never change
    batches = PairedBatches(pairs, size=48, batch_size=8, augment=False)
    generator = torch.Generator().manual_seed(0)
    drawn = [batches.next(generator) for _ in range(3)]
    inputs, references = (torch.cat([d[k] for d in drawn]) for k in (0, 1))
    variant_share = (inputs != references).flatten(1).any(1).float().mean()
    assert 0.2 < variant_share < 0.8, variant_share
    # a variant whose head has no reference scan is refused, by name
    (b / "y~t2.nii.gz").write_bytes((pair_folders[1] / "head_2.nii.gz").read_bytes())
    with pytest.raises(DataError, match="y~t2.nii.gz"):
        load_pairs(a, b)


def test_unmatched_or_misaligned_pairs_are_refused(pair_folders, tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir(), b.mkdir()
    (a / "one.nii.gz").write_bytes((pair_folders[0] / "head_0.nii.gz").read_bytes())
    with pytest.raises(DataError, match="one.nii.gz"):
        load_pairs(a, b)
    img = nib.load(pair_folders[1] / "head_0.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:-2], img.affine), b / "one.nii.gz")
    with pytest.raises(DataError, match="voxel grid"):
        load_pairs(a, b)
    with pytest.raises(DataError, match="does not exist"):
        load_pairs(a, tmp_path / "nowhere")
    with pytest.raises(SetupError, match="both"):
        TrainConfig(domain_a="a", domain_b="b", out="o", paired_a=str(a)).check()


def test_bright_weight_counts_errors_on_bright_references_more():
    target = torch.tensor([-1.0, 0.0, BRIGHT_MODEL + 0.1, 0.9])  # two dark or mid voxels, two bright
    translation = target - 0.2
    assert paired_l1(translation, target).item() == pytest.approx(0.2)
    # (0.2 + 0.2 + 8 * 0.2 + 8 * 0.2) / 4
    assert paired_l1(translation, target, 8.0).item() == pytest.approx(0.2 * 18 / 4)
    # a voxel just below the line counts once
    assert paired_l1(translation[:2], target[:2], 8.0).item() == pytest.approx(0.2)
    with pytest.raises(SetupError, match="bright_weight_b"):
        TrainConfig(domain_a="a", domain_b="b", out="o", bright_weight_b=0.5).check()


def test_edge_weight_counts_errors_on_the_anatomys_outer_layer_more():
    target = torch.full((1, 1, 5, 5), -1.0)
    target[..., 1:4, 1:4] = 0.0  # a 3 x 3 anatomy: 8 voxels at its edge around 1 inside it
    assert outer_layer(target).sum() == 8
    assert not outer_layer(target)[0, 0, 2, 2]
    translation = target - 0.2
    # 16 background and 1 inner voxel once, 8 edge voxels 4 times
    assert paired_l1(translation, target, edge_weight=4.0).item() == pytest.approx(0.2 * (17 + 8 * 4) / 25)
    # anatomy that fills the slice has no edge: the slice's border is not background
    assert not outer_layer(torch.zeros(1, 1, 4, 4)).any()
    with pytest.raises(SetupError, match="edge_weight"):
        TrainConfig(domain_a="a", domain_b="b", out="o", edge_weight=0.5).check()


def test_weight_maps_count_each_voxels_paired_error_that_much(pair_folders, tmp_path):
    target = torch.tensor([-1.0, 0.0, 0.5, 0.9])
    translation = target - 0.2
    weight = torch.tensor([1.0, 0.0, 0.5, 1.0])
    assert paired_l1(translation, target, weight=weight).item() == pytest.approx(0.2 * 2.5 / 4)

    # a weight map of zeros on the left half of head_0 (x < 10); head_1 and head_2 have none
    weights = tmp_path / "weights"
    weights.mkdir()
    img = nib.load(pair_folders[0] / "head_0.nii.gz")
    left_off = np.ones(img.shape, np.float32)
    left_off[:10] = 0
    nib.save(nib.Nifti1Image(left_off, img.affine), weights / "head_0.nii.gz")
    pairs = load_pairs(*pair_folders, weights_folder=weights)
    assert pairs.weighted and pairs.summary()["weighted_heads"] == 1
    first = next(i for i, (head, _, _) in enumerate(pairs.index) if head == 0)
    other = next(i for i, (head, _, _) in enumerate(pairs.index) if head == 1)
    _, axis, k = pairs.index[first]
    assert np.array_equal(pairs.slices(first)[4], _view_slice(left_off, axis, k))  # sliced as the scans
    assert (pairs.slices(other)[4] == 1).all()
    # batches carry the map through the same warp: 0 where it was 0, 1 where it was 1, and 1 in
    # the background that padding brings in, as everywhere without a map
    batches = PairedBatches(pairs, size=64, batch_size=8, augment=False)
    generator = torch.Generator().manual_seed(0)
    sides = batches.next(generator)
    assert len(sides) == 5 and sides[4].shape == (8, 1, 64, 64)
    assert sides[4].min() >= 0 and sides[4].max() <= 1
    zeros = (sides[4] < 0.01).flatten(1).sum(1)
    assert zeros.max() > 0 and (sides[4] > 0.99).flatten(1).float().mean(1).min() > 0.5
    warped = PairedBatches(pairs, size=64, batch_size=8).next(generator)[4]
    assert warped.min() >= 0 and warped.max() <= 1 and (warped < 0.01).any()

    # refused: a map of no head, values outside 0-1, another grid, weights without pairs
    nib.save(nib.Nifti1Image(left_off, img.affine), weights / "nobody.nii.gz")
    with pytest.raises(DataError, match="nobody.nii.gz"):
        load_pairs(*pair_folders, weights_folder=weights)
    (weights / "nobody.nii.gz").unlink()
    nib.save(nib.Nifti1Image(left_off * 2, img.affine), weights / "head_1.nii.gz")
    with pytest.raises(DataError, match="between 0 and 1"):
        load_pairs(*pair_folders, weights_folder=weights)
    nib.save(nib.Nifti1Image(left_off[:-2], img.affine), weights / "head_1.nii.gz")
    with pytest.raises(DataError, match="voxel grid"):
        load_pairs(*pair_folders, weights_folder=weights)
    with pytest.raises(DataError, match="does not exist"):
        load_pairs(*pair_folders, weights_folder=tmp_path / "nowhere")
    with pytest.raises(SetupError, match="paired_weights"):
        TrainConfig(domain_a="a", domain_b="b", out="o", paired_weights=str(weights)).check()


def test_short_paired_run_learns_the_pairs_and_records_them(seed_dir, pair_folders, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "mri_style_app",
        "train",
        "--domain-a",
        str(seed_dir / "T1"),
        "--domain-b",
        str(seed_dir / "T2"),
        "--paired-a",
        str(pair_folders[0]),
        "--paired-b",
        str(pair_folders[1]),
        "--out",
        str(out),
        "--preset",
        "lite",
        "--size",
        "48",
        "--iterations",
        "60",
        "--log-every",
        "10",
        "--sample-every",
        "1000",
        "--checkpoint-every",
        "1000",
        "--seed",
        "3",
        "--no-amp",  # the learning check in float32: bfloat16 rounding differs by CPU model
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "paired_A" in done.stdout  # the progress lines show the paired losses
    steps = [e for e in events.read_events(out) if e["type"] == "step"]
    paired = [e["paired_A"] + e["paired_B"] for e in steps]
    assert all(p > 0 for p in paired) and paired[-1] < 0.7 * paired[0], paired
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["paired"]["pairs"] == 3 and config["config"]["lambda_paired"] == 10.0
    card = load_model(out / "model.safetensors").card
    assert card["training"]["objective"]["lambda_paired"] == 10.0
    assert card["training"]["data"]["paired"]["files"] == ["head_0.nii.gz", "head_1.nii.gz", "head_2.nii.gz"]


def test_the_paired_warp_keeps_a_cut_edge_as_bright_as_it_is(tmp_path):
    """A skull-stripped brain's outermost voxels (bright CSF in the T2w) stay bright after the
    paired augmentation's warp: anatomy is averaged with anatomy, not with the air beyond."""
    from scipy import ndimage as ndi

    demo = paths.resources_dir() / "demo"
    middle = slice(90, 95)
    folders = [tmp_path / "A", tmp_path / "B"]
    for folder, name in zip(folders, ("icbm152_2009a_t1w.nii.gz", "icbm152_2009a_t2w_sim.nii.gz")):
        folder.mkdir()
        data = load_volume(demo / name).data[:, :, middle]
        nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4)), folder / "brain.nii.gz")

    def outer_layer_mean(images: torch.Tensor) -> float:
        values = []
        for image in (images[:, 0].numpy() + 1) / 2:
            brain = ndi.binary_fill_holes(image > 1e-3)
            values.append(image[brain & ~ndi.binary_erosion(brain)].mean())
        return float(np.mean(values))

    pairs = load_pairs(*folders)
    plain = PairedBatches(pairs, size=240, batch_size=4, augment=False).next(torch.Generator().manual_seed(0))
    warped = PairedBatches(pairs, size=240, batch_size=4).next(torch.Generator().manual_seed(0))
    for side in (1, 3):  # the references: T1w, T2w
        assert outer_layer_mean(warped[side]) > 0.9 * outer_layer_mean(plain[side]), side
