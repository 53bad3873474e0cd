"""Target: the image a generator is asked to reproduce, with where it came from.

Every tab and script that inverts, edits or transfers works on a Target, so a result can always
be pasted back into the photo it came from and scored against ground truth when there is one.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

import torch
from PIL import Image

from .faces.alignment import Alignment, centre_alignment
from .imaging import tensor_to_pil

#: side of the crop users see and get pasted back; methods resize it to the generator's resolution
CROP_SIZE = 256


@dataclass(frozen=True, eq=False)  # identity equality and hash: it holds tensors and images
class Target:
    """image [1, 3, S, S] in [-1, 1]: the crop the methods see (S = CROP_SIZE for files); photo: the
    upright RGB image it was cut from; alignment: the crop's place in the photo (paste-back);
    aligned: FFHQ-aligned around face ``face_index`` (else the centred square); labels: a label
    map [H, W] of the crop in ``semedit.segmentation`` classes when known (painted, a photo's
    segments, or exact for renders); truth: ground truth of a rendered target (the renderer's
    ``Portraits``), None for photographs."""

    image: torch.Tensor
    photo: Image.Image
    alignment: Alignment
    aligned: bool = False
    face_index: int = 0
    name: str = ""
    labels: Optional[torch.Tensor] = None
    truth: Optional[Any] = None

    @classmethod
    def from_image(cls, image: torch.Tensor, *, name: str = "", labels: Optional[torch.Tensor] = None,
                   truth: Any = None) -> "Target":
        """A target that is its own photo: image [1, 3, S, S] in [-1, 1] (a render, a sample), kept
        at its own resolution so scores against it are exact."""
        image = image.detach().float().cpu()
        return cls(image, tensor_to_pil(image), centre_alignment(tensor_to_pil(image), CROP_SIZE), name=name,
                   labels=labels, truth=truth)

    def with_labels(self, labels: Optional[torch.Tensor]) -> "Target":
        return replace(self, labels=labels)
