"""Read TensorFlow.js weights (a ``*-weights_manifest.json`` and its ``.bin`` shards).

The manifest is a list of groups ``{"paths": [shard files], "weights": [{"name", "shape",
"dtype", "quantization"?}]}``; each group's weights lie back to back in the concatenation of
its shards. A quantised weight is stored as ``quantization.dtype`` codes: ``uint8``/``uint16``
codes ``q`` mean ``q * scale + min`` (computed in double precision, kept as float32, as
TensorFlow.js does); ``float16`` codes are half floats.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from .errors import CheckpointError

_DTYPES = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


@dataclass(frozen=True)
class TfjsWeight:
    """values: float32 (or int32) array; or, for affine-quantised weights, the integer codes
    with ``affine = (scale, min)``."""

    values: np.ndarray
    affine: Optional[Tuple[float, float]] = None

    def dequantized(self) -> np.ndarray:
        if self.affine is None:
            return self.values
        scale, minimum = self.affine
        return (self.values.astype(np.float64) * scale + minimum).astype(np.float32)


def read_tfjs_weights(manifest_path: Path) -> Dict[str, TfjsWeight]:
    """name -> TfjsWeight for every weight in the manifest, in the manifest's order."""
    manifest_path = Path(manifest_path)
    try:
        groups = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{manifest_path.name}: not a readable TensorFlow.js weights manifest ({e})") from e
    out: Dict[str, TfjsWeight] = {}
    for group in groups:
        try:
            data = b"".join((manifest_path.parent / p).read_bytes() for p in group["paths"])
        except OSError as e:
            raise CheckpointError(f"{manifest_path.name}: a weight shard is missing ({e})") from e
        offset = 0
        for spec in group["weights"]:
            name, shape = spec["name"], tuple(spec["shape"])
            quant = spec.get("quantization")
            stored = _DTYPES.get(quant["dtype"] if quant else spec["dtype"])
            if stored is None:
                raise CheckpointError(f"{manifest_path.name}: {name} has an unsupported dtype")
            count = int(np.prod(shape, dtype=np.int64))
            size = count * np.dtype(stored).itemsize
            if offset + size > len(data):
                raise CheckpointError(f"{manifest_path.name}: the weight data ends inside {name} (truncated shard?)")
            codes = np.frombuffer(data, dtype=stored, count=count, offset=offset).reshape(shape)
            offset += size
            if quant and quant["dtype"] in ("uint8", "uint16"):
                out[name] = TfjsWeight(codes.copy(), (float(quant["scale"]), float(quant["min"])))
            else:
                out[name] = TfjsWeight(codes.astype(_DTYPES[spec["dtype"]]))
        if offset != len(data):
            raise CheckpointError(f"{manifest_path.name}: {len(data) - offset} bytes of weight data are not described")
    return out
