"""Training speed: iterations per second of the CycleGAN step, per preset and image size.

Three steps side by side on the same networks and data:
  reference  a straightforward step as the reference repository writes it (fp32, separate
             forward/backward calls, zero_grad to zeros, both discriminator losses backpropagated
             one by one), written out here;
  ours-fp32  mri_style_app.cyclegan.train.Trainer.train_step (what `mri-style train` runs) in float32;
  ours-bf16  the same with bfloat16 autocast (--amp; the default on a CPU with native bfloat16).
"ours" includes the structure loss (on by default); the reference step has none. Each "ours" step
runs in both tensor layouts, the default (nchw) and channels-last (nhwc), side by side; a `*`
marks the layout the trainer picks for the preset (networks.memory_format).

    .venv/bin/python benchmarks/train.py                       # CPU, lite/unet/standard at 128 and 256
    .venv/bin/python benchmarks/train.py --device cuda --iterations 20
Batch size 1 (the reference setting); a few timed iterations after warm-up ones.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mri_style_app.cyclegan.data import write_png  # noqa: E402
from mri_style_app.cyclegan.losses import ImagePool  # noqa: E402
from mri_style_app.cyclegan.train import Trainer  # noqa: E402
from mri_style_app.cyclegan.train_config import TrainConfig  # noqa: E402


def _reference_step(t: Trainer, real_A, real_B, generator) -> None:
    """The reference optimize_parameters(): forward, G step with D frozen, then D_A and D_B."""
    fake_B = t.G_A(real_A)
    rec_A = t.G_B(fake_B)
    fake_A = t.G_B(real_B)
    rec_B = t.G_A(fake_A)
    for p in [*t.D_A.parameters(), *t.D_B.parameters()]:
        p.requires_grad = False
    t.opt_G.zero_grad()
    idt_A = t.G_A(real_B)
    idt_B = t.G_B(real_A)
    pred_a, pred_b = t.D_A(fake_B), t.D_B(fake_A)
    loss_G = (
        F.mse_loss(pred_a, torch.ones_like(pred_a))
        + F.mse_loss(pred_b, torch.ones_like(pred_b))
        + F.l1_loss(rec_A, real_A) * 10
        + F.l1_loss(rec_B, real_B) * 10
        + F.l1_loss(idt_A, real_B) * 5
        + F.l1_loss(idt_B, real_A) * 5
    )
    loss_G.backward()
    t.opt_G.step()
    for p in [*t.D_A.parameters(), *t.D_B.parameters()]:
        p.requires_grad = True
    t.opt_D.zero_grad()
    for D, real, fake, pool in ((t.D_A, real_B, fake_B, t.ref_pool_B), (t.D_B, real_A, fake_A, t.ref_pool_A)):
        fake = pool.query(fake, generator)
        pr, pf = D(real), D(fake.detach())
        loss = (F.mse_loss(pr, torch.ones_like(pr)) + F.mse_loss(pf, torch.zeros_like(pf))) * 0.5
        loss.backward()
    t.opt_D.step()


def _make_data(folder: Path) -> None:
    """Two tiny folders of smooth 'slices': the step time does not depend on what they show."""
    for domain, phase in (("A", 0.0), ("B", 1.0)):
        (folder / domain).mkdir(parents=True)
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, 96), torch.linspace(-1, 1, 96), indexing="ij")
        for i in range(4):
            img = ((xx**2 + yy**2) < 0.8) * (120 + 100 * torch.cos(6 * xx + phase + i) * torch.sin(5 * yy))
            write_png(folder / domain / f"s{i}.png", img.clamp(0, 255).to(torch.uint8).numpy())


def _time(step, warmup: int, iterations: int, sync) -> float:
    for _ in range(warmup):
        step()
    sync()
    began = time.perf_counter()
    for _ in range(iterations):
        step()
    sync()
    return (time.perf_counter() - began) / iterations


LAYOUTS = {"nchw": torch.contiguous_format, "nhwc": torch.channels_last}


def _measure(tmp: str, preset: str, size: int, kind: str, layout: str, iterations: int, args, sync) -> dict:
    device = torch.device(args.device)
    cfg = TrainConfig(
        domain_a=f"{tmp}/A",
        domain_b=f"{tmp}/B",
        out=f"{tmp}/run",
        preset=preset,
        size=size,
        iterations=1000,
        device=args.device,
        amp=kind == "ours-bf16",
        augment=False,
    )
    trainer = Trainer(cfg)
    trainer._build()
    chosen = "*" if trainer.layout == LAYOUTS[layout] and kind != "reference" else " "
    trainer.use_memory_format(LAYOUTS[layout])
    trainer.ref_pool_A, trainer.ref_pool_B = ImagePool(50), ImagePool(50)
    gen = torch.Generator().manual_seed(0)
    a = trainer.batches_a.next(gen).to(device)
    b = trainer.batches_b.next(gen).to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if kind == "reference":
        step = functools.partial(_reference_step, trainer, a, b, gen)
    else:
        step = functools.partial(trainer.train_step, a, b)
    seconds = _time(step, args.warmup, iterations, sync)
    row = {
        "preset": preset,
        "size": size,
        "step": kind,
        "layout": layout,
        "trainer_layout": chosen == "*",
        "seconds_per_iteration": round(seconds, 4),
        "iterations_per_second": round(1 / seconds, 3),
        "timed_iterations": iterations,
    }
    if device.type == "cuda":
        row["peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    extra = f"  {row['peak_gpu_memory_mib']:.0f} MiB" if "peak_gpu_memory_mib" in row else ""
    print(
        f"{preset:<9} {size:>5} {kind:<10} {layout + chosen:<7} {seconds:>8.3f} {1 / seconds:>8.2f}{extra}", flush=True
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="lite,unet,standard")
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--iterations", type=int, default=0, help="timed iterations (default: 3 at 128 px, 2 above)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", default="reference,ours-fp32,ours-bf16")
    parser.add_argument("--layouts", default="nchw,nhwc", help="layouts of the 'ours' steps")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"training step benchmark on {name}, torch {torch.__version__}, batch size 1")
    print(f"{'preset':<9} {'size':>5} {'step':<10} {'layout':<7} {'s/iter':>8} {'iter/s':>8}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        _make_data(Path(tmp))
        for preset in args.presets.split(","):
            for size in (int(s) for s in args.sizes.split(",")):
                iterations = args.iterations or (3 if size <= 128 else 2)
                for kind in args.steps.split(","):
                    for layout in ["nchw"] if kind == "reference" else args.layouts.split(","):
                        results.append(_measure(tmp, preset, size, kind, layout, iterations, args, sync))
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak process memory {peak_rss:.0f} MiB")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"device": name, "torch": torch.__version__, "results": results, "peak_rss_mib": round(peak_rss)},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
