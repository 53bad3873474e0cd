"""The 128-D face descriptor of face-api (vladmandic/face-api, MIT), ported to PyTorch.

face-api's ``FaceRecognitionNet`` is dlib's ``dlib_face_recognition_resnet_model_v1``
(a 29-layer ResNet trained for face identity, Euclidean distances, same person below ~0.6)
as TensorFlow.js weights. The network, in face-api's layer names (which we keep as module
names, so its weight names map one to one):

- input: RGB 150 x 150 in [0, 255], minus the mean (122.782, 117.001, 104.298), over 255;
- ``conv{w0}_down``: 7 x 7 conv, stride 2, no padding, ReLU; then 3 x 3 max-pool, stride 2;
- per width ``w``: a down block ``conv{w}_down`` (not for the first width) and residual blocks
  ``conv{w}_{j}``; last, ``conv{wN}_down_out``;
- every conv is conv + bias, then a per-channel affine ``scale`` (weights, biases);
- residual: ReLU(x + conv2(ReLU(conv1(x)))), 3 x 3 convs with "same" padding;
- down: conv1 is 3 x 3 stride 2 without padding; the shortcut is a 2 x 2 average pool whose
  channels are doubled with zeros; where the two disagree in size by one (odd inputs) the
  conv branch gets a zero row at the bottom and a zero column on the right;
- global mean, then ``fc`` (no bias) to 128.

Weight names: face-api ``a/b/conv/filters`` [kh, kw, in, out] -> ``a.b.conv.weight``
[out, in, kh, kw]; ``conv/bias`` -> ``conv.bias``; ``scale/weights|biases`` ->
``scale.weight|bias``; ``fc`` [256, 128] -> ``fc.weight`` [128, 256].
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

MEAN_RGB = (122.782, 117.001, 104.298)


@dataclass(frozen=True)
class FaceDescriptorConfig:
    widths: tuple = (32, 64, 128, 256)
    residual_blocks: tuple = (3, 3, 2, 2)  # after each width's down block (the stem for the first)
    embedding: int = 128
    input_size: int = 150

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"], d["residual_blocks"] = list(self.widths), list(self.residual_blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FaceDescriptorConfig":
        return cls(widths=tuple(d["widths"]), residual_blocks=tuple(d["residual_blocks"]),
                   embedding=int(d["embedding"]), input_size=int(d["input_size"]))


class _Scale(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class _ConvLayer(nn.Module):
    """conv + bias, then the per-channel scale."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding)
        self.scale = _Scale(cout)

    def forward(self, x):
        return self.scale(self.conv(x))


class _Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = _ConvLayer(channels, channels, 3, 1, 1)
        self.conv2 = _ConvLayer(channels, channels, 3, 1, 1)

    def forward(self, x):
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class _ResidualDown(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        if cout not in (cin, 2 * cin):
            raise ValueError(f"a down block keeps or doubles the width ({cin} -> {cout})")
        self.conv1 = _ConvLayer(cin, cout, 3, 2, 0)
        self.conv2 = _ConvLayer(cout, cout, 3, 1, 1)

    def forward(self, x):
        out = self.conv2(F.relu(self.conv1(x)))
        pooled = F.avg_pool2d(x, 2, 2)
        out = F.pad(out, (0, pooled.shape[3] - out.shape[3], 0, pooled.shape[2] - out.shape[2]))
        if pooled.shape[1] != out.shape[1]:
            pooled = torch.cat([pooled, torch.zeros_like(pooled)], 1)
        return F.relu(pooled + out)


class FaceDescriptorNet(nn.Module):
    """Face chip [N, 3, S, S] in [-1, 1] (S = config.input_size, RGB) -> descriptor [N, 128]."""

    def __init__(self, config: FaceDescriptorConfig = FaceDescriptorConfig()):
        super().__init__()
        self.config = config
        w = config.widths
        layers = {f"conv{w[0]}_down": _ConvLayer(3, w[0], 7, 2, 0)}
        for i, width in enumerate(w):
            if i > 0:
                layers[f"conv{width}_down"] = _ResidualDown(w[i - 1], width)
            for j in range(config.residual_blocks[i]):
                layers[f"conv{width}_{j + 1}"] = _Residual(width)
        layers[f"conv{w[-1]}_down_out"] = _ResidualDown(w[-1], w[-1])
        self.layers = nn.ModuleDict(layers)
        self.fc = nn.Linear(w[-1], config.embedding, bias=False)
        self.register_buffer("mean_rgb", torch.tensor(MEAN_RGB).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x + 1) * 127.5 - self.mean_rgb) / 255
        layers = iter(self.layers.values())
        x = F.max_pool2d(F.relu(next(layers)(x)), 3, 2)
        for layer in layers:
            x = layer(x)
        return self.fc(x.mean((2, 3)))


def config_from_face_api(shapes: dict) -> FaceDescriptorConfig:
    """The layout behind face-api weight names -> shapes (``conv{w}_{j}/...``, ``fc``), so
    reduced test networks convert too. Widths grow; the embedding size comes from ``fc``."""
    blocks: dict = {}
    for name in shapes:
        m = re.match(r"conv(\d+)_(\w+?)/", name)
        if m:
            width = int(m.group(1))
            blocks.setdefault(width, set())
            if m.group(2).isdigit():
                blocks[width].add(int(m.group(2)))
    widths = tuple(sorted(blocks))
    return FaceDescriptorConfig(widths=widths, residual_blocks=tuple(len(blocks[w]) for w in widths),
                                embedding=int(shapes["fc"][1]))


def state_from_face_api(weights: dict) -> dict:
    """face-api weight names and layouts -> our state dict (see the module docstring).
    Works for float tensors and for the uint8 codes of quantised ones alike (a permutation
    commutes with a per-tensor affine dequantisation)."""
    state = {}
    for name, value in weights.items():
        value = torch.as_tensor(value)
        if name == "fc":
            state["fc.weight"] = value.t().contiguous()
            continue
        key = name.replace("/", ".").replace(".filters", ".weight").replace(".weights", ".weight") \
                  .replace(".biases", ".bias")
        if name.endswith("/filters"):
            value = value.permute(3, 2, 0, 1).contiguous()
        state["layers." + key] = value
    return state
