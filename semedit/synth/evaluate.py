"""Quality of the embedded generator and segmenter on held-out latents.

    python -m semedit.synth.evaluate [--n 512] [--out bench/results/embedded_quality.md]

Per-pixel error between G(z) and the renderer's image of the same z, per-class IoU between
the renderer's label map and the segmenter's map of G(z), and the segmenter's own IoU on
held-out renderer images.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..imaging import make_grid, tensor_to_uint8
from ..registry import Registry
from .ground_truth import sample_with_ground_truth
from ..segmentation import CLASS_NAMES, NUM_CLASSES, colorize

HELD_OUT_SEED = 10_000_000  # training draws its latents from other generator streams
MAIN_CLASSES = ("background", "skin", "hair")


def class_iou(pred: torch.Tensor, truth: torch.Tensor, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """IoU per class over a whole set; pred/truth [N, H, W] ids -> [K] (nan: class absent)."""
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        p, t = pred == c, truth == c
        union = (p | t).sum().item()
        if union:
            out[c] = (p & t).sum().item() / union
    return out


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB for images in [-1, 1] (peak-to-peak 2)."""
    mse = (a - b).square().mean().item()
    return 10 * np.log10(4.0 / mse)


@torch.no_grad()
def evaluate(registry: Registry, generator: str, segmenter: str, n: int, batch: int = 64) -> dict:
    G, S = registry.get(generator, "cpu"), registry.get(segmenter, "cpu")
    seeds = list(range(HELD_OUT_SEED, HELD_OUT_SEED + n))
    imgs, targets, truths, seg_g, seg_r = [], [], [], [], []
    for i in range(0, n, batch):
        s = sample_with_ground_truth(G, seeds[i:i + batch])
        imgs.append(s.images), targets.append(s.target), truths.append(s.labels)
        seg_g.append(S.predict(s.images)), seg_r.append(S.predict(s.target))
    imgs, targets, truths = torch.cat(imgs), torch.cat(targets), torch.cat(truths)
    seg_g, seg_r = torch.cat(seg_g), torch.cat(seg_r)
    return {
        "n": n,
        "mae": (imgs - targets).abs().mean().item() / 2,  # in [0, 1] units
        "psnr": psnr(imgs, targets),
        "iou_generator": class_iou(seg_g, truths),
        "iou_segmenter": class_iou(seg_r, truths),
        "grid": make_grid(list(tensor_to_uint8(targets[:8])) + list(tensor_to_uint8(imgs[:8]))
                          + list(colorize(seg_g[:8].numpy())), ncols=8),
    }


def report(r: dict, generator: str, segmenter: str, command: str) -> str:
    iou_g, iou_s = r["iou_generator"], r["iou_segmenter"]
    rows = "\n".join(f"| {name} | {iou_g[c]:.3f} | {iou_s[c]:.3f} |" for c, name in enumerate(CLASS_NAMES)
                     if not (np.isnan(iou_g[c]) and np.isnan(iou_s[c])))
    main = [CLASS_NAMES.index(c) for c in MAIN_CLASSES]
    return (f"# Embedded domain: quality on {r['n']} held-out latents\n\n`{command}`\n\n"
            f"Generator `{generator}` vs the renderer, same z (truncation 1): mean absolute error "
            f"{r['mae']:.4f} (pixel values in [0, 1]), PSNR {r['psnr']:.2f} dB.\n\n"
            f"| class | IoU: segmenter(G(z)) vs renderer labels | IoU: segmenter(renderer image) vs labels |\n"
            f"|---|---|---|\n{rows}\n\n"
            f"Main classes (background, skin, hair): generator {np.mean(iou_g[main]):.3f}, "
            f"segmenter {np.mean(iou_s[main]):.3f}. Mean over all present classes: generator "
            f"{np.nanmean(iou_g):.3f}, segmenter {np.nanmean(iou_s):.3f}.\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default="embedded-portraits-64")
    ap.add_argument("--segmenter", default="embedded-segmenter-64")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--out", type=Path, default=Path("bench/results/embedded_quality.md"))
    ap.add_argument("--grid", type=Path, default=Path("docs/embedded_vs_renderer.png"))
    a = ap.parse_args(argv)
    registry = Registry.from_settings()
    r = evaluate(registry, a.generator, a.segmenter, a.n)
    text = report(r, a.generator, a.segmenter, "python -m semedit.synth.evaluate " + " ".join(sys.argv[1:]))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    Image.fromarray(r["grid"]).resize((r["grid"].shape[1] * 2, r["grid"].shape[0] * 2), Image.NEAREST).save(a.grid)
    print(text)


if __name__ == "__main__":
    main()
