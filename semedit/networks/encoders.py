"""Image -> W+ encoders, and the FG'21 hairstyle-transfer network built from two of them.

``WPlusEncoder(img [N, 3, H, W] in [-1, 1]) -> ws [N, num_ws, w_dim]``: an IR-SE trunk, then
BN, adaptive pooling to ``pool`` x ``pool``, a linear layer to ``hidden`` features and an
equalised linear layer to every W+ code at once. This is pSp's
``BackboneEncoderUsingLastLayerIntoWPlus``, whose state-dict layout it keeps:
``input_layer.*``, ``body.{i}.*`` (see ``identity.ir_se_trunk``), ``output_layer_2.{0: BN2d,
3: Linear}``, ``linear.weight|bias`` (rosinality's EqualLinear, lr_mul 1: weight / sqrt(in)).

``HairTransferNet(face, hair) -> ws [N, num_ws, w_dim]``: the architecture of Šubrtová, Čech,
Franc, "Hairstyle Transfer between Face Images" (FG 2021): ``encoder_face`` and
``encoder_hair`` (two WPlusEncoders) each encode their image to W+, the two codes are
concatenated and ``map`` (``map.0``: Linear 2 L C -> L C, then LeakyReLU 0.2) makes the one W+
code a pre-trained StyleGAN2 synthesises. The official checkpoint keeps these under
``encoder.*`` and the generator under ``decoder.*`` (``checkpoints.read_fg21_hair``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .identity import ir_se_trunk
from .stylegan2 import EqualizedLinear


@dataclass(frozen=True)
class EncoderConfig:
    """num_ws x w_dim: the generator's W+ shape; units/widths: the IR-SE trunk (IR-SE50:
    (3, 4, 14, 3) x (64, 128, 256, 512)); input_size: images are resized to it first."""

    num_ws: int
    w_dim: int
    units: tuple = (3, 4, 14, 3)
    widths: tuple = (64, 128, 256, 512)
    input_size: int = 256
    pool: int = 7
    hidden: int = 512

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderConfig":
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


class WPlusEncoder(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.input_layer, self.body = ir_se_trunk(config.units, config.widths)
        c = config.widths[-1]
        self.output_layer_2 = nn.Sequential(nn.BatchNorm2d(c), nn.AdaptiveAvgPool2d(config.pool), nn.Flatten(),
                                            nn.Linear(c * config.pool ** 2, config.hidden))
        self.linear = EqualizedLinear(config.hidden, config.num_ws * config.w_dim)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """img [N, 3, H, W] in [-1, 1] -> ws [N, num_ws, w_dim]."""
        s = self.config.input_size
        if img.shape[-2:] != (s, s):
            img = F.interpolate(img, size=(s, s), mode="area" if img.shape[-1] > s else "bilinear")
        h = self.output_layer_2(self.body(self.input_layer(img)))
        return self.linear(h).view(-1, self.config.num_ws, self.config.w_dim)


@dataclass(frozen=True)
class HairTransferConfig:
    encoder: EncoderConfig

    def to_dict(self) -> dict:
        return {"encoder": self.encoder.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "HairTransferConfig":
        return cls(EncoderConfig.from_dict(d["encoder"]))


class HairTransferNet(nn.Module):
    def __init__(self, config: HairTransferConfig):
        super().__init__()
        self.config = config
        e = config.encoder
        self.encoder_face = WPlusEncoder(e)
        self.encoder_hair = WPlusEncoder(e)
        size = e.num_ws * e.w_dim
        self.map = nn.Sequential(nn.Linear(2 * size, size), nn.LeakyReLU(0.2))

    def combine(self, face_codes: torch.Tensor, hair_codes: torch.Tensor) -> torch.Tensor:
        """The two encoders' codes [N, L, C] each -> the transfer's W+ code [N, L, C]."""
        e = self.config.encoder
        return self.map(torch.cat([face_codes.flatten(1), hair_codes.flatten(1)], 1)).view(-1, e.num_ws, e.w_dim)

    def forward(self, face: torch.Tensor, hair: torch.Tensor) -> torch.Tensor:
        """face, hair [N, 3, H, W] in [-1, 1] -> ws [N, num_ws, w_dim] with face's person and hair's hair."""
        return self.combine(self.encoder_face(face), self.encoder_hair(hair))


@dataclass(frozen=True)
class HairMixerConfig:
    """num_ws x w_dim: the generator's W+ shape; hidden: the width of the MLP's two hidden layers."""

    num_ws: int
    w_dim: int
    hidden: int = 512

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "HairMixerConfig":
        return cls(**d)


class HairCodeMixer(nn.Module):
    """FG'21's map on the codes of one encoder shared by both images (the generator's e4e, frozen;
    ``encoders.EncoderHairTransfer`` joins them): (face codes, hair codes) [N, L, C] -> the
    transfer's W+ code [N, L, C] = face codes + MLP(both codes, centred on ``centre`` [L, C] and
    divided by ``scale``) x ``scale``. The MLP's last layer starts at zero, so an untrained mixer
    gives the face's own code back and training only has to learn what the hair changes."""

    def __init__(self, config: HairMixerConfig):
        super().__init__()
        self.config = config
        size = config.num_ws * config.w_dim
        self.register_buffer("centre", torch.zeros(config.num_ws, config.w_dim))
        self.register_buffer("scale", torch.ones([]))
        self.mlp = nn.Sequential(nn.Linear(2 * size, config.hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(config.hidden, config.hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(config.hidden, size))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, face_codes: torch.Tensor, hair_codes: torch.Tensor) -> torch.Tensor:
        x = torch.cat([(face_codes - self.centre).flatten(1), (hair_codes - self.centre).flatten(1)], 1) / self.scale
        return face_codes + self.mlp(x).view_as(face_codes) * self.scale
