"""StyleGAN2 discriminator ('resnet' architecture) for adversarial training of small generators.

``D(img [N, 3, R, R] in [-1, 1]) -> logits [N]``: an input 1x1 convolution, then one residual
block per resolution from R down to 8 px (two 3x3 convolutions, the second downsampling by a
[1, 3, 3, 1] low-pass filter and stride 2, a 1x1 skip, sum scaled by 1/sqrt(2)), and at 4 px the
minibatch standard-deviation feature, a 3x3 convolution, a fully connected layer and the output.
Layers use equalised learning rate, as in the generator.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .stylegan2 import LRELU_GAIN, LRELU_SLOPE, EqualizedLinear, blur


@dataclass(frozen=True)
class DiscriminatorConfig:
    """``channels``: feature width at every resolution from R down to 4 px (len = log2(R) - 1)."""

    resolution: int = 64
    channels: tuple = (64, 128, 256, 256, 256)
    mbstd_group: int = 4
    mbstd_channels: int = 1
    img_channels: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        n = int(math.log2(self.resolution)) - 1
        if self.resolution < 8 or self.resolution & (self.resolution - 1) or len(self.channels) != n:
            raise ValueError(f"a {self.resolution} px discriminator needs {n} widths ({self.resolution}..4 px), "
                             f"got {len(self.channels)}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DiscriminatorConfig":
        return cls(**{**d, "channels": tuple(d["channels"])})


class EqualizedConv2d(nn.Module):
    """k x k convolution with equalised learning rate; ``down`` low-pass filters and strides by 2."""

    def __init__(self, cin: int, cout: int, k: int, *, bias: bool = True, activation: bool = True,
                 down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.gain = 1 / math.sqrt(cin * k * k)
        self.activation, self.down, self.k = activation, down, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.gain
        if self.down:  # filter, then a strided convolution (NVlabs conv2d_resample, down=2)
            p = (4 - 2) + (self.k - 1)
            x = F.conv2d(blur(x, ((p + 1) // 2, p // 2)), w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.k // 2)
        if self.bias is not None:
            x = x + self.bias[None, :, None, None]
        if self.activation:
            x = F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN
        return x


class DiscriminatorBlock(nn.Module):
    """[N, cin, r, r] -> [N, cout, r/2, r/2] (residual)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv0 = EqualizedConv2d(cin, cin, 3)
        self.conv1 = EqualizedConv2d(cin, cout, 3, down=True)
        self.skip = EqualizedConv2d(cin, cout, 1, bias=False, activation=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * math.sqrt(0.5)


def minibatch_stddev(x: torch.Tensor, group: int, channels: int) -> torch.Tensor:
    """Append the standard deviation over groups of ``group`` samples: [N, C, H, W] -> [N, C + channels, H, W]."""
    n, c, h, w = x.shape
    g = min(group, n)
    if n % g:
        g = math.gcd(n, g)
    y = x.reshape(g, -1, channels, c // channels, h, w)
    y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt()  # [N/g, F, C/F, H, W]
    y = y.mean(dim=[2, 3, 4]).reshape(-1, channels, 1, 1).repeat(g, 1, h, w)  # [N, F, H, W]
    return torch.cat([x, y], dim=1)


class StyleGAN2Discriminator(nn.Module):
    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        self.config = config
        ch = config.channels
        self.from_rgb = EqualizedConv2d(config.img_channels, ch[0], 1)
        self.blocks = nn.ModuleList(DiscriminatorBlock(ch[i], ch[i + 1]) for i in range(len(ch) - 1))
        c4 = ch[-1]
        self.conv = EqualizedConv2d(c4 + config.mbstd_channels, c4, 3)
        self.fc = EqualizedLinear(c4 * 16, c4, activation=True)
        self.out = EqualizedLinear(c4, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.from_rgb(img)
        for block in self.blocks:
            x = block(x)
        x = minibatch_stddev(x, self.config.mbstd_group, self.config.mbstd_channels)
        x = self.fc(self.conv(x).flatten(1))
        return self.out(x)[:, 0]


