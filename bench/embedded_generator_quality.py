"""Realism, editability and invertibility of embedded-domain generators, in one table.

    python bench/embedded_generator_quality.py [--generators embedded-portraits-64 runs/gan/g.safetensors]
        [--n 5000] [--invert 64] [--steps 300] [--out bench/results/embedded_generator_quality.md]

Generators are catalogue names or safetensors files (a candidate before it joins the catalogue).
Realism: Frechet distance in ST-LPIPS AlexNet features (spatially pooled, 1,152 dimensions)
between n samples and n renders, with the floor (renders against other renders). Editability:
held-out R^2 of smile, age, hair length and yaw (read off G(w) by the parameter regressor)
linearly predicted from w. Invertibility: W+ optimisation (the app's default loss) onto held-out
renders and onto 10 renders with out-of-domain accessories, scored against their exact pixels and
label maps, beside the segmenter's IoU on the targets themselves (the measure's ceiling); a picture
per generator (``<out>_<generator>_inversions.png``) shows 8 in-domain targets, their
reconstructions, the exact labels and the segmenter's map of each reconstruction. Aims (issue
#10): FD above the floor at most a fifth of the old generator's; PSNR >= 28 dB; IoU >= 0.9 on
background, skin and hair and >= 0.6 on eyes and mouth; R^2 >= 0.8.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semedit.evaluation.reports import publish  # noqa: E402
from semedit.checkpoints import load_module  # noqa: E402
from semedit.evaluation.embedded import (EDIT_ATTRIBUTES, OOD_ACCESSORIES, SEGMENT_MEASURES,  # noqa: E402
                                         editability, held_out_targets, invertibility, reading_spread, realism,
                                         segment_editability, segmenter_on_targets)
from semedit.imaging import make_grid, tensor_to_uint8  # noqa: E402
from semedit.training.gan import LINEAR_FIELDS  # noqa: E402
from semedit.inversion.suite import context_for  # noqa: E402
from semedit.registry import Registry  # noqa: E402
from semedit.segmentation import CLASS_NAMES, colorize  # noqa: E402
from semedit.synth.render import Rendering  # noqa: E402

# the former default, issue 10's baseline; its segmenter and regressor serve every embedded generator
DISTILLED = "embedded-portraits-64"
IOU_CLASSES = ("background", "skin", "hair", "eyes", "mouth")


def with_candidates(registry: Registry, names) -> Registry:
    """The registry, with every generator given as a safetensors file added to its catalogue
    (under the file's name, as an embedded-domain generator sharing the distilled generator's models)."""
    extra = []
    for name in names:
        if name.endswith(".safetensors"):
            load_module(Path(name), "stylegan2")  # refuse a file that is not a generator before starting
            base = registry.catalogue.get(DISTILLED)
            extra.append(replace(base, name=name, file=Path(name).resolve(), description="candidate",
                                 config={**base.config, "paired_with_renderer": False}))
    return registry.with_models(extra) if extra else registry


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generators", nargs="+", default=[DISTILLED])
    ap.add_argument("--n", type=int, default=5000, help="samples and renders for the Frechet distance")
    ap.add_argument("--edit-n", type=int, default=2000, help="samples for the editability fit")
    ap.add_argument("--invert", type=int, default=64, help="held-out renders to invert (0: skip)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/embedded_generator_quality.md")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    registry = with_candidates(Registry.from_settings(), a.generators)
    device = registry.settings.torch_device
    spec = registry.catalogue.get(DISTILLED)
    regressor = registry.get(spec.config["regressor"], device)
    segmenter = registry.get(spec.config["segmenter"], device)
    perceptual = registry.get("stlpips-alex", device)
    generators = {name: registry.get(name, device) for name in a.generators}
    t0 = time.time()

    fd = realism(generators, lambda x: perceptual.pooled_features(x.to(device)), n=a.n)
    floor = fd["renders (floor)"]
    lines = ["# Embedded generators: realism, editability, invertibility\n",
             f"`python bench/embedded_generator_quality.py {' '.join(sys.argv[1:] if argv is None else argv)}` "
             f"on {device.type}\n",
             f"## Realism: Frechet distance to {a.n} renders (ST-LPIPS AlexNet features)\n",
             "| images | FD | FD above the floor |", "|---|---|---|"]
    lines += [f"| {k} | {v:.4f} | {v - floor:.4f} |" for k, v in fd.items()]

    def per_generator(intro: str, columns, cells) -> list:
        """A table after ``intro``: a row per generator, ``cells(G)`` its entries."""
        return (["", intro, "| generator | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
                + [f"| {name} | " + " | ".join(cells(G)) + " |" for name, G in generators.items()])

    lines += per_generator(f"## Editability: held-out R^2 of attributes (read by the regressor) from w, {a.edit_n} samples\n",
                           EDIT_ATTRIBUTES, lambda G: [f"{v:.3f}" for v in editability(G, regressor, n=a.edit_n).values()])
    lines += per_generator(f"Read by the segmenter instead (a second reader, trained apart from the regressor): held-out "
                           f"R^2 from w of the share of the image each class covers, of the hair in the image's lowest "
                           f"3/8 (long hair) and of the face offset (the skin's mean column minus that of skin and "
                           f"hair, which follows the turn), {a.edit_n} samples\n",
                           SEGMENT_MEASURES,
                           lambda G: [f"{v:.3f}" for v in segment_editability(G, segmenter, n=a.edit_n).values()])
    lines += per_generator(f"How widely the regressor's readings spread over {a.edit_n} samples: their standard "
                           f"deviation over that over as many renders (1: the domain's spread; in brackets the mean's "
                           f"shift in the renders' standard deviations)\n", LINEAR_FIELDS,
                           lambda G: [f"{ratio:.2f} ({shift:+.2f})"
                                      for ratio, shift in reading_spread(G, regressor, LINEAR_FIELDS, n=a.edit_n).values()])

    if a.invert:
        lines += ["", f"## Invertibility: W+ optimisation, {a.steps} steps, against exact pixels and labels\n",
                  "| generator | targets | n | PSNR dB | " + " | ".join(f"IoU {c}" for c in IOU_CLASSES) + " |",
                  "|---|---|---|---|" + "---|" * len(IOU_CLASSES)]
        in_domain = held_out_targets(a.invert, seed=555)
        ood_sets = [held_out_targets(2, seed=556 + i, accessory=acc) for i, acc in enumerate(OOD_ACCESSORIES)]
        ood = Rendering(torch.cat([r.image for r in ood_sets]), torch.cat([r.labels for r in ood_sets]))
        ctx = context_for(registry, DISTILLED)  # perceptual model, segmenter and device of the domain
        sets = (("held-out renders", in_domain), ("out-of-domain accessories", ood))

        def ious(iou) -> str:
            return " | ".join(f"{iou[CLASS_NAMES.index(c)]:.3f}" for c in IOU_CLASSES)
        for name in generators:
            for label, targets in sets:
                s = invertibility(registry, name, targets, ctx, segmenter, steps=a.steps, log=print)
                lines.append(f"| {name} | {label} | {s.n} | {s.psnr:.2f} | {ious(s.iou)} |")
                if label == sets[0][0]:
                    picture = a.out.with_name(f"{a.out.stem}_{Path(name).stem}_inversions.png")
                    Image.fromarray(inversion_picture(targets, s)).save(picture)
                    print(f"wrote {picture}")
        for label, targets in sets:
            lines.append(f"| ceiling: the segmenter on the targets themselves | {label} | {len(targets.image)} | | "
                         f"{ious(segmenter_on_targets(targets, segmenter))} |")
    lines += ["", f"{time.time() - t0:.0f} s in all."]
    publish("\n".join(lines) + "\n", a.out)


def inversion_picture(targets: Rendering, scores, n: int = 8, zoom: int = 3) -> np.ndarray:
    """uint8 picture: a row per target (the first ``n``): the target, its reconstruction, its exact
    label map, the segmenter's map of the reconstruction."""
    cells = []
    for i in range(min(n, scores.n)):
        cells += [tensor_to_uint8(targets.image[i]), tensor_to_uint8(scores.reconstructions[i]),
                  colorize(targets.labels[i].numpy()), colorize(scores.segments[i].numpy())]  # uint8 palette
    grid = make_grid(cells, ncols=4)
    return grid.repeat(zoom, 0).repeat(zoom, 1)


if __name__ == "__main__":
    main()
