"""Evaluation metrics of a reconstruction against its target (both [N, 3, H, W] in [-1, 1])."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from .losses import PerceptualModel


@dataclass(frozen=True)
class Scores:
    """Per-image scores; ``identity`` is None when no identity model is available."""

    lpips: float
    l2: float
    psnr: float
    identity: Optional[float]
    seconds: float

    def as_row(self) -> dict:
        return {"LPIPS": round(self.lpips, 4), "L2 (MSE)": round(self.l2, 5), "PSNR dB": round(self.psnr, 2),
                "identity distance": "n/a" if self.identity is None else round(self.identity, 4),
                "seconds": round(self.seconds, 2)}


def mse(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared error with pixel values in [-1, 1]."""
    return float((x - y).square().mean())


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB (peak-to-peak 2 for [-1, 1] images)."""
    m = mse(x, y)
    return float("inf") if m == 0 else 10 * math.log10(4.0 / m)


@torch.no_grad()
def score(reconstruction: torch.Tensor, target: torch.Tensor, perceptual: PerceptualModel,
          seconds: float, identity=None) -> Scores:
    """Scores of one reconstruction [1, 3, H, W] against target (resized to match), both in [-1, 1];
    the reconstruction is clamped to that range first, as every image shown or saved is."""
    reconstruction = reconstruction.clamp(-1, 1)
    if target.shape[-2:] != reconstruction.shape[-2:]:
        target = torch.nn.functional.interpolate(target, size=reconstruction.shape[-2:], mode="area")
    target = target.to(reconstruction)
    ident = None if identity is None else float(identity.to(reconstruction.device)(reconstruction, target).mean())
    return Scores(lpips=float(perceptual.to(reconstruction.device)(reconstruction, target).mean()),
                  l2=mse(reconstruction, target), psnr=psnr(reconstruction, target), identity=ident,
                  seconds=seconds)
