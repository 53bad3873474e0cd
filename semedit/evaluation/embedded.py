"""Measures of an embedded-domain generator that need no pairing with the renderer.

- **Realism**: Frechet distance between generator samples and renders in a frozen feature space,
  beside the floor (renders against other renders).
- **Editability**: how linearly the attributes the regressor reads off G(w) follow from w
  (held-out R^2 of a ridge regression); the same for measures of the segmenter's label map (a
  second reader); and how widely the regressor's readings spread on samples against renders.
- **Invertibility**: W+ optimisation onto held-out renders, scored against their exact pixels
  and label maps (PSNR; IoU of the segmenter's map of the reconstruction per class), beside the
  segmenter's IoU on the targets themselves (the measure's ceiling).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np
import torch

from ..inversion.suite import Context, Knobs
from ..metrics import psnr
from ..networks.stylegan2 import StyleGAN2Generator
from ..synth.ground_truth import predict_portraits
from ..segmentation import NUM_CLASSES
from ..synth.params import ACCESSORIES, params_from_latent
from ..synth.render import Rendering, render
from ..training.data import rendered_batch
from .realism import embed_all, frechet_distance

EDIT_ATTRIBUTES = ("smile", "age", "hair_length", "yaw")


def render_batches(n: int, seed: int, size: int = 64, batch: int = 250):
    """n renders in batches, from their own random stream."""
    g = torch.Generator().manual_seed(seed)
    for i in range(0, n, batch):
        yield rendered_batch(min(batch, n - i), size, g).image


@torch.no_grad()
def sample_batches(G: StyleGAN2Generator, n: int, seed: int, batch: int = 250):
    """n untruncated samples of G in batches (on the CPU)."""
    g = torch.Generator().manual_seed(seed)
    dev = G.w_avg.device
    for i in range(0, n, batch):
        z = torch.randn(min(batch, n - i), G.config.z_dim, generator=g).to(dev)
        yield G(z, noise_mode="const").clamp(-1, 1).cpu()


def realism(generators: Dict[str, StyleGAN2Generator], features: Callable, n: int = 5000,
            seed: int = 123) -> Dict[str, float]:
    """Frechet distance to ``n`` renders of each generator's ``n`` samples, and of ``n`` other
    renders (key "renders (floor)")."""
    reference = embed_all(render_batches(n, seed), features)
    out = {"renders (floor)": frechet_distance(embed_all(render_batches(n, seed + 1), features), reference)}
    for name, G in generators.items():
        out[name] = frechet_distance(embed_all(sample_batches(G, n, seed + 2), features), reference)
    return out


def ridge_r2(x: torch.Tensor, y: torch.Tensor, train: int, alpha: float = 1.0) -> float:
    """Held-out R^2 of a ridge regression y ~ x, fitted on the first ``train`` rows."""
    x = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], 1)
    y = y.double()
    a, b = x[:train], y[:train]
    reg = alpha * torch.eye(x.shape[1], dtype=torch.float64)
    reg[-1, -1] = 0
    coef = torch.linalg.solve(a.T @ a + reg, a.T @ b)
    pred, truth = x[train:] @ coef, y[train:]
    return float(1 - (pred - truth).square().sum() / (truth - truth.mean()).square().sum().clamp(min=1e-12))


@torch.no_grad()
def editability(G: StyleGAN2Generator, regressor, n: int = 2000, seed: int = 321, batch: int = 250) -> Dict[str, float]:
    """Held-out R^2 (last quarter of n) of each of EDIT_ATTRIBUTES, as the regressor reads it off
    G(w), linearly predicted from w."""
    g = torch.Generator().manual_seed(seed)
    dev = G.w_avg.device
    ws, atts = [], {k: [] for k in EDIT_ATTRIBUTES}
    for i in range(0, n, batch):
        w = G.mapping(torch.randn(min(batch, n - i), G.config.z_dim, generator=g).to(dev))
        p = predict_portraits(regressor, G.synthesis(G.broadcast(w), noise_mode="const").clamp(-1, 1))
        a = {**p.attributes(), **p.pose()}
        ws.append(w.cpu())
        for k in EDIT_ATTRIBUTES:
            atts[k].append(a[k])
    w = torch.cat(ws)
    return {k: ridge_r2(w, torch.cat(v), train=n * 3 // 4) for k, v in atts.items()}


#: what ``segment_editability`` measures in the segmenter's label map of a sample
SEGMENT_MEASURES = ("hair area", "long hair area", "beard area", "glasses area", "mouth area", "eyes area",
                    "face offset")


def segment_measures(labels: torch.Tensor) -> Dict[str, torch.Tensor]:
    """labels [N, H, W] (segment ids) -> each of SEGMENT_MEASURES [N]: the share of the image each
    class covers, the long hair area (the share of the image that is hair in its lowest 3/8, below
    the chin of a frontal face: how far hair reaches down), and the face offset (the skin's mean
    column minus that of skin and hair together, in pixels, which follows the head's turn)."""
    from ..segmentation import BEARD, EYES, GLASSES, HAIR, MOUTH, SKIN
    columns = torch.arange(labels.shape[-1], dtype=torch.float32, device=labels.device)
    skin, head = (labels == SKIN).float(), ((labels == SKIN) | (labels == HAIR)).float()

    def mean_column(mask: torch.Tensor) -> torch.Tensor:
        return (mask * columns).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1)

    out = {f"{name} area": (labels == cls).float().mean((1, 2))
           for name, cls in (("hair", HAIR), ("beard", BEARD), ("glasses", GLASSES), ("mouth", MOUTH), ("eyes", EYES))}
    low = labels[:, labels.shape[1] * 5 // 8:]
    out["long hair area"] = (low == HAIR).float().sum((1, 2)) / labels[0].numel()
    out["face offset"] = mean_column(skin) - mean_column(head)
    return out


@torch.no_grad()
def segment_editability(G: StyleGAN2Generator, segmenter, n: int = 2000, seed: int = 321,
                        batch: int = 250) -> Dict[str, float]:
    """Held-out R^2 (last quarter of n) of each of SEGMENT_MEASURES of the segmenter's map of G(w),
    linearly predicted from w: editability read by a second model, trained apart from the
    regressor (a generator trained to make the regressor's readings linear could fool that one)."""
    g = torch.Generator().manual_seed(seed)
    dev = G.w_avg.device
    ws, measures = [], {k: [] for k in SEGMENT_MEASURES}
    for i in range(0, n, batch):
        w = G.mapping(torch.randn(min(batch, n - i), G.config.z_dim, generator=g).to(dev))
        labels = segmenter.predict(G.synthesis(G.broadcast(w), noise_mode="const").clamp(-1, 1))
        ws.append(w.cpu())
        for k, v in segment_measures(labels).items():
            measures[k].append(v.cpu())
    w = torch.cat(ws)
    return {k: ridge_r2(w, torch.cat(v), train=n * 3 // 4) for k, v in measures.items()}


@torch.no_grad()
def reading_spread(G: StyleGAN2Generator, regressor, fields, n: int = 2000, seed: int = 321,
                   batch: int = 250) -> Dict[str, tuple]:
    """Per regressor field: (std of its readings over n samples of G / over n renders, (mean over
    samples - mean over renders) / std over renders). 1 and 0 for a generator that draws the
    domain's spread of the attribute; a small ratio for one that draws it rarely."""
    from ..networks.regressor import field_reader
    dev, reader = G.w_avg.device, field_reader(regressor, fields)
    read = lambda batches: torch.cat([reader(b.to(dev)).cpu() for b in batches])  # noqa: E731
    renders, samples = read(render_batches(n, seed, batch=batch)), read(sample_batches(G, n, seed + 1, batch))
    ref_std = renders.std(0).clamp(min=1e-8)
    return {f: (float(samples[:, i].std() / ref_std[i]), float((samples[:, i].mean() - renders[:, i].mean()) / ref_std[i]))
            for i, f in enumerate(fields)}


def held_out_targets(n: int, seed: int, size: int = 64, accessory: Optional[str] = None) -> Rendering:
    """n held-out renders (all wearing ``accessory`` when given)."""
    p = params_from_latent(torch.randn(n, 64, generator=torch.Generator().manual_seed(seed)))
    if accessory:
        p = p.with_accessory(accessory)
    return render(p, size)


@dataclass(frozen=True, eq=False)  # it holds arrays
class InversionScores:
    psnr: float          # mean over targets, dB
    iou: np.ndarray      # [NUM_CLASSES] over all targets (nan: class absent)
    n: int
    reconstructions: torch.Tensor  # [n, 3, R, R] in [-1, 1]
    segments: torch.Tensor         # [n, R, R]: the segmenter's maps of them


def invertibility(registry, model: str, targets: Rendering, ctx: Context, segmenter, steps: int = 300,
                  log: Callable[[str], None] = lambda s: None) -> InversionScores:
    """W+ optimisation with the app's default loss (``ctx``) onto every target, through the
    pipeline; scored against the exact pixels and labels."""
    from .. import pipeline
    from ..synth.evaluate import class_iou
    from ..targets import Target
    psnrs, preds, images = [], [], []
    for i in range(len(targets.image)):
        (o,) = pipeline.invert(registry, model, Target.from_image(targets.image[i:i + 1]), ["w+"], Knobs(steps=steps),
                               ctx=ctx)
        img = o.result.image.clamp(-1, 1).cpu()
        images.append(img)
        psnrs.append(psnr(img, targets.image[i:i + 1]))
        preds.append(segmenter.predict(img.to(ctx.device)).cpu())
        log(f"target {i + 1}/{len(targets.image)}: PSNR {psnrs[-1]:.2f} dB")
    segments = torch.cat(preds)
    return InversionScores(float(np.mean(psnrs)), class_iou(segments, targets.labels, NUM_CLASSES), len(psnrs),
                           torch.cat(images), segments)


@torch.no_grad()
def segmenter_on_targets(targets: Rendering, segmenter) -> np.ndarray:
    """[NUM_CLASSES] IoU of the segmenter's maps of the targets themselves against their exact label
    maps: the ceiling of ``invertibility``'s IoU, what a perfect reconstruction would score."""
    from ..synth.evaluate import class_iou
    device = next(segmenter.parameters()).device
    return class_iou(segmenter.predict(targets.image.to(device)).cpu(), targets.labels, NUM_CLASSES)


OOD_ACCESSORIES = ACCESSORIES[1:]
