"""Portrait parameters: what a procedural portrait is made of, and the fixed map z -> parameters.

Every continuous parameter is stored unit-normalised in [0, 1]; the renderer maps it to its
physical range. ``params_from_latent`` is smooth in z for continuous parameters
(u = Phi(A z) with a fixed orthonormal A, so z ~ N(0, I) gives u ~ U(0, 1)) and picks the
hair style as the argmax of further projections.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import torch

#: the parameters that make a person (kept when the pose, hair or expression changes)
IDENTITY_FIELDS = ("skin_tone", "skin_warmth", "face_width", "face_height", "jaw", "eye_size", "eye_aspect",
                   "eye_spacing", "eye_height", "iris_hue", "nose_length", "nose_width", "mouth_width",
                   "lip_thickness", "brow_thickness")
HAIR_FIELDS = ("hair_color", "hair_gray", "hair_length", "hair_volume", "hair_parting", "hair_curl_phase")
ATTRIBUTE_FIELDS = ("smile", "brow_tilt") + HAIR_FIELDS + (
    "beard", "glasses", "glasses_shape", "frame_color", "age", "bg_hue", "bg_light", "bg_gradient",
    "clothes_hue", "clothes_light")
POSE_FIELDS = ("yaw", "light_angle", "light_strength")
FIELDS = IDENTITY_FIELDS + ATTRIBUTE_FIELDS + POSE_FIELDS
INDEX = {name: i for i, name in enumerate(FIELDS)}

HAIR_STYLES = ("short", "long", "bob", "bun", "fringe", "curly", "bald")
ACCESSORIES = ("none", "mask", "bindi", "face_paint", "eye_patch", "hat")

#: dimension of the latent z that ``params_from_latent`` reads
LATENT_DIM = 64
_MAP_SEED = 20221023

#: thresholds on the unit parameters above which a beard / glasses are drawn
BEARD_THRESHOLD = 0.72
GLASSES_THRESHOLD = 0.75
#: yaw range in radians for u in [0, 1]
MAX_YAW = 0.6


@dataclass(frozen=True)
class Portraits:
    """A batch of portrait descriptions.

    values [N, len(FIELDS)] in [0, 1]; hair_style [N] index into HAIR_STYLES;
    accessory [N] index into ACCESSORIES (0 = none; never produced by ``params_from_latent``).
    """

    values: torch.Tensor
    hair_style: torch.Tensor
    accessory: torch.Tensor

    def __len__(self) -> int:
        return self.values.shape[0]

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.values[:, INDEX[name]]

    def select(self, index) -> "Portraits":
        """Rows ``index`` (int, slice or index tensor) as a new batch."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Portraits(self.values[index], self.hair_style[index], self.accessory[index])

    def with_fields(self, **fields: float | torch.Tensor) -> "Portraits":
        """Copy with some unit-normalised fields set (a float or a [N] tensor each)."""
        values = self.values.clone()
        for name, v in fields.items():
            values[:, INDEX[name]] = torch.as_tensor(v, dtype=values.dtype)
        return replace(self, values=values)

    def with_yaw(self, radians: float | torch.Tensor) -> "Portraits":
        """The same people turned to ``radians`` (positive: the face turns to the image's right)."""
        u = (torch.as_tensor(radians, dtype=self.values.dtype) / MAX_YAW + 1) / 2
        if (u < 0).any() or (u > 1).any():
            raise ValueError(f"yaw must be within +-{MAX_YAW} rad")
        return self.with_fields(yaw=u)

    def with_hair_of(self, other: "Portraits") -> "Portraits":
        """These people with ``other``'s hair (style, colour, length, volume, parting)."""
        values = self.values.clone()
        idx = [INDEX[f] for f in HAIR_FIELDS]
        values[:, idx] = other.values[:, idx].to(values)
        return replace(self, values=values, hair_style=other.hair_style.clone())

    def with_accessory(self, name: str) -> "Portraits":
        if name not in ACCESSORIES:
            raise ValueError(f"unknown accessory {name!r}; one of {', '.join(ACCESSORIES)}")
        return replace(self, accessory=torch.full_like(self.accessory, ACCESSORIES.index(name)))

    # ---- ground truth vectors -------------------------------------------------------------
    def identity(self) -> torch.Tensor:
        """[N, len(IDENTITY_FIELDS)] in [0, 1]."""
        return self.values[:, [INDEX[f] for f in IDENTITY_FIELDS]]

    def attributes(self, softness: float = 0.0) -> dict:
        """Named attributes for labelling and direction fitting, each [N]. Beard and glasses are
        present or not; with ``softness`` > 0 they are sigmoid((field - threshold) / softness)
        instead, so attributes read off predicted fields stay differentiable."""
        def present(name: str, threshold: float) -> torch.Tensor:
            if softness > 0:
                return torch.sigmoid((self[name] - threshold) / softness)
            return (self[name] > threshold).float()

        return {
            "smile": self["smile"] * 2 - 1,
            "beard": present("beard", BEARD_THRESHOLD),
            "glasses": present("glasses", GLASSES_THRESHOLD),
            "age": self["age"],
            "hair_length": self["hair_length"],
            "hair_gray": self["hair_gray"],
            "hair_color": self["hair_color"],
            "bald": (self.hair_style == HAIR_STYLES.index("bald")).float(),
            "hair_style": self.hair_style.float(),
            "skin_tone": self["skin_tone"],
        }

    def pose(self) -> dict:
        """yaw in radians, light angle in radians, each [N]."""
        return {"yaw": (self["yaw"] * 2 - 1) * MAX_YAW, "light_angle": (self["light_angle"] * 2 - 1) * 1.2}


