"""FFHQ-style alignment from landmarks, and the inverse: paste an edited crop back.

The FFHQ recipe (Karras et al., ffhq-dataset): from the eye centres and mouth corners,
x = e2e - rot90(e2m), scaled to max(2 |e2e|, 1.8 |e2m|); y = rot90(x); centre
c = eye_avg + 0.1 e2m; the crop is the square quad c -+ x -+ y, resampled to the generator's
resolution; where it leaves the photo, the photo is reflected and blurred towards its mean.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from .landmarks import Face


@dataclass(frozen=True)
class Alignment:
    """quad [4, 2]: the crop's corners in the photo (top-left, bottom-left, bottom-right,
    top-right), size: the crop's side in pixels."""

    quad: np.ndarray
    size: int

    def crop_to_photo(self, uv: np.ndarray) -> np.ndarray:
        """Crop pixel coordinates [N, 2] -> photo pixel coordinates [N, 2]."""
        q = self.quad
        u, v = uv[:, :1] / self.size, uv[:, 1:] / self.size
        return q[0] + u * (q[3] - q[0]) + v * (q[1] - q[0])

    def photo_to_crop(self, xy: np.ndarray) -> np.ndarray:
        q = self.quad
        m = np.stack([q[3] - q[0], q[1] - q[0]], 1) / self.size  # columns: d(photo)/du, d(photo)/dv
        return (xy - q[0]) @ np.linalg.inv(m).T


def ffhq_quad(face: Face) -> np.ndarray:
    eye_left, eye_right = face.eyes()
    mouth_left, mouth_right = face.mouth_corners()
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    mouth_avg = (mouth_left + mouth_right) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def align(photo: Image.Image, face: Face, size: int) -> tuple:
    """(aligned crop [size x size] RGB, Alignment) for ``face`` in the RGB ``photo``."""
    quad = ffhq_quad(face)
    qsize = np.hypot(*(quad[3] - quad[0]))
    img, offset = photo, np.zeros(2)
    shrink = int(np.floor(qsize / size * 0.5))  # antialias: shrink first when the quad is much larger
    if shrink > 1:
        img = img.resize((int(round(img.width / shrink)), int(round(img.height / shrink))), Image.LANCZOS)
        scale = np.array([img.width / photo.width, img.height / photo.height])
    else:
        scale = np.ones(2)
    q = quad * scale
    pad = _padding(q, img.size)
    if max(pad) > 0:
        img = _reflect_pad(img, pad, blur=float(max(2.0, np.hypot(*(q[3] - q[0])) * 0.02)))
        offset = np.array([pad[0], pad[1]], dtype=np.float64)
    q = q + offset
    crop = img.transform((size, size), Image.QUAD, tuple((q + 0.5).flatten()), Image.BILINEAR)
    return crop, Alignment(quad=quad, size=size)


def _padding(quad: np.ndarray, wh: tuple) -> tuple:
    """(left, top, right, bottom) pixels needed so the quad lies inside the image."""
    lo, hi = np.floor(quad.min(0)), np.ceil(quad.max(0))
    border = 4
    return (int(max(-lo[0] + border, 0)), int(max(-lo[1] + border, 0)),
            int(max(hi[0] - wh[0] + border, 0)), int(max(hi[1] - wh[1] + border, 0)))


def _reflect_pad(img: Image.Image, pad: tuple, blur: float) -> Image.Image:
    """Reflect-pad, then fade the padding into a blurred copy and the image median (as FFHQ does)."""
    arr = np.asarray(img, dtype=np.float32)
    left, top, right, bottom = pad
    padded = np.pad(arr, ((top, bottom), (left, right), (0, 0)), mode="reflect")
    h, w = padded.shape[:2]
    yy, xx = np.ogrid[:h, :w]
    across = np.maximum(np.maximum(left - xx, 0) / max(left, 1),
                        np.maximum(xx - (w - right - 1), 0) / max(right, 1))  # [1, W]
    down = np.maximum(np.maximum(top - yy, 0) / max(top, 1),
                      np.maximum(yy - (h - bottom - 1), 0) / max(bottom, 1))  # [H, 1]
    depth = np.maximum(across, down)
    mask = np.clip(depth, 0, 1)[..., None]  # 0 inside the photo, 1 at the far edge of the padding
    blurred = np.asarray(Image.fromarray(padded.astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur)),
                         dtype=np.float32)
    padded = padded + (blurred - padded) * np.clip(mask * 3.0, 0, 1)
    padded = padded + (np.median(arr, axis=(0, 1)) - padded) * mask
    return Image.fromarray(np.clip(padded + 0.5, 0, 255).astype(np.uint8))


def feather_mask(size: int, feather: float = 0.12) -> np.ndarray:
    """[size, size] in [0, 1]: 1 inside, falling to 0 over ``feather`` of the side at the border."""
    r = (np.arange(size) + 0.5) / size
    edge = np.minimum(r, 1 - r) / feather
    ramp = np.clip(edge, 0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep
    return np.outer(ramp, ramp)


def paste_back(photo: Image.Image, crop: Image.Image, alignment: Alignment, feather: float = 0.12) -> Image.Image:
    """The edited crop warped back into the photo at its original resolution, blended with a
    feathered mask; pixels outside the crop are the photo's own."""
    q = alignment.quad
    s = crop.width
    m = np.stack([q[3] - q[0], q[1] - q[0]], 1) / s
    inv = np.linalg.inv(m)
    off = -inv @ q[0]
    # PIL AFFINE maps output (photo) pixel centres to input (crop) coordinates
    data = (inv[0, 0], inv[0, 1], off[0] + 0.5 * (inv[0, 0] + inv[0, 1]) - 0.5,
            inv[1, 0], inv[1, 1], off[1] + 0.5 * (inv[1, 0] + inv[1, 1]) - 0.5)
    warped = crop.convert("RGB").transform(photo.size, Image.AFFINE, data, Image.BILINEAR)
    mask_img = Image.fromarray((feather_mask(s, feather) * 255).astype(np.uint8))
    mask = np.asarray(mask_img.transform(photo.size, Image.AFFINE, data, Image.BILINEAR), dtype=np.float32)
    mask = mask[..., None] / 255
    out = np.asarray(photo.convert("RGB"), dtype=np.float32) * (1 - mask) + np.asarray(warped, dtype=np.float32) * mask
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))


def centre_alignment(photo: Image.Image, size: int) -> Alignment:
    """The largest centred square as an Alignment (so paste-back works for plain crops too)."""
    w, h = photo.size
    s = min(w, h)
    x, y = (w - s) / 2, (h - s) / 2
    return Alignment(quad=np.array([[x, y], [x, y + s], [x + s, y + s], [x + s, y]]), size=size)


def prepare_target(photo: Image.Image, size: int, *, align_face: bool, face_index: int = 0) -> tuple:
    """(crop [size x size] RGB, Alignment): FFHQ-aligned around a detected face (NoFaceError when
    there is none), or the centred square."""
    if align_face:
        from .landmarks import pick_face
        return align(photo, pick_face(np.asarray(photo), face_index), size)
    al = centre_alignment(photo, size)
    box = tuple(int(round(v)) for v in (*al.quad[0], *al.quad[2]))
    return photo.crop(box).resize((size, size), Image.LANCZOS), al
