"""The single image contract: images are NCHW float32 tensors in [-1, 1].

Conversions to and from PIL / numpy live here and nowhere else, and so does the one loader
the UI, the command line and the library use for user images (``load_image``).
"""
from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import SemeditError


class ImageInputError(SemeditError):
    """A user image that cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class ImageLimits:
    """Refuse images over ``max_pixels`` (decompression bombs, huge scans) and images whose
    short side is under ``min_side`` px (too small to hold a face); reduce the rest to at most
    ``max_side`` px on the long side as they load (JPEGs are decoded at the reduced size)."""

    max_pixels: int = 50_000_000
    min_side: int = 64
    max_side: int = 4096


ImageSource = Union[str, Path, bytes, Image.Image, np.ndarray]

#: file name endings of the image formats ``load_image`` reads (for folder scans)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".tif", ".tiff", ".bmp")


def load_image(source: ImageSource, limits: ImageLimits = ImageLimits()) -> Image.Image:
    """Any user image -> an RGB PIL image, upright (EXIF orientation applied).

    Transparent images go on a white background; 16-bit and float images are rescaled to
    8 bits; animations give their first frame; images larger than ``limits.max_side`` are
    reduced. Raises ImageInputError otherwise."""
    if isinstance(source, np.ndarray):
        source = Image.fromarray(_to_uint8(source))
    if isinstance(source, Image.Image):
        img = source
    else:
        data = source if isinstance(source, bytes) else None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data) if data is not None else source)
        except FileNotFoundError as e:
            raise ImageInputError(f"no such file: {source}") from e
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageInputError(f"the image is too large to open safely ({e}); "
                                  f"use one under {limits.max_pixels / 1e6:.0f} megapixels") from e
        except UnidentifiedImageError as e:
            raise ImageInputError("this file is not an image that can be read "
                                  "(PNG, JPEG, WebP, GIF, TIFF, BMP ...)") from e
        except OSError as e:
            raise ImageInputError(f"the image cannot be read: {e}") from e
    w, h = img.size
    if w * h > limits.max_pixels:
        raise ImageInputError(f"the image has {w} x {h} = {w * h / 1e6:.0f} megapixels; the limit is "
                              f"{limits.max_pixels / 1e6:.0f}: downscale it first")
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        if max(w, h) > limits.max_side and img.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale
            scale = limits.max_side / max(w, h)
            img.draft("RGB", (math.ceil(w * scale), math.ceil(h * scale)))
        img.load()
        img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageInputError(f"the image file is damaged or truncated ({e}); save it again and retry") from e
    rgb = _to_rgb(img)
    if max(rgb.size) > limits.max_side:
        rgb = ImageOps.contain(rgb, (limits.max_side, limits.max_side), Image.LANCZOS)
    if min(rgb.size) < limits.min_side:
        raise ImageInputError(f"the image is {rgb.size[0]} x {rgb.size[1]} px; a face needs at least "
                              f"{limits.min_side} px on the short side")
    return rgb


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    a = arr.astype(np.float64)
    top = 65535.0 if arr.dtype == np.uint16 else (a.max() if a.max() > 1 else 1.0)
    return np.clip(a / max(top, 1e-12) * 255 + 0.5, 0, 255).astype(np.uint8)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB (alpha composited over white)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img)
        if img.mode == "I" and arr.max() > 255:
            arr = arr.astype(np.float64) / (65535.0 if arr.max() <= 65535 else arr.max())
        img = Image.fromarray(_to_uint8(arr))
    if img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")


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


def resize(img: torch.Tensor, size: int) -> torch.Tensor:
    """Square [N, C, S, S] -> [N, C, size, size] (area when shrinking, bilinear when growing)."""
    if img.shape[-1] == size and img.shape[-2] == size:
        return img
    if img.shape[-1] > size:
        return torch.nn.functional.interpolate(img, size=(size, size), mode="area")
    return torch.nn.functional.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)


def shifted_and_blurred(images: torch.Tensor) -> torch.Tensor:
    """Images [N, 3, R, R] shifted one pixel right and blurred by a Gaussian of sigma 0.5 px: a
    drawn change survives it, a pixel pattern made to fool an image reader mostly does not."""
    k1 = torch.exp(-torch.arange(-1.0, 2.0).square() / (2 * 0.5 ** 2))
    k = (k1[:, None] * k1[None]) / k1.sum() ** 2
    shifted = torch.nn.functional.pad(images, (1, 0, 0, 0), mode="replicate")[..., :-1]
    return torch.nn.functional.conv2d(torch.nn.functional.pad(shifted, (1, 1, 1, 1), mode="replicate"),
                                      k.to(images).expand(3, 1, 3, 3).contiguous(), groups=3)
