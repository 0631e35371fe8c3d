"""Synthetic whole heads: many T1w/T2w pairs from a 3D label map of real anatomy.

The label map is Debian's mricron-data Colin27 head (`ch2.nii.gz`, a real whole-head T1w, and
`ch2bet.nii.gz`, its brain) segmented into the tissues a translator meets from the chin to the
vertex: CSF and other free fluid (the eyes), grey and white matter, fat, muscle, skin, cortical
bone, marrow, dura and air (sinuses, airways). No voxel of the seed README's test band
(Colin27 z 100-134) is ever read: those slices are cut out of the map before anything else and
the head above them is joined to the head below (`COLIN27_TEST_BAND`).

Each tissue's brightness under the reference protocols is the mode of the seed train split's
exact T1w/T2w pairs over that tissue (the BrainWeb protocols the test split was made with). Each
synthetic head is the label map under a random 3D affine (size +-15 %, rotation, shift) and a
smooth elastic warp, sometimes mirrored or made of one hemisphere twice; its tissues get partial
volume at their borders; sometimes it is then cut at the brain the way skull-stripping tools cut
a scan, through the tissue at the mask's edge. The
TARGETS (`head_NN.nii.gz` in both folders) are that head under the reference protocols; the
INPUTS (`head_NN~vK.nii.gz`) are the same head through BrainWeb's signal equations with this
head's own tissue values (1.5 or 3 T, jittered), random sequence settings, a bias field, Rician
noise and, at random, a coarser slice thickness (SynthSR-style; Billot, Iglesias et al.). The
folders are what `mri-style train` reads as paired data and unpaired domains
(`mri_style_app.cyclegan.data.load_pairs`); `PREFIX-weights/head_NN.nii.gz` is each head's
paired-loss weight map (a recipe's `paired_weights`): 0 in grey and white matter, whose targets
are flat levels, 1 elsewhere.

    .venv/bin/python training/make_synthetic_heads.py --out runs/synthetic-heads --heads 24
    .venv/bin/python training/make_synthetic_heads.py --out runs/synthetic-heads --labels-only
    .venv/bin/python training/make_synthetic_heads.py --out runs/synthetic-heads --figure docs/synthetic_heads.png

The same --seed writes the same heads, voxel for voxel.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from prepare_default_data import jitter_tissues  # noqa: E402
from prepare_reference_pairs import rotation  # noqa: E402

from mri_style_app.cyclegan.seed_slices import (  # noqa: E402
    COLIN27_TEST_BAND,
    GRID_AFFINE,
    GRID_SHAPE,
    MRICRON,
    split_pairs,
)
from mri_style_app.imaging import simulate  # noqa: E402
from mri_style_app.imaging.metrics import head_mask  # noqa: E402

# Label values of the map. "csf" is all free fluid (CSF and the eyes' vitreous), which images alike.
LABELS = ("air", "csf", "gm", "wm", "fat", "muscle", "skin", "bone", "marrow", "dura")
LABEL = {name: value for value, name in enumerate(LABELS)}

# ch2 T1w intensity (0-255) bands outside the brain: below DARK bone, air or fluid; above BRIGHT
# fat or marrow; between them muscle. Air is darker still. Read off ch2's histogram outside
# ch2bet: bone and air peak near 15, muscle near 60, white matter (inside) at 109.
DARK, BRIGHT, AIR = 38.0, 128.0, 9.0
# Soft tissue outside the brain darker than this in ch2 images as fluid in the seed pairs (bright
# in the T2w, dark in the T1w: 97-100 % of those voxels above 0.4 of the T2w scale, against
# 0-17 % above it): the skin and the scalp's wet layers. Read off the seed train pairs by ch2 band.
SCALP_FLUID = 70.0
CSF_SHELL_MM = 3.0  # dark voxels this close to the brain are CSF, further out bone
EYE_RADIUS_MM = 4  # fluid or air blobs thicker than this (eyes, sinuses) are not bone
DURA_MM = 2.0
SKIN_MM = 1.0


def _disk_ball(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2) <= radius * radius


def _closed(mask: np.ndarray, structure: np.ndarray | None = None, iterations: int = 1) -> np.ndarray:
    """Binary closing that leaves the slab's first and last slices alone: scipy's erodes them away
    (the border counts as background), so the slab is padded with copies of its edges first."""
    pad = iterations * (1 if structure is None else structure.shape[0] // 2) + 1
    padded = np.pad(mask, pad, mode="edge")
    closed = ndi.binary_closing(padded, structure=structure, iterations=iterations)
    return closed[pad:-pad, pad:-pad, pad:-pad]


def _fill_axial(mask: np.ndarray) -> np.ndarray:
    out = ndi.binary_fill_holes(mask)
    for z in range(mask.shape[2]):
        out[:, :, z] = ndi.binary_fill_holes(out[:, :, z])
    return out


def brain_centres(values: np.ndarray) -> np.ndarray:
    """CSF, GM and WM T1w intensities: a 3-class k-means of the brain's voxels."""
    centres = np.percentile(values, [10, 50, 90])
    for _ in range(50):
        nearest = np.argmin(np.abs(values[:, None] - centres[None]), axis=1)
        centres = np.array([values[nearest == k].mean() for k in range(3)])
    return centres


