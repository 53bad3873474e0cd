"""Frechet distance between two sets of images in a frozen feature space (the FID recipe).

FD = |mu_a - mu_b|^2 + tr(C_a) + tr(C_b) - 2 tr((C_a^1/2 C_b C_a^1/2)^1/2), computed in float64
with symmetric eigendecompositions (no scipy).
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch


def _sqrtm_psd(c: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(c)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Features a [N, D] and b [M, D] (N, M > 1) -> Frechet distance between their Gaussians."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = torch.cov(a.T), torch.cov(b.T)
    root_a = _sqrtm_psd(ca)
    cross = _sqrtm_psd(root_a @ cb @ root_a)
    return float((mu_a - mu_b).square().sum() + ca.trace() + cb.trace() - 2 * cross.trace())


@torch.no_grad()
def embed_all(batches: Iterable[torch.Tensor], features: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Concatenated features [N, D] (on the CPU) of image batches [B, 3, H, W]."""
    return torch.cat([features(x).double().cpu() for x in batches])
