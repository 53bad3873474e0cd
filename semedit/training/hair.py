"""Train the FG'21 hairstyle-transfer network for a generator paired with the renderer.

    python -m semedit.training.hair --work-dir runs/hair --steps 3000 \\
        --out weights/embedded-hair-64.safetensors

Every step draws pairs from the renderer's latents (a pure function of seed and step): person A,
person B turned to a random yaw; the true result is A with B's hair at A's pose, whose latent
``synth.params.latent_with`` gives exactly, and a paired generator's image of that latent is the
reachable optimum. The paper trains on pairs from the generator with the pose misaligned along
a yaw direction; here pose is changed exactly and, beyond the paper, the pairs are of different
people with a known true result. A share of pairs are the same person (turned): the network then
reproduces the face with its own hair, which the interpolation strip starts from. Inputs are the
generator's images or renders (as users give either); the loss is the W+ error to the true code
(in units of the codes' spread) plus, on a few pairs a step (synthesis is the costly part on a
CPU), the L1 error of the synthesised result to the true image.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoints import save_safetensors
from ..latents import Latent, synthesize
from ..networks.encoders import EncoderConfig, HairTransferConfig, HairTransferNet
from ..networks.stylegan2 import StyleGAN2Generator
from ..settings import resolve_device
from ..synth.params import LATENT_DIM, MAX_YAW, latent_with, params_from_latent
from ..synth.render import render
from . import loop
from .data import code_spread, step_generator


@dataclass(frozen=True)
class HairTraining:
    steps: int = 3000
    batch: int = 32
    lr: float = 1e-3
    same_person_share: float = 0.15
    render_share: float = 0.5      # inputs that are renders rather than the generator's images
    latent_weight: float = 1.0
    image_weight: float = 1.0
    image_batch: int = 8           # pairs per step whose synthesised result the image loss sees
    widths: tuple = (32, 64, 96, 128)
    hidden: int = 256
    seed: int = 0


def hair_network(G: StyleGAN2Generator, cfg: HairTraining) -> HairTransferNet:
    """A small FG'21 network for G's W+ shape, reading images at G's resolution."""
    enc = EncoderConfig(num_ws=G.num_ws, w_dim=G.config.w_dim, units=(1,) * len(cfg.widths), widths=tuple(cfg.widths),
                        input_size=G.config.resolution, pool=2, hidden=cfg.hidden)
    return HairTransferNet(HairTransferConfig(enc))


@torch.no_grad()
def hair_pairs(G: StyleGAN2Generator, batch: int, g: torch.Generator, *, same_person_share: float = 0.15,
               render_share: float = 0.5, images: int = 8) -> dict:
    """One batch of training pairs on g's device: ``face``, ``hair`` [B, 3, R, R] inputs, the true
    code ``target_ws`` [B, L, C], for the first ``images`` pairs the generator's image of the
    true latent ``target`` [images, 3, R, R], and ``truth`` [B, 3, R, R], the true render."""
    device = g.device
    res = G.config.resolution
    z_face = torch.randn(batch, LATENT_DIM, generator=g, device=device)
    z_other = torch.randn(batch, LATENT_DIM, generator=g, device=device)
    same = torch.rand(batch, generator=g, device=device) < same_person_share
    z_hair = torch.where(same[:, None], z_face, z_other)
    yaw = (torch.rand(batch, generator=g, device=device) * 2 - 1) * MAX_YAW * 0.9
    z_hair_turned = latent_with(z_hair, yaw=yaw)
    z_true = latent_with(z_face, hair_of=z_hair)
    target_ws = G.broadcast(G.mapping(z_true))
    target = G.synthesis(target_ws[:images], fused=False).clamp(-1, 1)

    def shown(z):  # the generator's image or the render of the same latent; G runs only where needed
        out = render(params_from_latent(z), res).image
        own = torch.rand(batch, generator=g, device=device) >= render_share
        if own.any():
            out[own] = G(z[own], fused=False).clamp(-1, 1)
        return out
    return {"face": shown(z_face), "hair": shown(z_hair_turned), "target_ws": target_ws, "target": target,
            "truth": render(params_from_latent(z_true), res).image}


class HairTrainer(loop.NetTrainerState):
    def __init__(self, G: StyleGAN2Generator, cfg: HairTraining, device: torch.device | str = "cpu"):
        if G.config.z_dim != LATENT_DIM:
            raise ValueError("hair training needs a generator paired with the renderer (z is the renderer's latent)")
        self.cfg, self.device = cfg, torch.device(device)
        self.G = G.to(self.device).eval().requires_grad_(False)
        torch.manual_seed(cfg.seed)
        self.net = hair_network(G, cfg).to(self.device).train()
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.05)
        self.w_var = code_spread(G, self.device)
        self.step, self.images_per_step = 0, cfg.batch

    def train_step(self) -> dict:
        cfg = self.cfg
        b = hair_pairs(self.G, cfg.batch, step_generator(cfg.seed, self.step, self.device),
                       same_person_share=cfg.same_person_share, render_share=cfg.render_share,
                       images=cfg.image_batch)
        ws = self.net(b["face"], b["hair"])
        latent = (ws - b["target_ws"]).square().sum(-1).mean() / self.w_var
        image = (synthesize(self.G, Latent("w+", ws[:cfg.image_batch])) - b["target"]).abs().mean()
        loss = cfg.latent_weight * latent + cfg.image_weight * image
        self.update(loss)
        return {"loss": loss.item(), "latent": latent.item(), "image_l1": image.item()}


def main(argv=None) -> None:
    from ..registry import Registry
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded-portraits-64", help="the generator (paired with the renderer)")
    ap.add_argument("--steps", type=int, default=HairTraining.steps)
    ap.add_argument("--batch", type=int, default=HairTraining.batch)
    ap.add_argument("--lr", type=float, default=HairTraining.lr)
    loop.add_run_arguments(ap)
    ap.add_argument("--out", type=Path, default=Path("weights/embedded-hair-64.safetensors"))
    a = ap.parse_args(argv)
    device = resolve_device(a.device)
    registry = Registry.from_settings()
    if not registry.catalogue.get(a.model).paired_with_renderer:
        raise SystemExit(f"{a.model} is not paired with the renderer; this trainer needs the true latents")
    G = registry.get(a.model, device)
    cfg = HairTraining(steps=a.steps, batch=a.batch, lr=a.lr, seed=a.seed)
    trainer = HairTrainer(G, cfg, device)
    loop.run(trainer, work_dir=a.work_dir, total_steps=cfg.steps, minutes=a.minutes, resume=a.resume)
    net = trainer.net.eval().cpu()
    save_safetensors(a.out, net.config, net.state_dict(),
                     note=f"python -m semedit.training.hair, {trainer.step} steps on {a.model}, {cfg}")
    print(f"wrote {a.out} after {trainer.step} steps")


if __name__ == "__main__":
    main()
