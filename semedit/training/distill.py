"""Distil the procedural renderer into a StyleGAN2: G(z) ~ render(params_from_latent(z)).

    python -m semedit.synth.train_generator --minutes 75 --work-dir /tmp/embedded-run \
        --out weights/embedded-portraits-64.safetensors [--resume] [--init weights/....safetensors]

Adversarial training is too slow on 2 CPU cores, so the generator is regressed onto the
renderer's images of the same z: L1 at full, 1/2 and 1/4 resolution, plus L1 on image
gradients (sharp edges), with small features (eyes, brows, mouth, glasses) weighted up.
Modulated convolutions run unfused (shared weights batch better on the CPU).

Resumable: every ``--save-every`` steps the work dir gets ``state.pt`` (weights, EMA,
optimizer, step; loaded with weights_only=True) and the training curve ``curve.csv``;
``--resume`` continues from there. ``--init`` starts from a shipped safetensors generator
(for instance to continue the committed one with a fresh optimizer).
"""
from __future__ import annotations

import argparse
import copy
import csv
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoints import load_module, save_safetensors
from ..networks.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from . import labels as L
from .params import LATENT_DIM, params_from_latent
from .render import render

EMBEDDED_CONFIG = StyleGAN2Config(resolution=64, z_dim=LATENT_DIM, w_dim=128, mapping_layers=8,
                                  channels=(256, 256, 192, 96, 48), mapping_lr_mul=1.0)
SMALL_FEATURES = (L.EYES, L.BROWS, L.MOUTH, L.GLASSES)


@dataclass(frozen=True)
class Distillation:
    batch: int = 32
    lr: float = 2e-3
    final_lr: float = 1e-4
    warmup_steps: int = 200
    total_steps: int = 4500
    ema_beta: float = 0.998
    small_feature_weight: float = 4.0
    seed: int = 1


def training_batch(step: int, cfg: Distillation, size: int):
    """Deterministic (z [B, D], target [B, 3, S, S], labels [B, S, S]) for ``step``."""
    z = torch.randn(cfg.batch, LATENT_DIM, generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + step))
    r = render(params_from_latent(z), size)
    return z, r.image, r.labels


def distillation_loss(out: torch.Tensor, target: torch.Tensor, labels: torch.Tensor, cfg: Distillation):
    """Weighted multi-scale L1 + gradient L1; out/target [B, 3, S, S], labels [B, S, S]."""
    weight = torch.ones_like(labels, dtype=out.dtype)
    for c in SMALL_FEATURES:
        weight = torch.where(labels == c, torch.full_like(weight, cfg.small_feature_weight), weight)
    w = weight[:, None]
    loss = ((out - target).abs() * w).mean()
    for k in (2, 4):
        loss = loss + (F.avg_pool2d(out - target, k).abs() * F.avg_pool2d(w, k)).mean()
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    loss = loss + 0.5 * ((dx(out) - dx(target)).abs().mean() + (dy(out) - dy(target)).abs().mean())
    return loss


def learning_rate(step: int, cfg: Distillation) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.total_steps - cfg.warmup_steps))
    return cfg.final_lr + 0.5 * (cfg.lr - cfg.final_lr) * (1 + math.cos(math.pi * t))


def _note(path: Path) -> str:
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        return (f.metadata() or {}).get("note", "no note")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=75.0, help="wall-clock budget of this run")
    ap.add_argument("--steps", type=int, default=Distillation.total_steps, help="schedule length")
    ap.add_argument("--work-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("weights/embedded-portraits-64.safetensors"))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", type=Path, help="start from this safetensors generator")
    ap.add_argument("--save-every", type=int, default=250)
    ap.add_argument("--lr", type=float, default=Distillation.lr, help="peak learning rate (lower to fine-tune)")
    ap.add_argument("--seed", type=int, default=Distillation.seed,
                    help="batch seed: give a continued run (--init) a new one, so it sees new portraits")
    a = ap.parse_args(argv)
    cfg = Distillation(total_steps=a.steps, lr=a.lr, seed=a.seed)
    a.work_dir.mkdir(parents=True, exist_ok=True)
    state_path, curve_path = a.work_dir / "state.pt", a.work_dir / "curve.csv"

    torch.manual_seed(cfg.seed)
    G = StyleGAN2Generator(EMBEDDED_CONFIG) if a.init is None else load_module(a.init, "stylegan2")
    G.train().requires_grad_(True)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    step, elapsed_before = 0, 0.0
    if a.resume and state_path.exists():
        s = torch.load(state_path, weights_only=True)
        G.load_state_dict(s["G"]), G_ema.load_state_dict(s["G_ema"]), opt.load_state_dict(s["opt"])
        step, elapsed_before = int(s["step"]), float(s["elapsed"])
        print(f"resumed at step {step}")
    new_curve = not (a.resume and curve_path.exists())
    curve = open(curve_path, "w" if new_curve else "a", newline="")
    writer = csv.writer(curve)
    if new_curve:
        writer.writerow(["step", "images", "loss", "lr", "elapsed_s"])

    def save():
        torch.save({"G": G.state_dict(), "G_ema": G_ema.state_dict(), "opt": opt.state_dict(), "step": step,
                    "elapsed": elapsed_before + time.time() - t0}, state_path)
        curve.flush()

    t0, running = time.time(), None
    while step < cfg.total_steps and time.time() - t0 < a.minutes * 60:
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, cfg)
        z, target, labels = training_batch(step, cfg, EMBEDDED_CONFIG.resolution)
        out = G(z, noise_mode="none", fused=False)
        loss = distillation_loss(out, target, labels, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for pe, p in zip(G_ema.parameters(), G.parameters()):
                pe.lerp_(p, 1 - cfg.ema_beta)
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        step += 1
        if step % 50 == 0:
            writer.writerow([step, step * cfg.batch, f"{running:.5f}", f"{learning_rate(step, cfg):.2e}",
                             f"{elapsed_before + time.time() - t0:.0f}"])
            print(f"step {step}  loss {running:.4f}  {elapsed_before + time.time() - t0:.0f}s", flush=True)
        if step % a.save_every == 0:
            save()
    save()
    curve.close()
    with torch.no_grad():
        G_ema.w_avg.copy_(G_ema.estimate_w_avg(20000, generator=torch.Generator().manual_seed(0)))
    total = elapsed_before + time.time() - t0
    save_safetensors(a.out, G_ema.config, G_ema.state_dict(),
                     note=f"semedit.synth.train_generator: {step} steps x {cfg.batch} images, {total / 60:.0f} min CPU"
                          + (f", continued from {a.init.name} ({_note(a.init)})" if a.init else ""),
                     training=str(asdict(cfg)))
    print(f"wrote {a.out} after {step} steps ({total / 60:.1f} min)")


if __name__ == "__main__":
    main()
