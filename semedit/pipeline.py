"""The one sequence every front end runs: source -> Target -> method -> result -> scores -> paste-back.

The inversion tab, ``python -m semedit invert`` and the benchmarks call these functions, so they
run the same code; each result says which generator, method and target it came from, so the
editing tabs can take it over without running it again.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from .errors import SemeditError
from .faces.alignment import paste_back, prepare_target
from .imaging import load_image, pil_to_tensor, resize, tensor_to_pil
from .inversion.common import InversionResult, ProgressFn, with_weight_delta
from .latents import Latent
from .encoders import invert_encoder, invert_hyperstyle
from .inversion.suite import (DISPLAY_NAMES, METHODS, Context, Knobs, aligns_faces, context_for, run_method,
                              score_result)
from .metrics import Scores, psnr
from .segmentation import HAIR
from .targets import CROP_SIZE, Target


def load_target(registry, model: str, source, *, alignment: str = "auto", face_index: int = 0) -> Target:
    """A Target for generator ``model`` from an image file (path or bytes-like source): FFHQ-aligned
    around its ``face_index``-th largest face (``alignment`` "align", or "auto" for face
    generators and for photos that are not square, see ``aligns_faces``) or its centred square.
    Raises ImageInputError or NoFaceError (SemeditErrors)."""
    photo = load_image(source, registry.settings.image_limits)
    aligned = aligns_faces(registry, model, alignment, photo.size)
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
    """Run ``methods`` (keys of ``inversion.suite.METHODS``, or ``encoder:NAME`` for a catalogued
    encoder) one after another on ``target``, yielding each outcome as soon as it is done.
    ChunkyGAN starts from the target's labels, else an aligned photo's own segments, else the
    generator's segmenter (segments painted in the UI arrive as ``target.labels``). ``ctx`` (from
    ``context_for``) saves building it again; with its ``masks`` set, ChunkyGAN starts from them."""
    G = registry.get(model)
    ctx = ctx or context_for(registry, model, perceptual)
    if knobs.identity_weight and ctx.identity is None:
        raise SemeditError("the identity loss needs an identity model, and this generator's domain has none")
    if ctx.labels is None and "chunky" in methods:
        labels = target.labels if target.labels is not None else photo_segments(target)
        ctx = replace(ctx, labels=labels)
    for key in methods:
        progress = progress_for(key) if progress_for else None
        if key.startswith(ENCODER_PREFIX):
            r = _invert_with_encoder(registry, key[len(ENCODER_PREFIX):], G, target, knobs.encoder_iterations,
                                     progress)
        else:
            r = run_method(key, G, target.image, knobs, ctx, progress)
        r = replace(r, key=key, generator=model, target=target)
        yield Outcome(r, score_result(r, target.image, ctx), paste(target, r.image))


ENCODER_PREFIX = "encoder:"


def _invert_with_encoder(registry, name: str, G, target: Target, iterations: Optional[int],
                         progress) -> InversionResult:
    """A catalogued encoder's inversion (ReStyle and HyperStyle: ``iterations`` refinement steps,
    None for the model's own); HyperStyle starts from the W encoder its catalogue entry names
    (``config.w_encoder``)."""
    from .networks.hyperstyle import HyperStyleModel
    encoder = registry.get(name, G.w_avg.device)
    if isinstance(encoder, HyperStyleModel):
        initial = registry.catalogue.get(name).config.get("w_encoder")
        if not initial:
            raise SemeditError(f"{name}: a HyperStyle model needs the W encoder it starts from "
                               "(config 'w_encoder' in its catalogue entry)")
        return invert_hyperstyle(G, target.image, encoder, registry.get(initial, G.w_avg.device),
                                 iterations=iterations, progress=progress)
    return invert_encoder(G, target.image, encoder, iterations=iterations, progress=progress)


def method_name(key: str) -> str:
    """How method ``key`` is shown: the suite's display names; encoders by their catalogue name."""
    if key.startswith(ENCODER_PREFIX):
        return f"encoder {key[len(ENCODER_PREFIX):]}"
    return DISPLAY_NAMES.get(key, key)


def method_family(registry, key: str) -> str:
    """Which of the seed's three families method ``key`` belongs to: "optimisation", "encoder" or
    "generator modification" (PTI; encoders that predict weight offsets, HyperStyle)."""
    if key == "pti":
        return "generator modification"
    if key.startswith(ENCODER_PREFIX):
        spec = registry.catalogue.get(key[len(ENCODER_PREFIX):])
        return "generator modification" if spec.config.get("w_encoder") else "encoder"
    return "optimisation"


