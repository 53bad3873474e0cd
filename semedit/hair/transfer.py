"""Hairstyle transfer: the hair of one face image on the person of another.

Two methods, each a pure function of a generator and two images [1, 3, H, W] in [-1, 1]:

- ``transfer_with_model``: the FG'21 network (``networks.encoders.HairTransferNet``, or its map
  alone on the generator's encoder's codes, ``encoders.EncoderHairTransfer``): one forward pass
  gives the W+ code of the result (Šubrtová, Čech, Franc, FG 2021); with an identity model,
  ``identity_steps`` then take a few gradient steps on that code towards the face image's
  identity, the hair the network drew held (a fraction of a second at 64 px).
- ``transfer_by_optimisation``: for generators with no trained transfer model: invert both
  images (W+, in one batch), turn the hair image's code to the face's pose (``turn``, e.g. along a yaw
  direction), then optimise one W+ code, starting from the face's, against the face image
  outside every hair region and against the turned hair image inside its hair region, with an
  identity term against the face image.

``alpha_blend`` puts the result's hair region (the new hair and where the old hair was) into
the face image and keeps its face pixels, which keeps identity on real photographs, where the
paper found the network's identity weakest. Label maps are ``semedit.segmentation`` classes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F

from .. import segmentation as L
from ..inversion.common import LoopSettings, ProgressFn, Stopwatch, fit_codes, prepare_target, space_statistics
from ..inversion.optimization import OptimizationConfig, invert_optimization
from ..latents import Latent, synthesize
from ..losses import PerceptualModel, l2
from ..networks.stylegan2 import StyleGAN2Generator

#: images [N, 3, R, R] in [-1, 1] -> label maps [N, R, R] (a segmenter's ``predict``)
Segment = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True, eq=False)  # identity equality and hash: it holds tensors
class HairResult:
    """method: display name; image [1, 3, R, R] in [-1, 1]; latent: its W+ code (None for a
    blend); start: the face's own code (hair amount 0, for interpolation); hair_source [1, 3,
    R, R]: the hair image as the method used it (turned to the face's pose by optimisation);
    face_region / hair_region [R, R] in [0, 1]: where the face image and the hair image were
    asked for (optimisation, blend) or where hair ended up (model); seconds, losses. CPU tensors."""

    method: str
    image: torch.Tensor
    latent: Optional[Latent]
    start: Optional[Latent]
    hair_source: torch.Tensor
    face_region: Optional[torch.Tensor]
    hair_region: Optional[torch.Tensor]
    seconds: float
    losses: Tuple[float, ...] = ()


def hair_mask(labels: torch.Tensor) -> torch.Tensor:
    """Label map [H, W] -> hair [H, W] float in {0, 1}."""
    return (labels == L.HAIR).float()


def _resized(mask: torch.Tensor, size: int) -> torch.Tensor:
    """A mask [H, W] -> [size, size] (area or bilinear)."""
    m = mask.float()[None, None]
    if m.shape[-1] != size:
        m = F.interpolate(m, size=(size, size), mode="area" if m.shape[-1] > size else "bilinear",
                          align_corners=None if m.shape[-1] > size else False)
    return m[0, 0].clamp(0, 1)


@dataclass(frozen=True)
class IdentitySteps:
    """``steps`` Adam steps of ``lr`` on a transfer's W+ code against the identity model's distance
    to the face image plus ``hair_weight`` x the mean L1 change inside the hair the code drew at first."""

    steps: int = 8
    lr: float = 0.01
    hair_weight: float = 1.0


def identity_steps(G: StyleGAN2Generator, codes: torch.Tensor, face: torch.Tensor, identity: Callable,
                   segment: Optional[Segment] = None, cfg: IdentitySteps = IdentitySteps(),
                   face_labels: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Transfers' codes [N, L, C] moved towards the person of ``face`` [N, 3, R, R] in [-1, 1]:
    ``identity(x, y)`` -> distances [N], differentiable in x; the hair ``segment`` finds in the
    codes' first images is held (none without a segmenter). With the face images' label maps
    ``face_labels`` [N, H, W], identity is read on each image as ``alpha_blend`` will show it: inside
    ``blend_mask`` (the face's old hair and the held hair), the face image elsewhere; the steps then
    spend themselves on the pixels a blend keeps. Returns the codes [N, L, C], detached. Each code's
    steps depend on its own image only (Adam is per coordinate), so batching changes nothing."""
    with torch.no_grad():
        start = synthesize(G, Latent("w+", codes)).clamp(-1, 1)
        res = start.shape[-1]
        held = torch.zeros_like(start[:, :1]) if segment is None else torch.stack(
            [_resized(hair_mask(labels), res) for labels in segment(start)])[:, None].to(start)
        shown = None  # [N, 1, R, R]: where a blend keeps the code's pixels
        if face_labels is not None:
            shown = torch.stack([blend_mask(labels, hair[0], res)
                                 for labels, hair in zip(face_labels.cpu(), held.cpu())])[:, None].to(start)
    area = held.sum((1, 2, 3)).clamp(min=1) * start.shape[1]
    w = codes.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=cfg.lr)
    with torch.enable_grad():
        for _ in range(cfg.steps):
            x = synthesize(G, Latent("w+", w)).clamp(-1, 1)
            seen = x if shown is None else _composite(x, face, shown)
            loss = identity(seen, face) + cfg.hair_weight * ((x - start).abs() * held).sum((1, 2, 3)) / area
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
    return w.detach()


