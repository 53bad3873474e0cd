"""What every inversion method shares: the result type, progress, targets and the one
optimisation loop (codes, and for ChunkyGAN mask logits) that W, W+, S and ChunkyGAN all use."""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from ..errors import SemeditError
from ..latents import Latent, concat_styles, synthesize
from ..losses import PerceptualModel, l2, latent_regulariser, noise_regulariser, normalise_noise_
from ..networks.stylegan2 import StyleGAN2Generator

#: progress(step, total_steps, loss) after every step; raise InversionCancelled to stop
ProgressFn = Callable[[int, int, float], None]


class InversionCancelled(SemeditError):
    """Raised (by a progress callback) to stop an inversion between two steps."""


@dataclass(frozen=True, eq=False)  # identity equality and hash: it holds tensors and images
class InversionResult:
    """What a method found, enough for another tab to edit it without running it again.

    method: display name; latent: the codes found (ChunkyGAN: one row per chunk); image
    [1, 3, R, R] in [-1, 1]; losses: loss per step; seconds: wall time. Method-specific, None
    otherwise: ``noise`` (optimised noise maps, one [1, 1, R_j, R_j] per synthesis layer),
    ``chunk_images`` [n, 3, R, R] and ``chunk_masks`` [n, R, R] (ChunkyGAN; masks sum to one),
    ``chunk_logits`` [n, h, w] (ChunkyGAN's mask parameters), ``pivot_image`` [1, 3, R, R] and
    ``weight_delta`` (PTI: tuned minus shared weights, by state-dict key). ``key``, ``generator``
    and ``target`` say which method ran on which catalogue generator and target (set by
    ``semedit.pipeline``). All tensors on the CPU."""

    method: str
    latent: Latent
    image: torch.Tensor
    losses: Tuple[float, ...]
    seconds: float
    noise: Optional[Tuple[torch.Tensor, ...]] = None
    chunk_images: Optional[torch.Tensor] = None
    chunk_masks: Optional[torch.Tensor] = None
    chunk_logits: Optional[torch.Tensor] = None
    pivot_image: Optional[torch.Tensor] = None
    weight_delta: Optional[Dict[str, torch.Tensor]] = None
    key: str = ""
    generator: str = ""
    target: Optional[Any] = None  # semedit.targets.Target

    def generator_for(self, G: StyleGAN2Generator) -> StyleGAN2Generator:
        """G itself, or for PTI a private copy of G with the tuned weights (G is never changed)."""
        return with_weight_delta(G, self.weight_delta)


def with_weight_delta(G: StyleGAN2Generator, delta: Optional[Dict[str, torch.Tensor]]) -> StyleGAN2Generator:
    """G when ``delta`` is empty, else a private copy of G whose weights are G's plus ``delta``."""
    if not delta:
        return G
    tuned = copy.deepcopy(G)
    state = tuned.state_dict()
    with torch.no_grad():
        for k, d in delta.items():
            state[k].add_(d.to(state[k]))
    return tuned


def prepare_target(target: torch.Tensor, resolution: int, device: torch.device) -> torch.Tensor:
    """[N, 3, H, W] in [-1, 1] -> [N, 3, R, R] on ``device`` (area-resized; square expected)."""
    if target.ndim != 4 or target.shape[1] != 3:
        raise ValueError(f"target must be [N, 3, H, W], got {list(target.shape)}")
    target = target.to(device=device, dtype=torch.float32)
    if target.shape[-2:] != (resolution, resolution):
        mode = "area" if target.shape[-1] > resolution else "bilinear"
        kw = {} if mode == "area" else {"align_corners": False}
        target = F.interpolate(target, size=(resolution, resolution), mode=mode, **kw)
    return target


def ramped_lr(step: int, total: int, base: float, rampup: float, rampdown: float) -> float:
    """NVlabs projector schedule: linear ramp-up over ``rampup`` of the steps, cosine
    ramp-down over the last ``rampdown``."""
    t = step / max(1, total)
    ramp = min(1.0, (1.0 - t) / rampdown) if rampdown > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return base * ramp * (min(1.0, t / rampup) if rampup > 0 else 1.0)


@dataclass(frozen=True)
class SpaceStatistics:
    """Mean code [D] (per layer for W+, flattened StyleSpace for S) and the scale sqrt(E||x - mean||^2)."""

    mean: torch.Tensor
    std: float


