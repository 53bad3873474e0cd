"""Training data from the renderer: unlimited portraits, drawn on any device, one seed per step.

Every batch is a pure function of (seed, step), so a resumed run sees exactly the batches an
uninterrupted one would have seen, on any device.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from ..synth.params import ACCESSORIES, LATENT_DIM, Portraits, params_from_latent
from ..synth.render import render


def step_generator(seed: int, step: int, device: torch.device | str = "cpu", stream: int = 0) -> torch.Generator:
    """A random-number generator on ``device`` for (seed, step, stream): independent streams per step."""
    return torch.Generator(device=device).manual_seed((seed * 1_000_003 + step) * 17 + stream)


@dataclass(frozen=True)
class RenderedBatch:
    """z [B, 64] (renderer latents), portraits, image [B, 3, S, S] in [-1, 1], labels [B, S, S]."""

    z: torch.Tensor
    portraits: Portraits
    image: torch.Tensor
    labels: torch.Tensor


def rendered_batch(batch: int, size: int, g: torch.Generator, *, accessory_share: float = 0.0) -> RenderedBatch:
    """``batch`` random portraits on ``g``'s device; a share of them wear an out-of-domain accessory."""
    device = g.device
    z = torch.randn(batch, LATENT_DIM, generator=g, device=device)
    p = params_from_latent(z)
    if accessory_share > 0:
        wear = torch.rand(batch, generator=g, device=device) < accessory_share
        which = torch.randint(1, len(ACCESSORIES), (batch,), generator=g, device=device)
        p = replace(p, accessory=torch.where(wear, which, torch.zeros_like(which)))
    r = render(p, size)
    return RenderedBatch(z, p, r.image, r.labels)


def augment(img: torch.Tensor, g: torch.Generator, *, max_blur: float = 1.2, brightness: float = 0.1,
            max_noise: float = 0.05) -> torch.Tensor:
    """Random Gaussian blur (sigma up to ``max_blur`` px), brightness (+-``brightness``) and noise
    (std up to ``max_noise``) per image: img [N, 3, H, W] in [-1, 1] -> same shape, clamped."""
    n, dev = img.shape[0], img.device
    sigma = torch.rand(n, generator=g, device=dev) * max_blur
    r = torch.arange(-3, 4, dtype=torch.float32, device=dev)
    k = torch.exp(-(r[None] ** 2) / (2 * sigma[:, None].clamp(min=1e-3) ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(img.shape[1], 0)  # [N*C, 7]
    x = img.reshape(1, -1, *img.shape[2:])
    x = F.conv2d(F.pad(x, (3, 3, 0, 0), mode="replicate"), k[:, None, None, :], groups=x.shape[1])
    x = F.conv2d(F.pad(x, (0, 0, 3, 3), mode="replicate"), k[:, None, :, None], groups=x.shape[1])
    x = x.reshape_as(img)
    x = (x + 1) * (1 - brightness + 2 * brightness * torch.rand(n, 1, 1, 1, generator=g, device=dev)) - 1
    x = x + torch.randn(x.shape, generator=g, device=dev) * max_noise * torch.rand(n, 1, 1, 1, generator=g, device=dev)
    return x.clamp(-1, 1)


@torch.no_grad()
def code_spread(G, device: torch.device | str = "cpu", n: int = 4000) -> float:
    """E||w - mean w||^2 over n fixed samples of G's W: the scale W+ code errors are measured in."""
    w = G.mapping(torch.randn(n, G.config.z_dim, generator=torch.Generator().manual_seed(1)).to(device))
    return float(w.var(0).sum())