@torch.no_grad()
def transfer_with_model(G: StyleGAN2Generator, net: torch.nn.Module, face: torch.Tensor, hair: torch.Tensor, *,
                        device: torch.device, segment: Optional[Segment] = None, identity: Optional[Callable] = None,
                        steps: IdentitySteps = IdentitySteps(),
                        face_labels: Optional[torch.Tensor] = None) -> HairResult:
    """The FG'21 network (a HairTransferNet, or an EncoderHairTransfer: a mixer on the generator's
    encoder): W+ = net(face, hair), image = G(W+). ``start`` is net(face, face), the face with its
    own hair; ``segment`` (optional) marks where hair ended up. With ``identity`` ((x, y) ->
    distances [N], differentiable), ``identity_steps`` refine the code, holding the hair ``segment``
    found in the network's image; given the face image's label map ``face_labels`` [H, W] (for a
    result that will be alpha-blended), they read identity on the blend."""
    clock = Stopwatch()
    net = net.to(device).eval()
    f, h = face.to(device, torch.float32), hair.to(device, torch.float32)
    codes = net(torch.cat([f, f]), torch.cat([h, f]))  # [2, L, C]: the transfer, the face's own hair
    images = synthesize(G, Latent("w+", codes)).clamp(-1, 1)
    image, method = images[:1], "FG'21 network"
    if identity is not None:
        face_image = prepare_target(face.float(), G.config.resolution, device)
        labels = None if face_labels is None else face_labels[None]
        codes = torch.cat([identity_steps(G, codes[:1], face_image, identity, segment, steps, labels), codes[1:]])
        image, method = synthesize(G, Latent("w+", codes[:1])).clamp(-1, 1), "FG'21 network + identity steps"
    region = hair_mask(segment(image)[0]).cpu() if segment else None
    res = G.config.resolution
    return HairResult(method, image.cpu(), Latent("w+", codes[:1].cpu()), Latent("w+", codes[1:].cpu()),
                      prepare_target(hair.float(), res, torch.device("cpu")), None, region, clock.seconds)


@dataclass(frozen=True)
class HairOptimisation:
    """Steps of the two inversions and of the transfer; the weights of the face-region,
    hair-region (LPIPS + ``pixel_weight`` x MSE each) and identity terms."""

    invert_steps: int = 150
    steps: int = 200
    lr: float = 0.05
    face_weight: float = 1.0
    hair_weight: float = 1.0
    pixel_weight: float = 1.0
    identity_weight: float = 0.5
    seed: int = 0


def transfer_by_optimisation(G: StyleGAN2Generator, face: torch.Tensor, hair: torch.Tensor, *,
                             face_labels: torch.Tensor, hair_labels: torch.Tensor, perceptual: PerceptualModel,
                             device: torch.device, cfg: HairOptimisation = HairOptimisation(),
                             identity=None, turn: Optional[Callable[[Latent], Latent]] = None,
                             segment: Optional[Segment] = None,
                             progress: Optional[ProgressFn] = None) -> HairResult:
    """face, hair [1, 3, H, W] in [-1, 1] with label maps [H', W'] -> HairResult. ``turn`` moves
    the hair image's W+ code to the face's pose; its image is segmented again by ``segment``
    when given, else the hair labels are kept."""
    clock = Stopwatch()
    res = G.config.resolution
    total = cfg.invert_steps + cfg.steps
    inv = OptimizationConfig(space="w+", steps=cfg.invert_steps, seed=cfg.seed)

    def stage(offset):
        return None if progress is None else (lambda s, t, loss: progress(offset + s, total, loss))
    f = prepare_target(face, res, device)
    h = prepare_target(hair, res, device)
    both = invert_optimization(G, torch.cat([f, h]), inv, perceptual=perceptual, device=device,
                               progress=stage(0)).latent  # the two inversions in one batch
    face_code, hair_code = Latent("w+", both.value[:1]), Latent("w+", both.value[1:])
    hair_region = _resized(hair_mask(hair_labels), res).to(device)
    source = h
    if turn is not None:
        hair_code = turn(hair_code)
        with torch.no_grad():
            source = synthesize(G, Latent("w+", hair_code.value.to(device))).clamp(-1, 1)
        if segment is not None:
            hair_region = hair_mask(segment(source)[0]).to(device)
    old_hair = _resized(hair_mask(face_labels), res).to(device)
    face_region = (1 - old_hair) * (1 - hair_region)
    fm, hm = face_region[None, None], hair_region[None, None]
    regions = torch.cat([fm, hm])  # [2, 1, R, R]: one perceptual pass scores both regions
    to_regions = perceptual.to(device).against(torch.cat([f, source]) * regions)
    weights = torch.tensor([cfg.face_weight, cfg.hair_weight], device=device)

    def objective(x: torch.Tensor) -> torch.Tensor:
        d = to_regions(x * regions) + cfg.pixel_weight * l2(x.expand(2, -1, -1, -1), torch.cat([f, source]), regions)
        return (weights * d).sum()

    settings = LoopSettings(steps=cfg.steps, lr=cfg.lr, rampup=0.05, rampdown=0.25,
                            identity_weight=cfg.identity_weight if identity is not None else 0.0, seed=cfg.seed)
    codes, _, _, losses = fit_codes(G, f, Latent("w+", face_code.value.to(device)), settings, perceptual=perceptual,
                                    stats=space_statistics(G, "w+"), progress=stage(cfg.invert_steps),
                                    identity=None if identity is None else identity.to(device),
                                    objective=objective)
    with torch.no_grad():
        image = synthesize(G, Latent("w+", codes)).clamp(-1, 1)
    return HairResult("optimisation", image.cpu(), Latent("w+", codes.cpu()), face_code.detach(), source.cpu(),
                      face_region.cpu(), hair_region.cpu(), clock.seconds, tuple(losses))


