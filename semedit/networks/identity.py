"""Identity models: ArcFace IR-SE50 and the face-api descriptor behind one distance.

ArcFace IR-SE50 (InsightFace, as e4e / pSp / PTI / HyperStyle use it for identity).

State-dict layout of ``model_ir_se50.pth`` (TreB1eN/InsightFace_Pytorch):
``input_layer.{0: conv 3->64, 1: BN, 2: PReLU}``; ``body.{i}`` bottlenecks with
``shortcut_layer.{0: 1x1 conv, 1: BN}`` (only when the width changes; else a stride-only
max-pool) and ``res_layer.{0: BN, 1: 3x3 conv, 2: PReLU, 3: 3x3 conv (stride), 4: BN,
5: squeeze-excitation fc1/fc2}``; ``output_layer.{0: BN2d, 3: Linear 512*7*7 -> 512, 4: BN1d}``.
Units per stage (3, 4, 14, 3) at widths (64, 128, 256, 512), each stage starting with stride 2.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class IRSEConfig:
    units: tuple = (3, 4, 14, 3)
    widths: tuple = (64, 128, 256, 512)
    embedding: int = 512
    input_size: int = 112

    @classmethod
    def from_state(cls, state: dict) -> "IRSEConfig":
        """Read the layout off a checkpoint, so reduced test checkpoints load too."""
        units, widths = trunk_layout(state)
        linear = state["output_layer.3.weight"]
        side = round((linear.shape[1] / widths[-1]) ** 0.5)
        return cls(units=units, widths=widths, embedding=linear.shape[0],
                   input_size=side * 2 ** len(units))


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


class _Bottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride = stride
        self.shortcut_layer = (nn.MaxPool2d(1, stride) if cin == cout else
                               nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))
        self.res_layer = nn.Sequential(nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.PReLU(cout),
                                       nn.Conv2d(cout, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                                       _SqueezeExcite(cout))

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


def trunk_layout(state: dict, prefix: str = "") -> tuple:
    """(units, widths) of the IR-SE trunk whose keys start with ``prefix`` in a state dict:
    stages are runs of bottlenecks of one width (widths grow from stage to stage)."""
    n_units = 1 + max(int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"body\.(\d+)\.", k)))
    widths, units = [], []
    for i in range(n_units):
        w = state[f"{prefix}body.{i}.res_layer.1.weight"].shape[0]
        if widths and w == widths[-1]:
            units[-1] += 1
        else:
            widths.append(w)
            units.append(1)
    return tuple(units), tuple(widths)


def ir_se_trunk(units: tuple, widths: tuple, in_channels: int = 3) -> tuple:
    """The IR-SE trunk that ArcFace, pSp's encoders and the FG'21 hair encoders share:
    (``input_layer``: 3x3 conv in_channels -> widths[0], BN, PReLU; ``body``: ``units[i]``
    bottlenecks of width ``widths[i]``, each stage starting with stride 2). img [N, in_channels,
    S, S] -> [N, widths[-1], S / 2^stages, S / 2^stages]."""
    input_layer = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                nn.PReLU(widths[0]))
    blocks, cin = [], widths[0]
    for n, w in zip(units, widths):
        for j in range(n):
            blocks.append(_Bottleneck(cin, w, 2 if j == 0 else 1))
            cin = w
    return input_layer, nn.Sequential(*blocks)


class IRSE(nn.Module):
    """Aligned face [N, 3, 112, 112] in [-1, 1] -> unit-length embedding [N, 512]."""

    def __init__(self, config: IRSEConfig = IRSEConfig()):
        super().__init__()
        self.config = config
        self.input_layer, self.body = ir_se_trunk(config.units, config.widths)
        cin = config.widths[-1]
        side = config.input_size // 2 ** len(config.units)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(cin), nn.Dropout(0.0), nn.Flatten(),
                                          nn.Linear(cin * side * side, config.embedding),
                                          nn.BatchNorm1d(config.embedding))

    def forward(self, x):
        return F.normalize(self.output_layer(self.body(self.input_layer(x))), dim=1)


#: (left, top, right, bottom) as fractions of an FFHQ-aligned crop: pSp's ArcFace crop (rows
#: 35:223, columns 32:220 of 256 px), pooled to 112 px.
PSP_ARCFACE_BOX = (32 / 256, 35 / 256, 220 / 256, 223 / 256)
#: FFHQ alignment puts the eye centres near (0.375, 0.475), (0.625, 0.475) and the mouth centre
#: near (0.5, 0.735) (measured on the ../shared test faces: eyes within 0.01, mouth 0.725-0.75);
#: face_chip_box of those points, the crop face-api feeds its recognition net.
FFHQ_FACE_CHIP_BOX = (0.1795, 0.2861, 0.8205, 0.9272)


def face_chip_box(eyes: tuple, mouth: tuple) -> tuple:
    """face-api's dlib-style face chip from the two eye centres and the mouth centre (x, y):
    side = mean eye-mouth distance / 0.45, placed at 0.5 (x) and 0.43 (y) of the side around
    the mean of the three points. Returns (left, top, right, bottom) in the points' units."""
    (ax, ay), (bx, by), (mx, my) = eyes[0], eyes[1], mouth
    side = (((mx - ax) ** 2 + (my - ay) ** 2) ** 0.5 + ((mx - bx) ** 2 + (my - by) ** 2) ** 0.5) / 2 / 0.45
    cx, cy = (ax + bx + mx) / 3, (ay + by + my) / 3
    return cx - 0.5 * side, cy - 0.43 * side, cx + 0.5 * side, cy + 0.57 * side


