"""The seed paper's projection table in miniature, on the embedded domain.

    python bench/inversion_table.py [--in-domain 20] [--ood 10] [--steps 150]

Targets are held-out renderer "photographs" (rendered at 256 px, area-resized to the
generator's 64 px), in-domain and with out-of-domain accessories. Every method runs with the
same steps; the loss uses the catalogue's default perceptual model (ST-LPIPS AlexNet) and the
table scores with a different one (ST-LPIPS VGG), so no method is graded by its own loss.
Writes bench/results/inversion_table.md (mean +- std per method and set).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from semedit import pipeline  # noqa: E402
from semedit.imaging import resize  # noqa: E402
from semedit.inversion.suite import Knobs, context_for  # noqa: E402
from semedit.metrics import mse, psnr  # noqa: E402
from semedit.registry import Registry  # noqa: E402
from semedit.targets import Target  # noqa: E402
from semedit.synth.params import ACCESSORIES, sample_portraits, stack  # noqa: E402
from semedit.synth.render import render  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "inversion_table.md"
TABLE_SEED = 40_000_000
#: (label, method key, knob overrides)
METHODS = [
    ("W", "w", {}),
    ("W+", "w+", {}),
    ("PTI", "pti", {}),
    ("ChunkyGAN W+ (n=4, lambda=1)", "chunky", {"lambda_reg": 1.0}),
    ("ChunkyGAN W+ (n=4, lambda=0)", "chunky", {"lambda_reg": 0.0}),
]


def targets(n_in: int, n_ood: int, size: int):
    """(set name, Target at ``size`` px with its ground truth) pairs from held-out seeds."""
    p = sample_portraits(n_in + n_ood, seed=TABLE_SEED)
    ood = [p.select(n_in + i).with_accessory(ACCESSORIES[1 + i % (len(ACCESSORIES) - 1)]) for i in range(n_ood)]
    batch = stack([p.select(slice(0, n_in))] + ood)
    images = resize(render(batch, 256).image, size)
    return [("in-domain" if i < n_in else "out-of-domain", Target.from_image(images[i:i + 1], truth=batch.select(i)))
            for i in range(n_in + n_ood)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--in-domain", type=int, default=20)
    ap.add_argument("--ood", type=int, default=10)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--pti-tune-steps", type=int, default=100)
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    registry = Registry.from_settings()
    model = registry.catalogue.default_generator
    G = registry.get(model, "cpu")
    ctx = context_for(registry, model)
    loss_model = ctx.perceptual
    judge = registry.get("stlpips-vgg", ctx.device)
    scores = {}  # (set, method) -> list of (lpips, mse, psnr, seconds)
    t0 = time.time()
    for i, (subset, target) in enumerate(targets(a.in_domain, a.ood, G.config.resolution)):
        for label, key, over in METHODS:
            knobs = Knobs(steps=a.steps, n_chunks=4, pti_tune_steps=a.pti_tune_steps, **over)
            (o,) = pipeline.invert(registry, model, target, [key], knobs, ctx=ctx)
            r, image = o.result, target.image
            with torch.no_grad():
                lp = float(judge(r.image.to(ctx.device), image.to(ctx.device)))
            scores.setdefault((subset, label), []).append((lp, mse(r.image, image), psnr(r.image, image), r.seconds,
                                                           o.scores.identity))
        print(f"image {i + 1}: {time.time() - t0:.0f}s", flush=True)
    lines = ["| set | method | LPIPS (ST-VGG) | L2 (MSE) | PSNR dB | seconds | identity distance |",
             "|---|---|---|---|---|---|---|"]
    for (subset, label), v in scores.items():
        v = np.array(v)
        m, s = v.mean(0), v.std(0)
        lines.append(f"| {subset} (n={len(v)}) | {label} | {m[0]:.4f} ± {s[0]:.4f} | {m[1]:.5f} ± {s[1]:.5f} "
                     f"| {m[2]:.2f} ± {s[2]:.2f} | {m[3]:.1f} | {m[4]:.4f} ± {s[4]:.4f} |")
    text = (f"# Inversion on the embedded domain: {a.in_domain} in-domain + {a.ood} out-of-domain targets\n\n"
            f"`python bench/inversion_table.py {' '.join(sys.argv[1:])}` on `{model}`, loss model "
            f"{loss_model.name}, scored with {judge.name}; {a.steps} steps per method (PTI: {a.steps} pivot + "
            f"{a.pti_tune_steps} tuning steps); identity distance from the embedded parameter regressor "
            "(RMS difference of predicted identity parameters).\n\n"
            + "\n".join(lines) + f"\n\nTotal time {time.time() - t0:.0f} s.\n")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
