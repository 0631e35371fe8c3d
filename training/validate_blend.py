"""Choose a bundled model's blend without the seed test split.

A blended model ships share x the last run's weights + (1 - share) x its start's
(make_default_model.py), with one share for the encoder and one for the decoder and head. This
scores a grid of the two shares on data no run trained on and no figure is measured on:

  - held-out synthetic whole heads (make_synthetic_heads.py with seeds that no training set uses,
    reference protocols): how well the model translates whole heads it never saw;
  - the seed train split's brain: how much of the seed brain the blend forgets (the runs trained
    on these slices, so this measures forgetting, not generalisation);
  - the demo's ICBM brain under random protocols that the protocol sweep does not draw
    (protocol_sweep.py's simulation, another seed): how much of the simulated brains it forgets.

The pick: the best held-out heads' T2w -> T1w figure among the shares that forget neither brain
(T2w -> T1w PSNR) more than the half-way blend does.

    .venv/bin/python training/validate_blend.py [--model fast]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_default_model  # noqa: E402
import make_synthetic_heads as synth  # noqa: E402
import protocol_sweep  # noqa: E402

# make_synthetic_heads.py's training heads draw seed (2025, k), evidence.py's figure head (7, 0)
HELD_OUT_SEEDS = [(11, k) for k in range(3)]
# protocol_sweep.py draws its protocols with seed 2024 and its noise with 7
HELD_OUT_PROTOCOLS, PROTOCOL_NOISE_SEED = 11, 12
ENCODER_SHARES = (0.0, 0.25, 0.5)
DECODER_SHARES = (0.5, 0.75, 1.0)


def held_out_heads() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(T1w, T2w, affine) of each held-out head under the reference protocols."""
    cut = synth.colin27_labels_without_test_band(*synth.read_colin27())
    labels, levels = synth.restretched(cut), synth.reference_intensities(cut)
    heads = []
    for seed in HELD_OUT_SEEDS:
        head_labels, scans, _ = synth.synthetic_head(labels, levels, np.random.default_rng(seed), 0, 0.0)
        inside = head_labels != synth.LABEL["air"]
        (t1, t2), affine = synth.cropped_to_head(
            [scans[("t1w", "ref")], scans[("t2w", "ref")]], inside, synth.GRID_AFFINE
        )
        heads.append((t1.astype(np.float32), t2.astype(np.float32), affine))
    return heads


def held_out_brains() -> list[tuple[dict, dict, object, np.ndarray]]:
    """(scans, references, grid, brain) of the demo's ICBM brain under 4 random protocols
    (the protocol sweep's ranges, drawn with another seed; its 4 corners left out)."""
    protocols = protocol_sweep.protocols(4, seed=HELD_OUT_PROTOCOLS)[4:]
    return [row[1:] for row in protocol_sweep.simulated_scans(protocols, seed=PROTOCOL_NOISE_SEED)]


def scores(model, heads, seed_volumes, brains) -> dict:
    """Mean PSNR per direction (T1w -> T2w, then T2w -> T1w): held-out heads (whole head), seed train split (brain), simulated
    brains under held-out protocols (brain)."""
    from mri_style_app.cyclegan.translate import translate_volume
    from mri_style_app.imaging.metrics import evaluate_pair, head_mask
    from mri_style_app.imaging.volume import Volume

    out = {}
    for direction, source, target in (("t1-to-t2", 0, 1), ("t2-to-t1", 1, 0)):
        psnr = []
        for t1, t2, affine in heads:
            volumes = (t1, t2)
            pred = translate_volume(Volume(data=volumes[source], affine=affine, name="x"), model, direction)
            psnr.append(evaluate_pair(pred.data, volumes[target], head_mask(t1, t2))["psnr"])
        out[(direction, "heads")] = float(np.mean(psnr))
        psnr = []
        for entry in seed_volumes:
            volumes = (entry["t1"].astype(np.float32), entry["t2"].astype(np.float32))
            pred = translate_volume(Volume(data=volumes[source], affine=entry["affine"], name="x"), model, direction)
            psnr.append(evaluate_pair(pred.data, volumes[target], entry["brain"])["psnr"])
        out[(direction, "seed brain")] = float(np.mean(psnr))
        psnr = []
        for scans, references, grid, brain in brains:
            source_name, target_name = ("t1", "t2")[source], ("t1", "t2")[target]
            pred = translate_volume(grid.with_data(scans[source_name]), model, direction)
            psnr.append(evaluate_pair(pred.data, references[target_name], brain)["psnr"])
        out[(direction, "simulated brains")] = float(np.mean(psnr))
    return out


def main() -> None:
    from mri_style_app.cyclegan import checkpoint as model_files
    from mri_style_app.cyclegan.seed_slices import split_volumes

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=tuple(make_default_model.MODELS), default="default")
    args = parser.parse_args()
    bundled = make_default_model.MODELS[args.model]
    recipe, run = bundled.runs[-1]
    start = model_files.load_model(make_default_model.start_path(bundled))
    end = model_files.load_model(run / "model.safetensors")
    heads, seed_volumes, brains = held_out_heads(), split_volumes("train"), held_out_brains()
    rows = {}
    for encoder in ENCODER_SHARES:
        for decoder in DECODER_SHARES:
            share = {"encoder": encoder, "decoder": decoder, "head": decoder}
            generators = make_default_model.blended(start.generators, end.generators, share)
            model = model_files.CycleGANModel(path=None, card=end.card, generators=generators)
            rows[(encoder, decoder)] = row = scores(model, heads, seed_volumes, brains)
            print(
                f"encoder {encoder:.2f} decoder {decoder:.2f}: "
                + "; ".join(
                    f"{what} {row[('t1-to-t2', what)]:.2f} and {row[('t2-to-t1', what)]:.2f} dB"
                    for what in ("heads", "seed brain", "simulated brains")
                ),
                flush=True,
            )
    half_way = rows[(0.5, 0.5)]
    allowed = [
        key
        for key, row in rows.items()
        if all(row[("t2-to-t1", what)] >= half_way[("t2-to-t1", what)] for what in ("seed brain", "simulated brains"))
    ]
    encoder, decoder = max(allowed, key=lambda key: rows[key][("t2-to-t1", "heads")])
    print(f"pick: encoder {encoder}, decoder and head {decoder}")


if __name__ == "__main__":
    main()
