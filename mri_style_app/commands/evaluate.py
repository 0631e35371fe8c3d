"""`mri-style evaluate PRED REF`: PSNR, SSIM and MAE of a prediction against a reference volume.

The project's one protocol (imaging.metrics.evaluate_pair): each volume scaled to [0, 1] by
its own 99.5th percentile inside the mask, metrics over mask voxels only. Without --mask the
mask is the foreground of REF (the head, not the air around it).
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_BAD_INPUT = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pred", help="the predicted (translated) volume, NIfTI or Analyze")
    parser.add_argument("ref", help="the reference volume on the same grid")
    parser.add_argument("--mask", help="mask volume on the same grid (nonzero = inside); default: foreground of REF")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run(args: argparse.Namespace) -> int:
    from mri_style_app.imaging.intensity import foreground_mask
    from mri_style_app.imaging.metrics import evaluate_pair
    from mri_style_app.imaging.volume import VolumeError, load_volume

    try:
        pred = load_volume(args.pred)
        ref = load_volume(args.ref)
        mask_volume = load_volume(args.mask) if args.mask else None
    except VolumeError as exc:
        return _fail(str(exc))
    if not pred.same_grid(ref):
        return _fail(f"{args.pred} ({'x'.join(map(str, pred.shape))}) and {args.ref} "
                     f"({'x'.join(map(str, ref.shape))}) are not on the same voxel grid; "
                     "resample the prediction onto the reference first")
    if mask_volume is not None:
        if not mask_volume.same_grid(ref):
            return _fail(f"mask {args.mask} is not on the grid of {args.ref}")
        mask = mask_volume.data != 0
        mask_source = str(args.mask)
        if not mask.any():
            return _fail(f"mask {args.mask} is empty (every voxel is zero)")
    else:
        mask = foreground_mask(ref.data)
        mask_source = "foreground of reference"
    result = evaluate_pair(pred.data, ref.data, mask)
    if args.json:
        print(json.dumps({**result, "voxels": int(mask.sum()), "mask": mask_source,
                          "pred": str(args.pred), "ref": str(args.ref)}))
    else:
        print(f"PSNR {result['psnr']:.2f} dB   SSIM {result['ssim']:.4f}   MAE {result['mae']:.4f}   "
              f"({int(mask.sum())} voxels, mask: {mask_source})")
    return 0
