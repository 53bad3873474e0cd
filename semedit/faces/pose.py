"""Head pose and smile from Face Mesh landmarks: labelling functions for direction fitting."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .landmarks import CHEEKS, CHIN, FOREHEAD, LOWER_LIP, UPPER_LIP, Face


@dataclass(frozen=True)
class HeadPose:
    """Degrees. yaw > 0: the face turns towards the image's right; pitch > 0: looking up;
    roll > 0: the head tilts clockwise in the image (right eye lower)."""

    yaw: float
    pitch: float
    roll: float


def head_pose(face: Face) -> HeadPose:
    p = face.points
    left, right = (p[CHEEKS[0]], p[CHEEKS[1]]) if p[CHEEKS[0], 0] < p[CHEEKS[1], 0] else (p[CHEEKS[1]], p[CHEEKS[0]])
    across, down = right - left, p[CHIN] - p[FOREHEAD]
    facing = -np.cross(across, down)  # towards the camera (mesh z grows away from it)
    facing /= np.linalg.norm(facing)
    yaw = np.degrees(np.arctan2(facing[0], -facing[2]))
    pitch = np.degrees(np.arctan2(-facing[1], -facing[2]))
    (lx, ly), (rx, ry) = face.eyes()
    roll = np.degrees(np.arctan2(ry - ly, rx - lx))
    return HeadPose(float(yaw), float(pitch), float(roll))


def smile(face: Face) -> float:
    """How far the mouth corners sit above the lips' centre, over the eye distance
    (about 0 for a neutral mouth, larger for a smile, negative for a frown)."""
    corners = face.mouth_corners()
    centre_y = (face.xy[UPPER_LIP, 1] + face.xy[LOWER_LIP, 1]) / 2
    eye_distance = np.hypot(*(face.eyes()[1] - face.eyes()[0]))
    return float((centre_y - corners[:, 1].mean()) / eye_distance)


def mouth_width(face: Face) -> float:
    """Mouth-corner distance over eye distance."""
    c, e = face.mouth_corners(), face.eyes()
    return float(np.hypot(*(c[1] - c[0])) / np.hypot(*(e[1] - e[0])))


#: the labels ``label_images`` measures, in its column order
LABELS = ("yaw", "pitch", "roll", "smile")


def label_images(images) -> np.ndarray:
    """Labelling function for direction fitting: images [N, 3, H, W] in [-1, 1] (a torch tensor,
    e.g. generator samples) -> float array [N, 4] of (yaw, pitch, roll, smile) per ``LABELS``,
    for each image's largest face; a row of NaN where no face is found."""
    from ..imaging import tensor_to_uint8
    from .landmarks import detect_faces
    out = np.full((len(images), len(LABELS)), np.nan)
    for i, arr in enumerate(tensor_to_uint8(images)):
        faces = detect_faces(arr, max_faces=1)
        if faces:
            pose = head_pose(faces[0])
            out[i] = (pose.yaw, pose.pitch, pose.roll, smile(faces[0]))
    return out
