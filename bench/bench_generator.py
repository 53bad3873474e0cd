"""Benchmark: StyleGAN2 config-f (random weights) forward and forward+backward on this machine.

    python bench/bench_generator.py [--resolutions 256 1024] [--batches 1 4] [--repeats 3]

Prints a table and writes it to bench/results/generator.md. GFLOP/s uses FLOPs counted by
torch.utils.flop_counter (on the unfused path, for both); "% peak" divides by a large float32
matmul measured in the same run.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from semedit.networks.stylegan2 import StyleGAN2Config, StyleGAN2Generator  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "generator.md"


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def matmul_peak_gflops(n: int = 4096, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / timed(lambda: a @ b, repeats) / 1e9


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def bench_case(G: StyleGAN2Generator, batch: int, fused: bool, repeats: int):
    ws = G.broadcast(G.mapping(torch.randn(batch, G.config.z_dim))).detach()

    def forward():
        with torch.no_grad():
            G.synthesis(ws, fused=fused)

    def forward_backward():
        x = ws.clone().requires_grad_(True)
        G.synthesis(x, fused=fused).square().mean().backward()

    G.requires_grad_(True)
    # The model's arithmetic is the same on both paths, so FLOPs are counted once, on the
    # unfused one: torch's counter over-counts the grouped-convolution backward of the fused
    # path (about 2x at batch 4). Counted with autograd on (the counter's module hooks need it).
    f_flops = count_flops(lambda: G.synthesis(ws, fused=False))
    fb_flops = count_flops(lambda: G.synthesis(ws.clone().requires_grad_(True), fused=False).square().mean().backward())
    f_t, fb_t = timed(forward, repeats), timed(forward_backward, repeats)
    G.zero_grad(set_to_none=True)
    return f_t, f_flops, fb_t, fb_flops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolutions", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    torch.manual_seed(0)
    peak = matmul_peak_gflops()
    header = (f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
              f"torch {torch.__version__}. Peak (4096^2 float32 matmul): {peak:.1f} GFLOP/s.\n\n"
              "| resolution | batch | modconv | forward s | fwd GFLOP | fwd GFLOP/s | fwd % peak "
              "| fwd+bwd s | fwd+bwd GFLOP | fwd+bwd GFLOP/s | fwd+bwd % peak |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|")
    print(header, flush=True)
    rows = []
    for res in a.resolutions:
        G = StyleGAN2Generator(StyleGAN2Config(resolution=res)).eval()  # config-f widths
        for batch in a.batches:
            for fused in (True, False):
                f_t, f_fl, fb_t, fb_fl = bench_case(G, batch, fused, a.repeats)
                row = (f"| {res} | {batch} | {'fused' if fused else 'unfused'} | {f_t:.3f} | {f_fl / 1e9:.1f} "
                       f"| {f_fl / f_t / 1e9:.1f} | {100 * f_fl / f_t / 1e9 / peak:.0f}% | {fb_t:.3f} "
                       f"| {fb_fl / 1e9:.1f} | {fb_fl / fb_t / 1e9:.1f} | {100 * fb_fl / fb_t / 1e9 / peak:.0f}% |")
                print(row, flush=True)
                rows.append(row)
        del G
    a.out.parent.mkdir(parents=True, exist_ok=True)
    cmd = "python bench/bench_generator.py " + " ".join(sys.argv[1:])
    a.out.write_text(f"# StyleGAN2 config-f generator on CPU\n\n`{cmd.strip()}`\n\n{header}\n" + "\n".join(rows) + "\n")
    print(f"\nwritten to {a.out}")


if __name__ == "__main__":
    main()