def colin27_labels(t1: np.ndarray, brain: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """The tissue label of every voxel of a slab of the Colin27 head (uint8, LABELS), from its
    T1w, its brain mask and the brain's class centres (`brain_centres`)."""
    head = _fill_axial(_closed(t1 > 0.1 * np.percentile(t1, 60), iterations=2))
    csf_gm, gm_wm = (centres[0] + centres[1]) / 2, (centres[1] + centres[2]) / 2
    # the brain mask cuts into the cortex at the convexity: brain-bright voxels just outside it are brain
    brain = head & (brain | (ndi.binary_dilation(brain, iterations=3) & (t1 >= csf_gm) & (t1 < BRIGHT)))
    labels = np.full(t1.shape, LABEL["air"], dtype=np.uint8)
    labels[brain] = np.where(t1[brain] < csf_gm, LABEL["csf"], np.where(t1[brain] < gm_wm, LABEL["gm"], LABEL["wm"]))

    outside = head & ~brain
    from_brain = ndi.distance_transform_edt(~brain)
    dark = outside & (t1 < DARK)
    near = from_brain <= CSF_SHELL_MM
    labels[dark & near] = LABEL["csf"]
    # thick dark blobs away from the brain: eyes (fluid, as dark as CSF in a T1w) or air (darker)
    blobs = ndi.binary_opening(dark & ~near, structure=_disk_ball(EYE_RADIUS_MM))
    labels[dark & ~near & ~blobs] = LABEL["bone"]
    labels[blobs & (t1 >= AIR)] = LABEL["csf"]
    labels[blobs & (t1 < AIR)] = LABEL["air"]
    mid = outside & (t1 >= DARK) & (t1 < BRIGHT)
    labels[mid] = LABEL["muscle"]
    labels[mid & (t1 < SCALP_FLUID)] = LABEL["skin"]
    # dura: the membrane just outside the brain and its CSF
    labels[mid & (from_brain <= DURA_MM)] = LABEL["dura"]
    # fat outside the skull, marrow inside it (between its inner and outer tables)
    bright = outside & (t1 >= BRIGHT)
    cranium = brain | (labels == LABEL["bone"]) | (dark & near)
    skull = _fill_axial(_closed(cranium, structure=_disk_ball(3)))
    labels[bright] = LABEL["fat"]
    labels[bright & skull] = LABEL["marrow"]
    # dark voxels at the head's surface are its edge (skin half in the air), not bone
    to_air = ndi.distance_transform_edt(head)
    labels[dark & ~near & (to_air <= SKIN_MM)] = LABEL["skin"]
    labels[~head] = LABEL["air"]
    return labels


def restretched(labels: np.ndarray, height: int = GRID_SHAPE[2]) -> np.ndarray:
    """The label map without the test band (`colin27_labels_without_test_band`) made a whole head again, with no
    voxel of the band's own anatomy. Cut there, the head above the band would sit on the wider
    head below it like a hat: each slice above is widened in-plane about the head's centre, by
    the ratio of the two heads' sizes where they meet, easing to no change at the vertex. Then
    the map is stretched along z (nearest label) to the full grid's height, so the head keeps its
    proportions (slices 1.24 times thicker, within the random size range of `deformed_labels`)."""
    seam = COLIN27_TEST_BAND.start
    area = (labels != LABEL["air"]).sum(axis=(0, 1)).astype(float)
    top = int(np.nonzero(area)[0].max())
    ratio = np.sqrt(area[seam - 1] / max(area[seam], 1.0))
    out = labels.copy()
    for z in range(seam, top + 1):
        scale = 1 + (ratio - 1) * (top - z) / max(top - seam, 1)
        inside = np.argwhere(labels[:, :, z] != LABEL["air"])
        centre = inside.mean(axis=0) if len(inside) else (np.array(labels.shape[:2]) - 1) / 2
        out[:, :, z] = ndi.affine_transform(
            labels[:, :, z], np.eye(2) / scale, offset=centre - centre / scale, order=0, cval=LABEL["air"]
        )
    return ndi.zoom(out, (1.0, 1.0, height / labels.shape[2]), order=0, grid_mode=True, mode="nearest")


def read_colin27() -> tuple[np.ndarray, np.ndarray]:
    """ch2.nii.gz (T1w, 0-255) and ch2bet.nii.gz > 0 (the brain), on the Colin27 grid."""
    t1 = np.asarray(nib.load(MRICRON / "ch2.nii.gz").dataobj, dtype=np.float32)
    brain = np.asarray(nib.load(MRICRON / "ch2bet.nii.gz").dataobj) > 0
    return t1, brain


def colin27_labels_without_test_band(t1: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """The label map of Colin27 (`read_colin27`) with the test band cut out first: no test voxel
    reaches even the segmentation's thresholds. Slices below the band keep their z (the train
    split's among them)."""
    slabs = [slice(0, COLIN27_TEST_BAND.start), slice(COLIN27_TEST_BAND.stop, t1.shape[2])]
    centres = brain_centres(np.concatenate([t1[:, :, s][brain[:, :, s]] for s in slabs]))
    # each slab on its own: no distance or closing reaches across the cut
    return np.concatenate([colin27_labels(t1[:, :, s], brain[:, :, s], centres) for s in slabs], axis=2)


# Tissues the train split hardly shows (marrow: 6 voxels), or that the map places too coarsely to
# read off it (skin, which BrainWeb images with CSF's relaxation times), take the level of the
# tissue they image as: marrow is fatty, as bright as fat in ch2 (both above BRIGHT).
SAME_AS = {"marrow": "fat", "skin": "csf"}


def reference_intensities(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Each tissue's T1w and T2w brightness under the reference protocols, read off the seed train
    split's exact pairs: the mode of the joint (T1w, T2w) histogram of the voxels the map calls
    that tissue (each slice scaled by its 99.5th head percentile, as the scoring protocol scales).
    The mode, not the mean: the pure tissue is the peak, partial volume and the map's misplaced
    borders are the spread. `labels` is the map without the test band, whose slices below the
    band keep their z. Air stays 0."""
    bins = 50
    parts: dict[int, list[np.ndarray]] = {v: [] for v in range(len(LABELS))}
    for z, (t1, t2) in split_pairs("train").items():
        assert z < COLIN27_TEST_BAND.start, z
        inside = head_mask(t1, t2)
        unit = np.stack([t1 / np.percentile(t1[inside], 99.5), t2 / np.percentile(t2[inside], 99.5)], axis=-1)
        for v in parts:
            parts[v].append(np.clip(unit[inside & (labels[:, :, z] == v)], 0, 1))
    table = {"t1w": np.zeros(len(LABELS), np.float32), "t2w": np.zeros(len(LABELS), np.float32)}
    for value, name in enumerate(LABELS):
        pairs = np.concatenate(parts[value])
        if name == "air" or name in SAME_AS:
            continue
        hist, _, _ = np.histogram2d(pairs[:, 0], pairs[:, 1], bins=bins, range=[[0, 1], [0, 1]])
        i, j = np.unravel_index(np.argmax(ndi.gaussian_filter(hist, 1.0)), hist.shape)
        table["t1w"][value], table["t2w"][value] = (i + 0.5) / bins, (j + 0.5) / bins
    for name, like in SAME_AS.items():
        for contrast in table:
            table[contrast][LABEL[name]] = table[contrast][LABEL[like]]
    return table


# ------------------------------------------------------------------ one synthetic head
def deformed_labels(labels: np.ndarray, rng: np.random.Generator, pad: int = 24) -> np.ndarray:
    """The label map under a random affine (size +-15 %, rotation +-10 deg, shift +-8 mm) and a
    smooth elastic warp (5 x 5 x 5 control points, up to 5 mm), nearest label; `pad` voxels of
    air around it first, so a bigger head is not cut by the old field of view."""
    labels = np.pad(labels, pad, constant_values=LABEL["air"])
    shape = np.array(labels.shape)
    linear = rotation(rng.uniform(-10, 10, 3)) @ np.diag(rng.uniform(0.85, 1.15, 3) * rng.uniform(0.97, 1.03))
    inverse = np.linalg.inv(linear)
    centre = (shape - 1) / 2.0
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij"))
    offsets = grid.reshape(3, -1) - centre[:, None]
    source = (inverse @ offsets + centre[:, None] + rng.uniform(-8, 8, (3, 1))).reshape(3, *shape)
    coarse = rng.uniform(-5, 5, (3, 5, 5, 5))
    zoom = [n / 5 for n in shape]
    warp = np.stack([ndi.zoom(c, zoom, order=3, grid_mode=True, mode="nearest") for c in coarse])
    source = source + warp[:, : shape[0], : shape[1], : shape[2]]
    return ndi.map_coordinates(labels, source, order=0, mode="constant", cval=LABEL["air"]).astype(np.uint8)


def mirrored(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """As it is, flipped left-right, or one hemisphere twice (left or right mirrored onto the other)."""
    kind = str(rng.choice(["as is", "flipped", "left twice", "right twice"]))
    mid = labels.shape[0] // 2
    if kind == "flipped":
        return labels[::-1].copy(), kind
    if kind == "left twice":  # x increases to the patient's left (RAS)
        out = labels.copy()
        out[:mid] = labels[::-1][:mid]
        return out, kind
    if kind == "right twice":
        out = labels.copy()
        out[mid:] = labels[::-1][mid:]
        return out, kind
    return labels, kind


def skull_strip_mask(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a skull-stripping tool keeps: the brain and some of its CSF, a random 0-2 mm more or
    less."""
    brain = np.isin(labels, [LABEL["gm"], LABEL["wm"], LABEL["csf"]])
    brain = ndi.binary_opening(brain, iterations=2)
    parts, count = ndi.label(brain)
    if count:
        brain = parts == 1 + int(np.argmax(ndi.sum(brain, parts, range(1, count + 1))))
    step = int(rng.integers(-2, 3))
    if step > 0:
        brain = ndi.binary_dilation(brain, iterations=step) & (labels != LABEL["air"])
    elif step < 0:
        brain = ndi.binary_erosion(brain, iterations=-step)
    return brain


def soft_fractions(labels: np.ndarray, sigma: float) -> dict[str, np.ndarray]:
    """Partial volume at tissue borders: each tissue's one-hot map smoothed (sigma in voxels) and
    renormalised, so the fractions sum to 1 everywhere."""
    maps = np.stack([ndi.gaussian_filter((labels == v).astype(np.float32), sigma) for v in range(len(LABELS))])
    maps /= np.maximum(maps.sum(axis=0, keepdims=True), 1e-6)
    return {name: maps[v] for v, name in enumerate(LABELS)}


def reference_scan(fractions: dict[str, np.ndarray], levels: np.ndarray) -> np.ndarray:
    return sum(fractions[name] * float(levels[v]) for v, name in enumerate(LABELS)).astype(np.float32)


def random_t1w_settings(rng) -> dict:
    """Spoiled gradient echo: TR 8-30 ms, TE 2-10 ms, flip 8-40 degrees."""
    return {"tr_ms": rng.uniform(8, 30), "te_ms": rng.uniform(2, 10), "flip_deg": rng.uniform(8, 40)}


def random_t2w_settings(rng) -> dict:
    """Spin echo: TR 2500-6000 ms, TE 80-140 ms."""
    return {"tr_ms": rng.uniform(2500, 6000), "te_ms": rng.uniform(80, 140)}


def coarser(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """At random (half the time) thicker slices along one axis (2-5 mm), resampled back to 1 mm."""
    if rng.uniform() < 0.5:
        return image
    axis, thickness = int(rng.integers(0, 3)), float(rng.uniform(2, 5))
    blurred = ndi.gaussian_filter1d(image, thickness / 2.355, axis=axis)
    step = max(1, int(round(thickness)))
    index = [slice(None)] * 3
    index[axis] = slice(None, None, step)
    low = blurred[tuple(index)]
    zoom = [1.0] * 3
    zoom[axis] = image.shape[axis] / low.shape[axis]
    up = ndi.zoom(low, zoom, order=1)
    out = np.zeros_like(image)
    region = tuple(slice(0, min(a, b)) for a, b in zip(image.shape, up.shape))
    out[region] = up[region]
    return out


def input_scan(fractions, tissues, contrast: str, settings: dict, bias, rng, kept) -> np.ndarray:
    """One random-protocol scan; a skull-stripped head's (`kept`: the stripping mask, else None) is
    0 outside the mask, as stripping tools leave it."""
    if contrast == "t1w":
        signal = simulate.spoiled_gradient_echo(fractions, tissues=tissues, **settings)
    else:
        signal = simulate.spin_echo(fractions, tissues=tissues, **settings)
    signal = coarser(signal * bias, rng)
    brainish = fractions["gm"] + fractions["wm"] > 0.5
    noisy = simulate.add_rician_noise(signal, float(rng.uniform(0, 3)), brainish, rng)
    return noisy if kept is None else np.where(kept, noisy, 0.0).astype(np.float32)


def cropped_to_head(volumes: list[np.ndarray], head: np.ndarray, affine: np.ndarray, margin: int = 8):
    """The volumes cut to the head's box plus `margin` voxels of air, and the cut grid's affine."""
    where = np.argwhere(head)
    low = np.maximum(where.min(axis=0) - margin, 0)
    high = np.minimum(where.max(axis=0) + margin + 1, head.shape)
    box = tuple(slice(a, b) for a, b in zip(low, high))
    moved = affine.copy()
    moved[:3, 3] += affine[:3, :3] @ low
    return [np.ascontiguousarray(v[box]) for v in volumes], moved


def paired_weight(fractions: dict[str, np.ndarray]) -> np.ndarray:
    """How far each voxel's references can be trusted as targets: 1 outside grey and white matter,
    falling to 0 inside them, whose references are two flat levels where real tissue varies."""
    return np.clip(1.0 - fractions["gm"] - fractions["wm"], 0.0, 1.0).astype(np.float32)


def synthetic_head(labels, levels, rng: np.random.Generator, variants: int, stripped_share: float):
    """One head: its labels, the two reference scans, `variants` random-protocol inputs per
    contrast, the paired-loss weights (`paired_weight`), and its log."""
    head_labels, mirror = mirrored(labels, rng)
    head_labels = deformed_labels(head_labels, rng)
    stripped = bool(rng.uniform() < stripped_share)
    kept = skull_strip_mask(head_labels, rng) if stripped else None
    # partial volume from the whole head, then the mask: a stripping tool cuts through the scan as
    # it was acquired, so the outermost kept voxel is CSF or cortex, not a blend with air
    fractions = soft_fractions(head_labels, sigma=float(rng.uniform(0.4, 0.8)))
    scans = {
        ("t1w", "ref"): reference_scan(fractions, levels["t1w"]),
        ("t2w", "ref"): reference_scan(fractions, levels["t2w"]),
        ("weights", "ref"): paired_weight(fractions),
    }
    if stripped:
        head_labels = np.where(kept, head_labels, LABEL["air"]).astype(np.uint8)
        for contrast in ("t1w", "t2w"):
            scans[(contrast, "ref")] = np.where(kept, scans[(contrast, "ref")], 0.0).astype(np.float32)
    log = {"mirror": mirror, "skull_stripped": stripped, "variants": []}
    for k in range(variants):
        field = float(rng.choice(list(simulate.HEAD_TISSUES)))
        tissues = jitter_tissues(simulate.HEAD_TISSUES[field], rng, spread=0.15)
        bias = simulate.bias_field(head_labels.shape, float(rng.uniform(0, 0.4)), rng)
        t1s, t2s = random_t1w_settings(rng), random_t2w_settings(rng)
        scans[("t1w", f"v{k}")] = input_scan(fractions, tissues, "t1w", t1s, bias, rng, kept)
        scans[("t2w", f"v{k}")] = input_scan(fractions, tissues, "t2w", t2s, bias, rng, kept)
        log["variants"].append({"field_T": field, "t1w": t1s, "t2w": t2s})
    return head_labels, scans, log


def reference_heads(seeds, stripped: bool = False) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(T1w, T2w, affine) of a synthetic head per seed (no variants; whole, or all cut at the brain
    as stripping tools cut: 0 outside what they keep) under the reference protocols, cropped to
    the head: heads to measure a model on."""
    cut = colin27_labels_without_test_band(*read_colin27())
    labels, levels = restretched(cut), reference_intensities(cut)
    heads = []
    for seed in seeds:
        head_labels, scans, _ = synthetic_head(labels, levels, np.random.default_rng(seed), 0, float(stripped))
        (t1, t2), affine = cropped_to_head(
            [scans[("t1w", "ref")], scans[("t2w", "ref")]], head_labels != LABEL["air"], GRID_AFFINE
        )
        heads.append((t1, t2, affine))
    return heads


def fidelity(cut: np.ndarray, levels: dict[str, np.ndarray], brain: np.ndarray) -> dict:
    """How close the undeformed head's reference scans come to the seed train split's real pairs,
    slice for slice (the project's scoring protocol): in the whole head, the brain (ch2bet), and
    outside the brain dilated by 4 mm (scalp, skull, face). A yardstick for the label map and the
    tissue levels, on the only levels where the truth is known."""
    from mri_style_app.imaging.metrics import evaluate_pair

    pairs = split_pairs("train")
    zs = sorted(pairs)
    fractions = soft_fractions(cut[:, :, zs], sigma=0.6)
    head = head_mask(np.stack([pairs[z][0] for z in zs], -1), np.stack([pairs[z][1] for z in zs], -1))
    in_brain = brain[:, :, zs] & head
    regions = {
        "head": head,
        "brain": in_brain,
        "outside the brain": head & ~ndi.binary_dilation(in_brain, iterations=4),
    }
    scores = {}
    for k, contrast in enumerate(("t1w", "t2w")):
        real = np.stack([pairs[z][k] for z in zs], -1).astype(np.float32)
        made = reference_scan(fractions, levels[contrast])
        scores[contrast] = {name: evaluate_pair(made, real, region) for name, region in regions.items()}
    return scores


def figure(out: Path, path: Path, heads: int = 3, prefix: str = "synth") -> Path:
    """The real ch2 and a seed train pair beside the first synthetic heads (targets, and one
    random-protocol input), three planes each, every image scaled by its own 99.5th percentile."""
    from evidence import _three_planes, grid_figure

    from mri_style_app.imaging.intensity import normalize_unit

    def planes(volume: np.ndarray) -> list[np.ndarray]:
        unit = normalize_unit(volume, volume > 0.05 * volume.max())
        return _three_planes(unit, [n // 2 for n in volume.shape])

    t1, _ = read_colin27()
    rows, labels = [_three_planes(normalize_unit(t1, t1 > 10), (90, 120, 72))], ["real ch2 T1w"]
    z = 85
    seed_t1, seed_t2 = split_pairs("train")[z]
    blank = np.zeros((8, 8))
    rows.append(
        [np.rot90(seed_t1 / np.percentile(seed_t1, 99.5)), np.rot90(seed_t2 / np.percentile(seed_t2, 99.5)), blank]
    )
    labels.append(f"seed train pair z {z}: T1w, T2w")
    a, b = out / f"{prefix}-A-t1w", out / f"{prefix}-B-t2w"
    for head in range(heads):
        name = f"head_{head:02d}"
        for folder, contrast in ((a, "T1w"), (b, "T2w")):
            rows.append(planes(np.asarray(nib.load(folder / f"{name}.nii.gz").dataobj, dtype=np.float32)))
            labels.append(f"{name} {contrast} target")
        if head == 0:
            for folder, contrast in ((a, "T1w"), (b, "T2w")):
                data = np.asarray(nib.load(folder / f"{name}~v0.nii.gz").dataobj, dtype=np.float32)
                rows.append(planes(data))
                labels.append(f"{name} {contrast} input (random protocol)")
    return grid_figure(
        rows,
        labels,
        ["axial", "coronal", "sagittal"],
        "synthetic whole heads (training/make_synthetic_heads.py) beside the real ch2 and a seed pair",
        path,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--heads", type=int, default=24)
    parser.add_argument("--variants", type=int, default=2, help="random-protocol inputs per head and contrast")
    parser.add_argument("--stripped", type=float, default=0.2, help="share of heads cut at the brain")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--labels-only", action="store_true", help="write the label map and tissue table only")
    parser.add_argument("--folder-prefix", default="synth")
    parser.add_argument("--figure", type=Path, help="draw the first heads of --out (written before) to this PNG")
    parser.add_argument(
        "--fidelity", action="store_true", help="score the undeformed head's references against the seed train pairs"
    )
    args = parser.parse_args(argv)
    if args.figure:
        figure(args.out, args.figure, prefix=args.folder_prefix)
        return 0
    if args.fidelity:
        t1, brain = read_colin27()
        cut = colin27_labels_without_test_band(t1, brain)
        for contrast, regions in fidelity(cut, reference_intensities(cut), brain).items():
            for region, r in regions.items():
                print(f"{contrast} {region}: SSIM {r['ssim']:.3f}, PSNR {r['psnr']:.2f} dB")
        return 0

    cut = colin27_labels_without_test_band(*read_colin27())
    levels = reference_intensities(cut)
    labels = restretched(cut)
    args.out.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(labels, GRID_AFFINE), args.out / "colin27_labels_without_test_band.nii.gz")
    table = {
        name: {"t1w": round(float(levels["t1w"][v]), 4), "t2w": round(float(levels["t2w"][v]), 4)}
        for v, name in enumerate(LABELS)
    }
    (args.out / "tissues.json").write_text(json.dumps({"labels": list(LABELS), "reference": table}, indent=1))
    print(
        "reference brightness per tissue (T1w / T2w): "
        + ", ".join(f"{n} {t['t1w']}/{t['t2w']}" for n, t in table.items())
    )
    if args.labels_only:
        return 0
    folders = {c: args.out / f"{args.folder_prefix}-{d}-{c}" for c, d in (("t1w", "A"), ("t2w", "B"))}
    folders["weights"] = args.out / f"{args.folder_prefix}-weights"  # the recipes' paired_weights
    for folder in folders.values():
        folder.mkdir(exist_ok=True)
    logs = {}
    for head in range(args.heads):
        rng = np.random.default_rng([args.seed, head])  # each head its own stream: heads can be rewritten alone
        head_labels, scans, log = synthetic_head(labels, levels, rng, args.variants, args.stripped)
        names = list(scans)
        cut, affine = cropped_to_head([scans[n] for n in names], head_labels != LABEL["air"], GRID_AFFINE)
        for (contrast, tag), image in zip(names, cut):
            file = f"head_{head:02d}.nii.gz" if tag == "ref" else f"head_{head:02d}~{tag}.nii.gz"
            nib.save(nib.Nifti1Image(image.astype(np.float32), affine), folders[contrast] / file)
        logs[f"head_{head:02d}"] = log
        print(
            f"head_{head:02d}: {log['mirror']}, {'skull-stripped' if log['skull_stripped'] else 'whole head'}",
            flush=True,
        )
    (args.out / f"{args.folder_prefix}.json").write_text(json.dumps({"seed": args.seed, "heads": logs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
