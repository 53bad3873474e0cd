"""Encoder inversion: one forward pass (pSp, e4e), a few refinement steps (ReStyle), or a few
weight-offset steps on top of an encoder's codes (HyperStyle).

An encoder (``networks.psp.EncoderModel``, catalogue kind ``encoder``) reads the target at its
input size (256 px, [-1, 1]) and gives W+ codes for the generator it was trained with. ReStyle
starts from the average latent and its image, and each of its iterations reads the target beside
the current reconstruction (both at the input size) and adds a correction to the codes.
HyperStyle (``networks.hyperstyle.HyperStyleModel``) keeps the codes of its W encoder (the raw
encoder output plus its own ``latent_avg``) and instead predicts offsets of the generator's
weights; each iteration reads the target beside the current reconstruction and adds to them.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .errors import SemeditError
from .inversion.common import InversionResult, ProgressFn, Stopwatch
from .latents import Latent, synthesize
from .networks.hyperstyle import HyperStyleModel, add_deltas
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
    """target [N, 3, H, W] in [-1, 1] -> (W+ codes [N, num_ws, w_dim], images [N, 3, R, R], images
    after each iteration). ``iterations`` (ReStyle only) defaults to the encoder's own."""
    cfg = encoder.config.encoder
    _check_shape(encoder.config.name, (cfg.n_styles, cfg.w_dim), G)
    device = encoder.latent_avg.device
    x = _at(target.to(device), cfg.input_size)
    if not encoder.iterative:
        codes = encoder(x)
        images = [synthesize(G, Latent("w+", codes))]
        if progress is not None:
            progress(1, 1, 0.0)
        return codes, images[-1], images
    n = int(iterations or encoder.config.iterations)
    codes = encoder.latent_avg[None].expand(x.shape[0], -1, -1)
    current = synthesize(G, Latent("w+", codes))  # the average image, once per target
    images = []
    for i in range(n):
        codes = encoder(torch.cat([x, _at(current, cfg.input_size)], dim=1), previous=codes)
        current = synthesize(G, Latent("w+", codes))
        images.append(current)
        if progress is not None:
            progress(i + 1, n, 0.0)
    return codes, current, images


def _check_shape(name: str, shape: tuple, G: StyleGAN2Generator) -> None:
    if tuple(shape) != (G.config.num_ws, G.config.w_dim):
        raise EncoderMismatchError(f"{name} gives {shape[0]} x {shape[1]} codes; this generator takes "
                                   f"{G.config.num_ws} x {G.config.w_dim}: pick the generator it was trained for")


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


@torch.no_grad()
def hyperstyle(model: HyperStyleModel, initial: EncoderModel, G: StyleGAN2Generator, target: torch.Tensor,
               iterations: Optional[int] = None, progress: Optional[ProgressFn] = None) -> tuple:
    """target [N, 3, H, W] in [-1, 1] -> (W+ codes [N, L, C] of the W encoder ``initial``,
    weight offsets (one per modulated convolution, None where untuned), image [N, 3, R, R],
    images after each iteration). ``iterations`` defaults to the model's own (5 in the official one)."""
    cfg = model.config
    _check_shape(cfg.name, (cfg.num_ws, cfg.w_dim), G)
    if tuple(G.synthesis.kernel_shapes) != tuple(tuple(x) for x in cfg.layers):
        raise EncoderMismatchError(f"{cfg.name} predicts weight offsets for another generator's layers")
    if initial.iterative:
        raise EncoderMismatchError("HyperStyle starts from a one-pass encoder (pSp, e4e or a W encoder), not ReStyle")
    device = model.latent_avg.device
    x = target.to(device)
    codes = initial.encoder(_at(x, initial.config.encoder.input_size)) + model.latent_avg
    current = synthesize(G, Latent("w+", codes))
    n = int(iterations or cfg.iterations)
    deltas, images = None, []
    for i in range(n):
        deltas = add_deltas(deltas, model(torch.cat([_at(x, cfg.input_size), _at(current, cfg.input_size)], 1)))
        current = synthesize(G, Latent("w+", codes), weight_deltas=deltas)
        images.append(current)
        if progress is not None:
            progress(i + 1, n, 0.0)
    return codes, deltas, current, images


def invert_hyperstyle(G: StyleGAN2Generator, target: torch.Tensor, model: HyperStyleModel, initial: EncoderModel, *,
                      iterations: Optional[int] = None, progress: Optional[ProgressFn] = None) -> InversionResult:
    """HyperStyle's inversion of target [1, 3, H, W] as an InversionResult: the W encoder's
    codes, and the tuned weights as a difference from G's (``weight_delta``, as PTI keeps them),
    so the editing tabs edit it like a PTI result."""
    clock = Stopwatch()
    codes, deltas, image, _ = hyperstyle(model, initial, G, target, iterations, progress)
    n = int(iterations or model.config.iterations)
    weights = G.state_dict()
    delta = {f"synthesis.{k}": (weights[f"synthesis.{k}"] * d[0]).cpu()  # W (1 + d) - W
             for k, d in zip(G.synthesis.weight_keys(), deltas) if d is not None}
    return InversionResult(f"{model.config.name} ({n} iterations)", Latent("w+", codes.cpu()),
                           image.clamp(-1, 1).cpu(), (), clock.seconds, weight_delta=delta)


class EncoderHairTransfer(torch.nn.Module):
    """The FG'21 transfer with one encoder for both images: ``encoder`` (a single-pass pSp or e4e
    of the generator, frozen) reads the face and the hair image, and ``mixer``
    (``networks.encoders.HairCodeMixer``) makes the one W+ code. HairTransferNet's interface:
    face, hair [N, 3, H, W] in [-1, 1] -> ws [N, num_ws, w_dim]."""

    def __init__(self, encoder: EncoderModel, mixer: torch.nn.Module):
        super().__init__()
        if encoder.iterative:
            raise SemeditError(f"{encoder.config.name}: a hair mixer needs a single-pass encoder (pSp or e4e), "
                               "not an iterative one")
        cfg = encoder.config.encoder
        if (cfg.n_styles, cfg.w_dim) != (mixer.config.num_ws, mixer.config.w_dim):
            raise EncoderMismatchError(f"{encoder.config.name} gives {cfg.n_styles} x {cfg.w_dim} codes, the hair "
                                       f"mixer takes {mixer.config.num_ws} x {mixer.config.w_dim}")
        self.encoder, self.mixer = encoder.eval().requires_grad_(False), mixer

    def train(self, mode: bool = True) -> "EncoderHairTransfer":
        """Only the mixer trains: the shared encoder stays in eval mode (its batch norms frozen)."""
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, face: torch.Tensor, hair: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            codes = self.encoder(_at(torch.cat([face, hair]), self.encoder.config.encoder.input_size))
        face_codes, hair_codes = codes.split([len(face), len(hair)])
        return self.mixer(face_codes, hair_codes)
