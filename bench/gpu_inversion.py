"""GPU benchmark: semedit's W+ step (compiled generator, TF32) against the NVIDIA projector
recipe on the same generator, in one run, and full Pivotal Tuning.

    python bench/gpu_inversion.py [--resolution 1024] [--steps 50] [--pti-pivot 450] [--pti-tune 350]
        [--out bench/results/gpu_inversion.md]

The projector recipe, as the StyleGAN2 paper and its projector describe it: one W code from
w_avg, images area-reduced to 256 px, a VGG16 LPIPS distance to the target (``lpips-vgg``, or
``stlpips-vgg``, the same VGG16 shift-tolerant, when the former's backbone is not local), noise maps
optimised with the multi-scale noise regulariser (weight 1e5), Adam at lr 0.1 with ramps and
early exploration noise, the generator run eagerly with exact float32. semedit's step: W+ with
its default loss (ST-LPIPS AlexNet + MSE) on the generator as the app loads it on CUDA
(compiled, TF32). Both on the same weights (the FFHQ checkpoint when it is local, else the
config-f architecture with random weights: the speed does not depend on them). Per-step
times exclude the warm-up (compilation) and are medians over ``--steps`` steps. Aim (issue
14): semedit's step <= 0.25x the projector's; full PTI (450 pivot + 350 tuning steps) at
1024 px <= 15 s on an H100. On the CPU the script runs too (small ``--resolution``), as a check.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semedit.acceleration import compile_generator, configure_tf32  # noqa: E402
from semedit.evaluation.reports import publish  # noqa: E402
from semedit.inversion import OptimizationConfig, PTIConfig, invert_optimization, invert_pti  # noqa: E402
from semedit.networks.stylegan2 import StyleGAN2Config, StyleGAN2Generator  # noqa: E402
from semedit.registry import Registry  # noqa: E402


def step_times(run, device: torch.device, warm: int) -> list:
    """Seconds of each step of ``run(progress)`` after its first ``warm`` steps (CUDA-synchronised)."""
    stamps = []

    def progress(step, total, loss):
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
    run(progress)
    return [b - a for a, b in zip(stamps[:-1], stamps[1:])][warm - 1:]


def fresh(G: StyleGAN2Generator, device: torch.device) -> StyleGAN2Generator:
    """An eager generator with G's config and weights."""
    copy = StyleGAN2Generator(G.config).to(device).eval().requires_grad_(False)
    copy.load_state_dict(G.state_dict())
    return copy


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--pti-pivot", type=int, default=450)
    ap.add_argument("--pti-tune", type=int, default=350)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/gpu_inversion.md")
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    registry = Registry.from_settings()
    local = [n for n in ("ffhq-1024-rosinality", "ffhq-1024-nvlabs") if a.resolution == 1024 and registry.is_local(n)]
    if local:
        base, source = registry.get(local[0], device), local[0]
    else:
        torch.manual_seed(0)
        base = StyleGAN2Generator(StyleGAN2Config(resolution=a.resolution))
        source = f"config-f architecture at {a.resolution} px, random weights"
    eager, compiled = fresh(base, device), compile_generator(fresh(base, device))
    target = (torch.rand(1, 3, a.resolution, a.resolution, generator=torch.Generator().manual_seed(1)) * 2 - 1)
    # the projector's VGG16 LPIPS; its shift-tolerant twin (the same VGG16, its weights in a pip
    # package) where lpips-vgg's torchvision backbone cannot be had offline: the same cost a step
    vgg_name = "lpips-vgg" if registry.is_local("lpips-vgg") else "stlpips-vgg"
    vgg = registry.get(vgg_name, device)
    alex = registry.get(registry.catalogue.default_perceptual, device)
    warm = 3

    configure_tf32(False)
    projector = OptimizationConfig(space="w", steps=a.steps + warm, pixel_weight=0.0, optimize_noise=True)
    projector_s = step_times(lambda p: invert_optimization(eager, target, projector, perceptual=vgg, device=device,
                                                           progress=p), device, warm)
    configure_tf32(True)
    ours = OptimizationConfig(space="w+", steps=a.steps + warm)
    t0 = time.perf_counter()
    ours_s = step_times(lambda p: invert_optimization(compiled, target, ours, perceptual=alex, device=device,
                                                      progress=p), device, warm)
    warmup_s = time.perf_counter() - t0 - sum(ours_s)
    pti = PTIConfig(pivot=OptimizationConfig(space="w", steps=a.pti_pivot, optimize_noise=False), tune_steps=a.pti_tune)
    t0 = time.perf_counter()
    invert_pti(compiled, target, pti, perceptual=alex, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    pti_s = time.perf_counter() - t0
    p_ms, o_ms = 1000 * statistics.median(projector_s), 1000 * statistics.median(ours_s)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    text = "\n".join([
        f"# Inversion on {gpu} at {a.resolution} px\n",
        f"`python bench/gpu_inversion.py {' '.join(sys.argv[1:] if argv is None else argv)}`; generator: {source}; "
        f"median of {len(ours_s)} steps after {warm} warm-up steps.\n",
        "| recipe | ms per step | ratio to the projector |", "|---|---|---|",
        f"| NVIDIA projector recipe (W, VGG16 LPIPS ({vgg_name}) at 256 px, noise maps, eager, float32) | {p_ms:.1f} | 1.00 |",
        f"| semedit W+ (ST-LPIPS + MSE, compiled, TF32) | {o_ms:.1f} | {o_ms / p_ms:.2f} |", "",
        f"Compilation and first steps: {warmup_s:.1f} s. Full PTI ({a.pti_pivot} pivot + {a.pti_tune} tuning steps): "
        f"{pti_s:.1f} s.", "",
        "Aims: ratio <= 0.25; full PTI (450 + 350) at 1024 px <= 15 s on an H100.",
    ]) + "\n"
    publish(text, a.out)


if __name__ == "__main__":
    main()
