"""Train a HyperStyle hypernetwork for a generator, on top of one of its one-pass encoders.

    python -m semedit.training.hyperstyle --w-encoder embedded-e4e-64 --work-dir runs/hyperstyle \\
        --out weights/embedded-hyperstyle-64.safetensors

Every step draws latents (a pure function of seed and step) and shows the generator's images of
them or, for a generator paired with the renderer, the renderer's images of the same latents
(the inputs users give). The W encoder's codes stay fixed (HyperStyle's recipe); each of
``iterations`` refinement steps reads the input beside the current reconstruction, adds its
weight offsets to the ones before (detached, as the official trainer does) and is scored by
pixel MSE plus ``lpips_weight`` x the perceptual distance to the input.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoints import save_safetensors
from ..latents import Latent, synthesize
from ..networks.hyperstyle import HyperStyleConfig, HyperStyleModel, add_deltas
from ..networks.psp import EncoderModel
from ..networks.stylegan2 import StyleGAN2Generator
from ..settings import resolve_device
from . import loop
from .encoder import encoder_batch
from .data import step_generator


@dataclass(frozen=True)
class HyperStyleTraining:
    steps: int = 1500
    batch: int = 8
    lr: float = 3e-4
    iterations: int = 3            # refinement steps trained per image, and run by the saved model
    render_share: float = 0.5      # inputs that are renders (paired generators only)
    lpips_weight: float = 0.8      # HyperStyle's: l2 1, lpips 0.8
    widths: tuple = (32, 64, 96, 128)
    units: tuple = (1, 1, 1, 1)
    code: int = 32
    inner: int = 32
    skip: tuple = (5,)             # 3x3 layers left untuned (their offset blocks would be the largest)
    seed: int = 0


def hyperstyle_for(G: StyleGAN2Generator, cfg: HyperStyleTraining) -> HyperStyleModel:
    """A small hypernetwork for G: every 3x3 layer but ``cfg.skip`` tuned, those of the widest
    square shape through the shared hypernetwork, reading images at G's resolution (>= 64)."""
    shapes = G.synthesis.kernel_shapes
    tuned = tuple(j for j, (k, _, _) in enumerate(shapes) if k == 3 and j not in cfg.skip)
    widest = max(i for j in tuned for _, i, o in [shapes[j]] if i == o)
    shared = tuple(j for j in tuned if shapes[j][1:] == (widest, widest))
    config = HyperStyleConfig(shapes, tuned, shared, units=tuple(cfg.units), widths=tuple(cfg.widths),
                              input_size=max(64, G.config.resolution), code=cfg.code, shared_inner=cfg.inner,
                              inner=cfg.inner, num_ws=G.config.num_ws, w_dim=G.config.w_dim,
                              iterations=cfg.iterations)
    model = HyperStyleModel(config)
    with torch.no_grad():
        model.latent_avg.copy_(G.w_avg.expand(G.config.num_ws, -1))
        for block in model.hypernet.refinement_blocks:  # start near zero offsets: G as it is
            last = None if block is None else (block.output[1] if hasattr(block, "output") else block.linear)
            if last is not None:
                last.weight.mul_(0.01)
                last.bias.zero_()
    return model


def _sized(img: torch.Tensor, size: int) -> torch.Tensor:
    return img if img.shape[-1] == size else F.interpolate(img, size=(size, size), mode="bilinear",
                                                           align_corners=False)


class HyperStyleTrainer(loop.NetTrainerState):
    def __init__(self, G: StyleGAN2Generator, initial: EncoderModel, cfg: HyperStyleTraining, perceptual,
                 device: torch.device | str = "cpu"):
        if initial.iterative:
            raise ValueError("HyperStyle starts from a one-pass encoder, not ReStyle")
        self.cfg, self.device = cfg, torch.device(device)
        self.G = G.to(self.device).eval().requires_grad_(False)
        self.initial = initial.to(self.device).eval().requires_grad_(False)
        self.perceptual = perceptual.to(self.device)
        torch.manual_seed(cfg.seed)
        self.net = hyperstyle_for(G, cfg).to(self.device).train()
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.sched = loop.one_cycle(self.opt, cfg.lr, cfg.steps)
        self.step, self.images_per_step = 0, cfg.batch

    def train_step(self) -> dict:
        cfg, net = self.cfg, self.net
        g = step_generator(cfg.seed, self.step, self.device)
        x = encoder_batch(self.G, cfg.batch, g, cfg.render_share)["input"]
        size = net.config.input_size
        with torch.no_grad():
            codes = Latent("w+", self.initial.encoder(_sized(x, self.initial.config.encoder.input_size))
                           + net.latent_avg)
            current = synthesize(self.G, codes).clamp(-1, 1)
            start = F.mse_loss(current, x)
        deltas, total, metrics = None, 0.0, {}
        for t in range(cfg.iterations):
            before = None if deltas is None else [None if d is None else d.detach() for d in deltas]
            deltas = add_deltas(before, net(torch.cat([_sized(x, size), _sized(current.detach(), size)], 1)))
            current = synthesize(self.G, codes, weight_deltas=deltas)
            l2 = F.mse_loss(current, x)
            total = total + l2 + cfg.lpips_weight * self.perceptual(current, x).mean()
            metrics[f"l2_{t + 1}"] = l2.item()
        self.update(total / cfg.iterations)
        return {"loss": float(total.detach()) / cfg.iterations, "l2_start": start.item(), **metrics}


def main(argv=None) -> None:
    from ..registry import Registry
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded-portraits-64", help="the generator")
    ap.add_argument("--w-encoder", default="embedded-e4e-64", help="the catalogued one-pass encoder it starts from")
    ap.add_argument("--steps", type=int, default=HyperStyleTraining.steps)
    ap.add_argument("--batch", type=int, default=HyperStyleTraining.batch)
    ap.add_argument("--lr", type=float, default=HyperStyleTraining.lr)
    ap.add_argument("--iterations", type=int, default=HyperStyleTraining.iterations)
    loop.add_run_arguments(ap)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    device = resolve_device(a.device)
    registry = Registry.from_settings()
    G = registry.get(a.model, device)
    cfg = HyperStyleTraining(steps=a.steps, batch=a.batch, lr=a.lr, iterations=a.iterations, seed=a.seed)
    perceptual = registry.get(registry.catalogue.default_perceptual, device)
    trainer = HyperStyleTrainer(G, registry.get(a.w_encoder, device), cfg, perceptual, device)
    loop.run(trainer, work_dir=a.work_dir, total_steps=cfg.steps, minutes=a.minutes, resume=a.resume, log_every=25)
    net = trainer.net.eval().cpu()
    save_safetensors(a.out, net.config, net.state_dict(), storage=torch.float16,
                     note=f"python -m semedit.training.hyperstyle, {trainer.step} steps on {a.model} "
                          f"over {a.w_encoder}, {cfg}")
    print(f"wrote {a.out} after {trainer.step} steps; catalogue it as kind 'encoder', format 'safetensors', "
          f"config {{\"generator\": \"{a.model}\", \"w_encoder\": \"{a.w_encoder}\", \"method\": \"HyperStyle\"}}")


if __name__ == "__main__":
    main()
