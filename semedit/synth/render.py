"""Vectorised procedural portrait renderer with exact per-pixel labels.

``render(portraits, size) -> Rendering(image [N, 3, S, S] in [-1, 1], labels [N, S, S])``.

The scene is painted back to front in normalised coordinates (x right, y down, both in
[-1, 1]): background, neck and clothes, hair behind the head, face, face features, beard,
mouth, hair in front, glasses, accessory. Each layer is a soft coverage mask from an
approximate signed distance (anti-aliased over one pixel); a pixel's label is the last layer
that covers more than half of it, so labels match the drawn pixels.

The head is a vertical ellipsoid: turning it (yaw) moves every feature along the surface
(x = cx + r sin(theta + yaw)) and foreshortens it by cos(theta + yaw) / cos(theta); the
lighting direction shades skin and hair through the ellipsoid's normals.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import segmentation as L
from .params import ACCESSORIES, BEARD_THRESHOLD, GLASSES_THRESHOLD, HAIR_STYLES, MAX_YAW, Portraits


@dataclass(frozen=True)
class Rendering:
    image: torch.Tensor   # [N, 3, S, S] float32 in [-1, 1]
    labels: torch.Tensor  # [N, S, S] int64 class ids (see semedit.segmentation.CLASS_NAMES)


HAIR_STOPS = torch.tensor([(0.07, 0.06, 0.05), (0.24, 0.14, 0.07), (0.46, 0.29, 0.15),
                           (0.86, 0.71, 0.45), (0.62, 0.23, 0.09)])
IRIS_STOPS = torch.tensor([(0.22, 0.42, 0.75), (0.30, 0.55, 0.35), (0.50, 0.40, 0.20),
                           (0.30, 0.18, 0.10), (0.50, 0.55, 0.60)])
FRAME_STOPS = torch.tensor([(0.08, 0.08, 0.08), (0.45, 0.25, 0.1), (0.75, 0.6, 0.25), (0.6, 0.1, 0.15)])
SKIN_LIGHT = torch.tensor((0.96, 0.80, 0.69))
SKIN_DARK = torch.tensor((0.36, 0.22, 0.14))
GRAY = torch.tensor((0.78, 0.78, 0.78))


def _ramp(stops: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear colour ramp: u [N] in [0, 1] -> [N, 3]."""
    stops = stops.to(u.device)
    pos = u.clamp(0, 1) * (len(stops) - 1)
    i = pos.floor().long().clamp(max=len(stops) - 2)
    t = (pos - i)[:, None]
    return stops[i] * (1 - t) + stops[i + 1] * t


def _hsv(h: torch.Tensor, s: float | torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """HSV [N] each in [0, 1] -> RGB [N, 3]."""
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], dim=1)
    s = torch.as_tensor(s, dtype=v.dtype, device=v.device)
    s = s[:, None] if s.ndim else s
    return v[:, None] * (1 - s * torch.clamp(torch.minimum(k, 4 - k), 0, 1))


class _Canvas:
    """Painter over a batch: colour [N, 3, S, S] and labels [N, S, S]."""

    def __init__(self, n: int, size: int, device: torch.device):
        c = (torch.arange(size, dtype=torch.float32, device=device) + 0.5) / size * 2 - 1
        self.y, self.x = torch.meshgrid(c, c, indexing="ij")
        self.x, self.y = self.x[None], self.y[None]  # [1, S, S]
        self.px = 2.0 / size
        self.image = torch.zeros(n, 3, size, size, device=device)
        self.labels = torch.zeros(n, size, size, dtype=torch.long, device=device)

    def cover(self, sd: torch.Tensor) -> torch.Tensor:
        """Signed distance (negative inside) -> coverage in [0, 1], anti-aliased over a pixel."""
        return (0.5 - sd / self.px).clamp(0, 1)

    def paint(self, alpha: torch.Tensor, color: torch.Tensor, label: int | None) -> None:
        """alpha [N, S, S]; color [N, 3] or [N, 3, S, S]; label None keeps the labels (shading)."""
        if color.ndim == 2:
            color = color[:, :, None, None]
        a = alpha[:, None]
        self.image = self.image * (1 - a) + color * a
        if label is not None:
            self.labels = torch.where(alpha > 0.5, torch.full_like(self.labels, label), self.labels)


def _col(t: torch.Tensor) -> torch.Tensor:
    """[N] -> [N, 1, 1] for broadcasting over the canvas."""
    return t[:, None, None]


