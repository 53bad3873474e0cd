"""The pSp family of W+ encoders, in their official checkpoints' state-dict layout.

``StyleEncoder(img [N, C, 256, 256] in [-1, 1]) -> codes [N, n_styles, 512]`` (before the
average latent is added; see ``semedit.encoders``). Four kinds over one IR-SE trunk
(``input_layer.*``, ``body.{i}.*``, see ``identity.ir_se_trunk``):

- ``gradual`` (pSp's GradualStyleEncoder): feature maps c1, c2, c3 after the last unit of the
  2nd, 3rd and 4th stages (body 6, 20, 23 for IR-SE50); a feature pyramid p2 = up(c3) +
  ``latlayer1``(c2), p1 = up(p2) + ``latlayer2``(c1) (bilinear, corners aligned); styles 0-2
  read c3, 3-6 p2, the rest p1, each through its own ``styles.{i}`` block.
- ``e4e`` (Encoder4Editing): the same layers; code 0 is w0 for every style, and style i >= 1
  adds its block's output to it (styles 1-2 read c3, 3-6 p2, the rest p1).
- ``backbone`` (ReStyle's BackboneEncoder, 6 input channels: the image and the current
  reconstruction): every style reads the trunk's last map.
- ``progressive-backbone`` (ReStyle over e4e): as ``backbone``, with e4e's w0 + deltas.
- ``w`` (pSp's WEncoder, HyperStyle's initial inversion): the trunk's last map average-pooled
  (``output_pool``) to one code through ``linear`` (equalised), the same for every style.

ReStyle's ResNet encoders (ResNetBackboneEncoder, ResNetProgressiveBackboneEncoder) are the two
backbone kinds over a ResNet-34 trunk (``trunk="resnet"``: ``conv1``, ``bn1``, ``relu``,
``body.{i}``, see ``resnet.resnet_trunk``) instead of the IR-SE one.

A style block (``styles.{i}``: GradualStyleBlock) halves its input log2(side) times with 3x3
stride-2 convolutions (``convs.{0, 2, ...}``, LeakyReLU 0.01 between) to 1 x 1, then applies an
equalised linear layer (``linear``; rosinality's EqualLinear, weight / sqrt(in)). In the gradual
and e4e kinds the pyramid and the blocks' convolutions have the trunk's last width and only
``linear`` maps it to w_dim; the official encoders have 512 for both, while a small encoder for a
wide W (ours) keeps its blocks narrow, since they hold most of its weights.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .identity import ir_se_trunk
from .resnet import resnet_features, resnet_trunk
from .stylegan2 import EqualizedLinear

KINDS = ("gradual", "e4e", "backbone", "progressive-backbone", "w")
TRUNKS = ("ir-se", "resnet")
COARSE, MIDDLE = 3, 7  # first style of the middle and of the fine group (pSp's coarse_ind, middle_ind)


@dataclass(frozen=True)
class StyleEncoderConfig:
    """kind: one of KINDS; n_styles x w_dim: the generator's W+ shape (18 x 512 at 1024 px);
    input_nc: 3 (pSp, e4e) or 6 (ReStyle); trunk: "ir-se" or "resnet" (ReStyle's ResNet
    encoders); units/widths: the trunk's stages (IR-SE50: (3, 4, 14, 3) x (64, 128, 256, 512);
    ResNet-34: (3, 4, 6, 3) x the same widths); input_size: images are resized to it first."""

    kind: str = "gradual"
    n_styles: int = 18
    w_dim: int = 512
    input_nc: int = 3
    units: tuple = (3, 4, 14, 3)
    widths: tuple = (64, 128, 256, 512)
    input_size: int = 256
    trunk: str = "ir-se"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown encoder kind {self.kind!r} (one of {', '.join(KINDS)})")
        backbone = self.kind in ("backbone", "progressive-backbone")
        if self.trunk not in TRUNKS or (self.trunk == "resnet" and not backbone):
            raise ValueError(f"a {self.kind} encoder has no {self.trunk!r} trunk")

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "StyleEncoderConfig":
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


class GradualStyleBlock(nn.Module):
    """[N, in_c, side, side] -> [N, out_c], through convolutions of ``width`` channels (default out_c)."""

    def __init__(self, in_c: int, out_c: int, side: int, width: int | None = None):
        super().__init__()
        self.width = width or out_c
        layers = []
        for i in range(int(math.log2(side))):
            layers += [nn.Conv2d(in_c if i == 0 else self.width, self.width, 3, 2, 1), nn.LeakyReLU(0.01)]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualizedLinear(self.width, out_c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).reshape(-1, self.width))


def _upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=y.shape[2:], mode="bilinear", align_corners=True) + y


class StyleEncoder(nn.Module):
    def __init__(self, config: StyleEncoderConfig):
        super().__init__()
        self.config = config
        if config.trunk == "resnet":
            self.conv1, self.bn1, self.relu, self.body = resnet_trunk(config.units, config.widths, config.input_nc)
        else:
            self.input_layer, self.body = ir_se_trunk(config.units, config.widths, config.input_nc)
        w, c = config.w_dim, config.widths
        stages = len(config.units)
        side = config.input_size // 2 ** stages  # the last map's side (16 for 256 px, IR-SE50)
        # the last unit of each stage: c1, c2, c3 are the outputs of the last three stages
        ends = [sum(config.units[:i + 1]) - 1 for i in range(stages)]
        self._taps = tuple(ends[-3:])
        if config.kind in ("gradual", "e4e"):
            sides = [side if i < COARSE else side * 2 if i < MIDDLE else side * 4 for i in range(config.n_styles)]
            self.styles = nn.ModuleList(GradualStyleBlock(c[-1], w, s, width=c[-1]) for s in sides)
            self.latlayer1 = nn.Conv2d(c[-2], c[-1], 1)
            self.latlayer2 = nn.Conv2d(c[-3], c[-1], 1)
        elif config.kind == "w":
            self.output_pool = nn.AdaptiveAvgPool2d(1)
            self.linear = EqualizedLinear(c[-1], w)
        else:
            self.styles = nn.ModuleList(GradualStyleBlock(c[-1], w, side) for _ in range(config.n_styles))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        n = self.config.n_styles
        if self.config.kind in ("gradual", "e4e"):
            return self._combine(self._pyramid(self.input_layer(img)))
        last = resnet_features(self, img) if self.config.trunk == "resnet" else self.body(self.input_layer(img))
        if self.config.kind == "w":
            return self.linear(self.output_pool(last).flatten(1))[:, None].expand(-1, n, -1)
        return self._combine([last] * n)

    def _pyramid(self, x: torch.Tensor) -> list:
        """The trunk's taps c1, c2, c3 and the feature pyramid: one map per style."""
        taps = {}
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in self._taps:
                taps[i] = x
        c1, c2, c3 = (taps[i] for i in self._taps)
        p2 = _upsample_add(c3, self.latlayer1(c2))
        p1 = _upsample_add(p2, self.latlayer2(c1))
        return [c3 if i < COARSE else p2 if i < MIDDLE else p1 for i in range(self.config.n_styles)]

    def _combine(self, features: list) -> torch.Tensor:
        """One feature map per style -> codes [N, n_styles, w_dim]: each style's block (pSp,
        ReStyle-pSp), or e4e's w0 plus each later style's block (e4e, ReStyle-e4e)."""
        if self.config.kind in ("gradual", "backbone"):
            return torch.stack([style(f) for style, f in zip(self.styles, features)], dim=1)
        w0 = self.styles[0](features[0])
        deltas = [torch.zeros_like(w0)] + [style(f) for style, f in zip(self.styles[1:], features[1:])]
        return w0[:, None] + torch.stack(deltas, dim=1)


