"""Translation speed: the whole command and the fast path against the naive baseline, and whether
the fast path gives the same answer, measured side by side in one run.

    .venv/bin/python benchmarks/translate.py [--presets unet lite] [--baseline-slices 10] [--tri]

Takes a few minutes on 2 cores (the plain reference run dominates); each preset adds its own.

- baseline: the reference ResNet-9 ngf 64 generator in fp32, every slice padded to 256x256 and
  run one at a time (timed on N slices and extrapolated to the volume's slice count).
- command: `mri-style translate --model M` of the demo volume as a user runs it, a fresh
  process: imports, load, translate and gzip save; and each phase of it timed in this process.
  The command's process ends without the interpreter's teardown (`mri_style_app.__main__.QUICK_EXIT`).
- fast path: translate_volume (axial) with each bundled model (default and fast), or
  random-weight models of the given presets when neither file is there. Speed does not depend on the weights.
- fidelity: PSNR (inside the foreground mask, [0, 1] units) between the fast path and the same
  model run plainly: fp32, one whole slice at a time, every slice, no skipping, no batching.
- shift: the plain run of the head moved by one voxel against the plain run, on a few slices: how
  much a generator with strided convolutions depends on where the head sits in the slice (the
  fast path cuts each slice to the head's window, so it sits elsewhere than in the plain run).
- bf16: CPU autocast timed and compared against fp32 on a few slices.
GPU figures follow when CUDA is available.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mri_style_app import paths  # noqa: E402
from mri_style_app.cyclegan import checkpoint as ck  # noqa: E402
from mri_style_app.cyclegan.device import configure_threads, describe_device  # noqa: E402
from mri_style_app.cyclegan.networks import build_generator, init_weights  # noqa: E402
from mri_style_app.cyclegan.translate import normalise_volume, run_generator, translate_volume  # noqa: E402
from mri_style_app.imaging.metrics import psnr  # noqa: E402
from mri_style_app.imaging.volume import Volume, load_volume, save_volume  # noqa: E402

SHAPE = (197, 233, 189)


def test_volume() -> Volume:
    if paths.demo_t1_path().exists():
        vol = load_volume(paths.demo_t1_path())
        print(f"volume: demo T1 {paths.demo_t1_path().name} {vol.shape}")
        return vol
    grids = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in SHAPE], indexing="ij")
    r = np.sqrt(sum((g / 0.8) ** 2 for g in grids))
    data = np.where(r < 1, 600 + 300 * np.cos(6 * r), 0).astype(np.float32)
    print(f"volume: synthetic head {SHAPE} (the demo T1 is missing)")
    return Volume(data=data, affine=np.eye(4), name="synthetic")


def random_model(preset: str) -> ck.CycleGANModel:
    torch.manual_seed(0)
    net = build_generator(preset)
    init_weights(net)
    return ck.CycleGANModel(None, ck.make_card(preset, ["t1-to-t2"]), {"t1-to-t2": net.eval()})


def baseline_seconds(n_slices: int, volume_slices: int) -> float:
    net = build_generator("standard").eval()
    init_weights(net)
    x = torch.rand(1, 1, 256, 256) * 2 - 1
    with torch.inference_mode():
        net(x)  # warm-up
        start = time.perf_counter()
        for _ in range(n_slices):
            net(x)
        per_slice = (time.perf_counter() - start) / n_slices
    total = per_slice * volume_slices
    print(
        f"baseline (standard ngf 64, 9 blocks, fp32, 256x256, one slice at a time): "
        f"{per_slice:.3f} s/slice, timed on {n_slices} slices, extrapolated to {volume_slices} slices: "
        f"{total:.1f} s"
    )
    return total


def plain_unit(volume: Volume, model: ck.CycleGANModel, autocast_bf16: bool = False, limit=None) -> np.ndarray:
    """The same model run plainly: fp32, one whole axial slice at a time, every slice."""
    unit, _, _ = normalise_volume(volume.data, model.normalisation, "t1")
    net = model.generator("t1-to-t2")
    out = np.zeros_like(unit)
    ks = range(unit.shape[2]) if limit is None else limit
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast_bf16):
        for k in ks:
            view = np.rot90(unit[:, :, k] * 2 - 1)  # superior or anterior up, as training saw slices
            y = run_generator(net, torch.from_numpy(np.ascontiguousarray(view))[None, None]).float()
            out[:, :, k] = np.rot90(((y[0, 0] + 1) / 2).clamp(0, 1).numpy(), -1)
    return out


def command_seconds(source: Path, model: Path | None, runs: int = 2) -> float:
    """Wall time of the whole `mri-style translate` command in a fresh process (best of `runs`)."""
    best = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "mri_style_app",
                    "translate",
                    str(source),
                    str(Path(tmp) / "out.nii.gz"),
                    "--direction",
                    "t1-to-t2",
                    "--quiet",
                    *(["--model", str(model)] if model else []),
                ],
                check=True,
            )
            best = min(best, time.perf_counter() - start)
    return best


def phases(source: Path, model: ck.CycleGANModel) -> dict[str, float]:
    """Seconds of each phase of the command, in this process (imports timed in a fresh one, which
    ends as the command does, without the interpreter's teardown; the teardown it skips beside)."""
    imports = "import mri_style_app.cyclegan.translate, mri_style_app.imaging.volume"
    seconds = {}
    for name, code in (("quick", f"{imports}, os; os._exit(0)"), ("teardown", imports)):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        seconds[name] = time.perf_counter() - start
    out = {
        "imports (fresh process)": seconds["quick"],
        "interpreter teardown the command skips": seconds["teardown"] - seconds["quick"],
    }
    start = time.perf_counter()
    volume = load_volume(source)
    out["load"] = time.perf_counter() - start
    start = time.perf_counter()
    result = translate_volume(volume, model, "t1-to-t2", device="cpu")
    out["translate_volume"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        save_volume(result, Path(tmp) / "out.nii.gz")
        out["gzip save"] = time.perf_counter() - start
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--presets",
        nargs="*",
        default=["unet", "lite"],
        help="random-weight presets to time when the default model is missing",
    )
    parser.add_argument("--baseline-slices", type=int, default=10)
    parser.add_argument("--tri", action="store_true", help="time tri-planar fusion too")
    args = parser.parse_args()

    threads = configure_threads()
    print(f"device: {describe_device('cpu')}, torch {torch.__version__}, {threads} intra-op threads")
    volume = test_volume()
    unit, _, mask = normalise_volume(volume.data)
    baseline = baseline_seconds(args.baseline_slices, volume.shape[2])

    bundled = {name: path for name, path in paths.bundled_models().items() if path.exists()}
    if bundled:
        models = {name: ck.load_model(path) for name, path in bundled.items()}
        for name, path in bundled.items():
            print(f"[{name}] model: {path.name} ({models[name].preset})")
    else:
        models = {p: random_model(p) for p in args.presets}
        print(
            f"fast path model: {paths.default_model_path().name} is missing; random-weight "
            f"{', '.join(args.presets)} models instead (speed does not depend on the weights)"
        )
    kept = int(mask.any(axis=(0, 1)).sum())
    print(f"axial slices with foreground: {kept} of {volume.shape[2]}")
    for name, path in bundled.items():
        if volume.source_path is None:
            break
        seconds = command_seconds(volume.source_path, path)
        print(
            f"[{name}] whole command (mri-style translate, fresh process): {seconds:.2f} s, "
            f"{baseline / seconds:.1f}x faster than the baseline (goal: at least 20x)"
        )
        for phase, value in phases(volume.source_path, models[name]).items():
            print(f"[{name}]   {phase}: {value:.2f} s")

    for name, model in models.items():
        translate_volume(volume, model, "t1-to-t2", device="cpu", batch_size=None)  # warm-up
        start = time.perf_counter()
        fast = translate_volume(volume, model, "t1-to-t2", device="cpu")
        seconds = time.perf_counter() - start
        print(
            f"[{name}] fast path, axial, CPU: {seconds:.2f} s per volume "
            f"({seconds / kept * 1000:.0f} ms per slice), {baseline / seconds:.1f}x faster than the baseline "
            f"(goal: under 5 s and at least 20x)"
        )
        start = time.perf_counter()
        plain = plain_unit(volume, model)
        plain_seconds = time.perf_counter() - start
        t1_scale = normalise_volume(volume.data, model.normalisation, "t1")[1]  # as translate_volume scaled it
        fast_unit = fast.data / t1_scale
        print(
            f"[{name}] plain run of the same model: {plain_seconds:.2f} s; PSNR fast vs plain inside the "
            f"foreground: {psnr(fast_unit, plain, mask):.1f} dB (goal > 40 dB for a per-voxel model; for one with context, its shift variance below)"
        )
        # bf16 autocast on a few central slices: only worth it if faster and faithful.
        ks = range(volume.shape[2] // 2 - 4, volume.shape[2] // 2 + 4)
        t0 = time.perf_counter()
        fp32 = plain_unit(volume, model, False, ks)
        t1 = time.perf_counter()
        bf16 = plain_unit(volume, model, True, ks)
        t2 = time.perf_counter()
        sub = (slice(None), slice(None), slice(ks.start, ks.stop))
        # The yardstick for "fast vs plain": strided convolutions make a generator with context
        # depend on where the head sits in the slice, so the plain run moved by one voxel differs too.
        moved = volume.with_data(np.roll(volume.data, 1, axis=0))
        shifted = np.roll(plain_unit(moved, model, False, ks), -1, axis=0)
        print(
            f"[{name}] plain run of the head moved one voxel vs in place, inside the foreground: "
            f"{psnr(shifted[sub], fp32[sub], mask[sub]):.1f} dB (the generator's own shift variance)"
        )
        print(
            f"[{name}] CPU bf16 autocast: {(t2 - t1) / len(ks) * 1000:.0f} ms/slice vs fp32 "
            f"{(t1 - t0) / len(ks) * 1000:.0f} ms/slice, PSNR bf16 vs fp32 {psnr(bf16[sub], fp32[sub], mask[sub]):.1f} dB"
        )
        if args.tri:
            start = time.perf_counter()
            translate_volume(volume, model, "t1-to-t2", planes="tri", device="cpu")
            print(f"[{name}] tri-planar, CPU: {time.perf_counter() - start:.2f} s per volume")
        if torch.cuda.is_available():
            translate_volume(volume, model, "t1-to-t2", device="cuda")  # warm-up
            torch.cuda.synchronize()
            start = time.perf_counter()
            gpu = translate_volume(volume, model, "t1-to-t2", device="cuda")
            gpu_seconds = time.perf_counter() - start
            start = time.perf_counter()
            translate_volume(volume, model, "t1-to-t2", planes="tri", device="cuda")
            tri_seconds = time.perf_counter() - start
            print(
                f"[{name}] GPU {describe_device('cuda')}: axial {gpu_seconds:.2f} s, tri {tri_seconds:.2f} s per "
                f"volume; PSNR fp16 GPU vs fp32 plain {psnr(gpu.data / t1_scale, plain, mask):.1f} dB"
            )


if __name__ == "__main__":
    main()