def ellipse_sd(x, y, cx, cy, rx, ry, power: float = 2.0):
    """Approximate signed distance to a (super)ellipse; negative inside."""
    k = ((x - cx).abs() / rx) ** power + ((y - cy).abs() / ry) ** power
    scale = torch.minimum(rx, ry) if torch.is_tensor(rx) else min(rx, ry)
    return (k ** (1.0 / power) - 1) * scale


def _rounded_box_sd(dx, dy, half_w, half_h, radius: float):
    """Signed distance to a box of half sizes (half_w, half_h) with rounded corners."""
    qx = dx.abs() - half_w + radius
    qy = dy.abs() - half_h + radius
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
    return outside + torch.maximum(qx, qy).clamp(max=0) - radius


def render(p: Portraits, size: int = 64) -> Rendering:
    """Draw the portraits ``p`` at ``size`` x ``size`` pixels (size >= 16), on the device
    ``p``'s tensors are on (a GPU renders thousands of portraits a second for training)."""
    if size < 16:
        raise ValueError(f"size must be at least 16 px, got {size}")
    n = len(p)
    dev = p.values.device
    cv = _Canvas(n, size, dev)

    def const(*rgb: float) -> torch.Tensor:
        """One colour for the whole batch: [N, 3] on the batch's device."""
        return torch.tensor(rgb, device=dev).expand(n, 3)

    x, y = cv.x, cv.y
    u = {name: _col(p[name]) for name in ("face_width", "face_height", "jaw", "yaw", "hair_volume", "hair_length")}

    # ---- geometry ------------------------------------------------------------------------
    yaw = (p["yaw"] * 2 - 1) * MAX_YAW
    a = _col(yaw)
    cx = torch.zeros_like(a)
    cy = torch.full_like(a, -0.02)
    rx = 0.33 + 0.09 * u["face_width"]
    ry = 0.44 + 0.09 * u["face_height"]

    def project(x0: torch.Tensor):
        """Frontal offset x0 (fraction of rx) -> (image x, foreshortening factor)."""
        theta = torch.asin(x0.clamp(-0.99, 0.99))
        return cx + rx * torch.sin(theta + a), torch.cos(theta + a).clamp(min=0.05) / torch.cos(theta)

    # the face outline narrows towards the chin by the jaw parameter
    below = ((y - cy) / ry).clamp(0, 1)
    rx_y = rx * (1 - (0.12 + 0.28 * u["jaw"]) * below ** 2)
    face_sd = ellipse_sd(x, y, cx, cy, rx_y, ry)
    face = cv.cover(face_sd)

    # lighting through the ellipsoid normals
    la = _col((p["light_angle"] * 2 - 1) * 1.2)
    ls = _col(0.25 + 0.45 * p["light_strength"])
    nx = ((x - cx) / rx_y).clamp(-1, 1)
    ny = ((y - cy) / ry).clamp(-1, 1)
    nz = (1 - nx ** 2 - ny ** 2).clamp(min=0).sqrt()
    lx, lz = torch.sin(la), torch.cos(la)
    lambert = (nx * lx - ny * 0.3 + nz * lz) / math.sqrt(1 + 0.09)
    shade = (1 - ls * 0.55) + ls * lambert.clamp(min=-0.3)  # [N, S, S]

    # ---- colours --------------------------------------------------------------------------
    tone = p["skin_tone"][:, None]
    skin = SKIN_LIGHT.to(dev) * (1 - tone) + SKIN_DARK.to(dev) * tone
    skin = skin * torch.stack([1 + 0.06 * p["skin_warmth"], torch.ones_like(tone[:, 0]), 1 - 0.08 * p["skin_warmth"]], 1)
    age = p["age"]
    skin = skin * (1 - 0.15 * age[:, None]) + skin.mean(1, keepdim=True) * 0.15 * age[:, None]
    gray_amount = ((p["hair_gray"] - 0.55) / 0.45).clamp(0, 1)[:, None]
    hair_rgb = _ramp(HAIR_STOPS, p["hair_color"]) * (1 - gray_amount) + GRAY.to(dev) * gray_amount
    bg_top = _hsv(p["bg_hue"], 0.35, 0.45 + 0.45 * p["bg_light"])
    bg_bottom = bg_top * (1 - 0.45 * p["bg_gradient"][:, None])
    clothes_rgb = _hsv(p["clothes_hue"], 0.55, 0.25 + 0.6 * p["clothes_light"])
    lips = skin * 0.55 + torch.tensor((0.72, 0.25, 0.28), device=dev) * 0.45
    iris = _ramp(IRIS_STOPS, p["iris_hue"])

    # ---- background ---------------------------------------------------------------------------
    t = ((y + 1) / 2)[:, None]
    cv.image = bg_top[:, :, None, None] * (1 - t) + bg_bottom[:, :, None, None] * t

    # ---- neck and clothes --------------------------------------------------------------------
    neck_cx = cx + 0.12 * torch.sin(a) * rx
    neck_half = rx * 0.42
    neck = cv.cover(torch.maximum((x - neck_cx).abs() - neck_half, cy + ry * 0.3 - y))
    cv.paint(neck, (skin[:, :, None, None] * 0.78), L.NECK_CLOTHES)
    clothes = cv.cover(ellipse_sd(x, y, 0.1 * a, torch.full_like(a, 1.12), torch.full_like(a, 0.78),
                                  torch.full_like(a, 0.36)))
    cv.paint(clothes, clothes_rgb[:, :, None, None] * (1.05 - 0.1 * (y[:, None] - 0.7)), L.NECK_CLOTHES)

    # ---- hair behind the head ----------------------------------------------------------------
    style = p.hair_style[:, None, None]
    is_style = {name: (style == i) for i, name in enumerate(HAIR_STYLES)}
    vol = u["hair_volume"]
    texture = 1 + 0.07 * torch.sin(55 * x + 9 * y + 6.28 * _col(p["hair_curl_phase"]))
    hair_color_map = hair_rgb[:, :, None, None] * texture[:, None] * (0.8 + 0.25 * shade[:, None])
    back_len = torch.where(is_style["long"], 0.7 + 0.9 * u["hair_length"],
                           torch.where(is_style["bob"] | is_style["fringe"], 0.35 + 0.3 * u["hair_length"],
                                       torch.where(is_style["curly"], 0.45 + 0.5 * u["hair_length"],
                                                   torch.full_like(vol, -9.0))))
    back_w = rx * (1.12 + 0.3 * vol + 0.15 * is_style["curly"].float())
    back_top = cy - ry * 0.4
    back_bottom = cy + ry * back_len
    back_sd = _rounded_box_sd(x - cx, y - (back_top + back_bottom) / 2, back_w, (back_bottom - back_top) / 2, 0.12)
    ang = torch.atan2(y - cy, x - cx)
    back_sd = back_sd + is_style["curly"].float() * 0.025 * torch.sin(11 * ang + 6.28 * _col(p["hair_curl_phase"]))
    neck_gap = torch.maximum((x - neck_cx).abs() - neck_half * 1.05, cy + ry * 0.75 - y)
    back = cv.cover(torch.maximum(back_sd, -neck_gap)) * (back_len > 0).float()
    cv.paint(back, hair_color_map * 0.85, L.HAIR)

    # ---- face ------------------------------------------------------------------------------------
    cv.paint(face, skin[:, :, None, None] * shade[:, None], L.SKIN)

    # ---- eyes ------------------------------------------------------------------------------------
    ey = cy - ry * (0.02 + 0.16 * _col(p["eye_height"]))
    spacing = 0.30 + 0.14 * _col(p["eye_spacing"])
    ew0 = rx * (0.15 + 0.07 * _col(p["eye_size"]))
    eh = ew0 * (0.38 + 0.28 * _col(p["eye_aspect"]))
    eye_centers = []
    for side in (-1, 1):
        ex, f = project(side * spacing)
        ew = ew0 * f
        eye_centers.append((ex, ew))
        eye = cv.cover(ellipse_sd(x, y, ex, ey, ew, eh)) * face.gt(0.5)
        cv.paint(eye, const(0.95, 0.95, 0.93), L.EYES)
        iris_mask = cv.cover(ellipse_sd(x, y, ex, ey, torch.minimum(eh * 0.95, ew * 0.6), eh * 0.95)) * eye.gt(0)
        cv.paint(iris_mask * eye, iris, L.EYES)
        pupil = cv.cover(ellipse_sd(x, y, ex, ey, torch.minimum(eh * 0.4, ew * 0.3), eh * 0.4)) * eye.gt(0)
        cv.paint(pupil * eye, const(0.05, 0.05, 0.05), L.EYES)
        # brows: a curved band above the eye, tilt per expression
        bw = ew0 * 1.25 * f
        v = (x - ex) / bw
        tilt = (_col(p["brow_tilt"]) - 0.5) * 0.07 * side * -1
        by = ey - eh - ry * 0.1 + 0.035 * v ** 2 + tilt * v
        bt = 0.012 + 0.02 * _col(p["brow_thickness"])
        brow = cv.cover(torch.maximum((y - by).abs() - bt * (1 - 0.5 * v.abs().clamp(max=1)), v.abs() * bw - bw))
        cv.paint(brow * face.gt(0.5), hair_rgb * 0.7, L.BROWS)

    # ---- nose (shading only: stays skin) ---------------------------------------------------
    tip_y = ey + ry * (0.28 + 0.14 * _col(p["nose_length"]))
    nxp, nf = project(torch.zeros_like(a))
    nw = rx * (0.10 + 0.08 * _col(p["nose_width"])) * nf
    nostril = cv.cover(ellipse_sd(x, y, nxp, tip_y, nw, nw * 0.45))
    cv.paint(nostril * 0.45 * face, skin[:, :, None, None] * 0.55, None)
    ridge_side = torch.sign(-torch.sin(la) + 1e-3)
    ridge = cv.cover(torch.maximum((x - nxp - ridge_side * nw * 0.7).abs() - 0.01, torch.maximum(ey - y, y - tip_y)))
    cv.paint(ridge * 0.3 * face, skin[:, :, None, None] * 0.6, None)

    # ---- age cues (wrinkles: stay skin) ------------------------------------------------------
    wrinkle = ((_col(age) - 0.55) / 0.45).clamp(0, 1)
    for k in (0.32, 0.42):
        line = cv.cover(torch.maximum((y - (ey - ry * k) - 0.02 * ((x - nxp) / rx) ** 2).abs() - 0.004,
                                      (x - nxp).abs() - rx * 0.45))
        cv.paint(line * wrinkle * 0.6 * face, skin[:, :, None, None] * 0.65, None)

    # ---- beard (under the mouth) -------------------------------------------------------------
    my = tip_y + ry * 0.2
    has_beard = _col((p["beard"] > BEARD_THRESHOLD).float())
    inner = ellipse_sd(x, y, cx, cy - ry * 0.05, rx_y * 0.78, ry * 0.82)
    beard_sd = torch.maximum(face_sd, torch.minimum(my - 0.03 - y, torch.maximum(-inner, ey + ry * 0.1 - y)))
    cv.paint(cv.cover(beard_sd) * has_beard, hair_rgb[:, :, None, None] * 0.8 * texture[:, None], L.BEARD)

    # ---- mouth -------------------------------------------------------------------------------------
    mxp, mf = project(torch.zeros_like(a))
    mw = rx * (0.26 + 0.14 * _col(p["mouth_width"])) * mf
    smile = _col(p["smile"]) * 2 - 1
    um = (x - mxp) / mw
    centre = my - smile * 0.05 * um ** 2
    lt = 0.022 + 0.022 * _col(p["lip_thickness"])
    lip_sd = torch.maximum((y - centre).abs() - lt * (1 - um ** 2).clamp(min=0).sqrt() - 0.004, um.abs() * mw - mw)
    cv.paint(cv.cover(lip_sd), lips, L.MOUTH)
    seam = cv.cover(torch.maximum((y - centre).abs() - 0.005, um.abs() * mw - mw * 0.95))
    cv.paint(seam * 0.8, lips * 0.45, None)

    # ---- hair in front: cap, fringe, bun ----------------------------------------------------------
    not_bald = (~is_style["bald"]).float()
    hcx = cx + 0.08 * rx * torch.sin(a)
    cap_rx = rx * (1.06 + 0.2 * vol + 0.1 * is_style["curly"].float())
    cap_ry = ry * (1.0 + 0.12 * vol)
    cap_sd = ellipse_sd(x, y, hcx, cy - ry * 0.07, cap_rx, cap_ry)
    cap_sd = cap_sd + is_style["curly"].float() * 0.02 * torch.sin(13 * ang + 6.28 * _col(p["hair_curl_phase"]))
    hl_x = (x - nxp) / rx
    hairline = torch.where(is_style["fringe"], ey - eh - ry * 0.16 + 0.02 * hl_x ** 2,
                           cy - ry * 0.58 + ry * 0.42 * hl_x ** 2)
    side_limit = ey + ry * 0.15
    in_front = torch.minimum(y - hairline, torch.maximum(-face_sd, y - side_limit))
    cap = cv.cover(torch.maximum(cap_sd, in_front)) * not_bald
    bun = cv.cover(ellipse_sd(x, y, hcx, cy - ry * 1.08, 0.11 + 0.05 * vol, 0.1 + 0.04 * vol)) * is_style["bun"].float()
    cv.paint(torch.maximum(cap, bun), hair_color_map, L.HAIR)
    parted = (is_style["short"] | is_style["long"] | is_style["bob"]).float()
    part_x, _ = project((_col(p["hair_parting"]) * 2 - 1) * 0.5)
    part = cv.cover(torch.maximum((x - part_x).abs() - 0.006, torch.maximum(y - (cy - ry * 0.6), cap_sd)))
    cv.paint(part * parted * cap * 0.8, skin[:, :, None, None] * 0.85, None)

    # ---- glasses -----------------------------------------------------------------------------------
    has_glasses = _col((p["glasses"] > GLASSES_THRESHOLD).float())
    power = 2.0 + 3.0 * (_col(p["glasses_shape"]) > 0.5).float()
    frame_rgb = _ramp(FRAME_STOPS, p["frame_color"])
    frame_t = 0.012 + 0.004 * (size >= 128)
    frames = torch.zeros_like(face)
    for ex, ew in eye_centers:
        rgx, rgy = ew * 1.55 + 0.01, eh * 2.2 + 0.02
        k = ((x - ex).abs() / rgx) ** power + ((y - ey).abs() / rgy) ** power
        ring_sd = (k ** (1 / power) - 1) * torch.minimum(rgx, rgy)
        frames = torch.maximum(frames, cv.cover(ring_sd.abs() - frame_t))
        lens = cv.cover(ring_sd)
        cv.paint(lens * 0.12 * has_glasses, frame_rgb, None)
    (lx0, lw0), (rx0, rw0) = eye_centers
    bridge = cv.cover(torch.maximum((y - ey + eh * 0.4).abs() - frame_t * 0.8,
                                    torch.maximum(lx0 + lw0 * 1.5 - x, x - (rx0 - rw0 * 1.5))))
    arm_y = (y - ey + eh).abs() - frame_t * 0.7
    left_arm = torch.maximum(arm_y, torch.maximum(x - (lx0 - lw0 * 1.55), (cx - rx_y * 1.02) - x))
    right_arm = torch.maximum(arm_y, torch.maximum((rx0 + rw0 * 1.55) - x, x - (cx + rx_y * 1.02)))
    arms = cv.cover(torch.minimum(left_arm, right_arm)) * cv.cover(face_sd - 0.02)
    glasses = torch.maximum(frames, torch.maximum(bridge, arms))
    cv.paint(glasses * has_glasses, frame_rgb, L.GLASSES)

    # ---- out-of-domain accessories -------------------------------------------------------------
    acc = p.accessory[:, None, None]
    if bool((acc > 0).any()):
        def only(name):
            return (acc == ACCESSORIES.index(name)).float()
        mask_sd = torch.maximum(ellipse_sd(x, y, cx, cy, rx_y * 1.04, ry * 1.03), tip_y - 0.05 - y)
        cv.paint(cv.cover(mask_sd) * only("mask"), const(0.72, 0.86, 0.95), L.ACCESSORY)
        bindi = cv.cover(ellipse_sd(x, y, nxp, ey - ry * 0.2, torch.full_like(a, 0.03), torch.full_like(a, 0.03)))
        cv.paint(bindi * only("bindi"), const(0.85, 0.05, 0.1), L.ACCESSORY)
        paint_sd = torch.full_like(face, 9.0)
        for ex, ew in eye_centers:
            stripe = torch.maximum((y - ey - ry * 0.25 - 0.12 * (x - ex)).abs() - 0.025, (x - ex).abs() - ew * 1.2)
            paint_sd = torch.minimum(paint_sd, stripe)
        cv.paint(cv.cover(paint_sd) * only("face_paint"), const(0.1, 0.3, 0.9), L.ACCESSORY)
        (px_, pw_) = eye_centers[1]
        patch = ellipse_sd(x, y, px_, ey, pw_ * 1.5, eh * 2.6)
        strap = torch.maximum((y - ey + (x - px_) * 0.9).abs() - 0.012, face_sd - 0.03)
        cv.paint(cv.cover(torch.minimum(patch, strap)) * only("eye_patch"),
                 const(0.04, 0.04, 0.04), L.ACCESSORY)
        crown = ellipse_sd(x, y, hcx, cy - ry * 0.8, rx * 1.02, ry * 0.5)
        crown = torch.maximum(crown, y - (cy - ry * 0.55))
        brim = ellipse_sd(x, y, hcx, cy - ry * 0.55, rx * 1.45, torch.full_like(a, 0.05))
        cv.paint(cv.cover(torch.minimum(crown, brim)) * only("hat"), const(0.55, 0.1, 0.12),
                 L.ACCESSORY)

    return Rendering(image=(cv.image.clamp(0, 1) * 2 - 1).contiguous(), labels=cv.labels)