def blend_mask(face_labels: torch.Tensor, result_hair: torch.Tensor, size: int, feather: float = 1.5) -> torch.Tensor:
    """Where a blend takes the transfer's pixels: the result's hair and the face image's old hair,
    feathered by ``feather`` px (at ``size``): [size, size] in [0, 1]."""
    m = torch.maximum(_resized(hair_mask(face_labels), size), _resized(result_hair, size))
    k = max(1, int(round(2 * feather)))
    r = torch.arange(-k, k + 1, dtype=torch.float32)
    g = torch.exp(-r ** 2 / (2 * feather ** 2))
    g = g / g.sum()
    x = F.pad(m[None, None], (k, k, k, k), mode="replicate")
    x = F.conv2d(F.conv2d(x, g[None, None, None]), g[None, None, :, None])
    return torch.maximum(x[0, 0], m).clamp(0, 1)  # feather outwards only: all the new hair stays


def alpha_blend(result: HairResult, face: torch.Tensor, face_labels: torch.Tensor,
                result_labels: Optional[torch.Tensor] = None) -> HairResult:
    """The result inside ``blend_mask`` (its hair and the old hair), the face image elsewhere.
    ``result_labels``: the result's label map; without one (no segmenter), the hair region the
    transfer put the hair image's hair into (``result.hair_region``) stands for the result's hair."""
    res = result.image.shape[-1]
    f = prepare_target(face, res, torch.device("cpu"))
    if result_labels is not None:
        new_hair = hair_mask(result_labels)
    elif result.hair_region is not None:
        new_hair = result.hair_region.float().cpu()
    else:
        raise ValueError("alpha_blend needs the result's labels or its hair region")
    image, m = blend_into_face(result.image, f, face_labels, new_hair)
    return replace(result, method=result.method + " + alpha blend", image=image, latent=None,
                   face_region=1 - m, hair_region=m)


def blend_into_face(image: torch.Tensor, face: torch.Tensor, face_labels: torch.Tensor,
                    new_hair: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(blended [1, 3, R, R], mask [R, R]): ``image`` inside ``blend_mask`` (the face image's
    hair in ``face_labels`` and ``new_hair`` [R, R] in [0, 1]), the face image [1, 3, R, R] (same
    size, as ``prepare_target`` gives it) elsewhere."""
    m = blend_mask(face_labels, new_hair, image.shape[-1]).to(image)
    return _composite(image, face, m), m


def _composite(image: torch.Tensor, face: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``image`` where ``mask`` ([R, R], or [N, 1, R, R] for a batch) is 1, ``face`` (same shape as
    ``image``) where it is 0."""
    mask = mask.to(image)
    return image * mask + face.to(image) * (1 - mask)


def reblend(image: torch.Tensor, blended: HairResult, face: torch.Tensor) -> torch.Tensor:
    """Another image of the transfer behind ``blended`` (an ``alpha_blend`` result), e.g. an
    interpolation frame [1, 3, R, R], put through the same blend: inside its mask, the face image
    elsewhere, so the frame at hair amount 1 is the blended result itself."""
    return _composite(image, prepare_target(face, image.shape[-1], torch.device("cpu")), blended.hair_region)


def interpolate(G: StyleGAN2Generator, result: HairResult, amount: float) -> torch.Tensor:
    """The image [1, 3, R, R] (CPU) with ``amount`` of the transfer: lerp from the face's own
    code (0) to the result's (1). Blends need their code: pass the unblended result."""
    if result.latent is None or result.start is None:
        raise ValueError("interpolation needs the transfer's code and the face's own")
    device = G.w_avg.device
    code = torch.lerp(result.start.value.to(device), result.latent.value.to(device), float(amount))
    with torch.no_grad():
        return synthesize(G, Latent("w+", code)).clamp(-1, 1).cpu()


__all__ = ["HairResult", "HairOptimisation", "IdentitySteps", "identity_steps", "transfer_with_model",
           "transfer_by_optimisation", "alpha_blend", "blend_mask", "blend_into_face", "reblend", "interpolate",
           "hair_mask"]
