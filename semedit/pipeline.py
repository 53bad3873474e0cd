"""The one sequence every front end runs: source -> Target -> method -> result -> scores -> paste-back.

The inversion tab, ``python -m semedit invert`` and the benchmarks call these functions, so they
run the same code; each result says which generator, method and target it came from, so the
editing tabs can take it over without running it again.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from .errors import SemeditError
from .faces.alignment import paste_back, prepare_target
from .imaging import load_image, pil_to_tensor, resize, tensor_to_pil
from .inversion.common import InversionResult, ProgressFn, with_weight_delta
from .latents import Latent
from .inversion.suite import Context, Knobs, aligns_faces, context_for, run_method, score_result
from .metrics import Scores
from .targets import CROP_SIZE, Target


def load_target(registry, model: str, source, *, alignment: str = "auto", face_index: int = 0) -> Target:
    """A Target for generator ``model`` from an image file (path or bytes-like source): FFHQ-aligned
    around its ``face_index``-th largest face (``alignment`` "align", or "auto" for face
    generators) or its centred square. Raises ImageInputError or NoFaceError (SemeditErrors)."""
    aligned = aligns_faces(registry, model, alignment)
    photo = load_image(source)
    crop, where = prepare_target(photo, CROP_SIZE, align_face=aligned, face_index=int(face_index))
    name = Path(source).stem if isinstance(source, (str, Path)) else ""
    return Target(pil_to_tensor(crop), photo, where, aligned=aligned, face_index=int(face_index), name=name)


def photo_segments(target: Target) -> Optional[torch.Tensor]:
    """The aligned photo's own label map [CROP_SIZE, CROP_SIZE] (mediapipe; the chosen person only),
    or None when the target is not an aligned photo or nothing could be segmented."""
    if not target.aligned:
        return None
    from .faces.segments import segments_in_crop
    try:
        return torch.from_numpy(segments_in_crop(np.asarray(target.photo), target.alignment, target.face_index))
    except SemeditError:
        return None


def paste(target: Target, image: torch.Tensor) -> Image.Image:
    """image [1, 3, R, R] in [-1, 1] warped back into the target's photo at its resolution."""
    return paste_back(target.photo, tensor_to_pil(resize(image, target.alignment.size)), target.alignment)


@dataclass(frozen=True)
class Outcome:
    result: InversionResult
    scores: Scores
    pasted: Image.Image


def invert(registry, model: str, target: Target, methods: Sequence[str], knobs: Knobs, *,
           perceptual: Optional[str] = None, ctx: Optional[Context] = None,
           progress_for: Optional[Callable[[str], ProgressFn]] = None) -> Iterator[Outcome]:
    """Run ``methods`` (keys of ``inversion.suite.METHODS``) one after another on ``target``,
    yielding each outcome as soon as it is done. ChunkyGAN starts from the target's labels, else
    an aligned photo's own segments, else the generator's segmenter. ``ctx`` (from
    ``context_for``, maybe with painted masks) saves building it again."""
    G = registry.get(model)
    ctx = ctx or context_for(registry, model, perceptual)
    if knobs.identity_weight and ctx.identity is None:
        raise SemeditError("the identity loss needs an identity model, and this generator's domain has none")
    if ctx.labels is None and "chunky" in methods:
        labels = target.labels if target.labels is not None else photo_segments(target)
        ctx = replace(ctx, labels=labels)
    for key in methods:
        r = run_method(key, G, target.image, knobs, ctx, progress_for(key) if progress_for else None)
        r = replace(r, key=key, generator=model, target=target)
        yield Outcome(r, score_result(r, target.image, ctx), paste(target, r.image))


def save_latents(results: Iterable[InversionResult], path: Path) -> Path:
    """The latents (and ChunkyGAN masks) of ``results`` as one torch file keyed by method key,
    loadable with ``torch.load(weights_only=True)``."""
    payload = {}
    for r in results:
        entry = {"method": r.method, "generator": r.generator, "space": r.latent.space, "latent": r.latent.value}
        if r.chunk_masks is not None:
            entry["masks"] = r.chunk_masks
        payload[r.key or r.method] = entry
    path = Path(path)
    torch.save(payload, path)
    return path