def method_keys(registry, model: str) -> List[str]:
    """Every inversion method for generator ``model``: the suite's, then each catalogued encoder
    made for it (its catalogue config names the generator) that is on this machine or on the Hub."""
    encoders = [f"{ENCODER_PREFIX}{n}" for n in registry.catalogue.names("encoder")
                if registry.catalogue.get(n).config.get("generator") == model and registry.obtainable(n)]
    return list(METHODS) + encoders


def save_latents(results: Iterable[InversionResult], path: Path) -> Path:
    """The latents of ``results`` as one torch file keyed by method key, loadable with
    ``torch.load(weights_only=True)``: each entry's method, generator, space and latent, with
    ChunkyGAN's masks and, for PTI and HyperStyle, ``weight_delta`` (the tuned weights minus the
    generator's, by parameter name), without which their latent does not give their image."""
    payload = {}
    for r in results:
        entry = {"method": r.method, "generator": r.generator, "space": r.latent.space, "latent": r.latent.value}
        if r.chunk_masks is not None:
            entry["masks"] = r.chunk_masks
        if r.weight_delta:
            entry["weight_delta"] = {k: v.cpu() for k, v in r.weight_delta.items()}
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


#: how an image becomes a code to edit: W+ optimisation (``steps`` of the app's default loss) or
#: one pass of the generator's encoder (``encoder_of``: e4e first, the encoder made for editing)
SOURCE_INVERSIONS = ("w+", "encoder")


def source_from_target(registry, model: str, target: Target, *, steps: int = 300, inversion: str = "w+",
                       progress: Optional[ProgressFn] = None) -> EditSource:
    """Invert ``target`` by ``inversion`` (one of SOURCE_INVERSIONS) and edit from there.
    SemeditError when ``inversion`` is "encoder" and the catalogue has no encoder for ``model``."""
    if inversion not in SOURCE_INVERSIONS:
        raise SemeditError(f"unknown inversion {inversion!r}; choose one of {', '.join(SOURCE_INVERSIONS)}")
    method = "w+"
    if inversion == "encoder":
        encoder = encoder_of(registry, model)
        if encoder is None:
            raise SemeditError(f"{model} has no encoder in the catalogue: invert the image with W+ optimisation")
        method = ENCODER_PREFIX + encoder
    (o,) = invert(registry, model, target, [method], Knobs(steps=int(steps)),
                  progress_for=(lambda key: progress) if progress else None)
    return source_from_result(o.result)


def source_generator(registry, source: EditSource):
    """The generator a source's codes belong to: the shared one, or PTI's private tuned copy."""
    return with_weight_delta(registry.get(source.generator), source.weight_delta)


def usable_directions(source: EditSource, directions):
    """The directions that can move this source: Z directions only for samples (they have a z)."""
    return [d for d in directions if d.space != "z" or source.z is not None]


def edited_latent(registry, source: EditSource, edits, generator=None) -> Latent:
    """The source's code moved by ``edits`` [(Direction, units)]; Z directions re-map its z.
    ``generator``: ``source_generator(registry, source)`` when the caller has it (a PTI source's
    tuned generator is a copy: make it once per event, not once per call)."""
    from .editing.directions import edit_code
    try:
        return edit_code(generator or source_generator(registry, source), source.latent, edits, z=source.z,
                         truncation=source.truncation)
    except ValueError as e:
        raise SemeditError(str(e)) from e


@torch.no_grad()
def render_source(registry, source: EditSource, latent: Optional[Latent] = None, generator=None) -> torch.Tensor:
    """The image [1, 3, R, R] in [-1, 1] (CPU) of ``latent`` (default: the source's own) with the
    source's generator, PTI's tuned weights included (``generator``: as in ``edited_latent``)."""
    from .latents import synthesize
    G = generator or source_generator(registry, source)
    lat = latent or source.latent
    return synthesize(G, Latent(lat.space, lat.value.to(G.w_avg.device))).clamp(-1, 1).cpu()


