"""Face detection and the 478 Face Mesh landmarks, from the models inside the mediapipe wheel.

Landmark indices used here (MediaPipe Face Mesh with refined irises): iris centres 468 and
473, mouth corners 61 and 291, inner lips 13 (upper) and 14 (lower), nose tip 1, cheek sides
234 and 454, chin 152, forehead 10.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np

from ..errors import SemeditError
from .quiet import mediapipe_notices_filtered

IRIS_CENTRES = (468, 473)
MOUTH_CORNERS = (61, 291)
UPPER_LIP, LOWER_LIP = 13, 14
NOSE_TIP, CHIN, FOREHEAD = 1, 152, 10
CHEEKS = (234, 454)


class NoFaceError(SemeditError):
    """No face was found where one was expected."""


@dataclass(frozen=True)
class Face:
    """points [478, 3]: x, y in pixels of the source image, z in the mesh's relative depth."""

    points: np.ndarray

    @property
    def xy(self) -> np.ndarray:
        return self.points[:, :2]

    @property
    def box(self) -> tuple:
        """(left, top, right, bottom) in pixels."""
        lo, hi = self.xy.min(0), self.xy.max(0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    @property
    def area(self) -> float:
        left, top, right, bottom = self.box
        return (right - left) * (bottom - top)

    def eyes(self) -> np.ndarray:
        """[2, 2] eye centres (iris centres), image-left first."""
        e = self.xy[list(IRIS_CENTRES)]
        return e[np.argsort(e[:, 0])]

    def mouth_corners(self) -> np.ndarray:
        m = self.xy[list(MOUTH_CORNERS)]
        return m[np.argsort(m[:, 0])]


#: the detector inside Face Mesh expects a face that fills a good part of its input; smaller faces
#: (group and wide photos) are found in square windows of these fractions of the short side
WINDOW_FRACTIONS = (1.0, 0.5)
#: finer windows, scanned only when the coarser ones found no face (a face under ~8% of the short side)
FINE_WINDOW_FRACTIONS = (0.25,)
SMALLEST_WINDOW = 160  # px: windows below this are not scanned
WINDOW_INPUT_SIDE = 480  # px: windows are reduced to this before detection (speed; landmarks are relative)
SAME_FACE_IOU = 0.3


def detect_faces(image: np.ndarray, max_faces: int = 8) -> List[Face]:
    """uint8 RGB [H, W, 3] -> faces anywhere in it, of any size, largest first (empty when none).

    The whole image is searched first, then overlapping square windows (``WINDOW_FRACTIONS`` of
    the short side, half a window apart; ``FINE_WINDOW_FRACTIONS`` too when nothing was found),
    so faces that are small in a wide or group photo are found; a face cut by a window's edge
    is left to a window that holds it whole, and a face seen in several windows is kept once."""
    import mediapipe as mp  # deferred: heavy import, models come from the wheel
    image = np.ascontiguousarray(image[..., :3])
    h, w = image.shape[:2]
    found: List[Face] = []
    with mediapipe_notices_filtered(), mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=max_faces, refine_landmarks=True, min_detection_confidence=0.5) as mesh:
        for window in [(0, 0, w, h)] + _windows(w, h, WINDOW_FRACTIONS):
            _add_faces(found, mesh, image, window)
        if not found:
            for window in _windows(w, h, FINE_WINDOW_FRACTIONS):
                _add_faces(found, mesh, image, window)
    return sorted(found, key=lambda f: -f.area)[:max_faces]


def _windows(w: int, h: int, fractions: tuple) -> List[tuple]:
    """(x0, y0, width, height) of square windows, each side a fraction of the short side, half a
    window apart, the last one flush with the image's edge."""
    windows = []
    for fraction in fractions:
        side = int(min(w, h) * fraction)
        if side < SMALLEST_WINDOW or (side == w and side == h):  # too small, or the whole image again
            continue
        stride = max(side // 2, 1)
        xs = sorted({*range(0, w - side + 1, stride), w - side})
        ys = sorted({*range(0, h - side + 1, stride), h - side})
        windows += [(x, y, side, side) for y in ys for x in xs]
    return windows


def _add_faces(found: List[Face], mesh, image: np.ndarray, window: tuple) -> None:
    """Append to ``found`` the faces seen whole in ``window`` (x0, y0, width, height) and not yet in it."""
    h, w = image.shape[:2]
    x0, y0, side_x, side_y = window
    box = (x0, y0, x0 + side_x, y0 + side_y)
    for face in _faces_in_window(mesh, image, x0, y0, side_x, side_y):
        if _touches_inner_edge(face.box, box, w, h):
            continue
        if all(_iou(face.box, other.box) < SAME_FACE_IOU for other in found):
            found.append(face)


def _faces_in_window(mesh, image: np.ndarray, x0: int, y0: int, side_x: int, side_y: int) -> List[Face]:
    from PIL import Image
    crop = image[y0:y0 + side_y, x0:x0 + side_x]
    scale = WINDOW_INPUT_SIDE / max(side_x, side_y)
    if scale < 1:
        crop = np.asarray(Image.fromarray(crop).resize((max(1, round(side_x * scale)), max(1, round(side_y * scale))),
                                                      Image.BILINEAR))
    result = mesh.process(np.ascontiguousarray(crop))
    return [Face(np.array([(x0 + p.x * side_x, y0 + p.y * side_y, p.z * side_x) for p in lm.landmark],
                          dtype=np.float64))
            for lm in result.multi_face_landmarks or []]


def _touches_inner_edge(box: tuple, window: tuple, w: int, h: int, margin: float = 0.02) -> bool:
    """Whether a face box reaches an edge of the window that is not the image's edge."""
    left, top, right, bottom = box
    wl, wt, wr, wb = window
    m = margin * (wr - wl)
    return ((wl > 0 and left < wl + m) or (wt > 0 and top < wt + m)
            or (wr < w and right > wr - m) or (wb < h and bottom > wb - m))


def _iou(a: tuple, b: tuple) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def draw_faces(photo, faces: List[Face]):
    """A copy of a PIL photo with each face's box and its index (0 = the largest) drawn on it."""
    from PIL import ImageDraw
    shown = photo.convert("RGB")
    draw = ImageDraw.Draw(shown)
    width = max(2, round(max(shown.size) / 150))  # still visible when the preview shrinks a wide photo
    for i, face in enumerate(faces):
        left, top, right, bottom = face.box
        draw.rectangle((left, top, right, bottom), outline=(255, 64, 32), width=width)
        size = max(12, round((bottom - top) / 4))
        draw.text((left, max(0, top - size - width)), str(i), fill=(255, 64, 32), font_size=size)
    return shown


def pick_face(image: np.ndarray, index: int = 0) -> Face:
    """The ``index``-th largest face; NoFaceError with a clear message otherwise."""
    faces = detect_faces(image)
    if not faces:
        raise NoFaceError("no face was found in this image: use a photo where one face is clearly visible")
    if not 0 <= index < len(faces):
        raise NoFaceError(f"face {index} was asked for, but the image has {len(faces)} (0 is the largest)")
    return faces[index]