@dataclass(frozen=True)
class EncoderModelConfig:
    """encoder: the StyleEncoder; start_from_latent_avg: codes are offsets from ``latent_avg``
    (pSp's option; ReStyle always starts from it); iterations: ReStyle's refinement steps
    (1 for pSp and e4e); name: how the method is shown ("pSp", "e4e", "ReStyle-pSp" ...)."""

    encoder: StyleEncoderConfig
    start_from_latent_avg: bool = True
    iterations: int = 1
    name: str = "pSp"

    def to_dict(self) -> dict:
        return {"encoder": self.encoder.to_dict(), "start_from_latent_avg": self.start_from_latent_avg,
                "iterations": self.iterations, "name": self.name}

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderModelConfig":
        return cls(StyleEncoderConfig.from_dict(d["encoder"]), bool(d["start_from_latent_avg"]),
                   int(d["iterations"]), str(d["name"]))


class EncoderModel(nn.Module):
    """A pSp-family encoder and the average latent its codes start from (``latent_avg``
    [n_styles, w_dim]; buffers: ``encoder.*``, ``latent_avg``). ReStyle encoders take the image
    and the current reconstruction (6 channels); ``semedit.encoders`` runs the loop."""

    def __init__(self, config: EncoderModelConfig):
        super().__init__()
        self.config = config
        self.encoder = StyleEncoder(config.encoder)
        self.register_buffer("latent_avg", torch.zeros(config.encoder.n_styles, config.encoder.w_dim))

    @property
    def iterative(self) -> bool:
        return self.config.encoder.input_nc == 6

    def forward(self, img: torch.Tensor, previous: torch.Tensor = None) -> torch.Tensor:
        """img [N, input_nc, S, S] (S = input_size) -> W+ codes [N, n_styles, w_dim]: the encoder's
        output plus ``previous`` codes (ReStyle) or the average latent (when codes start from it)."""
        codes = self.encoder(img)
        if previous is not None:
            return codes + previous
        return codes + self.latent_avg if self.config.start_from_latent_avg or self.iterative else codes
