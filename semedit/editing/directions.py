"""Direction: a named, calibrated way to move a latent code, and how edits apply to codes.

A direction lives in one space: "w" (vector [C], applied to every W+ layer or to ``layers``),
"w+" (vector [L, C]), "s" (vector [sum of style widths], usually a few StyleSpace channels) or
"z" (vector [z_dim]: moves a sample's z, which is then mapped again; only samples have a z).
``unit`` is the length of one slider step: the latent distance that moves the attribute by one
standard deviation (supervised directions) or one standard deviation of the codes along the
direction (PCA, classifiers), so slider values mean the same thing across directions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

import torch

from ..latents import Latent, convert
from ..networks.stylegan2 import StyleGAN2Generator


@dataclass(frozen=True)
class Direction:
    name: str
    space: str
    vector: torch.Tensor
    unit: float = 1.0
    layers: Optional[Tuple[int, int]] = None  # W directions: [start, stop) of the W+ layers it moves
    attribute: str = ""                       # what it is meant to move ("" for unsupervised ones)
    source: str = ""                          # how it was found
    metrics: dict = field(default_factory=dict, compare=False)  # e.g. held-out accuracy or R^2
    normal: Optional[torch.Tensor] = field(default=None, compare=False)  # supervised: the fit's unit normal

    def __post_init__(self) -> None:
        if self.space not in ("z", "w", "w+", "s"):
            raise ValueError(f"unknown direction space {self.space!r}")
        if not torch.isfinite(self.vector).all():
            raise ValueError(f"direction {self.name!r} has non-finite values")
        if self.normal is not None and self.normal.shape != self.vector.shape:
            raise ValueError(f"direction {self.name!r}: normal {tuple(self.normal.shape)} and vector "
                             f"{tuple(self.vector.shape)} differ in shape")

    def delta(self, G: StyleGAN2Generator, space: str) -> torch.Tensor:
        """The code change of one slider unit in ``space`` ("w+" or "s"): [L, C] or [sum widths]."""
        v = self.vector.to(G.w_avg) * self.unit
        if self.space == "z":
            raise ValueError("a Z direction moves z, not a code: use edit_code")
        if self.space == "s":
            if space != "s":
                raise ValueError("a StyleSpace direction needs the code in S")
            return v
        if self.space == "w":
            mask = torch.zeros(G.num_ws, 1, device=v.device)
            start, stop = self.layers or (0, G.num_ws)
            mask[start:stop] = 1
            v = v[None] * mask
        if space == "w+":
            return v
        # S: the affine maps are linear, so the styles move by A(w + d) - A(w) = A(d) - A(0)
        zero = torch.zeros_like(v)
        with torch.no_grad():
            moved = torch.cat(G.synthesis.styles(v[None]), 1) - torch.cat(G.synthesis.styles(zero[None]), 1)
        return moved[0]


#: a supervised direction is weak when, as measured when it was chosen, +2 units moved its attribute
#: by less than this many standard deviations (a quarter of what they should) ...
WEAK_OWN_CHANGE = 0.5
#: ... or, where no such measure was made, when its fit's held-out R^2 or accuracy is below these
WEAK_R2 = 0.1
WEAK_ACCURACY = 0.6


def weakness(d: Direction) -> str:
    """Why ``d`` may not move its attribute on its generator, from the measures in its metrics
    ("" when none says so, and for directions without an attribute): the change of its attribute
    at +2 units on fresh samples (``metrics["selection"]["chosen"]["own"]``, in standard
    deviations), else its fit's held-out R^2 or accuracy."""
    if not d.attribute:
        return ""
    chosen = (d.metrics.get("selection") or {}).get("chosen") or {}
    if "own" in chosen:
        own = float(chosen["own"])
        return f"+2 units moved {d.attribute} by {own:+.2f} std" if own < WEAK_OWN_CHANGE else ""
    r2, accuracy = d.metrics.get("r2"), d.metrics.get("accuracy")
    if r2 is not None and r2 < WEAK_R2:
        return f"held-out R^2 {r2:.2f}"
    if accuracy is not None and accuracy < WEAK_ACCURACY:
        return f"held-out accuracy {accuracy:.2f}"
    return ""


def edit_space(latent: Latent, directions: Sequence[Direction]) -> str:
    """The narrowest space that holds the latent and every direction's change (Z directions aside)."""
    directions = [d for d in directions if d.space != "z"]
    if latent.space == "s" or any(d.space == "s" for d in directions):
        return "s"
    if latent.space == "w" and all(d.space == "w" and d.layers is None for d in directions):
        return "w"
    return "w+"


def apply_edits(G: StyleGAN2Generator, latent: Latent, edits: Sequence[Tuple[Direction, float]]) -> Latent:
    """latent moved by value x unit along each direction; the result is in ``edit_space``.
    Works on a batch of codes (every row moves the same way)."""
    edits = [(d, float(v)) for d, v in edits if float(v) != 0.0]
    space = edit_space(latent, [d for d, _ in edits])
    if space == "w":
        value = latent.value.clone()
        for d, v in edits:
            value = value + v * d.vector.to(value) * d.unit
        return Latent("w", value)
    moved = convert(G, Latent(latent.space, latent.value.to(G.w_avg.device)), space).value.clone()
    for d, v in edits:
        moved = moved + v * d.delta(G, space)
    return Latent(space, moved)


def edit_code(G: StyleGAN2Generator, latent: Latent, edits: Sequence[Tuple[Direction, float]], *,
              z: Optional[torch.Tensor] = None, truncation: float = 1.0) -> Latent:
    """Every edit at once: Z directions move the sample's ``z`` [N, z_dim], which is mapped (and
    truncated by ``truncation``) again into a W+ code; the other directions then apply to that code,
    or to ``latent`` when no Z direction moves. Raises ValueError for Z directions without a z."""
    z_edits = [(d, float(v)) for d, v in edits if d.space == "z" and float(v) != 0.0]
    if z_edits:
        if z is None:
            raise ValueError("Z directions move a sample's z; this code has none (use W, W+ or S directions)")
        moved = z.to(G.w_avg.device).clone()
        for d, v in z_edits:
            moved = moved + v * d.unit * d.vector.to(moved)
        with torch.no_grad():
            latent = Latent("w+", G.broadcast(G.truncate(G.mapping(moved), truncation)))
    return apply_edits(G, latent, [(d, v) for d, v in edits if d.space != "z"])