# ---- editing: a source (sample, inversion result, inverted upload) and what an edit did ---------

@dataclass(frozen=True, eq=False)  # identity equality and hash: it holds tensors and images
class EditSource:
    """What the editing tabs start from: ``latent`` of one image for catalogue generator
    ``generator`` (W, W+ or S), PTI's ``weight_delta`` when the source was tuned, the ``target``
    it reproduces (for paste-back; None for samples), a sample's ``z`` [1, z_dim] and
    ``truncation`` (for Z directions; None otherwise) and a ``label`` for the user."""

    generator: str
    latent: Latent
    label: str
    weight_delta: Optional[dict] = None
    target: Optional[Target] = None
    z: Optional[torch.Tensor] = None
    truncation: float = 1.0


def source_from_sample(registry, model: str, seed: int, truncation: float = 0.7) -> EditSource:
    from .sampling import sample, z_from_seeds
    G = registry.get(model)
    s = sample(G, [int(seed)], truncation_psi=float(truncation))
    return EditSource(model, Latent("w+", s.ws[:1]), f"sample {seed} (psi {truncation:g})",
                      z=z_from_seeds([int(seed)], G.config.z_dim), truncation=float(truncation))


def source_from_result(result: InversionResult) -> EditSource:
    """An inversion result as an editing source (single-code methods; ChunkyGAN goes to its editor)."""
    if result.chunk_masks is not None:
        raise SemeditError("a ChunkyGAN result has one code per chunk: edit it in the segment editor tab")
    return EditSource(result.generator, result.latent, f"{result.method} of {result.target.name or 'the target'}"
                      if result.target is not None else result.method, result.weight_delta, result.target)


def source_from_target(registry, model: str, target: Target, *, steps: int = 300,
                       progress: Optional[ProgressFn] = None) -> EditSource:
    """Invert ``target`` with W+ optimisation (the app's default loss) and edit from there."""
    (o,) = invert(registry, model, target, ["w+"], Knobs(steps=int(steps)),
                  progress_for=(lambda key: progress) if progress else None)
    return source_from_result(o.result)


def source_generator(registry, source: EditSource):
    """The generator a source's codes belong to: the shared one, or PTI's private tuned copy."""
    return with_weight_delta(registry.get(source.generator), source.weight_delta)


def usable_directions(source: EditSource, directions):
    """The directions that can move this source: Z directions only for samples (they have a z)."""
    return [d for d in directions if d.space != "z" or source.z is not None]


def edited_latent(registry, source: EditSource, edits) -> Latent:
    """The source's code moved by ``edits`` [(Direction, units)]; Z directions re-map its z."""
    from .editing.directions import edit_code
    try:
        return edit_code(source_generator(registry, source), source.latent, edits, z=source.z,
                         truncation=source.truncation)
    except ValueError as e:
        raise SemeditError(str(e)) from e


@torch.no_grad()
def render_source(registry, source: EditSource, latent: Optional[Latent] = None) -> torch.Tensor:
    """The image [1, 3, R, R] in [-1, 1] (CPU) of ``latent`` (default: the source's own) with the
    source's generator, PTI's tuned weights included."""
    from .latents import synthesize
    G = source_generator(registry, source)
    lat = latent or source.latent
    return synthesize(G, Latent(lat.space, lat.value.to(G.w_avg.device))).clamp(-1, 1).cpu()


@torch.no_grad()
def read_attributes(registry, model: str, images: torch.Tensor) -> dict:
    """What can be measured on images [N, 3, R, R] of generator ``model``: {name: [N]}. The
    embedded domain: the regressor's attributes and pose; face generators: mediapipe's yaw,
    pitch, roll and smile (NaN where no face is found)."""
    spec = registry.catalogue.get(model)
    if spec.embedded and spec.config.get("regressor"):
        from .synth.ground_truth import predict_portraits
        p = predict_portraits(registry.get(spec.config["regressor"]), images)
        att = {**p.attributes(), **p.pose()}
        return {k: v.float() for k, v in att.items() if k not in ("hair_style",)}
    from .faces.pose import LABELS, label_images
    values = torch.from_numpy(label_images(images)).float()
    return {name: values[:, i] for i, name in enumerate(LABELS)}
