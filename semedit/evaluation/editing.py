"""How much editing changes identity, per inversion method (the seed's Table 2), and how much a
chunk edit leaks outside its region compared with the same edit on a single code."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
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
TABLE2_EDITS = ("smile", "age", "beard", "glasses", "hair length")
#: the paper's Table 2 figure we have (FFHQ, ArcFace): ChunkyGAN's identity change after the beard
#: edit, input vs edited, without and with the regulariser
PAPER_TABLE2 = {"beard": (0.312, 0.091)}


@torch.no_grad()
def _edited(registry, model: str, r, d: Direction, units: float, labels, cls=None) -> torch.Tensor:
    """The reconstruction of result ``r`` after +``units`` of ``d``: on the code (single-code
    methods), or on the chunk that holds most of class ``cls`` (local edits) or every chunk (ChunkyGAN)."""
    if r.chunk_masks is None:
        source = pipeline.source_from_result(r)
        G = pipeline.source_generator(registry, source)
        return pipeline.render_source(registry, source, pipeline.edited_latent(registry, source, [(d, units)], G), G)
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
                         identity, ctx: Context, *, steps: int = 300, pti_tune_steps: Optional[int] = None,
                         seed: int = 0, units: float = 2.0, methods=TABLE2_METHODS,
                         log: Callable[[str], None] = lambda s: None):
    """Table 2: {(method label, edit name): [(identity(reconstruction, edited), identity(input, edited))]}
    over ``targets``, and leakage rows (method label, change inside, change outside the edit's
    exact region) for local edits of single-code W+ and ChunkyGAN results. ``steps`` per method
    (PTI: + ``pti_tune_steps`` tuning steps, default ``steps``); ``seed`` seeds the inversions."""
    table: Dict[Tuple[str, str], List[Tuple[float, float]]] = {}
    leaks = []
    tune = steps if pti_tune_steps is None else pti_tune_steps
    for i, target in enumerate(targets):
        for label, key, over in methods:
            knobs = Knobs(steps=steps, n_chunks=4, pti_tune_steps=tune, seed=seed, **over)
            (o,) = pipeline.invert(registry, model, target, [key], knobs, ctx=ctx)
            recon = o.result.image.clamp(-1, 1)
            # the identity model sits on the generator's device, the images on the CPU
            recon_on, input_on = recon.to(ctx.device), target.image.to(ctx.device)
            for name, d in directions.items():
                edited = _edited(registry, model, o.result, d, units, target.labels, LOCAL_EDITS.get(name))
                with torch.no_grad():
                    e = edited.to(ctx.device)
                    table.setdefault((label, name), []).append(
                        (float(identity(recon_on, e)), float(identity(input_on, e))))
                cls = LOCAL_EDITS.get(name)
                if cls is not None and key in ("w+", "chunky") and target.labels is not None \
                        and (target.labels == cls).any():
                    leaks.append((label, *leakage(recon, edited, target.labels == cls)))
        log(f"target {i + 1}/{len(targets)}")
    return table, leaks


def table2_directions(registry, model: str, edits: Sequence[str] = TABLE2_EDITS) -> Tuple[Dict[str, Direction], list]:
    """({edit: the generator's built-in direction that moves a code (W or W+, as its slider)},
    [edits it has none for]): chunk codes have no z, so Table 2 edits codes."""
    from ..editing.library import directions_for
    available = [d for d in directions_for(registry, model) if d.space in ("w", "w+")]
    found, missing = {}, []
    for name in edits:
        d = next((d for d in available if d.name in (name, f"{name} (w)")), None)
        if d is None:
            missing.append(name)
        else:
            found[name] = d
    return found, missing


def table2_markdown(table: Dict[Tuple[str, str], List[Tuple[float, float]]], leaks: Sequence[tuple],
                    edits: Sequence[str], missing: Sequence[str] = (), methods=TABLE2_METHODS) -> List[str]:
    """The leakage table, Table 2 beside the paper's figure, and whether the paper's claim holds,
    as markdown lines, from ``identity_after_edits``' outputs (over any number of targets)."""
    lines = ["## Leakage of the hair-length edit\n", "| method | change inside the hair | change outside |",
             "|---|---|---|"]
    for label in ("W+", "ChunkyGAN W+ lambda=0", "ChunkyGAN W+ lambda=1"):
        v = np.array([x[1:] for x in leaks if x[0] == label])
        if len(v):
            lines.append(f"| {label} | {v[:, 0].mean():.4f} | {v[:, 1].mean():.4f} |")
    lines += ["", "## Table 2: identity distance after editing, (a) reconstruction vs edited / (b) input vs edited\n",
              "| method | " + " | ".join(edits) + " |", "|---|" + "---|" * len(edits)]
    labels = [m[0] for m in methods if any((m[0], e) in table for e in edits)]
    for label in labels:
        cells = []
        for name in edits:
            v = np.array(table.get((label, name), []))
            cells.append(f"{v[:, 0].mean():.3f} / {v[:, 1].mean():.3f}" if len(v) else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    paper = " | ".join(f"{PAPER_TABLE2[e][0]} -> {PAPER_TABLE2[e][1]}" if e in PAPER_TABLE2 else "" for e in edits)
    lines.append("| paper (FFHQ, ArcFace), ChunkyGAN lambda=0 -> 1 | " + paper + " |"
                 + ("" if set(PAPER_TABLE2) & set(edits) else
                    " (paper: " + ", ".join(f"{e} {a} -> {b}" for e, (a, b) in PAPER_TABLE2.items()) + ") |"))
    if missing:
        lines.append(f"\nNot measured: {', '.join(missing)} (the generator has no built-in direction for it: the "
                     "regressor sees no variation of it in the generator's images).")
    pair = ("ChunkyGAN W+ lambda=0", "ChunkyGAN W+ lambda=1")
    both = [e for e in edits if (pair[0], e) in table and (pair[1], e) in table]
    lower = [e for e in both if np.array(table[(pair[1], e)])[:, 1].mean() < np.array(table[(pair[0], e)])[:, 1].mean()]
    lines += ["", f"The paper's claim (the regulariser lowers identity change after edits, input vs edited) holds "
              f"here for {len(lower)} of {len(both)} edits" + (f": {', '.join(lower)}." if lower else ".")]
    return lines
