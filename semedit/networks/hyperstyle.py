"""HyperStyle's hypernetwork (Alaluf et al., CVPR 2022) in its official checkpoint's layout.

``HyperNetwork(x [N, 6, S, S]) -> deltas``: the target beside the current reconstruction goes
through a ResNet-34 trunk (``conv1``, ``bn1``, ``relu``, ``body.{i}``; see ``resnet``) to a
[N, C, S/16, S/16] map; for each generator layer it tunes (an index into the modulated
convolutions in StyleSpace order, toRGB layers included, as ``StyleGAN2``'s
``kernel_shapes``), a refinement block predicts a weight offset [N, out, in, k, k] that the
generator applies as weight * (1 + delta) (``SynthesisNetwork.from_styles(weight_deltas=...)``):

- ``refinement_blocks.{j}`` for layers in ``shared_layers`` (HyperRefinementBlock): 3x3 convs
  (``convs.0`` stride 1 to ``shared_inner`` channels, then stride 2 down to 1 x 1, the last to
  ``code`` channels, LeakyReLU 0.01 after each), ``linear`` (equalised) to a code [N, code], and
  the weights shared by all of them (``shared_weight_hypernet``: ``w2`` [code, in * code],
  ``b2``, ``w1`` [code, out * k * k], ``b1``): h = (code @ w2 + b2) viewed [N, in, code], then
  (h @ w1 + b1) viewed [N, out, in, k, k]. The official state dict repeats the shared tensors
  under each such block (``refinement_blocks.{j}.hypernet.*``); ours keeps them once
  (``checkpoints.read_hyperstyle`` checks the copies agree and drops them).
- other tuned layers (RefinementBlock): stride-2 3x3 convs (``inner`` channels, the last to
  ``code``) down to 2 x 2 (1 x 1 from a 4 x 4 map), ``output.{0: average pool, 1: 1x1 conv code -> in * out}``, one
  offset per (out, in) pair repeated over the k x k taps.

``HyperStyleModel`` keeps the hypernetwork (``hypernet.*``) and the average latent its initial
W encoder's codes start from (``latent_avg`` [num_ws, w_dim]); the W encoder itself is another
catalogue model (``semedit.encoders.invert_hyperstyle`` runs the loop).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import List, Optional

import torch
from torch import nn

from .resnet import RESNET34, resnet_features, resnet_trunk
from .stylegan2 import EqualizedLinear


@dataclass(frozen=True)
class HyperStyleConfig:
    """layers: (kernel, in, out) of every modulated convolution of the generator (StyleSpace
    order); layers_to_tune: their indices that get offsets; shared_layers: those among them
    that use the shared hypernetwork (all in x out x 3 x 3 with the shared in = out); the
    trunk's units/widths and input channels (6: target and reconstruction); input_size: images
    are resized to it (the trunk's map is input_size / 16 wide); code: the blocks' last width;
    shared_inner / inner: the two block kinds' widths; num_ws x w_dim: the generator's W+ shape;
    iterations: refinement steps at inference (5 in the paper); name: how the method is shown."""

    layers: tuple
    layers_to_tune: tuple
    shared_layers: tuple = ()
    units: tuple = RESNET34[0]
    widths: tuple = RESNET34[1]
    input_nc: int = 6
    input_size: int = 256
    code: int = 512
    shared_inner: int = 128
    inner: int = 256
    num_ws: int = 18
    w_dim: int = 512
    iterations: int = 5
    name: str = "HyperStyle"

    def __post_init__(self):
        if any(self.layers[j][0] != 3 for j in self.layers_to_tune):
            raise ValueError("only 3x3 convolutions can be tuned (not toRGB layers)")
        shared = {tuple(self.layers[j][1:]) for j in self.shared_layers}
        if not set(self.shared_layers) <= set(self.layers_to_tune) or len(shared) > 1 or \
                any(i != o for i, o in shared):
            raise ValueError("shared layers must be tuned layers of one square shape (in = out)")
        if self.input_size // 16 < 4:
            raise ValueError("input_size must be at least 64 (the refinement blocks need a 4 x 4 map)")

    @property
    def spatial(self) -> int:
        return self.input_size // 16

    def to_dict(self) -> dict:
        return {k: ([list(x) if isinstance(x, tuple) else x for x in v] if isinstance(v, tuple) else v)
                for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "HyperStyleConfig":
        def tup(v):
            return tuple(tup(x) for x in v) if isinstance(v, list) else v
        return cls(**{k: tup(v) for k, v in d.items()})


def _convs(cin: int, inner: int, out: int, first_stride: int, n: int) -> nn.Sequential:
    """n 3x3 convolutions (the first with ``first_stride``, then stride 2; the last to ``out``
    channels), each followed by LeakyReLU 0.01."""
    layers = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else inner, out if i == n - 1 else inner, 3,
                             first_stride if i == 0 else 2, 1), nn.LeakyReLU(0.01)]
    return nn.Sequential(*layers)


class SharedWeightsHypernet(nn.Module):
    """code [N, z] -> offsets [N, out, in, k, k] through two shared matrices."""

    def __init__(self, z: int, in_size: int, out_size: int, k: int = 3):
        super().__init__()
        self.z, self.in_size, self.out_size, self.k = z, in_size, out_size, k
        self.w1 = nn.Parameter(torch.fmod(torch.randn(z, out_size * k * k) / 40, 2))
        self.b1 = nn.Parameter(torch.fmod(torch.randn(out_size * k * k) / 40, 2))
        self.w2 = nn.Parameter(torch.fmod(torch.randn(z, in_size * z) / 40, 2))
        self.b2 = nn.Parameter(torch.fmod(torch.randn(in_size * z) / 40, 2))

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        n = code.shape[0]
        h = (code @ self.w2 + self.b2).view(n, self.in_size, self.z)
        return (h @ self.w1 + self.b1).view(n, self.out_size, self.in_size, self.k, self.k)


class HyperRefinementBlock(nn.Module):
    """features [N, C, s, s] -> offsets [N, out, in, 3, 3] through the shared hypernetwork."""

    def __init__(self, shared: SharedWeightsHypernet, channels: int, inner: int, code: int, spatial: int):
        super().__init__()
        self.convs = _convs(channels, inner, code, 1, int(math.log2(spatial)) + 1)
        self.linear = EqualizedLinear(code, code)
        self._shared = (shared,)  # not a submodule: its weights are kept once, by the HyperNetwork

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self._shared[0](self.linear(self.convs(features).flatten(1)))


class RefinementBlock(nn.Module):
    """features [N, C, s, s] -> offsets [N, out, in, k, k], one per (out, in) pair."""

    def __init__(self, shape: tuple, channels: int, inner: int, code: int, spatial: int):
        super().__init__()
        self.k, self.in_size, self.out_size = shape
        self.convs = _convs(channels, inner, code, 2, max(2, int(math.log2(spatial)) - 1))
        self.output = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(code, self.in_size * self.out_size, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.output(self.convs(features)).view(-1, self.out_size, self.in_size, 1, 1)
        return x.expand(-1, -1, -1, self.k, self.k)


class HyperNetwork(nn.Module):
    def __init__(self, config: HyperStyleConfig):
        super().__init__()
        self.config = config
        self.conv1, self.bn1, self.relu, self.body = resnet_trunk(config.units, config.widths, config.input_nc)
        c, s = config.widths[-1], config.spatial
        shared = None
        if config.shared_layers:
            _, size, _ = config.layers[config.shared_layers[0]]
            shared = SharedWeightsHypernet(config.code, size, size)
            self.shared_weight_hypernet = shared
        blocks: List[Optional[nn.Module]] = []
        for j, shape in enumerate(config.layers):
            if j in config.shared_layers:
                blocks.append(HyperRefinementBlock(shared, c, config.shared_inner, config.code, s))
            elif j in config.layers_to_tune:
                blocks.append(RefinementBlock(shape, c, config.inner, config.code, s))
            else:
                blocks.append(None)
        self.refinement_blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> List[Optional[torch.Tensor]]:
        """x [N, 6, S, S] (target, reconstruction) -> one offset [N, out, in, k, k] per
        modulated convolution, None where the layer is not tuned."""
        features = resnet_features(self, x)
        return [None if block is None else block(features) for block in self.refinement_blocks]


class HyperStyleModel(nn.Module):
    """``hypernet`` and ``latent_avg`` [num_ws, w_dim]."""

    def __init__(self, config: HyperStyleConfig):
        super().__init__()
        self.config = config
        self.hypernet = HyperNetwork(config)
        self.register_buffer("latent_avg", torch.zeros(config.num_ws, config.w_dim))

    def forward(self, x: torch.Tensor) -> List[Optional[torch.Tensor]]:
        return self.hypernet(x)


def add_deltas(total: Optional[list], new: list) -> list:
    """Offsets of one more iteration added to the ones so far (None stays None)."""
    if total is None:
        return list(new)
    return [None if a is None else a + b for a, b in zip(total, new)]
