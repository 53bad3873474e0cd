"""Fit the embedded generator's built-in directions and save them beside its weights.

    python -m semedit.training.directions --model embedded-portraits-64 --n 4000 \\
        --out weights/embedded-portraits-64-directions.safetensors

Supervised directions (smile, age, yaw, hair length, grey hair, hair colour, beard, glasses,
skin tone) are fitted on the attributes the parameter regressor reads off each sample (so they
work for any generator of the domain, paired or not), in W and in Z; the better held-out fit gets the plain
name (W directions move any code, inverted images too; Z ones only samples). The top principal
components of W (GANSpace) and the StyleSpace channels that act most locally on the mouth and
on the hair join them.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import List

import torch

from .. import segmentation as L
from ..editing.directions import Direction
from ..editing.fit import fit_linear, label_samples, pca_directions, sample_codes, stylespace_channels
from ..editing.formats import save_directions
from ..registry import Registry
from ..synth.ground_truth import predict_portraits

#: attribute -> name of the slider (attributes as ``Portraits.attributes()`` / ``pose()`` name them)
SUPERVISED = {"smile": "smile", "age": "age", "yaw": "yaw", "hair_length": "hair length", "hair_gray": "grey hair",
              "hair_color": "hair colour", "beard": "beard", "glasses": "glasses", "skin_tone": "skin tone"}
LOCAL_CLASSES = {"mouth": L.MOUTH, "hair": L.HAIR}


def regressor_labeller(regressor):
    """images -> {attribute: [B]} as the regressor reads them (attributes and pose)."""
    def label(images: torch.Tensor) -> dict:
        p = predict_portraits(regressor, images)
        return {**p.attributes(), **p.pose()}
    return label


def fit_builtin(G, regressor, segmenter, n: int = 4000, pcs: int = 5, seed: int = 0, log=print) -> List[Direction]:
    """Each supervised attribute is fitted in W and in Z; the better held-out fit gets the plain
    name (the sliders' default), the other is kept as "name (w)" or "name (z)". (Z directions move
    only samples; W ones move any code, inverted images too.)"""
    t = time.time()
    z, w = sample_codes(G, n, seed=seed)
    labels = label_samples(G, w, regressor_labeller(regressor))
    supervised, others = [], []
    for attr, name in SUPERVISED.items():
        binary = attr in ("beard", "glasses")
        try:
            fits = [fit_linear(codes, labels[attr], name, binary=binary, space=space)
                    for space, codes in (("w", w), ("z", z))]
        except ValueError as e:  # e.g. the generator draws no beard the regressor can see
            log(f"{name}: skipped ({e})")
            continue
        score = [d.metrics.get("r2", d.metrics.get("accuracy")) for d in fits]
        best, other = (fits[0], fits[1]) if score[0] >= score[1] else (fits[1], fits[0])
        for d, label in ((best, name), (other, f"{name} ({other.space})")):
            (supervised if d is best else others).append(
                replace(d, name=label, attribute=attr))
        log(f"{name}: W {fits[0].metrics}, Z {fits[1].metrics}  ({time.time() - t:.0f}s)")
    out = supervised + others + pca_directions(w, pcs)
    probe = w[:4]
    with torch.no_grad():
        seg = segmenter.predict(G.synthesis(G.broadcast(probe), noise_mode="const").clamp(-1, 1))
    for cls, cid in LOCAL_CLASSES.items():
        for d in stylespace_channels(G, probe, seg, cid, top=2):
            out.append(replace(d, name=f"{cls} channel {d.name[2:]}", attribute=cls,
                               source=d.source.replace(f"class {cid}", cls)))
        log(f"StyleSpace {cls}: done ({time.time() - t:.0f}s)")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded-portraits-64")
    ap.add_argument("--n", type=int, default=4000, help="samples to fit on (a quarter held out)")
    ap.add_argument("--pcs", type=int, default=5)
    ap.add_argument("--out", type=Path, help="default: weights/<model>-directions.safetensors")
    a = ap.parse_args(argv)
    out = a.out or Path("weights") / f"{a.model}-directions.safetensors"
    registry = Registry.from_settings()
    spec = registry.catalogue.get(a.model)
    G = registry.get(a.model)
    directions = fit_builtin(G, registry.get(spec.config["regressor"]), registry.get(spec.config["segmenter"]),
                             n=a.n, pcs=a.pcs)
    save_directions(out, directions, generator=a.model,
                    note=f"python -m semedit.training.directions --model {a.model} --n {a.n}")
    print(f"wrote {len(directions)} directions to {out}")


if __name__ == "__main__":
    main()
