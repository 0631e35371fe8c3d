"""`mri-style info FILE [--json]`: a volume's geometry and intensities, without Qt or torch."""

from __future__ import annotations

import argparse
import json
import sys

EXIT_BAD_INPUT = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a .nii, .nii.gz or .hdr/.img file, or a DICOM series folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--volume", type=int, default=0, help="which volume of a 4D file to summarise")
    parser.add_argument("--series", metavar="N", help="the series of a DICOM folder that holds several (number or UID)")
    parser.add_argument(
        "--show-patient",
        action="store_true",
        help="print the patient's name and ID of a DICOM series (hidden unless asked)",
    )


def _dicom_fields(source, show_patient: bool) -> dict:
    header = source.series.header
    bits = int(getattr(header, "BitsAllocated", 16) or 16)
    signed = int(getattr(header, "PixelRepresentation", 0) or 0)
    fields = {
        "format": "DICOM",
        "dtype": f"{'int' if signed else 'uint'}{bits}",
        "series": {
            "number": source.series.number,
            "description": source.series.description,
            "uid": source.series.uid,
            "modality": source.series.modality,
            "slices": source.series.n_slices,
            "orientation": source.series.orientation,
        },
    }
    if show_patient:
        fields["patient"] = source.patient()
    return fields


def describe(path, volume_index: int = 0, series: str | None = None, show_patient: bool = False) -> dict:
    """Everything `info` prints, as plain data. Raises VolumeError for unusable files."""
    import numpy as np

    from mri_style_app.imaging.intensity import robust_range
    from mri_style_app.imaging.volume import load_volume

    vol = load_volume(path, volume_index, series=series)
    header = vol.source_header
    scaling = vol.extra.get("scaling")
    slope, inter = scaling if scaling else (None, None)
    lo, hi = robust_range(vol.data)
    if "dicom" in vol.extra:
        kind = _dicom_fields(vol.extra["dicom"], show_patient)
    else:
        dtype = header.get_data_dtype()
        kind = {
            "format": {"Nifti1Header": "NIfTI-1", "Nifti2Header": "NIfTI-2"}.get(type(header).__name__, "Analyze 7.5"),
            "dtype": dtype.name + (" (big-endian)" if dtype.byteorder == ">" else ""),
        }
    return {
        "path": str(vol.source_path),
        "format": kind["format"],
        **{key: value for key, value in kind.items() if key not in ("format", "dtype")},
        "shape": list(vol.source_shape),  # the file's own axis order, every dimension
        "voxel_size_mm": [round(float(v), 6) for v in np.sqrt((vol.source_affine[:3, :3] ** 2).sum(axis=0))],
        "orientation": vol.source_axcodes,
        "dtype": kind["dtype"],
        "scaling": None if scaling is None or (slope, inter) == (1.0, 0.0) else {"slope": slope, "inter": inter},
        "n_volumes": vol.n_volumes,
        "volume": vol.volume_index,
        "data_range": [float(vol.data.min()), float(vol.data.max())],
        "display_window": [lo, hi],  # robust 0.5-99.5 percentile window the viewer starts with
        "nonfinite_voxels": vol.nonfinite_count,
    }


def _text(info: dict) -> str:
    def join(values, fmt="{}"):
        return " x ".join(fmt.format(v) for v in values)

    lines = [
        f"file:         {info['path']}",
        f"format:       {info['format']}",
    ]
    if "series" in info:
        series = info["series"]
        number = "-" if series["number"] is None else series["number"]
        lines += [
            f"series:       {number}: {series['description'] or '(no description)'} "
            f"({series['modality']}, {series['slices']} slices, {series['orientation']})",
            f"series UID:   {series['uid']}",
        ]
    if "patient" in info:
        lines.append(f"patient:      {info['patient']['name'] or '(no name)'}, ID {info['patient']['id'] or '(none)'}")
    lines += [
        f"shape:        {join(info['shape'])}",
        f"voxel size:   {join(info['voxel_size_mm'], '{:g}')} mm",
        f"orientation:  {info['orientation']} (the file's own axis order; shown in RAS)",
        f"dtype:        {info['dtype']}"
        + (f", scaled by {info['scaling']['slope']:g} + {info['scaling']['inter']:g}" if info["scaling"] else ""),
        f"volumes:      {info['n_volumes']}",
        f"data range:   {info['data_range'][0]:g} .. {info['data_range'][1]:g}"
        + (f" (volume {info['volume']})" if info["n_volumes"] > 1 else ""),
        f"window:       {info['display_window'][0]:g} .. {info['display_window'][1]:g} (0.5-99.5 percentile)",
    ]
    if info["nonfinite_voxels"]:
        lines.append(f"non-finite:   {info['nonfinite_voxels']} NaN/inf voxels (shown as 0)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from mri_style_app.imaging.volume import VolumeError

    try:
        info = describe(args.file, args.volume, args.series, args.show_patient)
    except VolumeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(info, indent=2) if args.json else _text(info))
    return 0
