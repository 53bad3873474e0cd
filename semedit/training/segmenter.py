"""Train the embedded domain's segmenter on renderer images and their exact label maps.

    python -m semedit.synth.train_segmenter --steps 800 --out weights/embedded-segmenter-64.safetensors

Images are augmented (blur, noise, brightness) so the segmenter also reads generator outputs,
which are slightly softer than the renderer's; one image in ten carries an out-of-domain
accessory, labelled as such. With ``--generator``, a share of each batch is the embedded
generator's image of the same latent, labelled with the renderer's map (the generator was
distilled to draw exactly that), so the segmenter learns to read the generator's samples too:

    python -m semedit.synth.train_segmenter --init weights/embedded-segmenter-64.safetensors \
        --generator weights/embedded-portraits-64.safetensors --generator-share 0.5 --steps 400
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from ..checkpoints import load_module, save_safetensors
from ..networks.segmenter import SegmenterConfig, UNetSegmenter
from ..networks.stylegan2 import StyleGAN2Generator
from .labels import NUM_CLASSES
from .params import ACCESSORIES, params_from_latent, sample_latents
from .render import render


@dataclass(frozen=True)
class SegmenterTraining:
    steps: int = 800
    batch: int = 32
    size: int = 64
    lr: float = 2e-3
    accessory_share: float = 0.1
    generator_share: float = 0.0  # share of each batch drawn by the generator (needs one)
    seed: int = 0


def training_batch(step: int, cfg: SegmenterTraining, generator: Optional[StyleGAN2Generator] = None):
    """Deterministic (image [B, 3, S, S] in [-1, 1], labels [B, S, S]) for ``step``; the first
    ``generator_share`` of the batch is ``generator``'s image of the same latents (no accessory)."""
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    z = sample_latents(cfg.batch, seed=cfg.seed * 1_000_003 + step + 7)
    p = params_from_latent(z)
    drawn = round(cfg.generator_share * cfg.batch) if generator is not None else 0
    acc = torch.where(torch.rand(cfg.batch, generator=g) < cfg.accessory_share,
                      torch.randint(1, len(ACCESSORIES), (cfg.batch,), generator=g),
                      torch.zeros(cfg.batch, dtype=torch.long))
    acc[:drawn] = 0
    r = render(replace(p, accessory=acc), cfg.size)
    image = r.image.clone()
    if drawn:
        with torch.no_grad():
            ws = generator.broadcast(generator.mapping(z[:drawn]))
            image[:drawn] = generator.synthesis(ws, noise_mode="const", fused=False).clamp(-1, 1)
    return augment(image, g), r.labels


def augment(img: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random blur (sigma up to 1.2 px), brightness (+-10 %) and noise (std up to 0.05)."""
    n = img.shape[0]
    sigma = torch.rand(n, generator=g) * 1.2
    r = torch.arange(-3, 4, dtype=torch.float32)
    k = torch.exp(-(r[None] ** 2) / (2 * sigma[:, None].clamp(min=1e-3) ** 2))
    k = k / k.sum(1, keepdim=True)  # [N, 7]
    x = img.reshape(1, n * 3, *img.shape[2:])
    kk = k.repeat_interleave(3, 0)
    x = F.conv2d(F.pad(x, (3, 3, 0, 0), mode="replicate"), kk[:, None, None, :], groups=n * 3)
    x = F.conv2d(F.pad(x, (0, 0, 3, 3), mode="replicate"), kk[:, None, :, None], groups=n * 3)
    x = x.reshape_as(img)
    x = (x + 1) * (0.9 + 0.2 * torch.rand(n, 1, 1, 1, generator=g)) - 1
    x = x + torch.randn(x.shape, generator=g) * 0.05 * torch.rand(n, 1, 1, 1, generator=g)
    return x.clamp(-1, 1)


def train(cfg: SegmenterTraining, log=print, generator: Optional[StyleGAN2Generator] = None,
          init: Optional[UNetSegmenter] = None) -> UNetSegmenter:
    """Train a segmenter (from ``init`` when given) for ``cfg.steps`` steps."""
    torch.manual_seed(cfg.seed)
    net = UNetSegmenter(SegmenterConfig(num_classes=NUM_CLASSES)) if init is None else init.train().requires_grad_(True)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    t0 = time.time()
    for step in range(cfg.steps):
        img, lab = training_batch(step, cfg, generator)
        loss = F.cross_entropy(net(img), lab)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == cfg.steps - 1:
            log(f"step {step:5d}  loss {loss.item():.4f}  {time.time() - t0:.0f}s")
    return net.eval().requires_grad_(False)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=SegmenterTraining.steps)
    ap.add_argument("--batch", type=int, default=SegmenterTraining.batch)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=SegmenterTraining.lr)
    ap.add_argument("--init", type=Path, help="continue from this segmenter (safetensors)")
    ap.add_argument("--generator", type=Path, help="embedded generator whose samples join the batches")
    ap.add_argument("--generator-share", type=float, default=0.5)
    ap.add_argument("--out", type=Path, default=Path("weights/embedded-segmenter-64.safetensors"))
    a = ap.parse_args(argv)
    cfg = SegmenterTraining(steps=a.steps, batch=a.batch, seed=a.seed, lr=a.lr,
                            generator_share=a.generator_share if a.generator else 0.0)
    t = time.time()
    net = train(cfg, generator=load_module(a.generator, "stylegan2") if a.generator else None,
                init=load_module(a.init, "unet-segmenter") if a.init else None)
    save_safetensors(a.out, net.config, net.state_dict(),
                     note=f"trained by semedit.synth.train_segmenter, {cfg}, {time.time() - t:.0f}s")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
