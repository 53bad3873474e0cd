"""ChunkyGAN projects: n codes and soft masks, O = sum_i G(z_i) * s_i, edited one chunk at a time.

A ``ChunkProject`` holds what a ChunkyGAN inversion found (one code per chunk, masks summing to
one per pixel) and the edits made since: each edit moves one chunk's code along a direction, so
only that chunk's image changes and the composite changes only where that chunk's mask is. The
project saves to one safetensors file (codes, masks, directions; the edits and the generator's
name as metadata) and refuses files that are not projects or belong to another generator.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..errors import CheckpointError, SemeditError
from ..latents import SPACES, Latent, convert, synthesize
from ..networks.stylegan2 import StyleGAN2Generator
from .directions import Direction, apply_edits

PROJECT_KIND = "semedit-chunk-project"


@dataclass(frozen=True)
class ChunkEdit:
    chunk: int
    direction: str
    value: float


@dataclass(frozen=True, eq=False)  # identity equality and hash: it holds tensors and images
class ChunkProject:
    """codes: Latent with one row per chunk ([n, C] W, [n, L, C] W+ or [n, S] S); masks [n, R, R]
    in [0, 1] summing to one per pixel; edits in the order made; the directions they name."""

    generator: str
    codes: Latent
    masks: torch.Tensor
    edits: Tuple[ChunkEdit, ...] = ()
    directions: Tuple[Direction, ...] = ()

    def __post_init__(self) -> None:
        n = self.masks.shape[0]
        if self.masks.ndim != 3 or self.codes.value.shape[0] != n:
            raise SemeditError(f"a project needs one code per mask; got {self.codes.value.shape[0]} codes and "
                               f"masks of shape {tuple(self.masks.shape)}")
        for e in self.edits:
            if not 0 <= e.chunk < n:
                raise SemeditError(f"edit of chunk {e.chunk}, but the project has {n} chunks")
            if e.direction not in {d.name for d in self.directions}:
                raise SemeditError(f"edit names direction {e.direction!r}, which the project does not hold")

    @property
    def n_chunks(self) -> int:
        return self.masks.shape[0]

    @classmethod
    def from_result(cls, result) -> "ChunkProject":
        """A project from a ChunkyGAN ``InversionResult`` (no edits yet)."""
        if result.chunk_masks is None:
            raise SemeditError(f"{result.method} is not a ChunkyGAN result: it has no chunks")
        return cls(result.generator, result.latent, result.chunk_masks)

    def with_edit(self, chunk: int, direction: Direction, value: float) -> "ChunkProject":
        """One more edit (the direction is kept with the project)."""
        known = {d.name: d for d in self.directions}
        if direction.name in known and not torch.equal(known[direction.name].vector, direction.vector):
            raise SemeditError(f"the project already holds another direction named {direction.name!r}")
        dirs = self.directions if direction.name in known else self.directions + (direction,)
        return replace(self, edits=self.edits + (ChunkEdit(int(chunk), direction.name, float(value)),), directions=dirs)

    def edited_codes(self, G: StyleGAN2Generator, chunks: Optional[Sequence[int]] = None) -> Latent:
        """The codes of ``chunks`` (default: all) after their edits: [k, ...] in one space."""
        chunks = list(range(self.n_chunks)) if chunks is None else list(chunks)
        by_name = {d.name: d for d in self.directions}
        moved = []
        for i in chunks:
            own = [(by_name[e.direction], e.value) for e in self.edits if e.chunk == i]
            moved.append(apply_edits(G, Latent(self.codes.space, self.codes.value[i:i + 1].to(G.w_avg.device)), own))
        space = max((m.space for m in moved), key=SPACES.index)
        return Latent(space, torch.cat([convert(G, m, space).value for m in moved]))


def towards_code(G: StyleGAN2Generator, project: ChunkProject, chunk: int, code: Latent, name: str) -> Direction:
    """The direction from ``chunk``'s edited code to ``code`` (one row, W, W+ or S): +1 of it
    gives the chunk that code. It lies in the wider of the two spaces (a StyleSpace edit on a W+
    chunk: S); a W code is broadcast to W+ so the chunk can take it."""
    code = code if code.space != "w" else convert(G, code, "w+")
    own = project.edited_codes(G, [chunk])
    space = max(code.space, own.space, key=SPACES.index)
    target, own = convert(G, code, space), convert(G, own, space)
    return Direction(name, space, (target.value[0] - own.value[0]).cpu(), source="interpolation towards a code")


@torch.no_grad()
def render_chunks(G: StyleGAN2Generator, project: ChunkProject, chunks: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Images [k, 3, R, R] in [-1, 1] (CPU) of the edited codes of ``chunks`` (default: all)."""
    return synthesize(G, project.edited_codes(G, chunks)).clamp(-1, 1).cpu()


