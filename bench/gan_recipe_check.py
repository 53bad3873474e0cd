"""Does the adversarial recipe learn the embedded domain? A reduced copy of it, trained on the CPU.

    python bench/gan_recipe_check.py [--minutes 30] [--gammas auto 0.1] [--eval-minutes 6]
        [--out bench/results/gan_recipe_check.md]

The GPU run of ``semedit.training.gan`` is rare and short, so the recipe is checked here first, at
32 px with a quarter of the embedded generator's widths (the 64 px networks train at about 3 images/s
on 2 cores, these at about 50). One fresh run per R1 gamma ("auto": NVIDIA's 0.0002 res^2 / batch),
each for ``--minutes`` of training; every ``--eval-minutes`` of training the Frechet distance of
1,000 EMA samples to 1,000 renders (ST-LPIPS AlexNet features, the images upsampled to 64 px, as in
``bench/embedded_generator_quality.py``) beside the floor (renders against other renders), and
D's mean logits on renders and samples. A sample grid of each run (16 samples above 8 renders) is
written beside the table.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semedit.evaluation.embedded import render_batches, sample_batches  # noqa: E402
from semedit.evaluation.realism import embed_all, frechet_distance  # noqa: E402
from semedit.evaluation.reports import publish  # noqa: E402
from semedit.networks.discriminator import DiscriminatorConfig  # noqa: E402
from semedit.registry import Registry  # noqa: E402
from semedit.training.gan import QUARTER_GENERATOR, GANConfig, GANTrainer, auto_settings  # noqa: E402

RESOLUTION = 32
#: the embedded GAN's generator at 32 px with a quarter of its widths, and a discriminator to match
PROBE_GENERATOR = replace(QUARTER_GENERATOR, resolution=RESOLUTION, z_dim=64, w_dim=128,
                          channels=QUARTER_GENERATOR.channels[:4])
PROBE_DISCRIMINATOR = DiscriminatorConfig(resolution=RESOLUTION, channels=(24, 48, 64, 64))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="training minutes per gamma")
    ap.add_argument("--gammas", nargs="+", default=["auto", "0.1"], help="R1 gammas, 'auto' for NVIDIA's")
    ap.add_argument("--eval-minutes", type=float, default=6.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--n", type=int, default=1000, help="samples and renders for the Frechet distance")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/gan_recipe_check.md")
    a = ap.parse_args(argv)
    perceptual = Registry.from_settings().get("stlpips-alex", "cpu")

    def features(x: torch.Tensor) -> torch.Tensor:
        return perceptual.pooled_features(F.interpolate(x, size=64, mode="bilinear", align_corners=False))

    reference = embed_all(render_batches(a.n, 123, RESOLUTION), features)
    floor = frechet_distance(embed_all(render_batches(a.n, 124, RESOLUTION), features), reference)
    auto = auto_settings(a.batch, RESOLUTION)
    gammas = [auto["r1_gamma"] if g == "auto" else float(g) for g in a.gammas]

    def grid_name(gamma: float) -> str:
        return f"{a.out.stem}_gamma_{gamma:g}.png"

    rows = []
    for gamma_arg, gamma in zip(a.gammas, gammas):
        cfg = GANConfig(generator=PROBE_GENERATOR, discriminator=PROBE_DISCRIMINATOR, batch=a.batch,
                        r1_gamma=gamma, ema_kimg=auto["ema_kimg"])
        trainer = GANTrainer(cfg)
        trained, metrics, evals = 0.0, {}, 0  # seconds spent in train_step
        while True:
            if trained >= evals * a.eval_minutes * 60 or trained >= a.minutes * 60:
                fd = frechet_distance(embed_all(sample_batches(trainer.G_ema, a.n, 7), features), reference)
                logit = {k: f"{float(metrics[k]):+.2f}" if k in metrics else "" for k in ("D_real", "D_fake")}
                rows.append(f"| {gamma:g}{' (auto)' if gamma_arg == 'auto' else ''} | {trained / 60:.1f} | "
                            f"{trainer.step * a.batch / 1000:.1f} | {fd:.3f} | {fd - floor:.3f} | "
                            f"{logit['D_real']} | {logit['D_fake']} |")
                print(rows[-1], flush=True)
                evals += 1
                if trained >= a.minutes * 60:
                    break
            start = time.perf_counter()
            metrics = trainer.train_step()
            trained += time.perf_counter() - start
        a.out.parent.mkdir(parents=True, exist_ok=True)
        grid = trainer.sample_grid()
        grid.resize((grid.width * 3, grid.height * 3), Image.NEAREST).save(a.out.parent / grid_name(gamma))
    lines = ["# The adversarial recipe on the CPU, reduced: 32 px, a quarter of the widths\n",
             f"`{' '.join(['python bench/gan_recipe_check.py', *(sys.argv[1:] if argv is None else argv)])}`: batch "
             f"{a.batch}, Frechet distance of {a.n} EMA samples to {a.n} renders (ST-LPIPS AlexNet features), "
             f"floor (renders vs renders) {floor:.4f}.\n",
             "| R1 gamma | training minutes | kimg | FD | FD above floor | D(render) | D(sample) |",
             "|---|---|---|---|---|---|---|", *rows, "",
             "Sample grids (16 samples above 8 renders): " + ", ".join(f"`{grid_name(g)}`" for g in gammas)]
    publish("\n".join(lines) + "\n", a.out)


if __name__ == "__main__":
    main()
