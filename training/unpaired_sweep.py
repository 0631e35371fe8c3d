"""Unpaired training on the seed slices, as a new user runs it: what each setting does.

The seed README's train split goes into two plain folders (T1 `image_010`-`040`, T2
`image_070`-`100`), and `mri-style train` runs on them for a time budget (`--minutes`), with the
app's defaults plus one change per row. Nothing pairs the slices in training. The test split,
written as one co-registered NIfTI pair, is the run's validation set: it is only scored (whole
head, the project's one protocol), and the table reports the final model's last validation
event, not the best one, so no choice is made on the test slices.

    python training/unpaired_sweep.py prepare runs/unpaired-sweep
    python training/unpaired_sweep.py run runs/unpaired-sweep --minutes 5 --parallel 2
    python training/unpaired_sweep.py run runs/unpaired-sweep --minutes 20 --only defaults --threads 2
    python training/unpaired_sweep.py table runs/unpaired-sweep [--markdown docs/training/unpaired_sweep_5min.md]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mri_style_app.cyclegan import events  # noqa: E402
from mri_style_app.cyclegan.seed_slices import default_seed_dir, write_split  # noqa: E402

# The settings before the structure loss and bfloat16 autocast were defaults: the rows that
# change one other thing start from these.
PLAIN = {"lambda_structure": 0.0, "amp": False}
# row name -> the settings it changes against the app's defaults (recipe keys)
SETTINGS: dict[str, dict] = {
    "defaults": {},
    "no structure loss, float32": PLAIN,
    "identity loss 0.5 (the reference CycleGAN's)": {**PLAIN, "lambda_identity": 0.5},
    "128-pixel crops (instance norm sees windows, translation whole slices)": {**PLAIN, "crop": True, "size": 128},
    "whole slices resized to 128": {**PLAIN, "size": 128},
    "U-Net generator (skip connections), 128-pixel crops": {**PLAIN, "preset": "unet", "crop": True, "size": 128},
    "a generator of 32 filters": {**PLAIN, "generator": {"ngf": 32}, "discriminator_ndf": 64},
    "learning rate 5e-4": {**PLAIN, "lr": 5e-4},
    "resize-convolution upsampling (no checkerboard)": {**PLAIN, "generator": {"upsample": "resize"}},
    "discriminators of 16 filters": {**PLAIN, "discriminator_ndf": 16},
    "structure loss 3 (MIND)": {"lambda_structure": 3.0, "amp": False},
    "structure loss 10 (MIND)": {"lambda_structure": 10.0, "amp": False},
    "structure loss 3, bfloat16 autocast": {"lambda_structure": 3.0, "amp": True},
    "structure loss 10, bfloat16 autocast": {"lambda_structure": 10.0, "amp": True},
    "learning-rate decay over the last quarter": {"decay_fraction": 0.25},
    "learning-rate decay over the last three quarters": {"decay_fraction": 0.75},
    "the former defaults (32 filters, resized to 128, identity 0.5)": {
        **PLAIN,
        "generator": {"ngf": 32},
        "discriminator_ndf": 64,
        "size": 128,
        "lambda_identity": 0.5,
    },
}
TRAIN_T1 = range(10, 41)  # the seed README's train split, as file numbers
TRAIN_T2 = range(70, 101)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:40].strip("-")


def prepare(out: Path) -> None:
    seed = default_seed_dir()
    for folder, numbers in (("T1", TRAIN_T1), ("T2", TRAIN_T2)):
        target = out / "data" / folder
        target.mkdir(parents=True, exist_ok=True)
        for n in numbers:
            png = seed / folder / f"image_{n:03d}.png"
            if png.is_file():
                shutil.copyfile(png, target / png.name)
    write_split(out / "data" / "test", "test", seed)
    counts = {f: len(list((out / "data" / f).glob("*.png"))) for f in ("T1", "T2")}
    print(
        f"prepared {out / 'data'}: {counts['T1']} T1 and {counts['T2']} T2 slices, the test split as validation pairs"
    )


def _toml(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _recipe(path: Path, settings: dict) -> Path:
    lines = [f"{k} = {_toml(v)}" for k, v in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _command(out: Path, name: str, minutes: float) -> list[str]:
    data, run = out / "data", out / "runs" / _slug(name)
    run.parent.mkdir(parents=True, exist_ok=True)
    recipe = _recipe(out / "runs" / f"{_slug(name)}.toml", SETTINGS[name])
    return [
        sys.executable,
        "-m",
        "mri_style_app",
        "train",
        "--recipe",
        str(recipe),
        "--minutes",
        f"{minutes:g}",
        "--domain-a",
        str(data / "T1"),
        "--domain-b",
        str(data / "T2"),
        "--val-a",
        str(data / "test" / "t1w"),
        "--val-b",
        str(data / "test" / "t2w"),
        "--out",
        str(run),
        "--quiet",
    ]


def run(out: Path, minutes: float, only: list[str] | None, parallel: int, threads: int) -> None:
    names = [n for n in SETTINGS if not only or n in only or _slug(n) in only]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    (out / "runs").mkdir(parents=True, exist_ok=True)
    waiting = list(names)
    running: list[tuple[str, subprocess.Popen]] = []
    while waiting or running:
        while waiting and len(running) < parallel:
            name = waiting.pop(0)
            if (out / "runs" / _slug(name) / events.MODEL_FILE).exists():
                print(f"{name}: done before, kept")
                continue
            log = open(out / "runs" / f"{_slug(name)}.log", "w")  # noqa: SIM115 (closed with the run)
            running.append(
                (
                    name,
                    subprocess.Popen(
                        _command(out, name, minutes), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
                    ),
                )
            )
            print(f"{name}: started ({minutes:g} minutes, {threads} thread(s))", flush=True)
        for name, proc in list(running):
            if proc.poll() is not None:
                running.remove((name, proc))
                print(f"{name}: ended with status {proc.returncode}", flush=True)
        time.sleep(2)


def rows(out: Path) -> list[dict]:
    table = []
    for name, settings in SETTINGS.items():
        log = events.read_events(out / "runs" / _slug(name))
        scores = [e for e in log if e.get("type") == "validation"]
        done = next((e for e in log if e.get("type") == "done"), None)
        if not scores or done is None:
            continue
        last = scores[-1]
        table.append(
            {
                "name": name,
                "settings": settings,
                "iterations": done["iteration"],
                "minutes": round(done.get("wall_seconds", 0) / 60, 1),
                **{d: last[d] for d in ("t1-to-t2", "t2-to-t1")},
                "curve": [(e["iteration"], e["ssim"]) for e in scores],
            }
        )
    return table


def markdown(table: list[dict]) -> str:
    lines = [
        "| run | iterations | T1w->T2w SSIM / PSNR | T2w->T1w SSIM / PSNR | T1w->T2w correlation with input |",
        "|---|---|---|---|---|",
    ]
    for r in table:
        a, b = r["t1-to-t2"], r["t2-to-t1"]
        lines.append(
            f"| {r['name']} | {r['iterations']} | {a['ssim']:.3f} / {a['psnr']:.2f} dB | "
            f"{b['ssim']:.3f} / {b['psnr']:.2f} dB | {a['correlation']:+.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["prepare", "run", "table"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--only", nargs="*", help="row names (or their slugs) to run")
    parser.add_argument("--parallel", type=int, default=1, help="runs at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.out)
    elif args.step == "run":
        run(args.out, args.minutes, args.only, args.parallel, args.threads)
    table = rows(args.out)
    text = markdown(table)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
