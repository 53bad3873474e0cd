"""The ResNet-34 trunk of ReStyle's ResNet encoders and of HyperStyle's hypernetwork.

State-dict layout (the torchvision ResNet-34 stages flattened into one ``body``, as
``models/encoders`` of the ReStyle and HyperStyle repositories keep them): ``conv1`` (7x7,
stride 2, in_channels -> widths[0], no bias), ``bn1``, ``relu`` (a PReLU, so it has a
``weight`` [widths[0]]), no max-pool; ``body.{i}``: basic blocks ``conv1`` (3x3, stride 2 at the
first block of every stage but the first), ``bn1``, ``conv2`` (3x3), ``bn2`` and, where the
shape changes, ``downsample.{0: 1x1 conv, 1: BN}``. ResNet-34: units (3, 4, 6, 3), widths
(64, 128, 256, 512); body.3, body.7 and body.13 downsample. img [N, C, S, S] -> [N, widths[-1],
S / 16, S / 16].
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

RESNET34 = ((3, 4, 6, 3), (64, 128, 256, 512))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


def resnet_trunk(units: tuple = RESNET34[0], widths: tuple = RESNET34[1], in_channels: int = 3) -> tuple:
    """(``conv1``, ``bn1``, ``relu``, ``body``): the modules a network keeps under these names
    (their keys have no prefix of their own); run them with ``resnet_features``."""
    blocks, cin = [], widths[0]
    for stage, (n, w) in enumerate(zip(units, widths)):
        for j in range(n):
            blocks.append(BasicBlock(cin, w, 2 if j == 0 and stage > 0 else 1))
            cin = w
    return (nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]), nn.PReLU(widths[0]),
            nn.Sequential(*blocks))


def resnet_features(net: nn.Module, img: torch.Tensor) -> torch.Tensor:
    """img [N, C, S, S] -> [N, widths[-1], S / 16, S / 16] through ``net``'s resnet_trunk modules."""
    return net.body(net.relu(net.bn1(net.conv1(img))))


def resnet_layout(state: dict, prefix: str = "") -> tuple:
    """(units, widths, in_channels) of the trunk whose keys start with ``prefix``: a stage starts
    at every block that downsamples (and at the first)."""
    blocks = 1 + max(int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"body\.(\d+)\.", k)))
    units, widths = [], []
    for i in range(blocks):
        w = state[f"{prefix}body.{i}.conv1.weight"].shape[0]
        if not widths or f"{prefix}body.{i}.downsample.0.weight" in state:
            widths.append(w)
            units.append(1)
        else:
            units[-1] += 1
    return tuple(units), tuple(widths), state[f"{prefix}conv1.weight"].shape[1]
