"""What an encoder keeps of the inputs users give: renders beside the generator's own samples.

    python bench/encoder_fidelity.py [--model embedded-portraits-64-gan-map8] [--encoders NAME_OR_FILE ...]
        [--renders 200] [--samples 64] [--out bench/results/encoder_fidelity.md]

Each encoder (catalogue names or safetensors files; default: the catalogue's encoders of
``--model``) inverts held-out renders, which stand for real photos (a generator not paired with
the renderer never drew them), and held-out samples of the generator. Scores: PSNR and LPIPS (the
judge's, not the training loss's model) to the input, the segmenter's IoU of skin and hair
against the render's exact labels, the identity distance to the input (the parameter regressor's,
same person below its threshold), and how far each attribute the regressor reads moves from its
reading of the input, in standard deviations of that attribute over the renders (a reconstruction
that turns a face to the front or loses its beard shows here).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semedit import pipeline  # noqa: E402
from semedit.checkpoints import load_module  # noqa: E402
from semedit.editing.fit import sample_w  # noqa: E402
from semedit.encoders import encode  # noqa: E402
from semedit.evaluation.embedded import held_out_targets  # noqa: E402
from semedit.evaluation.reports import publish  # noqa: E402
from semedit.inversion.suite import context_for  # noqa: E402
from semedit.latents import Latent, synthesize  # noqa: E402
from semedit.registry import Registry  # noqa: E402
from semedit import segmentation as L  # noqa: E402

ATTRIBUTES = ("yaw", "smile", "age", "hair_length", "hair_color", "skin_tone", "beard", "glasses")
HELD_OUT_SEED = 555_000


def load_encoder(registry: Registry, name: str):
    """A catalogue encoder by name, or an encoder safetensors file."""
    return load_module(Path(name), "style-encoder").eval() if name.endswith(".safetensors") else registry.get(name)


def psnr_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR in dB [N] of images [N, 3, R, R] in [-1, 1] (peak-to-peak 2)."""
    return 10 * torch.log10(4.0 / (x - y).square().mean((1, 2, 3)).clamp(min=1e-10))


def iou(pred: torch.Tensor, truth: torch.Tensor, cls: int) -> float:
    """IoU of class ``cls`` over all images of label maps [N, R, R]."""
    a, b = pred == cls, truth == cls
    return float((a & b).sum() / (a | b).sum().clamp(min=1))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded-portraits-64-gan-map8", help="a generator of the embedded domain")
    ap.add_argument("--encoders", nargs="+", help="catalogue names or safetensors files (default: the catalogue's)")
    ap.add_argument("--renders", type=int, default=200)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/encoder_fidelity.md")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    t0 = time.time()
    registry = Registry.from_settings()
    G = registry.get(a.model, "cpu")
    spec = registry.catalogue.get(a.model)
    names = a.encoders or [s.name for s in registry.catalogue.models
                           if s.kind == "encoder" and s.config.get("generator") == a.model]
    ctx = context_for(registry, a.model)
    seg = registry.get(spec.config["segmenter"], "cpu")
    renders = held_out_targets(a.renders, HELD_OUT_SEED, G.config.resolution)
    with torch.no_grad():
        samples = synthesize(G, Latent("w", sample_w(G, a.samples, seed=HELD_OUT_SEED))).clamp(-1, 1)
    truth = pipeline.read_attributes(registry, a.model, renders.image)
    spread = {k: float(truth[k].std()) for k in ATTRIBUTES}

    @torch.no_grad()
    def reconstruct(encoder, images):
        return torch.cat([encode(encoder, G, x)[1].clamp(-1, 1) for x in images.split(50)])

    def mean(values: torch.Tensor) -> float:
        return float(values.float().mean())

    rows = []
    for name in names:
        encoder = load_encoder(registry, name)
        out, own = reconstruct(encoder, renders.image), reconstruct(encoder, samples)
        with torch.no_grad():
            lpips = mean(torch.cat([ctx.scorer(x, y) for x, y in zip(out.split(50), renders.image.split(50))]))
            identity = mean(torch.cat([ctx.identity(x, y) for x, y in zip(out.split(50), renders.image.split(50))]))
            labels = seg.predict(out)
        read = pipeline.read_attributes(registry, a.model, out)
        moved = [mean((read[k] - truth[k]).abs()) / spread[k] for k in ATTRIBUTES]
        rows.append(f"| `{Path(name).name}` | {mean(psnr_per_image(out, renders.image)):.2f} | {lpips:.3f} | "
                    f"{iou(labels, renders.labels, L.SKIN):.2f} / {iou(labels, renders.labels, L.HAIR):.2f} | "
                    f"{identity:.3f} | " + " | ".join(f"{m:.2f}" for m in moved)
                    + f" | {mean(psnr_per_image(own, samples)):.2f} |")
        print(rows[-1], flush=True)
    lines = [f"# What an encoder keeps of an input: {a.renders} held-out renders, {a.samples} samples\n",
             f"`python bench/encoder_fidelity.py {' '.join(sys.argv[1:] if argv is None else argv)}` on `{a.model}`. "
             f"Renders stand for real photos (the generator never drew them). LPIPS: `{ctx.scorer.name}`; identity: "
             f"the parameter regressor's distance to the render (same person below "
             f"{getattr(ctx.identity, 'same_person_below', None)}); attribute columns: mean absolute change of the "
             "regressor's reading from the render's, in standard deviations of the attribute over the renders "
             "(beard and glasses: presence, read between 0 and 1).\n",
             "| encoder | renders: PSNR dB | LPIPS | IoU skin / hair | identity | "
             + " | ".join(k.replace("_", " ") for k in ATTRIBUTES) + " | samples: PSNR dB |",
             "|---|---|---|---|---|" + "---|" * len(ATTRIBUTES) + "---|", *rows, "",
             f"Total {time.time() - t0:.0f} s."]
    publish("\n".join(lines) + "\n", a.out)


if __name__ == "__main__":
    main()
