"""Losses for inversion: perceptual distance models, masked losses, latent and noise regularisers.

Perceptual models are registry entries (kind ``perceptual``): the ``lpips`` package's VGG with
its backbone from the Hub (``timm/vgg16.tv_in1k``, the torchvision weights as safetensors), or,
offline, the shift-tolerant LPIPS networks that ship inside the ``stlpips-pytorch`` wheel.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional

import torch
import torch.nn.functional as F
from torch import nn


class PerceptualModel(nn.Module):
    """LPIPS-style distance: (x, y) [N, 3, H, W] in [-1, 1] -> [N] (0 = identical).

    Images above ``max_size`` px are area-downsampled first (as the NVlabs projector does
    at 256 px); images under 32 px are upsampled, since the networks need some extent."""

    def __init__(self, net: nn.Module, name: str, max_size: int = 256):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.name = name
        self.max_size = max_size

    def _fit(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[-1]
        if h > self.max_size:
            return F.interpolate(x, size=(self.max_size, self.max_size), mode="area")
        if h < 32:
            return F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        return x

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(self._fit(x), self._fit(y)).reshape(x.shape[0], -1).mean(1)

    def _is_lpips_style(self) -> bool:
        """The lpips and stlpips packages' ``LPIPS``: scaling layer, feature net, linear heads."""
        net = self.net
        return all(hasattr(net, a) for a in ("scaling_layer", "net", "lins", "L", "version", "lpips", "spatial")) \
            and net.lpips and not net.spatial

    def features(self, img: torch.Tensor) -> List[torch.Tensor]:
        """Unit-normalised backbone features of img [N, 3, H, W] in [-1, 1], one [N, C_l, H_l, W_l]
        per layer (LPIPS-style nets only)."""
        net = self.net
        img = self._fit(img)
        outs = net.net.forward(net.scaling_layer(img) if net.version == "0.1" else img)
        return [f / (f.square().sum(1, keepdim=True).sqrt() + 1e-10) for f in outs[:net.L]]

    @torch.no_grad()
    def pooled_features(self, img: torch.Tensor) -> torch.Tensor:
        """img [N, 3, H, W] -> the spatial mean of every layer's features, concatenated [N, sum C_l]:
        a frozen embedding for distribution distances (Frechet distance)."""
        if not self._is_lpips_style():
            raise ValueError(f"{self.name} has no feature layers to pool")
        return torch.cat([f.mean((2, 3)) for f in self.features(img)], dim=1)

    def against(self, target: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """x [N, 3, H, W] -> distance(x, target) [N], the same values as ``self(x, target)``, with
        the target's features computed once: an optimisation loop then runs the network on its
        own image only. For LPIPS-style nets; other nets are called as they are."""
        if not self._is_lpips_style():
            return lambda x: self(x, target)
        with torch.no_grad():
            fixed = self.features(target)

        def distance(x: torch.Tensor) -> torch.Tensor:
            total = 0
            for lin, a, b in zip(self.net.lins, self.features(x), fixed):
                total = total + lin((a - b).square()).mean((2, 3), keepdim=True)
            return total.reshape(x.shape[0], -1).mean(1)
        return distance


def build_stlpips(weights: Path, net: str = "alex") -> PerceptualModel:
    """Shift-tolerant LPIPS from the stlpips-pytorch package's own weight file."""
    from stlpips_pytorch import stlpips  # deferred: heavy import
    model = stlpips.LPIPS(net=net, variant="shift_tolerant", pretrained=False, verbose=False)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("lins.")]  # ModuleList aliases of lin0..lin4
    if missing or unexpected:
        from .errors import CheckpointError
        raise CheckpointError(f"{weights}: does not fit stlpips {net} "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return PerceptualModel(model, f"ST-LPIPS ({net}, shift-tolerant)")


#: torchvision / timm vgg16 ``features.{i}`` -> lpips slice holding layer i
_VGG_SLICES = [(1, range(0, 4)), (2, range(4, 9)), (3, range(9, 16)), (4, range(16, 23)), (5, range(23, 30))]


def build_lpips_vgg(backbone: Path) -> PerceptualModel:
    """LPIPS (VGG, v0.1) with the backbone read from a timm/torchvision vgg16 safetensors file
    and the linear heads from the lpips package; nothing is downloaded behind our back."""
    import lpips  # deferred: heavy import
    from safetensors.torch import load_file
    model = lpips.LPIPS(net="vgg", pnet_rand=True, pretrained=True, verbose=False)
    state = load_file(str(backbone))
    mapped = {}
    for k, idx in _VGG_SLICES:
        for i in idx:
            for p in ("weight", "bias"):
                key = f"features.{i}.{p}"
                if key in state:
                    mapped[f"net.slice{k}.{i}.{p}"] = state[key]
    if len(mapped) != 26:  # 13 convolutions
        from .errors import CheckpointError
        raise CheckpointError(f"{backbone}: expected the 13 vgg16 convolutions (features.N), found {len(mapped) // 2}")
    model.load_state_dict(mapped, strict=False)
    return PerceptualModel(model, "LPIPS (VGG16)")


def l2(x: torch.Tensor, y: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean squared error per image [N]; ``mask`` [N, 1, H, W] in [0, 1] weights pixels."""
    d = (x - y).square()
    if mask is None:
        return d.flatten(1).mean(1)
    return (d * mask).flatten(1).sum(1) / (mask.flatten(1).sum(1) * x.shape[1]).clamp(min=1e-8)


def latent_regulariser(codes: torch.Tensor, w_avg: torch.Tensor, w_std: float) -> torch.Tensor:
    """Mean over codes of ||code - w_avg||^2 / w_std^2 (about 1 for a typical sample of W).

    codes [..., C] (any leading shape: chunks, layers); w_avg [C]."""
    return ((codes - w_avg).square().sum(-1) / w_std ** 2).mean()


def noise_regulariser(noise: List[torch.Tensor]) -> torch.Tensor:
    """Penalise spatial autocorrelation of noise maps [N, 1, H, W] at every scale (NVlabs
    projector), summed over the N images."""
    reg = torch.zeros(())
    for n in noise:
        while True:
            reg = reg + (n * n.roll(1, dims=3)).mean((1, 2, 3)).square().sum() \
                + (n * n.roll(1, dims=2)).mean((1, 2, 3)).square().sum()
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, 2)
    return reg


def normalise_noise_(noise: List[torch.Tensor]) -> None:
    """In place: zero mean and unit variance per map and image (after every optimiser step)."""
    with torch.no_grad():
        for n in noise:
            n.sub_(n.mean((1, 2, 3), keepdim=True))
            n.div_(n.square().mean((1, 2, 3), keepdim=True).sqrt().clamp(min=1e-8))