def attribute_names(registry, model: str) -> List[str]:
    """The names ``read_attributes`` gives for generator ``model``'s images, without reading any."""
    spec = registry.catalogue.get(model)
    if spec.embedded and spec.config.get("regressor"):
        from .synth.params import FIELDS, Portraits
        blank = Portraits(torch.zeros(1, len(FIELDS)), torch.zeros(1, dtype=torch.long),
                          torch.zeros(1, dtype=torch.long))
        return [k for k in {**blank.attributes(), **blank.pose()} if k not in ("hair_style",)]
    from .faces.pose import LABELS
    return list(LABELS)


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


def guided_attributes(registry, model: str) -> List[str]:
    """What a guided direction can move on generator ``model``: its regressor's fields (the
    embedded domain), else nothing."""
    spec = registry.catalogue.get(model)
    if not (spec.embedded and spec.config.get("regressor")):
        return []
    return list(registry.get(spec.config["regressor"]).config.field_names)


def guided_direction_at(registry, source: EditSource, attribute: str, samples: int = 1000, *,
                        progress: Callable[[float, str], None] = lambda f, d: None):
    """The guided direction of ``attribute`` at ``source``'s code (embedded domain): the gradient of
    the regressor's reading of it, every other reading of the regressor held to first order
    (``editing.fit.guided_direction``), one unit its standard deviation over ``samples`` samples of
    the source's generator. Raises EditingError where there is no differentiable reader."""
    from .editing.fit import guided_direction, label_samples, sample_w
    from .errors import EditingError
    from .networks.regressor import field_readings
    model = source.generator
    names = guided_attributes(registry, model)
    if not names:
        raise EditingError("guided directions need a differentiable attribute model; only the embedded domain has one")
    if attribute not in names:
        raise EditingError(f"the regressor reads {', '.join(names)}; not {attribute!r}")
    read, others = field_readings(registry.get(registry.catalogue.get(model).config["regressor"]), attribute)
    G = registry.get(model)
    progress(0.1, "sampling")
    with torch.no_grad():
        std = float(label_samples(G, sample_w(G, samples, seed=12345), lambda x: {attribute: read(x)})[attribute].std())
    progress(0.6, "following the gradient")
    d = guided_direction(source_generator(registry, source), source.latent, read, f"guided {attribute}",
                         hold=others, std=std)
    return replace(d, attribute=attribute, metrics={**d.metrics, "generator": model, "std": std, "samples": samples})


def learned_direction_for(registry, model: str, attribute: str, samples: int = 1000, steps: int = 150, *,
                          progress: Callable[[float, str], None] = lambda f, d: None):
    """A slider for ``attribute`` of generator ``model`` made as the embedded domain's built-in
    ones are (``training.directions.fit_learned``: a W fit on ``samples`` samples, then one W+ vector
    learned from it for ``steps`` batches to move the attribute and hold the regressor's other
    readings). Raises EditingError where there is no differentiable reader."""
    from .errors import EditingError
    from .training.directions import fit_learned
    if not guided_attributes(registry, model):
        raise EditingError("learned sliders need a differentiable attribute model; only the embedded domain has one")
    regressor = registry.get(registry.catalogue.get(model).config["regressor"])
    d = fit_learned(registry.get(model), regressor, attribute, n=samples, steps=steps, progress=progress)
    return replace(d, metrics={**d.metrics, "generator": model, "samples": samples})


# ---- hairstyle transfer: two targets -> method -> result -> scores -> paste-back ----------------

HAIR_METHODS = {"model": "FG'21 network", "model+identity": "FG'21 network + identity steps",
                "model+blend": "FG'21 network + alpha blend",
                "model+identity+blend": "FG'21 network + identity steps + alpha blend",
                "optimisation": "optimisation", "optimisation+blend": "optimisation + alpha blend"}


def hair_model_for(registry, model: str) -> Optional[str]:
    """The catalogue's trained hair network for generator ``model`` that is on this machine (or
    can be downloaded), else None."""
    names = [s.name for s in registry.catalogue.models if s.kind == "hair" and s.config.get("generator") == model]
    local = [n for n in names if registry.is_local(n)]
    return (local or names or [None])[0]