def space_statistics(G: StyleGAN2Generator, space: str, n: int = 4000, seed: int = 0) -> SpaceStatistics:
    with torch.no_grad():
        z = torch.randn(n, G.config.z_dim, generator=torch.Generator().manual_seed(seed)).to(G.w_avg.device)
        w = G.mapping(z)
        if space == "s":
            x = torch.cat([concat_styles(G.synthesis.styles(G.broadcast(chunk))) for chunk in w.split(500)])
        else:
            x = w
        mean = G.w_avg if space != "s" else x.mean(0)
        return SpaceStatistics(mean.detach(), float((x - mean).square().sum(1).mean().sqrt()))


@dataclass(frozen=True)
class LoopSettings:
    steps: int
    lr: float
    rampup: float
    rampdown: float
    mask_lr: float = 0.0
    pixel_weight: float = 0.0
    lambda_reg: float = 0.0
    noise_weight: float = 0.0
    identity_weight: float = 0.0
    initial_noise_factor: float = 0.0
    noise_ramp: float = 0.75
    seed: int = 0


def fit_codes(G: StyleGAN2Generator, target: torch.Tensor, codes: Latent, settings: LoopSettings, *,
              perceptual: PerceptualModel, stats: SpaceStatistics, logits: Optional[torch.Tensor] = None,
              noise: Optional[List[torch.Tensor]] = None, progress: Optional[ProgressFn] = None,
              step_offset: int = 0, total_steps: Optional[int] = None, identity=None,
              objective: Optional[Callable[[torch.Tensor], torch.Tensor]] = None):
    """The single optimisation loop: n codes (n = 1 for plain optimisation), optional mask
    logits [n, h, w] composited by a softmax over codes, optional noise maps.

    loss = perceptual(O, target) + pixel_weight * MSE + identity_weight * identity(O, target)
           + lambda_reg * codes regulariser + noise_weight * noise regulariser,
    O = sum_i G(code_i) * softmax(logits)_i. ``objective(O) -> scalar`` replaces the first two
    terms when given (e.g. losses on regions of several images; the hair transfer).
    Returns (codes, logits, noise, losses); the generator is never modified. ``losses`` records
    each step's loss without the noise term, which NVlabs' projector also logs apart: on a
    generator with noise it is weighted 1e5 and dwarfs the rest in the first steps."""
    if settings.identity_weight and identity is None:
        raise ValueError("identity_weight > 0 needs an identity model")
    space = codes.space
    codes = codes.value.detach().clone().requires_grad_(True)
    groups = [{"params": [codes], "base": settings.lr}]
    if logits is not None:
        logits = logits.detach().clone().requires_grad_(True)
        groups.append({"params": [logits], "base": settings.mask_lr})
    if noise:
        noise = [n.detach().clone().requires_grad_(True) for n in noise]
        groups.append({"params": noise, "base": settings.lr})
    opt = torch.optim.Adam(groups, betas=(0.9, 0.999), lr=settings.lr)
    gen = torch.Generator(device="cpu").manual_seed(settings.seed)
    res = G.config.resolution
    total = total_steps or settings.steps
    to_target = perceptual.against(target) if objective is None else None  # the target's features once
    losses = []
    for step in range(settings.steps):
        for g in opt.param_groups:
            g["lr"] = ramped_lr(step, settings.steps, g["base"], settings.rampup, settings.rampdown)
        x = codes
        if settings.initial_noise_factor > 0:  # explore early (NVlabs projector)
            fade = max(0.0, 1 - step / (settings.noise_ramp * settings.steps)) ** 2
            strength = stats.std * settings.initial_noise_factor * fade
            x = x + torch.randn(x.shape, generator=gen).to(x) * strength
        images = synthesize(G, Latent(space, x), noise=noise)
        if logits is not None:
            masks = torch.softmax(F.interpolate(logits[None], size=(res, res), mode="bilinear",
                                                align_corners=False)[0], dim=0)[:, None]
            composite = (images * masks).sum(0, keepdim=True)
        else:
            composite = images
        if objective is not None:
            loss = objective(composite)
        else:
            loss = to_target(composite).mean()
            if settings.pixel_weight:
                loss = loss + settings.pixel_weight * l2(composite, target).mean()
        if settings.identity_weight:
            loss = loss + settings.identity_weight * identity(composite, target).mean()
        if settings.lambda_reg:
            loss = loss + settings.lambda_reg * latent_regulariser(codes, stats.mean, stats.std)
        logged = float(loss.detach())
        if noise and settings.noise_weight:
            loss = loss + settings.noise_weight * noise_regulariser(noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if noise:
            normalise_noise_(noise)
        losses.append(logged)
        if progress is not None:
            progress(step_offset + step + 1, total, losses[-1])
    return codes.detach(), None if logits is None else logits.detach(), noise, losses


class Stopwatch:
    def __init__(self):
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
