"""Label maps for photographs in the embedded domain's classes (semedit.segmentation).

Face skin, eyes, brows and mouth come from Face Mesh polygons; the person comes from
mediapipe's selfie segmentation; hair is the person minus the face minus what lies below the
jaw; the rest of the person is neck/clothes. Ears and hats count as hair: a user can correct
the map by painting over it. With several people in the photo, only the chosen face's person
is kept: the parts of the person mask connected to that face, split from touching neighbours
by which face is nearer (in units of each face's size).
"""
from __future__ import annotations

from typing import Iterable, List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from .. import segmentation as L
from .alignment import Alignment
from .landmarks import CHIN, Face
from .quiet import mediapipe_notices_filtered


def _loops(edges: Iterable[Tuple[int, int]]) -> List[List[int]]:
    """Chain undirected edges into closed loops of vertex indices."""
    nbrs = {}
    for a, b in edges:
        nbrs.setdefault(a, []).append(b)
        nbrs.setdefault(b, []).append(a)
    seen, loops = set(), []
    for start in nbrs:
        if start in seen:
            continue
        loop, prev, cur = [start], None, start
        seen.add(start)
        while True:
            nxt = [n for n in nbrs[cur] if n != prev and n not in seen]
            if not nxt:
                break
            prev, cur = cur, nxt[0]
            loop.append(cur)
            seen.add(cur)
        loops.append(loop)
    return loops


def _polygon_mask(size: tuple, points: np.ndarray) -> np.ndarray:
    img = Image.new("L", size, 0)
    ImageDraw.Draw(img).polygon([tuple(p) for p in points], fill=1)
    return np.asarray(img, dtype=bool)


def _largest_loop_mask(size, face: Face, edges) -> np.ndarray:
    loops = _loops(edges)
    masks = [_polygon_mask(size, face.xy[loop]) for loop in loops if len(loop) >= 3]
    return max(masks, key=lambda m: m.sum()) if masks else np.zeros(size[::-1], bool)


def person_mask(image: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] -> bool [H, W] (mediapipe selfie segmentation, general model)."""
    import mediapipe as mp
    with mediapipe_notices_filtered(), mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        result = seg.process(np.ascontiguousarray(image[..., :3]))
    return result.segmentation_mask > 0.5


def own_person(person: np.ndarray, face_region: np.ndarray, face: Face, others: Sequence[Face]) -> np.ndarray:
    """The part of a bool person mask [H, W] that belongs to ``face``: connected components
    touching its face region, minus pixels nearer to another face (distance over face size)."""
    import cv2  # ships with mediapipe
    _, components = cv2.connectedComponents(person.astype(np.uint8), connectivity=8)
    touching = np.unique(components[face_region & person])
    own = np.isin(components, touching[touching > 0]) | face_region
    if others:
        h, w = person.shape
        yy, xx = np.mgrid[:h, :w]

        def nearness(f: Face) -> np.ndarray:
            left, top, right, bottom = f.box
            centre, size = ((left + right) / 2, (top + bottom) / 2), max(right - left, bottom - top)
            return np.hypot(xx - centre[0], yy - centre[1]) / size

        mine = nearness(face)
        for other in others:
            own &= mine <= nearness(other)
    return own


def photo_labels(image: np.ndarray, face: Face, others: Sequence[Face] = ()) -> np.ndarray:
    """uint8 RGB [H, W, 3], its face and the other faces in it -> label map [H, W] (int64 class
    ids); other people are background."""
    import mediapipe as mp
    c = mp.solutions.face_mesh_connections
    h, w = image.shape[:2]
    size = (w, h)
    face_region = _largest_loop_mask(size, face, c.FACEMESH_FACE_OVAL)
    person = own_person(person_mask(image), face_region, face, others)
    labels = np.full((h, w), L.BACKGROUND, dtype=np.int64)
    labels[person] = L.NECK_CLOTHES
    # hair: the person above the jaw, outside the face
    jaw_y = face.xy[CHIN, 1]
    rows = np.arange(h)[:, None]
    labels[person & ~face_region & (rows < jaw_y)] = L.HAIR
    labels[face_region] = L.SKIN
    for edges, cls in ((c.FACEMESH_LEFT_EYEBROW, L.BROWS), (c.FACEMESH_RIGHT_EYEBROW, L.BROWS),
                       (c.FACEMESH_LEFT_EYE, L.EYES), (c.FACEMESH_RIGHT_EYE, L.EYES), (c.FACEMESH_LIPS, L.MOUTH)):
        labels[_largest_loop_mask(size, face, edges)] = cls
    return labels


def crop_labels(labels: np.ndarray, alignment: Alignment) -> np.ndarray:
    """A photo's label map [H, W] -> the same labels in the aligned crop [size, size] (nearest
    neighbour; outside the photo is background)."""
    img = Image.fromarray(labels.astype(np.uint8))
    quad = tuple((alignment.quad + 0.5).flatten())
    out = img.transform((alignment.size, alignment.size), Image.QUAD, quad, Image.NEAREST, fillcolor=L.BACKGROUND)
    return np.asarray(out).astype(np.int64)


def segments_in_crop(photo_rgb: np.ndarray, alignment: Alignment, face_index: int = 0) -> np.ndarray:
    """Label map [size, size] of the ``face_index``-th largest face's person in the crop
    ``alignment`` describes; the other faces' people are background. NoFaceError when there
    is no such face."""
    from .landmarks import NoFaceError, detect_faces
    faces = detect_faces(photo_rgb)
    if not 0 <= face_index < len(faces):
        raise NoFaceError(f"face {face_index} was asked for, but {len(faces)} were found, so the photo cannot "
                          "be segmented")
    others = faces[:face_index] + faces[face_index + 1:]
    return crop_labels(photo_labels(photo_rgb, faces[face_index], others), alignment)
