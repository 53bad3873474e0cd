"""How much editing changes identity, per inversion method (the seed's Table 2), and how much a
chunk edit leaks outside its region compared with the same edit on a single code."""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence, Tuple

import torch

from .. import pipeline
from .. import segmentation as L
from ..editing.chunks import ChunkProject, composite, leakage, render_chunks
from ..editing.directions import Direction
from ..inversion.suite import Context, Knobs
from ..targets import Target

#: (label, method key, knob overrides)
TABLE2_METHODS = [("W", "w", {}), ("W+", "w+", {}), ("ChunkyGAN W+ lambda=0", "chunky", {"lambda_reg": 0.0}),
                  ("ChunkyGAN W+ lambda=1", "chunky", {"lambda_reg": 1.0}), ("PTI", "pti", {})]
LOCAL_EDITS = {"hair length": L.HAIR}  # edits a chunk editor applies to one chunk (the rest: every chunk)


@torch.no_grad()
def _edited(registry, model: str, r, d: Direction, units: float, labels, cls=None) -> torch.Tensor:
    """The reconstruction of result ``r`` after +``units`` of ``d``: on the code (single-code
    methods), or on the chunk that holds most of class ``cls`` (local edits) or every chunk (ChunkyGAN)."""
    if r.chunk_masks is None:
        source = pipeline.source_from_result(r)
        return pipeline.render_source(registry, source, pipeline.edited_latent(registry, source, [(d, units)]))
    project = ChunkProject.from_result(r)
    if cls is not None and labels is not None and (labels == cls).any():
        chunks = [int(project.masks[:, labels == cls].sum(1).argmax())]
    else:
        chunks = range(project.n_chunks)
    for c in chunks:
        project = project.with_edit(c, d, units)
    G = registry.get(model)
    return composite(render_chunks(G, project), project.masks)


def identity_after_edits(registry, model: str, targets: Sequence[Target], directions: Dict[str, Direction],
                         identity, ctx: Context, *, steps: int = 300, units: float = 2.0,
                         methods=TABLE2_METHODS, log: Callable[[str], None] = lambda s: None):
    """Table 2: {(method label, edit name): [(identity(reconstruction, edited), identity(input, edited))]}
    over ``targets``, and leakage rows (method label, change inside, change outside the edit's
    exact region) for local edits of single-code W+ and ChunkyGAN results."""
    table: Dict[Tuple[str, str], List[Tuple[float, float]]] = {}
    leaks = []
    for i, target in enumerate(targets):
        for label, key, over in methods:
            knobs = Knobs(steps=steps, n_chunks=4, pti_tune_steps=steps, **over)
            (o,) = pipeline.invert(registry, model, target, [key], knobs, ctx=ctx)
            recon = o.result.image.clamp(-1, 1)
            for name, d in directions.items():
                edited = _edited(registry, model, o.result, d, units, target.labels, LOCAL_EDITS.get(name))
                with torch.no_grad():
                    table.setdefault((label, name), []).append(
                        (float(identity(recon, edited)), float(identity(target.image, edited))))
                cls = LOCAL_EDITS.get(name)
                if cls is not None and key in ("w+", "chunky") and target.labels is not None \
                        and (target.labels == cls).any():
                    leaks.append((label, *leakage(recon, edited, target.labels == cls)))
        log(f"target {i + 1}/{len(targets)}")
    return table, leaks
