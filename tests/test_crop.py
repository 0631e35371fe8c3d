"""Native-scale training windows (--crop): no resizing, centred on tissue, padded when small."""

import numpy as np
import torch

from mri_style_app.cyclegan.data import random_crop


def test_window_keeps_the_slice_scale_and_holds_tissue():
    image = np.full((200, 180), -1.0, dtype=np.float32)
    image[50:150, 40:140] = np.linspace(-0.5, 1.0, 100, dtype=np.float32)[None, :]  # a ramp: scale shows
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        window = random_crop(image, 64, g)
        assert window.shape == (1, 64, 64)
        assert (window > -0.9).any()
        # at the own scale the ramp's step between neighbouring columns is unchanged
        row = window[0][(window[0] > -0.9).any(dim=1)][0]
        inside = row[row > -0.9].numpy()
        if inside.size > 2:
            assert np.allclose(np.diff(inside), 1.5 / 99, atol=1e-5)


def test_small_slice_is_padded_with_background():
    image = np.zeros((40, 30), dtype=np.float32)
    window = random_crop(image, 64, torch.Generator().manual_seed(1))
    assert window.shape == (1, 64, 64)
    assert (window == -1).sum() == 64 * 64 - 40 * 30