class IdentityModel(nn.Module):
    """Identity distance between two FFHQ-aligned faces [N, 3, H, W] in [-1, 1] -> [N].

    The net sees the ``box`` of each face (fractions of the crop) resized to ``input_size``:
    area-pooled when ``resample`` is "area" (as pSp does for ArcFace), else antialiased
    bilinear. ``distance`` is "cosine" (1 - cos of the embeddings, ArcFace) or "euclidean"
    (dlib / face-api descriptors); ``same_person_below`` is the model's usual threshold, if any.
    """

    def __init__(self, net: nn.Module, name: str, *, box: tuple = PSP_ARCFACE_BOX, input_size: int = 112,
                 resample: str = "area", distance: str = "cosine", same_person_below: Optional[float] = None):
        super().__init__()
        if distance not in ("cosine", "euclidean") or resample not in ("area", "bilinear"):
            raise ValueError(f"unknown distance {distance!r} or resample {resample!r}")
        self.net = net.eval().requires_grad_(False)
        self.name, self.box, self.input_size = name, box, input_size
        self.resample, self.distance, self.same_person_below = resample, distance, same_person_below

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        left, top, right, bottom = self.box
        x = x[:, :, round(top * h):round(bottom * h), round(left * w):round(right * w)]
        size = (self.input_size, self.input_size)
        if self.resample == "area":
            return self.net(F.adaptive_avg_pool2d(x, size))
        return self.net(F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a, b = self.embed(x), self.embed(y)
        if self.distance == "euclidean":
            return (a - b).norm(dim=1)
        return (1 - F.cosine_similarity(a, b, dim=1)).clamp(min=0)


def load_irse(path, name: str = "ArcFace IR-SE50") -> IdentityModel:
    """A ``model_ir_se50.pth`` state dict (torch.load with weights_only=True)."""
    from ..errors import CheckpointError
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - refused globals and damaged files both end here
        raise CheckpointError(f"{path}: not a loadable IR-SE state dict ({type(e).__name__}: {e})") from e
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module.").removeprefix("facenet."): v for k, v in state.items()}
    try:
        net = IRSE(IRSEConfig.from_state(state))
        net.load_state_dict(state, strict=True)
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: does not have the IR-SE key layout ({str(e).splitlines()[0]})") from e
    return IdentityModel(net, name)


def load_face_descriptor(path, name: str = "face-api descriptor") -> IdentityModel:
    """The face-api recognition net converted by tools/convert_face_api.py (safetensors)."""
    from ..checkpoints import load_module
    return IdentityModel(load_module(path, "face-descriptor"), name, box=FFHQ_FACE_CHIP_BOX, input_size=150,
                         resample="bilinear", distance="euclidean", same_person_below=0.6)
