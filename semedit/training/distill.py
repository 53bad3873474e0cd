"""Distil the procedural renderer into a StyleGAN2 by regression: G(z) ~ render(params_from_latent(z)).

    python -m semedit.training.distill --minutes 75 --steps 4500 --work-dir runs/distill \\
        --out weights/embedded-portraits-64.safetensors [--resume] [--init weights/....safetensors]

How the first embedded generator was made on 2 CPU cores: the generator is regressed onto the
renderer's image of the same z (L1 at full, 1/2 and 1/4 resolution plus L1 on image gradients,
small features weighted up). Its samples are paired with the renderer (exact ground truth for
every z) but blurry: a regression learns the renderer as a function and averages what it cannot
fit. ``semedit.training.gan`` is the adversarial recipe that replaces it.
"""
from __future__ import annotations

import argparse
import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoints import load_module, save_safetensors
from ..networks.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from ..settings import resolve_device
from .. import segmentation as L
from ..synth.params import LATENT_DIM
from . import loop
from .data import rendered_batch, step_generator

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
    """Linear warm-up, then cosine decay to ``final_lr`` at ``total_steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.total_steps - cfg.warmup_steps))
    return cfg.final_lr + 0.5 * (cfg.lr - cfg.final_lr) * (1 + math.cos(math.pi * t))


class DistillTrainer:
    def __init__(self, cfg: Distillation, device: torch.device | str = "cpu", init: StyleGAN2Generator | None = None,
                 config: StyleGAN2Config = EMBEDDED_CONFIG):
        self.cfg, self.device = cfg, torch.device(device)
        torch.manual_seed(cfg.seed)
        G = StyleGAN2Generator(config) if init is None else init
        self.G = G.to(self.device).train().requires_grad_(True)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
        self.step, self.images_per_step = 0, cfg.batch

    def train_step(self) -> dict:
        for group in self.opt.param_groups:
            group["lr"] = learning_rate(self.step, self.cfg)
        b = rendered_batch(self.cfg.batch, self.G.config.resolution, step_generator(self.cfg.seed, self.step, self.device))
        loss = distillation_loss(self.G(b.z, noise_mode="none", fused=False), b.image, b.labels, self.cfg)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        loop.update_ema(self.G_ema, self.G, self.cfg.ema_beta)
        self.step += 1
        return {"loss": loss.item()}

    def state_dict(self) -> dict:
        return {"step": self.step, "G": self.G.state_dict(), "G_ema": self.G_ema.state_dict(),
                "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt.load_state_dict(state["opt"])
        self.step = int(state["step"])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=75.0, help="wall-clock budget of this run")
    ap.add_argument("--steps", type=int, default=Distillation.total_steps, help="schedule length")
    ap.add_argument("--work-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("weights/embedded-portraits-64.safetensors"))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--init", type=Path, help="start from this safetensors generator")
    ap.add_argument("--lr", type=float, default=Distillation.lr, help="peak learning rate (lower to fine-tune)")
    ap.add_argument("--seed", type=int, default=Distillation.seed,
                    help="batch seed: give a continued run (--init) a new one, so it sees new portraits")
    ap.add_argument("--device", default="auto")
    a = ap.parse_args(argv)
    cfg = Distillation(total_steps=a.steps, lr=a.lr, seed=a.seed)
    trainer = DistillTrainer(cfg, resolve_device(a.device), load_module(a.init, "stylegan2") if a.init else None)
    loop.run(trainer, work_dir=a.work_dir, total_steps=cfg.total_steps, minutes=a.minutes, resume=a.resume)
    G = trainer.G_ema.cpu()
    with torch.no_grad():
        G.w_avg.copy_(G.estimate_w_avg(20000, generator=torch.Generator().manual_seed(0)))
    save_safetensors(a.out, G.config, G.state_dict(), training=str(asdict(cfg)), paired_with_renderer="true",
                     note=f"semedit.training.distill: {trainer.step} steps x {cfg.batch} images"
                          + (f", continued from {a.init.name}" if a.init else ""))
    print(f"wrote {a.out} after {trainer.step} steps")


if __name__ == "__main__":
    main()
