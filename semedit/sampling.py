"""Sampling a generator: one deterministic latent per seed, independent of batch size."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .errors import SettingError
from .networks.stylegan2 import NoiseMode, StyleGAN2Generator

#: seeds are 32-bit: torch's CPU generator keeps only the low 32 bits, so 2**32 + 3 would draw sample 3
MAX_SEED = 2 ** 32 - 1


def z_from_seeds(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """Seeds (0 .. MAX_SEED) -> z [N, z_dim] on the CPU, each row from its own ``torch.Generator``;
    SettingError for a seed out of that range."""
    bad = [s for s in seeds if not 0 <= int(s) <= MAX_SEED]
    if bad:
        raise SettingError(f"seed {bad[0]} is out of range: seeds go from 0 to {MAX_SEED}")
    return torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


@dataclass(frozen=True)
class Samples:
    seeds: tuple
    ws: torch.Tensor      # [N, num_ws, w_dim], truncation applied
    images: torch.Tensor  # [N, 3, H, W] in [-1, 1]


@torch.no_grad()
def sample(G: StyleGAN2Generator, seeds: Sequence[int], *, truncation_psi: float = 1.0,
           noise_mode: NoiseMode = "const", batch_size: int = 8) -> Samples:
    """Images and W+ codes for ``seeds``, computed on G's device in batches; returned on the CPU."""
    device = G.w_avg.device
    z = z_from_seeds(seeds, G.config.z_dim)
    ws_all, img_all = [], []
    for chunk in z.split(batch_size):
        ws = G.broadcast(G.truncate(G.mapping(chunk.to(device)), truncation_psi))
        img_all.append(G.synthesis(ws, noise_mode=noise_mode).float().cpu())
        ws_all.append(ws.float().cpu())
    return Samples(tuple(int(s) for s in seeds), torch.cat(ws_all), torch.cat(img_all))
