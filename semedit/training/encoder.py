"""Train a pSp-family encoder (pSp, e4e, or ReStyle over either) for a generator.

    python -m semedit.training.encoder --kind e4e --work-dir runs/e4e --steps 4000 \\
        --out weights/embedded-e4e-64.safetensors

Every step draws latents (a pure function of seed and step), the generator's images of them and,
for a generator paired with the renderer, the renderer's images of the same latents (the inputs
users give). The loss is the W+ error to the true codes (in units of their spread; known exactly,
since the images come from the codes) plus the L1 error of the synthesised result to the
generator's image, on a few images a step (synthesis is the costly part on a CPU). For a generator
not paired with the renderer, ``--real-batch`` adds renders a step as e4e trains on real photos: they
have no true code, so they are scored by image losses alone (L1, optionally the catalogue's
perceptual distance and the identity model's distance to the render), which teaches the encoder
the inputs users give (renders and photos) and not only the generator's own images. ReStyle
kinds (``backbone``, ``progressive-backbone``) learn ``--iterations`` refinement steps at once:
each step reads the input beside the previous reconstruction (the average image first) and its
correction is scored like a one-shot prediction.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from ..checkpoints import load_module, save_safetensors
from ..latents import Latent, synthesize
from ..networks.psp import EncoderModel, EncoderModelConfig, StyleEncoderConfig
from ..networks.stylegan2 import StyleGAN2Generator
from ..settings import resolve_device
from ..synth.params import LATENT_DIM, params_from_latent
from ..synth.render import render
from . import loop
from .data import code_spread, step_generator

NAMES = {"gradual": "pSp", "e4e": "e4e", "backbone": "ReStyle-pSp", "progressive-backbone": "ReStyle-e4e"}


@dataclass(frozen=True)
class EncoderTraining:
    kind: str = "e4e"
    steps: int = 4000
    batch: int = 32
    lr: float = 1e-3
    iterations: int = 2            # ReStyle kinds: refinement steps trained (and run) per image
    render_share: float = 0.5      # inputs that are renders (paired generators only)
    latent_weight: float = 1.0
    image_weight: float = 1.0
    image_batch: int = 8           # images a step whose synthesised result the image loss sees
    widths: tuple = (32, 64, 96)   # the trunk's first stages
    last_width: int = 0            # the last stage's channels (pSp, e4e: also the pyramid's and the style blocks'); 0: w_dim
    real_batch: int = 0            # renders a step scored by image losses only (as e4e's real photos)
    real_perceptual: bool = False  # real renders: the perceptual model's distance added to their L1
    real_identity_weight: float = 0.0  # real renders: weight of the identity model's distance to the render
    seed: int = 0


def encoder_for(G: StyleGAN2Generator, cfg: EncoderTraining) -> EncoderModel:
    """A small encoder of ``cfg.kind`` for G's W+ shape, reading images at G's resolution."""
    iterative = cfg.kind in ("backbone", "progressive-backbone")
    enc = StyleEncoderConfig(kind=cfg.kind, n_styles=G.config.num_ws, w_dim=G.config.w_dim,
                             input_nc=6 if iterative else 3, units=(1,) * (len(cfg.widths) + 1),
                             widths=tuple(cfg.widths) + (cfg.last_width or G.config.w_dim,),
                             input_size=max(G.config.resolution, 32))
    model = EncoderModel(EncoderModelConfig(enc, start_from_latent_avg=True,
                                            iterations=cfg.iterations if iterative else 1, name=NAMES[cfg.kind]))
    with torch.no_grad():
        model.latent_avg.copy_(G.w_avg.expand(G.config.num_ws, -1))
    return model


@torch.no_grad()
def encoder_batch(G: StyleGAN2Generator, batch: int, g: torch.Generator, render_share: float) -> dict:
    """``input`` [B, 3, R, R] (the generator's images, or renders of the same latents), the true
    codes ``ws`` [B, L, C] and the generator's images ``image`` [B, 3, R, R]."""
    z = torch.randn(batch, G.config.z_dim, generator=g, device=g.device)
    ws = G.broadcast(G.mapping(z))
    image = G.synthesis(ws, fused=False).clamp(-1, 1)
    shown = image.clone()
    if render_share > 0 and G.config.z_dim == LATENT_DIM:
        use = torch.rand(batch, generator=g, device=g.device) < render_share
        if use.any():
            shown[use] = render(params_from_latent(z[use]), G.config.resolution).image
    return {"input": shown, "ws": ws, "image": image}


@torch.no_grad()
def real_stand_ins(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """``n`` renders [n, 3, size, size] in [-1, 1] of random people: stand-ins for real photos."""
    return render(params_from_latent(torch.randn(n, LATENT_DIM, generator=g, device=g.device)), size).image


class EncoderTrainer(loop.NetTrainerState):
    """With ``init``, a trained encoder of the same configuration to continue from (fresh optimiser);
    ``cfg.real_batch`` > 0 needs ``perceptual`` with ``cfg.real_perceptual`` and ``identity``,
    (x, y) -> distances [N], with ``cfg.real_identity_weight``."""

    def __init__(self, G: StyleGAN2Generator, cfg: EncoderTraining, device: torch.device | str = "cpu", *,
                 init: Optional[EncoderModel] = None, perceptual: Optional[torch.nn.Module] = None,
                 identity: Optional[torch.nn.Module] = None):
        if cfg.real_perceptual and perceptual is None:
            raise ValueError("real_perceptual needs a perceptual model")
        if cfg.real_identity_weight and identity is None:
            raise ValueError("real_identity_weight > 0 needs an identity model")
        self.cfg, self.device = cfg, torch.device(device)
        self.G = G.to(self.device).eval().requires_grad_(False)
        self.perceptual = None if perceptual is None else perceptual.to(self.device).eval().requires_grad_(False)
        self.identity = None if identity is None else identity.to(self.device).eval().requires_grad_(False)
        torch.manual_seed(cfg.seed)
        self.net = encoder_for(G, cfg).to(self.device).train()
        if init is not None:
            if init.config != self.net.config:
                raise ValueError(f"the encoder to continue from has another configuration ({init.config}) "
                                 f"than this run's ({self.net.config})")
            self.net.load_state_dict(init.state_dict())
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.sched = loop.one_cycle(self.opt, cfg.lr, cfg.steps)
        self.w_var = code_spread(G, self.device)
        self.step, self.images_per_step = 0, cfg.batch + cfg.real_batch

    def _sized(self, img: torch.Tensor) -> torch.Tensor:
        size = self.net.config.encoder.input_size
        return img if img.shape[-1] == size else F.interpolate(img, size=(size, size), mode="bilinear",
                                                               align_corners=False)

    def _predictions(self, x: torch.Tensor) -> list:
        """The codes [B, L, C] the encoder gives for inputs x at its input size: one pass, or for
        ReStyle kinds one per refinement step (each reads x beside the previous reconstruction,
        the average image first)."""
        net = self.net
        if not net.iterative:
            return [net(x)]
        previous = net.latent_avg.expand(len(x), -1, -1)
        with torch.no_grad():
            current = synthesize(self.G, Latent("w+", previous[:1])).expand(len(x), -1, -1, -1)
        predictions = []
        for _ in range(self.cfg.iterations):
            codes = net(torch.cat([x, self._sized(current)], 1), previous=previous)
            predictions.append(codes)
            previous = codes.detach()
            with torch.no_grad():
                current = synthesize(self.G, Latent("w+", previous)).clamp(-1, 1)
        return predictions

    def train_step(self) -> dict:
        cfg = self.cfg
        b = encoder_batch(self.G, cfg.batch, step_generator(cfg.seed, self.step, self.device), cfg.render_share)
        predictions = self._predictions(self._sized(b["input"]))
        latent = sum((p - b["ws"]).square().sum(-1).mean() for p in predictions) / (self.w_var * len(predictions))
        k = cfg.image_batch
        image = (synthesize(self.G, Latent("w+", predictions[-1][:k])) - b["image"][:k]).abs().mean()
        loss = cfg.latent_weight * latent + cfg.image_weight * image
        metrics = {"latent": latent.item(), "image_l1": image.item()}
        if cfg.real_batch > 0:
            real = self._real_error(step_generator(cfg.seed, self.step, self.device, stream=1))
            loss = loss + cfg.image_weight * real
            metrics["real"] = real.item()
        self.update(loss)
        return {"loss": loss.item(), **metrics}

    def _real_error(self, g: torch.Generator) -> torch.Tensor:
        """Renders that stand for real photos, encoded (one pass; ReStyle kinds: all their
        iterations) and synthesised: their L1 error to the render, plus the perceptual and
        weighted identity distances when configured."""
        cfg = self.cfg
        real = real_stand_ins(cfg.real_batch, self.G.config.resolution, g)
        out = synthesize(self.G, Latent("w+", self._predictions(self._sized(real))[-1]))
        error = (out - real).abs().mean()
        if cfg.real_perceptual:
            error = error + self.perceptual(out, real).mean()
        if cfg.real_identity_weight:
            error = error + cfg.real_identity_weight * self.identity(out, real).mean()
        return error


def main(argv=None) -> None:
    from ..registry import Registry
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded-portraits-64", help="the generator")
    ap.add_argument("--kind", default="e4e", choices=list(NAMES))
    ap.add_argument("--steps", type=int, default=EncoderTraining.steps)
    ap.add_argument("--batch", type=int, default=EncoderTraining.batch)
    ap.add_argument("--lr", type=float, default=EncoderTraining.lr)
    ap.add_argument("--iterations", type=int, default=EncoderTraining.iterations)
    ap.add_argument("--last-width", type=int, default=EncoderTraining.last_width,
                    help="channels of the trunk's last stage and, for pSp and e4e, of the pyramid and the style "
                         "blocks (default: the generator's w_dim); narrower keeps an encoder for a wide W small")
    loop.add_run_arguments(ap)
    ap.add_argument("--real-batch", type=int, default=EncoderTraining.real_batch,
                    help="renders a step scored by image losses alone, as e4e trains on real photos (for a "
                         "generator not paired with the renderer: teaches the encoder the inputs users give)")
    ap.add_argument("--real-perceptual", action="store_true",
                    help="real renders: add the catalogue's perceptual distance to their L1")
    ap.add_argument("--real-identity-weight", type=float, default=EncoderTraining.real_identity_weight,
                    help="real renders: weight of the generator's identity model's distance to the render")
    ap.add_argument("--init", type=Path, help="continue from this encoder (safetensors, same configuration) "
                                              "with a fresh optimiser")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    device = resolve_device(a.device)
    registry = Registry.from_settings()
    G = registry.get(a.model, device)
    if a.last_width < 0:
        ap.error("--last-width must be positive (or 0 for the generator's w_dim)")
    cfg = EncoderTraining(kind=a.kind, steps=a.steps, batch=a.batch, lr=a.lr, iterations=a.iterations,
                          last_width=a.last_width, real_batch=a.real_batch, real_perceptual=a.real_perceptual,
                          real_identity_weight=a.real_identity_weight, seed=a.seed)
    extra = {}
    if a.init:
        extra["init"] = load_module(a.init, "style-encoder")
    if a.real_perceptual:
        extra["perceptual"] = registry.get(registry.catalogue.default_perceptual, device)
    if a.real_identity_weight:
        from ..inversion.suite import identity_for
        extra["identity"] = identity_for(registry, a.model)
        if extra["identity"] is None:
            raise SystemExit(f"{a.model} has no identity model for --real-identity-weight")
    try:
        trainer = EncoderTrainer(G, cfg, device, **extra)
    except ValueError as e:
        raise SystemExit(str(e))
    loop.run(trainer, work_dir=a.work_dir, total_steps=cfg.steps, minutes=a.minutes, resume=a.resume)
    net = trainer.net.eval().cpu()
    save_safetensors(a.out, net.config, net.state_dict(), storage=torch.float16,
                     note=f"python -m semedit.training.encoder, {trainer.step} steps on {a.model}, {cfg}")
    print(f"wrote {a.out} after {trainer.step} steps; catalogue it as kind 'encoder', format 'safetensors', "
          f"config {{\"generator\": \"{a.model}\"}}")


if __name__ == "__main__":
    main()
