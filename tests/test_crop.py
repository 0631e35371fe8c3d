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


def test_whole_slices_that_fit_are_padded_never_resampled():
    from mri_style_app.cyclegan.data import fit_to_size

    rng = np.random.default_rng(0)
    slice_ = rng.uniform(-1, 1, (233, 197)).astype(np.float32)
    out = fit_to_size(slice_, 236)[0].numpy()
    assert out.shape == (236, 236)
    top, left = (236 - 233) // 2, (236 - 197) // 2
    np.testing.assert_array_equal(out[top : top + 233, left : left + 197], slice_)  # every voxel as it was
    assert (out[:top] == -1).all() and (out[:, :left] == -1).all()
    smaller = fit_to_size(slice_, 128)[0].numpy()  # larger than the size: resized down, whole
    assert smaller.shape == (128, 128) and smaller.std() > 0
