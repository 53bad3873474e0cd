"""Benchmark: seconds per optimisation step of every inversion method, and ChunkyGAN's cost
for n = 2, 4, 8 chunks relative to a single-code W+ step.

    python bench/bench_inversion.py [--models NAME ...] [--steps 30] [--steps-256 4] [--skip-256]

Models: the catalogue's embedded generators (default: the app's default generator; name several
to compare them in one run) and the 256 px config-f architecture with random weights. Per-step
time is measured between the first and the last step (set-up excluded); each model also gets a
row for one generator forward pass at batch 1 (median of 20, no gradient), in the column of
seconds, its ratio against the same model's W+ step. Writes bench/results/inversion_speed.md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from semedit.evaluation.reports import alternating_medians  # noqa: E402
from semedit.inversion import ChunkyConfig, OptimizationConfig, PTIConfig  # noqa: E402
from semedit.inversion import invert_chunky, invert_optimization, invert_pti  # noqa: E402
from semedit.networks.stylegan2 import StyleGAN2Config, StyleGAN2Generator  # noqa: E402
from semedit.registry import Registry  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "inversion_speed.md"


def per_step(run, steps: int) -> float:
    """Median-free, robust enough: time between step 1 and step ``steps``."""
    stamps = {}

    def progress(step, total, loss):
        if step in (1, steps) or (step == total):
            stamps[step] = time.perf_counter()

    run(progress)
    last = max(stamps)
    return (stamps[last] - stamps[1]) / (last - 1)


def forward_seconds(G, repeats: int = 20) -> float:
    """Median seconds of one synthesis pass from a mapped code at batch 1."""
    with torch.no_grad():
        ws = G.broadcast(G.mapping(torch.randn(1, G.config.z_dim)))
    return alternating_medians([lambda: G.synthesis(ws, noise_mode="const")], repeats, warmup=1)[0]


def bench_model(name: str, G, perceptual, steps: int, chunk_counts) -> list:
    device = torch.device("cpu")
    target = torch.rand(1, 3, G.config.resolution, G.config.resolution) * 2 - 1
    common = dict(perceptual=perceptual, device=device)
    rows = {"generator forward, batch 1": forward_seconds(G)}
    for space in ("w", "w+", "s"):
        cfg = OptimizationConfig(space=space, steps=steps)
        rows[f"{space.upper()} optimisation"] = per_step(
            lambda p: invert_optimization(G, target, cfg, progress=p, **common), steps)
    pti = PTIConfig(pivot=OptimizationConfig(space="w", steps=2, optimize_noise=False), tune_steps=steps)
    stamps = []
    invert_pti(G, target, pti, progress=lambda s, t, loss: stamps.append(time.perf_counter()) if s > 2 else None,
               **common)
    rows["Pivotal Tuning (tuning step)"] = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    for n in chunk_counts:
        cfg = ChunkyConfig(n_chunks=n, steps=steps, mask_init="bands")
        rows[f"ChunkyGAN W+ n={n}"] = per_step(lambda p: invert_chunky(G, target, cfg, progress=p, **common), steps)
    base = rows["W+ optimisation"]
    return [(name, method, sec, sec / base) for method, sec in rows.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=None, help="catalogue generators (default: the app's default)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--steps-256", type=int, default=4)
    ap.add_argument("--skip-256", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    registry = Registry.from_settings()
    perceptual = registry.get(registry.catalogue.default_perceptual, "cpu")
    models = a.models or [registry.catalogue.default_generator]
    rows = [row for name in models
            for row in bench_model(name, registry.get(name, "cpu"), perceptual, a.steps, (2, 4, 8))]
    if not a.skip_256:
        torch.manual_seed(0)
        G256 = StyleGAN2Generator(StyleGAN2Config(resolution=256)).eval().requires_grad_(False)
        rows += bench_model("config-f 256 px (random)", G256, perceptual, a.steps_256, (2, 4))
    w_plus = {r[0]: r[2] for r in rows if r[1] == "W+ optimisation"}
    lines = ["| model | method | s / step | x W+ step |", "|---|---|---|---|"]
    lines += [f"| {m} | {meth} | {sec:.3f} | {ratio:.2f} |" for m, meth, sec, ratio in rows]
    text = (f"# Inversion speed on CPU ({torch.get_num_threads()} threads, torch {torch.__version__})\n\n"
            f"`python bench/bench_inversion.py {' '.join(sys.argv[1:])}`, perceptual model "
            f"{perceptual.name}.\n\n" + "\n".join(lines) +
            "\n\n" + "".join(f"300 W+ steps on {name}: {300 * w_plus[name]:.1f} s.\n" for name in models))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
