"""The directions a generator has: every catalogue entry of kind "directions" whose config names
the generator, read through the registry (file, weights/ folder or Hub, as for any model)."""
from __future__ import annotations

from typing import List, Optional, Sequence

from .directions import Direction
from .formats import read_directions


def directions_for(registry, model: str) -> List[Direction]:
    """Every direction the catalogue lists for generator ``model`` that is on this machine (or
    can be downloaded), in catalogue order; files that cannot be had are skipped."""
    from ..errors import SemeditError
    G = registry.get(model)
    out: List[Direction] = []
    for spec in registry.catalogue.models:
        if spec.kind != "directions" or spec.config.get("generator") != model:
            continue
        try:
            path = registry.source(spec.name)
        except SemeditError:
            continue
        out += read_directions(path, spec.format, name=spec.config.get("name"),
                               style_dims=G.synthesis.style_dims, num_ws=G.num_ws,
                               w_dim=G.config.w_dim)
    return out


def code_direction(directions: Sequence[Direction], attribute: str) -> Optional[Direction]:
    """The first direction for ``attribute`` that moves a code (space W or W+, so inverted
    images too, not only samples); None when there is none."""
    return next((d for d in directions if d.attribute == attribute and d.space in ("w", "w+")), None)
