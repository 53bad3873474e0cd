"""Parameter regressor ("inverse renderer") and the identity distance built on it.

``ParameterRegressor(img [N, 3, R, R] in [-1, 1]) -> Prediction``: every continuous parameter in
[0, 1] (``fields [N, F]``, names in the config), and logits over the hair styles ``[N, S]`` and the
accessories ``[N, A]``. The config names every output, so a checkpoint describes itself and this
module needs nothing from the domain that trained it.

Small details (a mouth's curve, an iris, a brow's tilt) are a few pixels wide and move with the
face, and a whole-image network barely learns them. So the config may name *parts*: the network
predicts each part's centre, crops a window there at full resolution, and a small part network
reads that part's fields from the window's features and the whole image's (they replace the
whole-image head's values for those names).

``RegressorIdentity(x, y) -> [N]``: the root-mean-square difference between the identity fields
predicted for x and for y, each field weighted by how steadily the regressor reads it for one
person (the config's ``identity_weights``: 1 / the field's spread over the same person turned and
with other hair, scaled to a root-mean-square weight of 1), with the threshold below which two
images show the same person (both calibrated on renders when the regressor was trained).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Part:
    """A window read at full resolution: centred on the ``label`` segment class (as the training
    data's label maps place it), ``height`` x ``width`` px at the config's resolution (multiples
    of 4), giving the named ``fields``."""
    name: str
    label: str
    height: int
    width: int
    fields: tuple


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
    identity_weights: tuple = ()      # one weight per identity field (calibrated; empty: all 1)
    parts: tuple = ()                 # Part windows read at full resolution (none: the whole-image head only)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "RegressorConfig":
        d = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
        d["parts"] = tuple(Part(**{**p, "fields": tuple(p["fields"])}) for p in d.get("parts", ()))
        return cls(**d)


@dataclass(frozen=True)
class Prediction:
    fields: torch.Tensor           # [N, F] in [0, 1]
    hair_style_logits: torch.Tensor  # [N, S]
    accessory_logits: torch.Tensor   # [N, A]
    part_centres: Optional[torch.Tensor] = None  # [N, P, 2] predicted (x, y) of each part, in [0, 1] of the image


def crop_window(img: torch.Tensor, centre: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """img [N, C, H, W], centre [N, 2] (x, y) in [0, 1] of the image -> [N, C, height, width]
    bilinear window at the image's pixel scale (border pixels repeat outside the image)."""
    n, _, h, w = img.shape
    theta = img.new_zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = width / w, height / h
    theta[:, :, 2] = centre * 2 - 1
    grid = F.affine_grid(theta, [n, img.shape[1], height, width], align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)


PART_HIDDEN = 128


def _part_net(part: Part) -> nn.Sequential:
    """window [N, 3, height, width] -> features [N, PART_HIDDEN]."""
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.SiLU(),
                         nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.SiLU(),
                         nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.SiLU(), nn.Flatten(),
                         nn.Linear(64 * (part.height // 4) * (part.width // 4), PART_HIDDEN), nn.SiLU())


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
        if config.parts:
            self.part_centres = nn.Linear(config.hidden, 2 * len(config.parts))
            self.part_nets = nn.ModuleList(_part_net(p) for p in config.parts)
            # each part's fields from its window's features and the whole image's (age shows in both)
            self.part_heads = nn.ModuleList(nn.Linear(PART_HIDDEN + config.hidden, len(p.fields)) for p in config.parts)
            for i, p in enumerate(config.parts):
                self.register_buffer(f"part_index_{i}", torch.tensor([config.field_names.index(f) for f in p.fields]),
                                     persistent=False)

    def forward(self, img: torch.Tensor, crop_centres: Optional[torch.Tensor] = None) -> Prediction:
        """``crop_centres`` [N, P, 2] (training): where to crop each part instead of the
        predicted centre (NaN rows: the predicted one)."""
        if img.shape[-2:] != (self.config.resolution, self.config.resolution):
            img = F.interpolate(img, size=(self.config.resolution,) * 2, mode="area")
        h = self.fc(self.blocks(self.stem(img)))
        fields = torch.sigmoid(self.fields(h))
        centres = None
        if self.config.parts:
            centres = torch.sigmoid(self.part_centres(h)).view(len(img), len(self.config.parts), 2)
            at = centres.detach()
            if crop_centres is not None:
                at = torch.where(torch.isnan(crop_centres), at, crop_centres.to(at))
            fields = fields.clone()
            for i, (part, net, head) in enumerate(zip(self.config.parts, self.part_nets, self.part_heads)):
                window = crop_window(img, at[:, i], part.height, part.width)
                fields[:, getattr(self, f"part_index_{i}")] = torch.sigmoid(head(torch.cat([net(window), h], 1)))
        return Prediction(fields, self.styles(h), self.accessories(h), centres)

    def identity(self, img: torch.Tensor) -> torch.Tensor:
        """img [N, 3, H, W] -> predicted identity fields [N, len(identity_fields)] in [0, 1]."""
        return self(img).fields.index_select(1, self.identity_index)

    def identity_embedding(self, img: torch.Tensor) -> torch.Tensor:
        """img [N, 3, H, W] -> the identity fields times their weights [N, len(identity_fields)]:
        Euclidean distance between embeddings is the identity distance times sqrt(fields)."""
        fields = self.identity(img)
        if not self.config.identity_weights:
            return fields
        return fields * fields.new_tensor(self.config.identity_weights)


def field_reader(regressor: ParameterRegressor, fields) -> Callable[[torch.Tensor], torch.Tensor]:
    """images [N, 3, H, W] -> the regressor's predictions of ``fields`` [N, K], in that order
    (differentiable in the images). Raises ValueError for a field it does not predict."""
    names = list(regressor.config.field_names)
    missing = [f for f in fields if f not in names]
    if missing:
        raise ValueError(f"the regressor reads {', '.join(names)}; not {', '.join(missing)}")
    index = torch.tensor([names.index(f) for f in fields])
    return lambda img: regressor(img).fields.index_select(1, index.to(img.device))


def field_readings(regressor: ParameterRegressor, name: str) -> Tuple[Callable, Callable]:
    """(images [N, 3, H, W] -> the field ``name`` [N], images -> every other field [N, K]): the
    regressor's predictions split as a guided edit needs them (one moved, the rest held). Raises
    ValueError for a field it does not predict."""
    read = field_reader(regressor, [name])
    return (lambda img: read(img)[:, 0]), field_reader(regressor, [f for f in regressor.config.field_names if f != name])


class RegressorIdentity(nn.Module):
    """Identity distance of the embedded domain: weighted RMS difference of predicted identity
    fields -> [N] (see the module docstring)."""

    distance = "weighted RMS parameter"

    def __init__(self, regressor: ParameterRegressor, name: str = "embedded parameter regressor"):
        super().__init__()
        self.regressor = regressor.eval().requires_grad_(False)
        self.name = name
        self.same_person_below = regressor.config.same_person_below

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a, b = self.regressor.identity_embedding(x), self.regressor.identity_embedding(y)
        return (a - b).square().mean(1).add(1e-12).sqrt()
