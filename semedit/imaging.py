"""The single image contract: images are NCHW float32 tensors in [-1, 1].

Conversions to and from PIL / numpy live here and nowhere else.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from PIL import Image


def tensor_to_uint8(img: torch.Tensor) -> np.ndarray:
    """img [N, 3, H, W] (or [3, H, W]) in [-1, 1] -> uint8 array [N, H, W, 3] (or [H, W, 3])."""
    x = ((img.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    x = x.movedim(-3, -1).cpu().numpy()
    return x


def tensor_to_pil(img: torch.Tensor) -> Image.Image:
    """img [3, H, W] or [1, 3, H, W] in [-1, 1] -> RGB PIL image."""
    if img.ndim == 4:
        if img.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {img.shape[0]}")
        img = img[0]
    return Image.fromarray(tensor_to_uint8(img))


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> [1, 3, H, W] float32 in [-1, 1]."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1)[None] / 127.5 - 1.0


def make_grid(images: Sequence[np.ndarray], ncols: int = 0, pad: int = 2, fill: int = 255) -> np.ndarray:
    """uint8 images [H, W, 3] of one size -> one uint8 grid image (ncols=0: near-square)."""
    if len(images) == 0:
        raise ValueError("no images to put in a grid")
    n = len(images)
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    h, w, c = images[0].shape
    grid = np.full((nrows * h + (nrows + 1) * pad, ncols * w + (ncols + 1) * pad, c), fill, np.uint8)
    for i, im in enumerate(images):
        r, col = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = im
    return grid


def center_square(img: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> the largest centred square [N, C, S, S]."""
    h, w = img.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return img[..., top:top + s, left:left + s]


def resize(img: torch.Tensor, size: int) -> torch.Tensor:
    """Square [N, C, S, S] -> [N, C, size, size] (area when shrinking, bilinear when growing)."""
    if img.shape[-1] == size and img.shape[-2] == size:
        return img
    if img.shape[-1] > size:
        return torch.nn.functional.interpolate(img, size=(size, size), mode="area")
    return torch.nn.functional.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)


def array_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] (or [H, W] / [H, W, 4]) -> [1, 3, H, W] float32 in [-1, 1]."""
    return pil_to_tensor(Image.fromarray(np.asarray(arr)))
