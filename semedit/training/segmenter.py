"""Train the embedded domain's segmenter on renderer images and their exact label maps.

    python -m semedit.training.segmenter --steps 2000 --work-dir runs/seg \\
        --out weights/embedded-segmenter-64.safetensors [--resume] [--minutes 30]

Images are augmented (blur, noise, brightness) so the segmenter also reads generator outputs,
which are softer than the renderer's; a share of the images carry an out-of-domain accessory,
labelled as such. With ``--generator`` (a generator distilled from the renderer, whose image of
a latent is the renderer's), a share of each batch is the generator's image of the same latent,
labelled with the renderer's map:

    python -m semedit.training.segmenter --init weights/embedded-segmenter-64.safetensors \\
        --generator weights/embedded-portraits-64.safetensors --generator-share 0.5 --steps 400 --work-dir runs/seg2
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from ..checkpoints import load_module, save_safetensors
from ..networks.segmenter import SegmenterConfig, UNetSegmenter
from ..networks.stylegan2 import StyleGAN2Generator
from ..settings import resolve_device
from ..segmentation import NUM_CLASSES
from . import loop
from .data import augment, rendered_batch, step_generator


@dataclass(frozen=True)
class SegmenterTraining:
    steps: int = 2000
    batch: int = 32
    size: int = 64
    lr: float = 2e-3
    accessory_share: float = 0.1
    generator_share: float = 0.0  # share of each batch drawn by a paired generator (needs one)
    max_blur: float = 1.2
    seed: int = 0


def training_batch(step: int, cfg: SegmenterTraining, generator: Optional[StyleGAN2Generator] = None,
                   device: torch.device | str = "cpu"):
    """Deterministic (image [B, 3, S, S] in [-1, 1], labels [B, S, S]) for ``step``; the first
    ``generator_share`` of the batch is ``generator``'s image of the same latents (no accessory)."""
    b = rendered_batch(cfg.batch, cfg.size, step_generator(cfg.seed, step, device), accessory_share=cfg.accessory_share)
    drawn = round(cfg.generator_share * cfg.batch) if generator is not None else 0
    image, labels = b.image, b.labels
    if drawn:
        from ..synth.render import render
        plain = render(replace(b.portraits.select(slice(0, drawn)),
                               accessory=torch.zeros_like(b.portraits.accessory[:drawn])), cfg.size)
        with torch.no_grad():
            ws = generator.broadcast(generator.mapping(b.z[:drawn]))
            drawn_img = generator.synthesis(ws, noise_mode="const", fused=False).clamp(-1, 1)
        image = torch.cat([drawn_img, image[drawn:]])
        labels = torch.cat([plain.labels, labels[drawn:]])
    return augment(image, step_generator(cfg.seed, step, device, 1), max_blur=cfg.max_blur), labels


class SegmenterTrainer(loop.NetTrainerState):
    """A U-Net segmenter with AdamW and a one-cycle schedule over ``cfg.steps``."""

    def __init__(self, cfg: SegmenterTraining, device: torch.device | str = "cpu",
                 generator: Optional[StyleGAN2Generator] = None, init: Optional[UNetSegmenter] = None):
        self.cfg, self.device, self.generator = cfg, torch.device(device), generator
        torch.manual_seed(cfg.seed)
        net = UNetSegmenter(SegmenterConfig(num_classes=NUM_CLASSES)) if init is None else init
        self.net = net.to(self.device).train().requires_grad_(True)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=1e-4)
        self.sched = loop.one_cycle(self.opt, cfg.lr, cfg.steps, warmup=0.1)
        self.step, self.images_per_step = 0, cfg.batch

    def train_step(self) -> dict:
        img, lab = training_batch(self.step, self.cfg, self.generator, self.device)
        loss = F.cross_entropy(self.net(img), lab)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        self.step += 1
        return {"loss": loss.item()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=SegmenterTraining.steps)
    ap.add_argument("--batch", type=int, default=SegmenterTraining.batch)
    ap.add_argument("--lr", type=float, default=SegmenterTraining.lr)
    ap.add_argument("--max-blur", type=float, default=SegmenterTraining.max_blur)
    ap.add_argument("--init", type=Path, help="continue from this segmenter (safetensors)")
    ap.add_argument("--generator", type=Path, help="a paired (distilled) generator whose samples join the batches")
    ap.add_argument("--generator-share", type=float, default=0.5)
    loop.add_run_arguments(ap)
    ap.add_argument("--out", type=Path, default=Path("weights/embedded-segmenter-64.safetensors"))
    a = ap.parse_args(argv)
    device = resolve_device(a.device)
    cfg = SegmenterTraining(steps=a.steps, batch=a.batch, seed=a.seed, lr=a.lr, max_blur=a.max_blur,
                            generator_share=a.generator_share if a.generator else 0.0)
    generator = load_module(a.generator, "stylegan2").to(device) if a.generator else None
    trainer = SegmenterTrainer(cfg, device, generator, load_module(a.init, "unet-segmenter") if a.init else None)
    loop.run(trainer, work_dir=a.work_dir, total_steps=cfg.steps, minutes=a.minutes, resume=a.resume)
    net = trainer.net.eval().cpu()
    save_safetensors(a.out, net.config, net.state_dict(),
                     note=f"trained by semedit.training.segmenter, {trainer.step} steps, {cfg}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