def _projection(dim: int) -> torch.Tensor:
    """Fixed orthonormal rows [len(FIELDS) + len(HAIR_STYLES), dim]."""
    rows = len(FIELDS) + len(HAIR_STYLES)
    if dim < rows:
        raise ValueError(f"the latent needs at least {rows} dimensions, got {dim}")
    g = torch.Generator().manual_seed(_MAP_SEED)
    q, _ = torch.linalg.qr(torch.randn(dim, rows, generator=g, dtype=torch.float64, device="cpu"))
    return q.t().float()


def params_from_latent(z: torch.Tensor) -> Portraits:
    """z [N, D >= 43] ~ N(0, I) -> Portraits (continuous fields ~ U(0, 1), styles uniform), on z's device."""
    y = z.float() @ _projection(z.shape[1]).to(z.device).t()
    k = len(FIELDS)
    values = 0.5 * (1 + torch.erf(y[:, :k] / math.sqrt(2)))
    style = y[:, k:].argmax(dim=1)
    return Portraits(values, style, torch.zeros_like(style))


def latent_with(z: torch.Tensor, *, hair_of: torch.Tensor | None = None,
                yaw: float | torch.Tensor | None = None) -> torch.Tensor:
    """A latent z' [N, D] whose portraits are z's people with ``hair_of``'s hair (style and every
    hair field) and/or turned to ``yaw`` radians: params_from_latent(z') equals
    params_from_latent(z).with_hair_of(params_from_latent(hair_of)).with_yaw(yaw) (up to
    float rounding); everything else about z' is z's. (A z' exists because the projection's rows
    are orthonormal: z' = z + A^T (y' - A z).) For a generator paired with the renderer this is
    the latent of the true image of a hair transfer."""
    a = _projection(z.shape[1]).to(z.device)
    y = z.float() @ a.t()
    target = y.clone()
    if hair_of is not None:
        y_hair = hair_of.float().to(z.device) @ a.t()
        idx = [INDEX[f] for f in HAIR_FIELDS] + list(range(len(FIELDS), a.shape[0]))  # fields, then style scores
        target[:, idx] = y_hair[:, idx]
    if yaw is not None:
        u = (torch.as_tensor(yaw, dtype=torch.float32, device=z.device) / MAX_YAW + 1) / 2
        if (u <= 0).any() or (u >= 1).any():
            raise ValueError(f"yaw must be strictly within +-{MAX_YAW} rad")
        target[:, INDEX["yaw"]] = math.sqrt(2) * torch.erfinv(2 * u - 1)
    return z.float() + (target - y) @ a


def sample_latents(n: int, seed: int, dim: int = LATENT_DIM) -> torch.Tensor:
    """n latents [n, dim] from one seed (deterministic)."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(int(seed)))


def sample_portraits(n: int, seed: int, dim: int = LATENT_DIM) -> Portraits:
    return params_from_latent(sample_latents(n, seed, dim))


def stack(portraits: Sequence[Portraits]) -> Portraits:
    return Portraits(torch.cat([p.values for p in portraits]), torch.cat([p.hair_style for p in portraits]),
                     torch.cat([p.accessory for p in portraits]))


def hair_style_index(name: str) -> int:
    return HAIR_STYLES.index(name)




def observable_targets(p: Portraits) -> tuple:
    """What an image can tell of each parameter: (targets [N, F], visible [N, F] in {0, 1}).

    Targets are the unit values, except ``beard`` and ``glasses``, which only show as present or
    not (1 or 0). A parameter is invisible where nothing in the picture depends on it: frame shape
    and colour without glasses, hair length except for long, bob, fringe and curly hair, the
    parting except for short, long and bob, volume when bald, the curl phase except for curly
    hair, the mouth under a mask, the parting and volume under a hat."""
    targets = p.values.clone()
    targets[:, INDEX["beard"]] = (p["beard"] > BEARD_THRESHOLD).float()
    targets[:, INDEX["glasses"]] = (p["glasses"] > GLASSES_THRESHOLD).float()
    visible = torch.ones_like(targets)
    style = p.hair_style

    def hide(names, where):
        for name in names:
            visible[:, INDEX[name]] *= (~where).float()

    def styles(*names):
        return torch.isin(style, torch.tensor([HAIR_STYLES.index(n) for n in names], device=style.device))

    hide(("glasses_shape", "frame_color"), p["glasses"] <= GLASSES_THRESHOLD)
    hide(("hair_length",), ~styles("long", "bob", "fringe", "curly"))
    hide(("hair_parting",), ~styles("short", "long", "bob") | (p.accessory == ACCESSORIES.index("hat")))
    hide(("hair_volume",), styles("bald") | (p.accessory == ACCESSORIES.index("hat")))
    hide(("hair_curl_phase",), ~styles("curly"))
    hide(("smile", "mouth_width", "lip_thickness", "beard"), p.accessory == ACCESSORIES.index("mask"))
    return targets, visible
