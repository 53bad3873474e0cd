"""Direction files: the published layouts, read without running code, and our own format.

| format | file | layout |
|---|---|---|
| ``interfacegan`` | ``.npy`` | boundary normal, shape (1, C) (InterFaceGAN's ``*_boundary.npy``) |
| ``e4e`` | ``.pt`` | a tensor (1, C), or (1, L, C) for W+ edits such as pose (e4e's InterFaceGAN directions) |
| ``ganspace`` | ``.npz`` / ``.pt`` | ``lat_comp`` (k, 1, C), ``lat_mean`` (1, C), ``lat_stdev`` (k) (GANSpace's cache), or ``comp``, ``mean``, ``std`` (e4e's ``ffhq_pca.pt``) |
| ``stylespace`` | ``.json`` | {name: [[layer, channel], ...]} or a list of [layer, channel] (StyleSpace's channel lists) |
| ``semedit`` | ``.safetensors`` | ``{i}.vector`` (and ``{i}.normal`` for supervised ones) per direction; metadata ``directions``: JSON list of the other fields |

``.npy``/``.npz`` load with ``allow_pickle=False``, ``.pt`` with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch

from ..errors import CheckpointError
from .directions import Direction

FORMATS = ("interfacegan", "e4e", "ganspace", "stylespace", "semedit")


def _tensor(x, path: Path) -> torch.Tensor:
    try:
        t = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).float()
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path.name}: not an array of numbers ({type(e).__name__}: {e})") from e
    if not torch.isfinite(t).all():
        raise CheckpointError(f"{path.name}: the direction has non-finite values")
    return t


def _load_pt(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - refused globals and damaged files both end here
        raise CheckpointError(f"{path.name}: not a loadable tensor file ({type(e).__name__}: {e})") from e


def _load_np(path: Path):
    """An array (.npy) or {name: array} (.npz), read in full so no file stays open."""
    try:
        with open(path, "rb") as f:
            raw = np.load(f, allow_pickle=False)
            return {k: raw[k] for k in raw.files} if isinstance(raw, np.lib.npyio.NpzFile) else raw
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"{path.name}: not a loadable numpy file ({type(e).__name__}: {e})") from e


def read_directions(path: Path, fmt: str, *, name: Optional[str] = None, style_dims: Sequence[int] = (),
                    num_ws: Optional[int] = None, w_dim: Optional[int] = None) -> List[Direction]:
    """Directions in ``path`` (format ``fmt``); ``name`` names single-direction files (default: the
    file's stem); ``style_dims`` (``G.synthesis.style_dims``) is needed for StyleSpace lists;
    ``num_ws`` and ``w_dim`` (and ``style_dims``) check that the directions fit the generator."""
    path = Path(path)
    directions = _read(path, fmt, name or path.stem, style_dims, num_ws)
    widths = {"w": w_dim, "w+": w_dim, "s": sum(style_dims) if style_dims else None}
    for d in directions:
        width = widths.get(d.space)
        if width is not None and d.vector.shape[-1] != width:
            raise CheckpointError(f"{path.name}: direction {d.name!r} is {d.vector.shape[-1]} wide in "
                                  f"{d.space.upper()}; this generator's {d.space.upper()} is {width} wide")
        if d.space == "w+" and num_ws is not None and d.vector.shape[0] != num_ws:
            raise CheckpointError(f"{path.name}: direction {d.name!r} has {d.vector.shape[0]} layers; "
                                  f"the generator has {num_ws}")
    return directions


def _read(path: Path, fmt: str, name: str, style_dims: Sequence[int], num_ws: Optional[int]) -> List[Direction]:
    if fmt == "interfacegan":
        v = _tensor(_load_np(path), path)
        if v.ndim != 2 or v.shape[0] != 1:
            raise CheckpointError(f"{path.name}: an InterFaceGAN boundary is (1, C), got {tuple(v.shape)}")
        return [Direction(name, "w", v[0], source=f"InterFaceGAN boundary {path.name}", attribute=name)]
    if fmt == "e4e":
        v = _load_pt(path)
        if not torch.is_tensor(v):
            raise CheckpointError(f"{path.name}: an e4e direction is a tensor, got {type(v).__name__}")
        v = _tensor(v, path)
        if v.ndim == 2 and v.shape[0] == 1:
            return [Direction(name, "w", v[0], source=f"e4e direction {path.name}", attribute=name)]
        if v.ndim == 3 and v.shape[0] == 1:
            if num_ws is not None and v.shape[1] != num_ws:
                raise CheckpointError(f"{path.name}: a W+ direction of {v.shape[1]} layers; the generator has {num_ws}")
            return [Direction(name, "w+", v[0], source=f"e4e W+ direction {path.name}", attribute=name)]
        raise CheckpointError(f"{path.name}: an e4e direction is (1, C) or (1, L, C), got {tuple(v.shape)}")
    if fmt == "ganspace":
        raw = _load_np(path) if path.suffix == ".npz" else _load_pt(path)
        keys = set(raw) if isinstance(raw, dict) else set()
        if {"lat_comp", "lat_stdev"} <= keys:
            comp, std = raw["lat_comp"], raw["lat_stdev"]
        elif {"comp", "std"} <= keys:
            comp, std = raw["comp"], raw["std"]
        else:
            raise CheckpointError(f"{path.name}: GANSpace components need lat_comp/lat_stdev or comp/std, "
                                  f"found {sorted(keys)}")
        comp, std = _tensor(comp, path), _tensor(std, path).reshape(-1)
        comp = comp.reshape(comp.shape[0], -1)
        if len(std) != len(comp):
            raise CheckpointError(f"{path.name}: {len(comp)} components but {len(std)} deviations")
        return [Direction(f"{name} PC{i}", "w", comp[i] / comp[i].norm().clamp(min=1e-12),
                          unit=float(std[i]), source=f"GANSpace components {path.name}") for i in range(len(comp))]
    if fmt == "stylespace":
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{path.name}: not a JSON channel list ({e})") from e
        groups = raw if isinstance(raw, dict) else {name: raw}
        if not style_dims:
            raise CheckpointError("StyleSpace channel lists need the generator's style widths")
        offsets = np.concatenate([[0], np.cumsum(style_dims)])
        out = []
        for group, pairs in groups.items():
            v = torch.zeros(int(offsets[-1]))
            try:
                for layer, channel in pairs:
                    if not (0 <= layer < len(style_dims) and 0 <= channel < style_dims[layer]):
                        raise CheckpointError(f"{path.name}: channel {layer}:{channel} is outside this generator")
                    v[int(offsets[layer]) + int(channel)] = 1.0
            except (TypeError, ValueError) as e:
                raise CheckpointError(f"{path.name}: {group!r} is not a list of [layer, channel] pairs") from e
            out.append(Direction(group, "s", v, source=f"StyleSpace channels {path.name}", attribute=group))
        return out
    if fmt == "semedit":
        return read_semedit(path)
    raise CheckpointError(f"unknown direction format {fmt!r}; one of {', '.join(FORMATS)}")


def save_directions(path: Path, directions: Sequence[Direction], **meta: str) -> Path:
    """Our own format: safetensors, the vectors as tensors, everything else as JSON metadata."""
    from safetensors.torch import save_file
    info = [{"name": d.name, "space": d.space, "unit": d.unit, "layers": list(d.layers) if d.layers else None,
             "attribute": d.attribute, "source": d.source, "metrics": d.metrics} for d in directions]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # cloned: variants of one fit (other layers, other names) share their tensors, which safetensors refuses
    tensors = {f"{i}.vector": d.vector.detach().float().cpu().clone() for i, d in enumerate(directions)}
    tensors.update({f"{i}.normal": d.normal.detach().float().cpu().clone()
                    for i, d in enumerate(directions) if d.normal is not None})
    save_file(tensors, str(path), metadata={"directions": json.dumps(info), **meta})
    return path


def semedit_metadata(path: Path) -> dict:
    """The metadata ``save_directions`` wrote beside the directions (e.g. generator, note): {key: str}."""
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: v for k, v in (f.metadata() or {}).items() if k != "directions"}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{Path(path).name}: not a safetensors file ({type(e).__name__}: {e})") from e


def read_semedit(path: Path) -> List[Direction]:
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            info = json.loads((f.metadata() or {})["directions"])
            keys = set(f.keys())
            return [Direction(d["name"], d["space"], f.get_tensor(f"{i}.vector"), unit=float(d["unit"]),
                              layers=tuple(d["layers"]) if d.get("layers") else None, attribute=d.get("attribute", ""),
                              source=d.get("source", ""), metrics=d.get("metrics") or {},
                              normal=f.get_tensor(f"{i}.normal") if f"{i}.normal" in keys else None)
                    for i, d in enumerate(info)]
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{Path(path).name}: not a semedit directions file ({type(e).__name__}: {e})") from e
