"""Robustness of a model to scanner and protocol: brain scores over a sweep of held-out protocols.

The anatomy is the demo's undeformed ICBM 2009a tissue maps (no training head is: those are
deformed copies). Each protocol simulates a T1w spoiled gradient echo (TR 10-30 ms, TE 3-6 ms,
flip 15-40 degrees) and a T2w spin echo (TR 3000-6000 ms, TE 80-120 ms) at 1.5 or 3 T, with 0-3 %
Rician noise and a bias field of up to +-10 %; the model's translation of each is scored (the
project's protocol, brain mask) against the other contrast's reference protocol on the same maps
(BrainWeb 1.5 T: T1w GRE TR 18 / TE 10 ms / 30 degrees, T2w SE TR 3300 / TE 120 ms, no noise),
the contrast the model is trained to produce. The corners of the ranges come first, then random
draws.

    .venv/bin/python training/protocol_sweep.py [--model FILE] [--random 8] [--markdown OUT]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mri_style_app.imaging import simulate  # noqa: E402
from mri_style_app.imaging.metrics import evaluate_pair  # noqa: E402
from mri_style_app.imaging.volume import load_volume  # noqa: E402

FIELDS = {1.5: simulate.BRAINWEB_1_5T, 3.0: simulate.RELAXATION_3T}
LOW = {
    "t1": {"tr_ms": 10.0, "te_ms": 3.0, "flip_deg": 15.0},
    "t2": {"tr_ms": 3000.0, "te_ms": 80.0},
    "noise": 0.0,
    "bias": 0.0,
}
HIGH = {
    "t1": {"tr_ms": 30.0, "te_ms": 6.0, "flip_deg": 40.0},
    "t2": {"tr_ms": 6000.0, "te_ms": 120.0},
    "noise": 3.0,
    "bias": 0.2,
}


def protocols(n_random: int, seed: int = 2024) -> list[dict]:
    out = [{"field": field, **corner} for field in FIELDS for corner in (LOW, HIGH)]
    rng = np.random.default_rng(seed)
    for _ in range(n_random):
        out.append(
            {
                "field": float(rng.choice(list(FIELDS))),
                "t1": {"tr_ms": rng.uniform(10, 30), "te_ms": rng.uniform(3, 6), "flip_deg": rng.uniform(15, 40)},
                "t2": {"tr_ms": rng.uniform(3000, 6000), "te_ms": rng.uniform(80, 120)},
                "noise": rng.uniform(0, 3),
                "bias": rng.uniform(0, 0.2),
            }
        )
    return out


def describe(p: dict) -> str:
    t1, t2 = p["t1"], p["t2"]
    return (
        f"{p['field']:.1f} T, T1w {t1['tr_ms']:.0f}/{t1['te_ms']:.1f} ms {t1['flip_deg']:.0f} deg, "
        f"T2w {t2['tr_ms']:.0f}/{t2['te_ms']:.0f} ms, noise {p['noise']:.1f} %, bias +-{50 * p['bias']:.0f} %"
    )


def simulated_scans(protocol_list: list[dict], seed: int = 7):
    """Per protocol: (protocol, {contrast: its scan with bias field and noise}, {contrast: the
    reference-protocol scan}, the demo grid Volume, the brain mask), on the demo's ICBM maps."""
    from mri_style_app.paths import demo_mask_path, demo_t1_path, resources_dir

    grid = load_volume(demo_t1_path())
    brain = load_volume(demo_mask_path()).data > 0
    gm = load_volume(resources_dir() / "demo" / "icbm152_2009a_gm.nii.gz").data / 255.0
    wm = load_volume(resources_dir() / "demo" / "icbm152_2009a_wm.nii.gz").data / 255.0
    fractions = simulate.tissue_fractions(gm, wm, brain)
    references = {
        "t1": simulate.spoiled_gradient_echo(fractions, **simulate.T1W_1_5T),
        "t2": simulate.spin_echo(fractions, **simulate.T2W_1_5T),
    }
    rng = np.random.default_rng(seed)
    for p in protocol_list:
        tissues = FIELDS[p["field"]]
        scans = {
            "t1": simulate.spoiled_gradient_echo(fractions, tissues=tissues, **p["t1"]),
            "t2": simulate.spin_echo(fractions, tissues=tissues, **p["t2"]),
        }
        for contrast in ("t1", "t2"):
            scans[contrast] = scans[contrast] * simulate.bias_field(brain.shape, p["bias"], rng)
            if p["noise"] > 0:
                scans[contrast] = simulate.add_rician_noise(scans[contrast], p["noise"], brain, rng)
        yield p, scans, references, grid, brain


def sweep(model_path: Path | None = None, n_random: int = 8) -> list[dict]:
    from mri_style_app.cyclegan.checkpoint import load_model
    from mri_style_app.cyclegan.translate import translate_volume
    from mri_style_app.paths import default_model_path

    model = load_model(model_path or default_model_path())
    results = []
    for p, scans, references, grid, brain in simulated_scans(protocols(n_random)):
        row = {"protocol": describe(p)}
        for source, target in (("t1", "t2"), ("t2", "t1")):
            pred = translate_volume(grid.with_data(scans[source]), model, f"{source}-to-{target}").data
            row[f"{source}-to-{target}"] = evaluate_pair(pred, references[target], brain)
        results.append(row)
        print(
            f"{row['protocol']:78s} T1w->T2w {row['t1-to-t2']['ssim']:.3f} / {row['t1-to-t2']['psnr']:5.2f} dB   "
            f"T2w->T1w {row['t2-to-t1']['ssim']:.3f} / {row['t2-to-t1']['psnr']:5.2f} dB",
            flush=True,
        )
    return results


def markdown(results: list[dict]) -> str:
    lines = ["| protocol | T1w -> T2w SSIM / PSNR | T2w -> T1w SSIM / PSNR |", "|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['protocol']} | {r['t1-to-t2']['ssim']:.3f} / {r['t1-to-t2']['psnr']:.2f} dB | "
            f"{r['t2-to-t1']['ssim']:.3f} / {r['t2-to-t1']['psnr']:.2f} dB |"
        )
    worst = {
        d: (min(r[d]["ssim"] for r in results), min(r[d]["psnr"] for r in results)) for d in ("t1-to-t2", "t2-to-t1")
    }
    lines.append(
        f"| **worst** | {worst['t1-to-t2'][0]:.3f} / {worst['t1-to-t2'][1]:.2f} dB | "
        f"{worst['t2-to-t1'][0]:.3f} / {worst['t2-to-t1'][1]:.2f} dB |"
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--random", type=int, default=8, help="random protocols after the 4 corners")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    args = parser.parse_args()
    results = sweep(args.model, args.random)
    table = markdown(results)
    print(table)
    if args.markdown:
        args.markdown.write_text(table)


if __name__ == "__main__":
    main()
