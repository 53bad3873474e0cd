"""Samples of the embedded generator with the renderer's ground truth for the same z."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..networks.stylegan2 import StyleGAN2Generator
from ..sampling import z_from_seeds
from .params import FIELDS, LATENT_DIM, Portraits, params_from_latent
from .render import render


@dataclass(frozen=True)
class GroundTruthSample:
    """Generator output and what the renderer says about it (all on the CPU).

    images [N, 3, R, R] in [-1, 1] (generator), ws [N, num_ws, w_dim], portraits (parameters),
    target [N, 3, R, R] (renderer image of the same z), labels [N, R, R] class ids.
    """

    seeds: tuple
    images: torch.Tensor
    ws: torch.Tensor
    portraits: Portraits
    target: torch.Tensor
    labels: torch.Tensor

    def attributes(self) -> dict:
        return self.portraits.attributes()

    def identity(self) -> torch.Tensor:
        return self.portraits.identity()

    def pose(self) -> dict:
        return self.portraits.pose()


@torch.no_grad()
def sample_with_ground_truth(G: StyleGAN2Generator, seeds: Sequence[int]) -> GroundTruthSample:
    """Untruncated samples (psi = 1: the ground truth is exact only there) with their truth."""
    if G.config.z_dim != LATENT_DIM:
        raise ValueError(f"ground truth needs an embedded-domain generator (z_dim {LATENT_DIM})")
    z = z_from_seeds(seeds, LATENT_DIM)
    device = G.w_avg.device
    ws = G.broadcast(G.mapping(z.to(device)))
    images = G.synthesis(ws, noise_mode="const").float().cpu()
    portraits = params_from_latent(z)
    truth = render(portraits, G.config.resolution)
    return GroundTruthSample(tuple(int(s) for s in seeds), images, ws.float().cpu(), portraits, truth.image,
                             truth.labels)


@torch.no_grad()
def predict_portraits(regressor, images: torch.Tensor) -> Portraits:
    """What the parameter regressor reads off images [N, 3, R, R] in [-1, 1]: a Portraits batch
    (on the CPU) whose attributes, pose and identity are predictions, not ground truth."""
    if tuple(regressor.config.field_names) != FIELDS:
        raise ValueError("this regressor predicts other parameters than the renderer's")
    pred = regressor(images.to(regressor.identity_index.device))
    return Portraits(pred.fields.float().cpu(), pred.hair_style_logits.argmax(1).cpu(),
                     pred.accessory_logits.argmax(1).cpu())


def hair_transfer_truth(face: Portraits, hair: Portraits, size: int) -> torch.Tensor:
    """The true hairstyle transfer [N, 3, size, size] in [-1, 1]: ``face``'s people, at their own
    pose, with ``hair``'s hair (style and every hair field)."""
    return render(face.with_hair_of(hair), size).image
