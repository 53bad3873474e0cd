"""ArcFace IR-SE50 (InsightFace, as e4e / pSp / PTI / HyperStyle use it for identity).

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
        """Read the layout off a checkpoint, so reduced test checkpoints load too (stages are
        runs of units of one width; widths grow from stage to stage)."""
        n_units = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"body\.(\d+)\.", k)))
        widths, units = [], []
        for i in range(n_units):
            w = state[f"body.{i}.res_layer.1.weight"].shape[0]
            if widths and w == widths[-1]:
                units[-1] += 1
            else:
                widths.append(w)
                units.append(1)
        linear = state["output_layer.3.weight"]
        side = round((linear.shape[1] / widths[-1]) ** 0.5)
        return cls(units=tuple(units), widths=tuple(widths), embedding=linear.shape[0],
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


class IRSE(nn.Module):
    """Aligned face [N, 3, 112, 112] in [-1, 1] -> unit-length embedding [N, 512]."""

    def __init__(self, config: IRSEConfig = IRSEConfig()):
        super().__init__()
        self.config = config
        self.input_layer = nn.Sequential(nn.Conv2d(3, config.widths[0], 3, 1, 1, bias=False),
                                         nn.BatchNorm2d(config.widths[0]), nn.PReLU(config.widths[0]))
        units, cin = [], config.widths[0]
        for n, w in zip(config.units, config.widths):
            for j in range(n):
                units.append(_Bottleneck(cin, w, 2 if j == 0 else 1))
                cin = w
        self.body = nn.Sequential(*units)
        side = config.input_size // 2 ** len(config.units)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(cin), nn.Dropout(0.0), nn.Flatten(),
                                          nn.Linear(cin * side * side, config.embedding),
                                          nn.BatchNorm1d(config.embedding))

    def forward(self, x):
        return F.normalize(self.output_layer(self.body(self.input_layer(x))), dim=1)


class IdentityModel(nn.Module):
    """Identity distance 1 - cos between embeddings of two FFHQ-aligned faces [N, 3, H, W] in
    [-1, 1]; the face is cropped as pSp does (rows 35:223, columns 32:220 of a 256 px crop,
    scaled to other sizes) and pooled to 112 px."""

    def __init__(self, net: IRSE, name: str):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.name = name

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        s = x.shape[-1] / 256
        x = x[:, :, round(35 * s):round(223 * s), round(32 * s):round(220 * s)]
        return self.net(F.adaptive_avg_pool2d(x, (112, 112)))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 1 - (self.embed(x) * self.embed(y)).sum(1)


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
