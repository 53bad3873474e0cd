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


def detect_faces(image: np.ndarray, max_faces: int = 8) -> List[Face]:
    """uint8 RGB [H, W, 3] -> faces, largest first (empty list when none)."""
    import mediapipe as mp  # deferred: heavy import, models come from the wheel
    h, w = image.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=max_faces, refine_landmarks=True,
                                         min_detection_confidence=0.5) as mesh:
        result = mesh.process(np.ascontiguousarray(image[..., :3]))
    faces = []
    for lm in result.multi_face_landmarks or []:
        pts = np.array([(p.x * w, p.y * h, p.z * w) for p in lm.landmark], dtype=np.float64)
        faces.append(Face(pts))
    return sorted(faces, key=lambda f: -f.area)


def pick_face(image: np.ndarray, index: int = 0) -> Face:
    """The ``index``-th largest face; NoFaceError with a clear message otherwise."""
    faces = detect_faces(image)
    if not faces:
        raise NoFaceError("no face was found in this image: use a photo where one face is clearly visible")
    if not 0 <= index < len(faces):
        raise NoFaceError(f"face {index} was asked for, but the image has {len(faces)} (0 is the largest)")
    return faces[index]