def load_hair_network(registry, name: str, device=None) -> torch.nn.Module:
    """Hair model ``name`` ready to run, face, hair [N, 3, H, W] -> W+ [N, L, C]: an FG'21 network
    as it is, or a hair mixer joined with the encoder its catalogue entry names (``config.encoder``,
    default: the generator's ``encoder_of``)."""
    from .encoders import EncoderHairTransfer
    from .networks.encoders import HairCodeMixer
    net = registry.get(name, device)
    if not isinstance(net, HairCodeMixer):
        return net
    config = registry.catalogue.get(name).config
    encoder = config.get("encoder") or encoder_of(registry, config.get("generator", ""))
    if not encoder:
        raise SemeditError(f"hair model {name} mixes an encoder's codes, and its generator has no encoder")
    return EncoderHairTransfer(registry.get(encoder, device), net)


def encoder_of(registry, model: str) -> Optional[str]:
    """The catalogue's encoder for generator ``model`` that gives W+ codes of its own, by preference
    e4e, pSp, then ReStyle (single passes first; HyperStyle tunes weights), else None."""
    by_method = {spec.config.get("method"): spec.name for spec in reversed(registry.catalogue.models)
                 if spec.kind == "encoder" and spec.config.get("generator") == model
                 and spec.config.get("method") != "HyperStyle"}
    for method in ("e4e", "pSp", "ReStyle-e4e", "ReStyle-pSp", *by_method):
        if method in by_method:
            return by_method[method]
    return None


def labels_of(registry, model: str, target: Target) -> torch.Tensor:
    """The target's label map [H, W]: its own (painted, exact for renders), an aligned photo's
    segments, else the generator's segmenter at the generator's resolution. SemeditError when
    none can be had."""
    if target.labels is not None:
        return target.labels
    found = photo_segments(target)
    if found is not None:
        return found
    name = registry.catalogue.get(model).config.get("segmenter")
    if not name:
        raise SemeditError(f"{model} has no segmenter and the image is no aligned photo: no hair mask can be found")
    G = registry.get(model)
    from .inversion.common import prepare_target
    image = prepare_target(target.image, G.config.resolution, G.w_avg.device)
    return registry.get(name, G.w_avg.device).predict(image)[0].cpu()


def _segment_fn(registry, model: str):
    """images [N, 3, R, R] -> label maps [N, R, R] with the generator's segmenter, or None."""
    name = registry.catalogue.get(model).config.get("segmenter")
    if not name:
        return None
    device = registry.get(model).w_avg.device
    seg = registry.get(name, device)
    return lambda images: seg.predict(images.to(device)).cpu()


def yaw_turner(registry, model: str, yaw: float):
    """latent (W+) -> the same code moved along the generator's yaw direction until its image's
    measured yaw is ``yaw`` (the slope measured once, one unit away); None when the generator has
    no yaw direction or no yaw can be measured."""
    from .editing.library import code_direction, directions_for
    from .latents import synthesize
    d = code_direction(directions_for(registry, model), "yaw")
    if d is None or not math.isfinite(yaw):
        return None
    G = registry.get(model)

    def measured(latent: Latent) -> float:
        with torch.no_grad():
            img = synthesize(G, Latent(latent.space, latent.value.to(G.w_avg.device))).clamp(-1, 1)
        return float(read_attributes(registry, model, img)["yaw"][0])

    def turn(latent: Latent) -> Latent:
        from .editing.directions import apply_edits
        now, moved = measured(latent), measured(apply_edits(G, latent, [(d, 1.0)]))
        slope = moved - now
        if not (math.isfinite(now) and math.isfinite(slope)) or abs(slope) < 1e-4:
            return latent
        units = max(-3.0, min(3.0, (yaw - now) / slope))
        return apply_edits(G, latent, [(d, units)]).detach()
    return turn


@dataclass(frozen=True, eq=False)  # identity equality and hash: it holds tensors and images
class HairOutcome:
    """A transfer with what the tab shows: ``measures`` (yaw of face, hair and result, identity
    distance to the face image, L1 to the hair image inside its hair region, and against a
    known true image PSNR, LPIPS and hair IoU) and the result pasted into the face's photo;
    ``generator``: the catalogue name of the generator whose codes it holds."""

    result: Any  # hair.transfer.HairResult
    measures: dict
    pasted: Image.Image
    face: Target
    hair: Target
    generator: str
    plain: Any = None  # the unblended HairResult behind a blend (for interpolation)


