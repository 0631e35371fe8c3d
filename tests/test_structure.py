"""The structure loss: MIND descriptors of real seed slices, and a real run that uses the loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from test_train import _config

from mri_style_app.cyclegan import events
from mri_style_app.cyclegan.checkpoint import load_model
from mri_style_app.cyclegan.seed_slices import split_pairs
from mri_style_app.cyclegan.structure import mind, structure_loss
from mri_style_app.cyclegan.train import Trainer


def _image(array) -> torch.Tensor:
    x = torch.tensor(array, dtype=torch.float32)
    return ((x - x.min()) / (x.max() - x.min()) * 2 - 1)[None, None]


def test_mind_ignores_contrast_and_sees_moved_blurred_or_noisy_structure(seed_dir):
    t1, t2 = (_image(a) for a in next(iter(split_pairs("test", seed_dir).values())))
    descriptor = mind(t1)
    assert descriptor.shape == (1, 4, *t1.shape[-2:])
    assert descriptor.min() > 0 and torch.allclose(descriptor.amax(dim=1), torch.ones(1))
    inverted = structure_loss(-0.5 * t1 + 0.2, t1)  # the same structure in an inverted contrast
    partner = structure_loss(t2, t1)  # the co-registered T2w of the same slice
    moved = structure_loss(torch.roll(t1, 2, dims=-1), t1)
    blurred = structure_loss(F.avg_pool2d(t1, 5, stride=1, padding=2), t1)
    noisy = structure_loss(t1 + 0.1 * torch.randn(t1.shape, generator=torch.Generator().manual_seed(0)), t1)
    # Measured on this slice: 0.002, 0.091, 0.145, 0.139, 0.206
    assert inverted < 0.01
    assert partner < 0.75 * min(moved, blurred, noisy)


def test_a_run_with_the_structure_loss_reports_it_and_records_its_weight(seed_dir, tmp_path):
    for weight in (0.0, 5.0):
        out = tmp_path / f"run{weight}"
        model = load_model(Trainer(_config(seed_dir, out, iterations=6, lambda_structure=weight)).run())
        assert model.card["training"]["objective"]["lambda_structure"] == weight
        steps = [e for e in events.read_events(out) if e["type"] == "step"]
        for e in steps:
            if weight:
                assert 0 < e["structure_A"] < weight and 0 < e["structure_B"] < weight, e
            else:
                assert e["structure_A"] == e["structure_B"] == 0, e
