"""A small U-Net for semantic label maps: img [N, 3, H, W] in [-1, 1] -> logits [N, K, H, W]."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SegmenterConfig:
    num_classes: int = 10
    widths: tuple = (24, 48, 96)  # per level, full resolution first

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SegmenterConfig":
        return cls(num_classes=int(d["num_classes"]), widths=tuple(d["widths"]))


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU())


class UNetSegmenter(nn.Module):
    def __init__(self, config: SegmenterConfig):
        super().__init__()
        self.config = config
        w = config.widths
        self.down = nn.ModuleList([_block(3 if i == 0 else w[i - 1], w[i]) for i in range(len(w))])
        self.up = nn.ModuleList([_block(w[i] + w[i + 1], w[i]) for i in range(len(w) - 1)])
        self.head = nn.Conv2d(w[0], config.num_classes, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        skips = []
        x = img
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.avg_pool2d(x, 2))
            skips.append(x)
        for i in reversed(range(len(self.up))):
            x = F.interpolate(x, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            x = self.up[i](torch.cat([skips[i], x], dim=1))
        return self.head(x)

    @torch.no_grad()
    def predict(self, img: torch.Tensor) -> torch.Tensor:
        """img [N, 3, H, W] in [-1, 1] (H, W divisible by 4) -> label ids [N, H, W]."""
        return self(img).argmax(1)
