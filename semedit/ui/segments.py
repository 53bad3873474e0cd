"""The target's segments, shown for correction by painting; ChunkyGAN starts its masks from them.

Photos are segmented with mediapipe (semedit.faces.segments) and warped into the aligned
crop; the embedded domain uses its generator's segmenter. The user paints over the map
with the class colours; every stroke pixel (alpha >= 128) takes the class of the nearest
palette colour, everything unpainted keeps the automatic label.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..imaging import pil_to_tensor
from .. import segmentation as L

BRUSH_COLOURS = ["#%02x%02x%02x" % tuple(int(v) for v in c) for c in L.PALETTE]
LEGEND = " ".join(f"<span style='background:{c};color:{'#fff' if sum(L.PALETTE[i]) < 300 else '#000'};"
                  f"padding:1px 6px;border-radius:4px'>{name.replace('_', '/')}</span>"
                  for i, (c, name) in enumerate(zip(BRUSH_COLOURS, L.CLASS_NAMES)))


def segmenter_segments(segmenter: torch.nn.Module, crop, resolution: int) -> np.ndarray:
    """Label map [S, S] of an RGB crop (S its side) by a segmenter that works at ``resolution``."""
    target = pil_to_tensor(crop)
    small = F.interpolate(target, size=(resolution, resolution), mode="area")
    device = next(segmenter.parameters()).device
    with torch.no_grad():
        labels = segmenter.predict(small.to(device)).cpu()
    return F.interpolate(labels[None].float(), size=target.shape[-2:], mode="nearest")[0, 0].long().numpy()


def editor_value(labels: np.ndarray) -> dict:
    """An ImageEditor value showing ``labels`` [H, W] in the class colours, with nothing painted."""
    shown = L.colorize(labels)
    return {"background": shown, "layers": [], "composite": shown}


def apply_paint(labels: np.ndarray, value: Optional[dict]) -> np.ndarray:
    """The automatic ``labels`` [H, W] with the user's strokes (ImageEditor ``value`` layers,
    RGBA [H, W, 4] uint8) applied: a stroke pixel takes the class of the nearest palette colour."""
    out = labels.copy()
    for layer in (value or {}).get("layers") or []:
        layer = np.asarray(layer)
        if layer.ndim != 3 or layer.shape[:2] != labels.shape or layer.shape[2] != 4:
            continue  # a layer of another size cannot be placed on these labels
        painted = layer[..., 3] >= 128
        if painted.any():
            rgb = layer[painted][:, :3].astype(np.int32)
            dist = ((rgb[:, None, :] - L.PALETTE[None].astype(np.int32)) ** 2).sum(-1)
            out[painted] = dist.argmin(1)
    return out
