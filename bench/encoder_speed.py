"""Encoder speed on the CPU: one pass of every catalogued encoder of a generator, batch 1.

    python bench/encoder_speed.py [--model embedded-portraits-64] [--threads 2] [--out bench/results/encoder_speed.md]

For each encoder: the encoder network alone (one pass; ReStyle and HyperStyle: one of their
refinement steps), and the whole inversion as the app runs it (codes and image; ReStyle and
HyperStyle with all their iterations), beside the generator's forward pass measured in the same
run (medians of alternating repeats, so load on the machine falls on all alike). Aim (issue 15):
one encoder pass at 64 px <= 50 ms on 2 cores.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semedit import pipeline  # noqa: E402
from semedit.encoders import encode, hyperstyle  # noqa: E402
from semedit.evaluation.reports import alternating_medians, publish  # noqa: E402
from semedit.latents import Latent, synthesize  # noqa: E402
from semedit.networks.hyperstyle import HyperStyleModel  # noqa: E402
from semedit.registry import Registry  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded-portraits-64")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/encoder_speed.md")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    registry = Registry.from_settings()
    G = registry.get(a.model, "cpu")
    res = G.config.resolution
    target = torch.rand(1, 3, res, res, generator=torch.Generator().manual_seed(0)) * 2 - 1
    z = torch.randn(1, G.config.z_dim)
    keys = [k for k in pipeline.method_keys(registry, a.model) if k.startswith(pipeline.ENCODER_PREFIX)]
    rows = []
    for key in keys:
        name = key[len(pipeline.ENCODER_PREFIX):]
        enc = registry.get(name, "cpu")
        label = registry.catalogue.get(name).config.get("method", name)
        if isinstance(enc, HyperStyleModel):
            initial = registry.get(registry.catalogue.get(name).config["w_encoder"], "cpu")
            size = enc.config.input_size
            pair = torch.nn.functional.interpolate(torch.cat([target, target], 1), size=(size, size))
            one, whole = (lambda: enc(pair)), (lambda: hyperstyle(enc, initial, G, target))
        else:
            cfg = enc.config.encoder
            x = torch.nn.functional.interpolate(torch.cat([target] * (cfg.input_nc // 3), 1),
                                                size=(cfg.input_size, cfg.input_size))
            one, whole = (lambda: enc(x)), (lambda: encode(enc, G, target))
        steps = enc.config.iterations
        t_one, t_whole, t_g = alternating_medians([one, whole, lambda: synthesize(G, Latent("w", G.mapping(z)))],
                                                  repeats=a.repeats)
        params = sum(p.numel() for p in enc.parameters())
        rows.append(f"| {label} (`{name}`) | {params / 1e6:.2f} M | {t_one * 1000:.1f} | {t_one / t_g:.2f} | "
                    f"{steps} | {t_whole * 1000:.1f} | {t_whole / t_g:.2f} |")
        print(rows[-1], flush=True)
    g_ms = alternating_medians([lambda: synthesize(G, Latent("w", G.mapping(z)))], repeats=a.repeats)[0] * 1000
    text = "\n".join([
        f"# Encoder speed on `{a.model}` ({res} px), batch 1, {a.threads} CPU threads\n",
        f"`{' '.join(['python bench/encoder_speed.py', *(sys.argv[1:] if argv is None else argv)])}`; medians of "
        f"{a.repeats} alternating repeats. G forward (mapping + synthesis): {g_ms:.1f} ms.\n",
        "| encoder | parameters | one pass ms | x G forward | iterations | whole inversion ms | x G forward |",
        "|---|---|---|---|---|---|---|", *rows, "",
        "One pass: the encoder network once (ReStyle, HyperStyle: one refinement step's network). Whole "
        "inversion: codes and image as the app computes them (every iteration's network and synthesis). "
        "Aim: one encoder pass at 64 px <= 50 ms on 2 cores.",
    ]) + "\n"
    publish(text, a.out)


if __name__ == "__main__":
    main()
