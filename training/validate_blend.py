"""Choose a bundled model's blend without the seed test split.

A bundled model's blend is share x its blended run's weights + (1 - share) x that run's start's
(make_default_model.py); here with one share for the encoder and one for the decoder and head. This
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


def held_out_cases() -> list[tuple[str, dict, dict, np.ndarray]]:
    """(kind, source Volume per contrast, reference per contrast, mask) of each validation volume."""
    from mri_style_app.cyclegan.seed_slices import split_volumes
    from mri_style_app.imaging.metrics import head_mask
    from mri_style_app.imaging.volume import Volume

    cases = []
    # synthetic heads no run trained on, reference protocols, whole head
    for t1, t2, affine in synth.reference_heads(HELD_OUT_SEEDS):
        t1, t2 = t1.astype(np.float32), t2.astype(np.float32)
        volumes = {"t1": Volume(data=t1, affine=affine, name="t1"), "t2": Volume(data=t2, affine=affine, name="t2")}
        cases.append(("heads", volumes, {"t1": t1, "t2": t2}, head_mask(t1, t2)))
    # the seed train split, brain
    for entry in split_volumes("train"):
        arrays = {c: entry[c].astype(np.float32) for c in ("t1", "t2")}
        volumes = {c: Volume(data=a, affine=entry["affine"], name=c) for c, a in arrays.items()}
        cases.append(("seed brain", volumes, arrays, entry["brain"]))
    # the demo anatomy under 4 random protocols of the sweep's ranges drawn with another seed
    # (its 4 corners left out), brain, against the reference protocols
    protocols = protocol_sweep.protocols(4, seed=HELD_OUT_PROTOCOLS)[4:]
    for _, scans, references, grid, brain in protocol_sweep.simulated_scans(protocols, seed=PROTOCOL_NOISE_SEED):
        cases.append(("simulated brains", {c: grid.with_data(scans[c]) for c in scans}, references, brain))
    return cases


def scores(model, cases) -> dict:
    """Mean PSNR per (direction, kind of validation volume)."""
    from mri_style_app.cyclegan.translate import translate_volume
    from mri_style_app.imaging.metrics import evaluate_pair

    psnr = {}
    for direction in ("t1-to-t2", "t2-to-t1"):
        source, target = direction.split("-to-")
        for kind, volumes, references, mask in cases:
            pred = translate_volume(volumes[source], model, direction)
            psnr.setdefault((direction, kind), []).append(evaluate_pair(pred.data, references[target], mask)["psnr"])
    return {key: float(np.mean(values)) for key, values in psnr.items()}


def main() -> None:
    from mri_style_app.cyclegan import checkpoint as model_files

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=tuple(make_default_model.MODELS), default="default")
    args = parser.parse_args()
    bundled = make_default_model.MODELS[args.model]
    _, run = bundled.runs[bundled.blend_index]
    start = model_files.load_model(make_default_model.start_path(bundled))
    end = model_files.load_model(run / "model.safetensors")
    cases = held_out_cases()
    rows = {}
    for encoder in ENCODER_SHARES:
        for decoder in DECODER_SHARES:
            share = {"encoder": encoder, "decoder": decoder, "head": decoder}
            generators = make_default_model.blended(start.generators, end.generators, share)
            model = model_files.CycleGANModel(path=None, card=end.card, generators=generators)
            rows[(encoder, decoder)] = row = scores(model, cases)
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