def transfer_hair(registry, model: str, face: Target, hair: Target, method: str = "model", *,
                  truth: Optional[torch.Tensor] = None, cfg=None,
                  progress: Optional[ProgressFn] = None) -> HairOutcome:
    """Put ``hair``'s hair on ``face``'s person with ``method`` (a key of HAIR_METHODS) and
    measure it; ``truth`` [1, 3, H, W] is the true result when known (embedded examples)."""
    from .hair.transfer import HairOptimisation, alpha_blend, transfer_by_optimisation, transfer_with_model
    if method not in HAIR_METHODS:
        raise SemeditError(f"unknown hair method {method!r}; one of {', '.join(HAIR_METHODS)}")
    name = hair_model_for(registry, model) if method.startswith("model") else None
    if method.startswith("model") and name is None:
        raise SemeditError(f"{model} has no trained hair network: use the optimisation method")
    G = registry.get(model)
    device = G.w_avg.device
    ctx = context_for(registry, model)
    segment = _segment_fn(registry, model)
    blended = method.endswith("+blend")
    face_labels = labels_of(registry, model, face) if blended or name is None else None
    if name is not None:
        identity = None
        if method.startswith("model+identity"):
            identity = ctx.identity
            if identity is None:
                raise SemeditError(f"{model} has no identity model for the identity steps: use the network alone")
        plain = transfer_with_model(G, load_hair_network(registry, name, device), face.image, hair.image, device=device,
                                    segment=segment, identity=identity, face_labels=face_labels)  # a blend's: steps read it
    else:
        hair_labels = labels_of(registry, model, hair)
        face_yaw = float(read_attributes(registry, model, face.image.to(device))["yaw"][0])
        plain = transfer_by_optimisation(G, face.image, hair.image, face_labels=face_labels, hair_labels=hair_labels,
                                         perceptual=ctx.perceptual, device=device, cfg=cfg or HairOptimisation(),
                                         identity=ctx.identity, turn=yaw_turner(registry, model, face_yaw),
                                         segment=segment, progress=progress)
    result = plain
    if blended:
        result = alpha_blend(plain, face.image, face_labels, segment(plain.image)[0] if segment else None)
    measures = hair_measures(registry, model, result, face, hair, ctx, truth=truth, segment=segment)
    return HairOutcome(result, measures, paste(face, result.image), face, hair, model, plain)


def held_out_identity(registry, model: str):
    """The embedded generator ``model``'s held-out identity reader (``config.identity_judge``: a
    second regressor no method is trained or steered against) as an identity distance, or None."""
    from .networks.regressor import RegressorIdentity
    name = registry.catalogue.get(model).config.get("identity_judge")
    return RegressorIdentity(registry.get(name, registry.get(model).w_avg.device), "held-out reader") if name else None


@torch.no_grad()
def hair_measures(registry, model: str, result, face: Target, hair: Target, ctx, *,
                  truth: Optional[torch.Tensor] = None, segment=None) -> dict:
    """{measure: value} of a transfer (see HairOutcome); NaN where it cannot be measured."""
    from .hair.transfer import hair_mask
    from .inversion.common import prepare_target
    device = ctx.device
    res = result.image.shape[-1]
    img = result.image.to(device)
    f, h = (prepare_target(t.image, res, device) for t in (face, hair))
    yaws = read_attributes(registry, model, torch.cat([f, h, img]))["yaw"]
    out = {"yaw of the face image": float(yaws[0]), "yaw of the hair image": float(yaws[1]),
           "yaw of the result": float(yaws[2])}
    out["identity distance to the face"] = float(ctx.identity(img, f)[0]) if ctx.identity is not None else math.nan
    judge = held_out_identity(registry, model)
    if judge is not None:  # the identity steps lower the first distance; this reader they never saw
        out["identity distance to the face, held-out reader"] = float(judge.to(device)(img, f)[0])
    source = result.hair_source.to(device)
    region = hair_mask(segment(source)[0]) if segment else result.hair_region
    region = None if region is None else region.to(device)
    if region is not None and region.sum() > 0:
        out["L1 to the hair image, its hair region"] = float(((img - source).abs().mean(1)[0] * region).sum()
                                                              / region.sum())
    if truth is not None:
        t = prepare_target(truth, res, device)
        out["PSNR to the true image (dB)"] = psnr(img, t)
        out["LPIPS to the true image"] = float(ctx.scorer(img, t)[0])
        if segment is not None:
            a, b = segment(img)[0] == HAIR, segment(t)[0] == HAIR
            union = float((a | b).sum())
            out["hair IoU with the true image"] = float((a & b).sum()) / union if union else math.nan
    return out
