"""Encoder inversion: one forward pass (pSp, e4e) or a few refinement steps (ReStyle).

An encoder (``networks.psp.EncoderModel``, catalogue kind ``encoder``) reads the target at its
input size (256 px, [-1, 1]) and gives W+ codes for the generator it was trained with. ReStyle
starts from the average latent and its image, and each of its iterations reads the target beside
the current reconstruction (both at the input size) and adds a correction to the codes.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .errors import SemeditError
from .inversion.common import InversionResult, ProgressFn, Stopwatch
from .latents import Latent, synthesize
from .networks.psp import EncoderModel
from .networks.stylegan2 import StyleGAN2Generator


class EncoderMismatchError(SemeditError):
    """The encoder was made for another generator shape."""


def _at(img: torch.Tensor, size: int) -> torch.Tensor:
    """img [N, C, H, W] resized to size x size (area when shrinking, as pSp's face pool does)."""
    if img.shape[-1] == size and img.shape[-2] == size:
        return img
    mode = "area" if img.shape[-1] > size else "bilinear"
    return F.interpolate(img, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))


@torch.no_grad()
def encode(encoder: EncoderModel, G: StyleGAN2Generator, target: torch.Tensor, iterations: Optional[int] = None,
           progress: Optional[ProgressFn] = None) -> tuple:
    """target [1, 3, H, W] in [-1, 1] -> (W+ codes [1, num_ws, w_dim], image [1, 3, R, R], images
    after each iteration). ``iterations`` (ReStyle only) defaults to the encoder's own."""
    cfg = encoder.config.encoder
    if (cfg.n_styles, cfg.w_dim) != (G.config.num_ws, G.config.w_dim):
        raise EncoderMismatchError(f"{encoder.config.name} gives {cfg.n_styles} x {cfg.w_dim} codes; this generator "
                                   f"takes {G.config.num_ws} x {G.config.w_dim}: pick the generator it was trained for")
    device = encoder.latent_avg.device
    x = _at(target.to(device), cfg.input_size)
    if not encoder.iterative:
        codes = encoder(x)
        images = [synthesize(G, Latent("w+", codes))]
        if progress is not None:
            progress(1, 1, 0.0)
        return codes, images[-1], images
    n = int(iterations or encoder.config.iterations)
    codes = encoder.latent_avg[None]
    current = synthesize(G, Latent("w+", codes))  # the average image
    images = []
    for i in range(n):
        codes = encoder(torch.cat([x, _at(current, cfg.input_size)], dim=1), previous=codes)
        current = synthesize(G, Latent("w+", codes))
        images.append(current)
        if progress is not None:
            progress(i + 1, n, 0.0)
    return codes, current, images


def invert_encoder(G: StyleGAN2Generator, target: torch.Tensor, encoder: EncoderModel, *,
                   iterations: Optional[int] = None, progress: Optional[ProgressFn] = None) -> InversionResult:
    """The encoder's W+ inversion of target [1, 3, H, W] as an InversionResult (no losses: nothing
    is optimised)."""
    clock = Stopwatch()
    codes, image, _ = encode(encoder, G, target, iterations, progress)
    name = encoder.config.name
    if encoder.iterative:
        name = f"{name} ({int(iterations or encoder.config.iterations)} iterations)"
    return InversionResult(name, Latent("w+", codes.cpu()), image.clamp(-1, 1).cpu(), (), clock.seconds)
