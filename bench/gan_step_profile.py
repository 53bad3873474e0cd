"""Where one adversarial training step's time goes, on the device the trainer picks.

    python bench/gan_step_profile.py [trainer flags: --size full --batch 128 --gamma 0.1 --mapping-layers 8]
        [--warmup 10] [--steps 32] [--profile-steps 16] [--out bench/results/gan_step_profile.md]

On 2026-12-04 an H200 trained the full-width GAN (a 4M-parameter generator at 64 px) at about 850
images/s at batch 128, 150 ms a step: far below what the chip computes, so a GPU call should
first say why. Measured on the training device, synchronised, after ``--warmup`` steps: one
block of renders (``render_block`` steps' real images, drawn at once; its share of a step), a
step with its renders drawn beforehand, and ``--profile-steps`` steps under torch.profiler:
the device's busy share of the wall clock (low: the host is the bottleneck, launches or syncs),
kernels and operator calls per step, and the operations that take the most device and host time.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semedit.evaluation.reports import publish  # noqa: E402
from semedit.settings import resolve_device  # noqa: E402
from semedit.training.data import rendered_batch, step_generator  # noqa: E402
from semedit.training.gan import GANTrainer, command_line, config_from_args, favour_training_speed  # noqa: E402


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds(fn, device: torch.device, repeats: int) -> float:
    """Mean wall-clock seconds of ``fn()`` over ``repeats`` calls, the device synchronised."""
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return (time.perf_counter() - t0) / repeats


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--steps", type=int, default=32, help="timed steps, renders drawn beforehand")
    ap.add_argument("--profile-steps", type=int, default=16,
                    help="profiled steps (16: every lazy regulariser runs once)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/gan_step_profile.md")
    a, trainer_flags = ap.parse_known_args(argv)
    t = command_line().parse_args(["--work-dir", "unused", *trainer_flags])
    device = resolve_device(t.device)
    favour_training_speed(device)  # as the trainer runs
    cfg = config_from_args(t)
    trainer = GANTrainer(cfg, device)
    for _ in range(a.warmup):
        trainer.train_step()

    block = cfg.batch * cfg.render_block
    render_s = seconds(lambda: rendered_batch(block, cfg.generator.resolution,
                                              step_generator(cfg.seed, 0, device, 1)), device, 2)
    real = trainer.renders(trainer.step)
    trainer.renders = lambda step: real  # the steps below: renders already drawn
    step_s = seconds(trainer.train_step, device, a.steps)

    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    synchronize(device)
    t0 = time.perf_counter()
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(a.profile_steps):
            trainer.train_step()
        synchronize(device)
    profiled_s = time.perf_counter() - t0
    events = prof.key_averages()
    on_device = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]  # kernels, copies
    kernels, busy_s = len(on_device), sum(e.time_range.elapsed_us() for e in on_device) / 1e6
    n = a.profile_steps

    lines = ["# One adversarial training step: where the time goes\n",
             f"`python bench/gan_step_profile.py {' '.join(sys.argv[1:] if argv is None else argv)}` on "
             f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}; "
             f"generator widths {list(cfg.generator.channels)}, {cfg.generator.mapping_layers} mapping layers, "
             f"batch {cfg.batch}\n",
             "| measure | value |", "|---|---|",
             f"| step, renders drawn beforehand | {step_s * 1e3:.1f} ms ({cfg.batch / step_s:.0f} images/s) |",
             f"| renders, per step (a block of {block} drawn at once) | {render_s / cfg.render_block * 1e3:.1f} ms "
             f"({render_s / cfg.render_block / (step_s + render_s / cfg.render_block):.0%} of a step with them) |",
             f"| step under the profiler | {profiled_s / n * 1e3:.1f} ms |",
             "| device busy, share of the profiled wall clock | "
             + (f"{busy_s / profiled_s:.0%} |" if device.type == "cuda" else "n/a (cpu) |"),
             f"| kernels and copies on the device per step | {kernels / n:.0f} |",
             f"| operator calls per step (nested included) | {sum(e.count for e in events) / n:.0f} |", ""]
    if device.type == "cuda":
        key = "self_device_time_total" if hasattr(events[0], "self_device_time_total") else "self_cuda_time_total"
        lines += ["## Most device time\n", "```", events.table(sort_by=key, row_limit=15), "```", ""]
    lines += ["## Most host time\n", "```", events.table(sort_by="self_cpu_time_total", row_limit=15), "```", ""]
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
