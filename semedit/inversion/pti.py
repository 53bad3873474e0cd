"""Pivotal Tuning Inversion: a W pivot, then a private copy of the generator tuned around it.

The shared (registry) generator is never changed: the tuned weights live in the result."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Optional

import torch

from ..latents import Latent, synthesize
from ..losses import PerceptualModel, l2
from ..networks.stylegan2 import StyleGAN2Generator
from .common import InversionResult, ProgressFn, Stopwatch, prepare_target
from .optimization import OptimizationConfig, invert_optimization


@dataclass(frozen=True)
class PTIConfig:
    """PTI defaults: W pivot, then Adam lr 3e-4 on the generator with L2 + LPIPS (weights 1, 1)."""

    pivot: OptimizationConfig = field(default_factory=lambda: OptimizationConfig(space="w", optimize_noise=False))
    tune_steps: int = 300
    tune_lr: float = 3e-4
    l2_weight: float = 1.0
    lpips_weight: float = 1.0
    identity_weight: float = 0.0


def invert_pti(G: StyleGAN2Generator, target: torch.Tensor, config: PTIConfig = PTIConfig(), *,
               perceptual: PerceptualModel, device: torch.device,
               progress: Optional[ProgressFn] = None, identity=None) -> InversionResult:
    """Pivot in W (``config.pivot``), then tune a private copy of the synthesis network."""
    if config.identity_weight and identity is None:
        raise ValueError("identity_weight > 0 needs an identity model")
    clock = Stopwatch()
    identity = None if identity is None else identity.to(device)
    total = config.pivot.steps + config.tune_steps
    pivot = invert_optimization(G, target, config.pivot, perceptual=perceptual, device=device, progress=progress,
                                total_steps=total, identity=identity)
    target = prepare_target(target, G.config.resolution, device)
    tuned = copy.deepcopy(G).requires_grad_(True)  # private copy: the shared G stays as it is
    tuned.mapping.requires_grad_(False)  # the pivot is in W: only synthesis is tuned
    latent = Latent(pivot.latent.space, pivot.latent.value.to(device))
    opt = torch.optim.Adam([p for p in tuned.synthesis.parameters() if p.requires_grad], lr=config.tune_lr)
    losses = list(pivot.losses)
    to_target = perceptual.to(device).against(target)
    for step in range(config.tune_steps):
        image = synthesize(tuned, latent)
        loss = config.l2_weight * l2(image, target).mean() + config.lpips_weight * to_target(image).mean()
        if config.identity_weight:
            loss = loss + config.identity_weight * identity(image, target).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(config.pivot.steps + step + 1, total, losses[-1])
    with torch.no_grad():
        image = synthesize(tuned, latent)
    shared = G.state_dict()
    delta = {k: (v.detach() - shared[k]).cpu() for k, v in tuned.synthesis.state_dict(prefix="synthesis.").items()
             if not torch.equal(v, shared[k])}
    return InversionResult("Pivotal Tuning", pivot.latent, image.cpu(), tuple(losses), clock.seconds,
                           pivot_image=pivot.image, weight_delta=delta)
