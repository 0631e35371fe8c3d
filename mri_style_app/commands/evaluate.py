"""`mri-style evaluate PRED REF`: PSNR, SSIM and MAE of a prediction against a reference volume.

The project's one protocol (imaging.metrics.evaluate_pair): each volume scaled to [0, 1] by
its own 99.5th percentile inside the region, metrics over the region's voxels only, SSIM per
axial slice. The region (--region):
  head   the whole head (imaging.metrics.head_mask): voxels above 10/255 of the maximum in the
         partner images, SOURCE (--source, the image that was translated) and REF, or in REF
         alone without --source; closed and hole-filled per slice. The default.
  brain  REF's foreground: the brain of a skull-stripped REF. For a whole-head REF give a brain
         mask file instead.
  FILE   a mask volume on REF's grid (nonzero = inside).
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_BAD_INPUT = 2
REGIONS = ("head", "brain")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pred", help="the predicted (translated) volume, NIfTI or Analyze")
    parser.add_argument("ref", help="the reference volume on the same grid")
    parser.add_argument(
        "--region",
        default="head",
        metavar="head|brain|MASK",
        help="where to score: 'head' (default): the whole head, from the partner images "
        "(--source and REF, or REF alone); 'brain': REF's foreground, the brain of a "
        "skull-stripped REF; or a mask volume on REF's grid (nonzero = inside)",
    )
    parser.add_argument(
        "--source", help="the image PRED was translated from (same grid): with REF, it makes the head mask"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run(args: argparse.Namespace) -> int:
    from mri_style_app.imaging.intensity import foreground_mask
    from mri_style_app.imaging.metrics import evaluate_pair, head_mask
    from mri_style_app.imaging.volume import VolumeError, load_volume

    try:
        pred = load_volume(args.pred)
        ref = load_volume(args.ref)
        source = load_volume(args.source) if args.source else None
        mask_volume = load_volume(args.region) if args.region not in REGIONS else None
    except VolumeError as exc:
        return _fail(str(exc))
    for name, other in ((args.pred, pred), (args.source, source)):
        if other is not None and not other.same_grid(ref):
            return _fail(
                f"{name} ({'x'.join(map(str, other.shape))}) and {args.ref} "
                f"({'x'.join(map(str, ref.shape))}) are not on the same voxel grid; "
                "resample it onto the reference first"
            )
    if mask_volume is not None:
        if not mask_volume.same_grid(ref):
            return _fail(f"mask {args.region} is not on the grid of {args.ref}")
        mask = mask_volume.data != 0
        region = str(args.region)
    elif args.region == "brain":
        mask = foreground_mask(ref.data)
        region = "brain: foreground of reference"
    else:
        mask = head_mask(ref.data) if source is None else head_mask(source.data, ref.data)
        region = "head: from reference" if source is None else "head: from source and reference"
    if not mask.any():
        return _fail(f"the region ({region}) is empty: no voxel to score")
    result = evaluate_pair(pred.data, ref.data, mask)
    if args.json:
        print(
            json.dumps(
                {**result, "voxels": int(mask.sum()), "region": region, "pred": str(args.pred), "ref": str(args.ref)}
            )
        )
    else:
        print(
            f"PSNR {result['psnr']:.2f} dB   SSIM {result['ssim']:.4f}   MAE {result['mae']:.4f}   "
            f"({int(mask.sum())} voxels, region {region})"
        )
    return 0