def composite(chunk_images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """sum_i chunk_i * mask_i: [n, 3, R, R], [n, R, R] -> [1, 3, R, R]."""
    return (chunk_images * masks[:, None].to(chunk_images)).sum(0, keepdim=True)


def update_chunk(G: StyleGAN2Generator, project: ChunkProject, cached: torch.Tensor, chunk: int) -> torch.Tensor:
    """The chunk images with only ``chunk`` synthesised again (the others taken from ``cached``)."""
    out = cached.clone()
    out[chunk] = render_chunks(G, project, [chunk])[0]
    return out


def reshape_mask(masks: torch.Tensor, chunk: int, op: str, pixels: float) -> torch.Tensor:
    """Grow, shrink or feather chunk ``chunk``'s mask by ``pixels``, then share every pixel
    among the chunks again (the others keep their proportions): [n, R, R] -> [n, R, R]."""
    m = masks[chunk][None, None]
    k = max(1, int(round(pixels)))
    if op == "grow":
        new = F.max_pool2d(m, 2 * k + 1, stride=1, padding=k)
    elif op == "shrink":
        new = -F.max_pool2d(-m, 2 * k + 1, stride=1, padding=k)
    elif op == "feather":
        r = torch.arange(-2 * k, 2 * k + 1, dtype=m.dtype)
        g = torch.exp(-(r ** 2) / (2 * (k / 1.5) ** 2))
        g = g / g.sum()
        new = F.conv2d(F.pad(m, (2 * k, 2 * k, 0, 0), mode="replicate"), g[None, None, None])
        new = F.conv2d(F.pad(new, (0, 0, 2 * k, 2 * k), mode="replicate"), g[None, None, :, None])
    else:
        raise ValueError(f"unknown mask operation {op!r} (grow, shrink or feather)")
    return share(masks, chunk, new[0, 0].clamp(0, 1))


def share(masks: torch.Tensor, chunk: int, new: torch.Tensor) -> torch.Tensor:
    """Set chunk ``chunk``'s mask to ``new`` [R, R] in [0, 1] and scale the others so every pixel
    sums to one (where the others were all zero, the remainder goes to them equally)."""
    out = masks.clone()
    out[chunk] = new
    others = [i for i in range(len(masks)) if i != chunk]
    if not others:
        return torch.ones_like(out)
    rest = out[others].sum(0)
    room = 1 - new
    scale = torch.where(rest > 1e-8, room / rest.clamp(min=1e-8), torch.zeros_like(rest))
    out[others] = torch.where(rest > 1e-8, out[others] * scale, room / len(others))
    return out


def leakage(before: torch.Tensor, after: torch.Tensor, region: torch.Tensor) -> Tuple[float, float]:
    """(mean absolute change inside ``region`` [R, R] bool, outside it) between two images [1, 3, R, R]."""
    change = (after - before).abs().mean(1)[0]
    inside = float(change[region].mean()) if region.any() else 0.0
    outside = float(change[~region].mean()) if (~region).any() else 0.0
    return inside, outside


# ---- project files -----------------------------------------------------------------------------

def save_project(path: Path, project: ChunkProject) -> Path:
    from safetensors.torch import save_file
    tensors = {"codes": project.codes.value.detach().float().cpu().contiguous(),
               "masks": project.masks.detach().float().cpu().contiguous()}
    tensors.update({f"direction.{i}": d.vector.detach().float().cpu().contiguous()
                    for i, d in enumerate(project.directions)})
    meta = {"kind": PROJECT_KIND, "generator": project.generator, "space": project.codes.space,
            "edits": json.dumps([[e.chunk, e.direction, e.value] for e in project.edits]),
            "directions": json.dumps([{"name": d.name, "space": d.space, "unit": d.unit,
                                       "layers": list(d.layers) if d.layers else None, "attribute": d.attribute,
                                       "source": d.source} for d in project.directions])}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def load_project(path: Path, generator: Optional[StyleGAN2Generator] = None,
                 generator_name: Optional[str] = None) -> ChunkProject:
    """A project file; CheckpointError for anything that is not one, or that belongs to another
    generator (name differs from ``generator_name``, or codes/masks do not fit ``generator``)."""
    from safetensors import SafetensorError, safe_open
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("kind") != PROJECT_KIND:
                raise CheckpointError(f"{path.name} is not a semedit ChunkyGAN project")
            codes, masks = f.get_tensor("codes"), f.get_tensor("masks")
            info = json.loads(meta["directions"])
            directions = tuple(Direction(d["name"], d["space"], f.get_tensor(f"direction.{i}"), unit=float(d["unit"]),
                                         layers=tuple(d["layers"]) if d.get("layers") else None,
                                         attribute=d.get("attribute", ""), source=d.get("source", ""))
                               for i, d in enumerate(info))
            edits = tuple(ChunkEdit(int(c), str(n), float(v)) for c, n, v in json.loads(meta["edits"]))
            project = ChunkProject(meta["generator"], Latent(meta["space"], codes), masks, edits, directions)
    except CheckpointError:
        raise
    except (SafetensorError, OSError, KeyError, ValueError, TypeError, SemeditError) as e:
        raise CheckpointError(f"{path.name}: not a readable ChunkyGAN project ({type(e).__name__}: {e})") from e
    if generator_name is not None and project.generator != generator_name:
        raise CheckpointError(f"{path.name} was made with {project.generator}, not {generator_name}")
    if generator is not None:
        res = generator.config.resolution
        widths = {"w": (generator.config.w_dim,), "w+": (generator.num_ws, generator.config.w_dim),
                  "s": (sum(generator.synthesis.style_dims),)}[project.codes.space]
        if tuple(codes.shape[1:]) != widths or tuple(masks.shape[1:]) != (res, res):
            raise CheckpointError(f"{path.name}: its codes {tuple(codes.shape)} or masks {tuple(masks.shape)} "
                                  f"do not fit this generator")
    return project
