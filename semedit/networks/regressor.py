"""Parameter regressor ("inverse renderer") and the identity distance built on it.

``ParameterRegressor(img [N, 3, R, R] in [-1, 1]) -> Prediction``: every continuous parameter in
[0, 1] (``fields [N, F]``, names in the config), and logits over the hair styles ``[N, S]`` and the
accessories ``[N, A]``. The config names every output, so a checkpoint describes itself and this
module needs nothing from the domain that trained it.

``RegressorIdentity(x, y) -> [N]``: the root-mean-square difference between the identity fields
predicted for x and for y (unit parameters), with the threshold below which two images show
the same person (calibrated when the regressor was trained).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class RegressorConfig:
    field_names: tuple
    identity_fields: tuple            # the names among field_names that make a person
    hair_styles: tuple
    accessories: tuple
    resolution: int = 64
    widths: tuple = (24, 48, 96, 192, 256)  # stem at R px, then one stride-2 block per width
    hidden: int = 512
    same_person_below: Optional[float] = None  # identity distance threshold (calibrated)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "RegressorConfig":
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


@dataclass(frozen=True)
class Prediction:
    fields: torch.Tensor           # [N, F] in [0, 1]
    hair_style_logits: torch.Tensor  # [N, S]
    accessory_logits: torch.Tensor   # [N, A]


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GroupNorm(8, cout), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU())


class ParameterRegressor(nn.Module):
    def __init__(self, config: RegressorConfig):
        super().__init__()
        self.config = config
        w = config.widths
        self.stem = nn.Sequential(nn.Conv2d(3, w[0], 3, padding=1), nn.GroupNorm(8, w[0]), nn.SiLU())
        self.blocks = nn.Sequential(*[_down(w[i], w[i + 1]) for i in range(len(w) - 1)])
        side = config.resolution // 2 ** (len(w) - 1)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(w[-1] * side * side, config.hidden), nn.SiLU())
        self.fields = nn.Linear(config.hidden, len(config.field_names))
        self.styles = nn.Linear(config.hidden, len(config.hair_styles))
        self.accessories = nn.Linear(config.hidden, len(config.accessories))
        self.register_buffer("identity_index", torch.tensor([config.field_names.index(f)
                                                             for f in config.identity_fields]), persistent=False)

    def forward(self, img: torch.Tensor) -> Prediction:
        if img.shape[-2:] != (self.config.resolution, self.config.resolution):
            img = F.interpolate(img, size=(self.config.resolution,) * 2, mode="area")
        h = self.fc(self.blocks(self.stem(img)))
        return Prediction(torch.sigmoid(self.fields(h)), self.styles(h), self.accessories(h))

    def identity(self, img: torch.Tensor) -> torch.Tensor:
        """img [N, 3, H, W] -> predicted identity fields [N, len(identity_fields)] in [0, 1]."""
        return self(img).fields.index_select(1, self.identity_index)


class RegressorIdentity(nn.Module):
    """Identity distance of the embedded domain: RMS difference of predicted identity fields -> [N]."""

    distance = "RMS parameter"

    def __init__(self, regressor: ParameterRegressor, name: str = "embedded parameter regressor"):
        super().__init__()
        self.regressor = regressor.eval().requires_grad_(False)
        self.name = name
        self.same_person_below = regressor.config.same_person_below

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a, b = self.regressor.identity(x), self.regressor.identity(y)
        return (a - b).square().mean(1).add(1e-12).sqrt()
