"""Fit the embedded generator's built-in directions and save them beside its weights.

    python -m semedit.training.directions --model embedded-portraits-64 --n 4000 \\
        --out weights/embedded-portraits-64-directions.safetensors

Supervised directions (smile, age, yaw, hair length, grey hair, hair colour, beard, glasses,
skin tone, light angle) are fitted on the attributes the parameter regressor reads off each
sample (so they work for any generator of the domain, paired or not), in W and in Z. Each W fit
is then refined on fresh samples: held against every other attribute (InterFaceGAN's conditional
edit) or not, on every range of W+ layers, the variant whose measured edit moves its own
attribute most and the others least (``fit.most_selective``), with its unit set to the measured
change of one standard deviation, is the start of one W+ vector learned on the fitting samples to
move the attribute and hold the others (``fit.learn_direction``, the regressor read through a
differentiable labeller); whichever of the two is more selective on the fresh samples gets the
plain name; the plain W fit
is kept as "name (w, plain)" and the Z fit as "name (z)" (Z directions move only samples). The
top principal components of W (GANSpace) and the StyleSpace channels that act most locally on the
mouth and on the hair join them.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import torch

from .. import segmentation as L
from ..editing.directions import Direction
from ..editing.fit import (calibration, edit_changes, edit_region, fit_linear, label_samples, leak_summary,
                           learn_direction, most_selective, pca_directions, sample_codes, sample_w,
                           stylespace_channels, variants)
from ..editing.formats import read_semedit, save_directions, semedit_metadata
from ..errors import EditingError
from ..imaging import shifted_and_blurred
from ..registry import Registry
from ..synth.ground_truth import predict_portraits
from ..synth.params import FIELDS, Portraits

#: attribute -> name of the slider (attributes as ``Portraits.attributes()`` / ``pose()`` name them)
SUPERVISED = {"smile": "smile", "age": "age", "yaw": "yaw", "hair_length": "hair length", "hair_gray": "grey hair",
              "hair_color": "hair colour", "beard": "beard", "glasses": "glasses", "skin_tone": "skin tone",
              "light_angle": "light angle"}
#: present or not: their changes count in units of 0.5 (a Bernoulli's largest std), since a rare
#: one's own std is near zero and would blow any change up
BINARY = ("beard", "glasses")
LOCAL_CLASSES = {"mouth": L.MOUTH, "hair": L.HAIR}
#: attribute -> the segment class it is drawn in (where a learned slider's change must be read)
DRAWN_IN = {"smile": L.MOUTH, "hair_length": L.HAIR}


def regressor_labeller(regressor):
    """images -> {attribute: [B]} as the regressor reads them (attributes and pose)."""
    def label(images: torch.Tensor) -> dict:
        p = predict_portraits(regressor, images)
        return {**p.attributes(), **p.pose()}
    return label


def differentiable_labeller(regressor, softness: float = 0.03):
    """images [B, 3, R, R] in [-1, 1] -> {attribute: [B]} as ``regressor_labeller`` reads them, but
    differentiable in the images (beard and glasses soft: ``Portraits.attributes(softness)``), on
    the regressor's device."""
    if tuple(regressor.config.field_names) != FIELDS:
        raise ValueError("this regressor predicts other parameters than the renderer's")

    def label(images: torch.Tensor) -> dict:
        pred = regressor(images)
        p = Portraits(pred.fields, pred.hair_style_logits.argmax(1), pred.accessory_logits.argmax(1))
        return {**p.attributes(softness), **p.pose()}
    return label


def attribute_stds(readings: dict) -> dict:
    """{attribute: the std its changes are counted in}: over the readings [N] of the supervised
    attributes among ``readings``, 0.5 for the binary ones."""
    return {k: 0.5 if k in BINARY else float(readings[k].std().clamp(min=1e-6)) for k in SUPERVISED if k in readings}


def fit_builtin(G, regressor, segmenter, n: int = 4000, pcs: int = 5, seed: int = 0, select_n: int = 500,
                learn_steps: int = 150, learn_lr: float = 0.02, largest_weight: float = 0.0,
                outside_weight: float = 0.0, only: Optional[Sequence[str]] = None,
                log=print) -> List[Direction]:
    """Each supervised attribute is fitted in W and in Z on ``n`` samples; the W fit is refined on
    ``select_n`` fresh samples (``refine``, learning on the ``n`` samples for ``learn_steps`` at
    ``learn_lr`` with ``largest_weight`` and ``outside_weight``, the segmenter marking where
    DRAWN_IN's attributes are drawn; 0 steps: no learning) and gets the plain name, the plain W fit
    becomes "name (w, plain)", the Z fit "name (z)". With ``only`` (attributes), just those
    attributes' refined directions (the others' W fits still hold them, as in the full fit)."""
    t = time.time()
    z, w = sample_codes(G, n, seed=seed)
    read = regressor_labeller(regressor)
    labels = label_samples(G, w, read)
    w_fits, z_fits = {}, {}
    for attr, name in SUPERVISED.items():
        try:
            w_fits[attr], z_fits[attr] = [replace(fit_linear(codes, labels[attr], name, binary=attr in BINARY,
                                                             space=space), attribute=attr)
                                          for space, codes in (("w", w), ("z", z))]
        except ValueError as e:  # e.g. the generator draws no beard the regressor can see
            log(f"{name}: skipped ({e})")
            continue
        log(f"{name}: W {w_fits[attr].metrics}, Z {z_fits[attr].metrics}  ({time.time() - t:.0f}s)")
    chosen = refine(G, w_fits, read, select_n=select_n, seed=seed + 1, log=log, learn_on=w if learn_steps else None,
                    learn_read=differentiable_labeller(regressor), learn_steps=learn_steps, learn_lr=learn_lr,
                    largest_weight=largest_weight, attributes=only, segment=segmenter.predict,
                    outside_weight=outside_weight)
    if only:
        return [chosen[a] for a in only]
    out = [chosen[a] for a in w_fits]
    out += [replace(w_fits[a], name=f"{SUPERVISED[a]} (w, plain)") for a in w_fits]
    out += [replace(z_fits[a], name=f"{SUPERVISED[a]} (z)") for a in z_fits]
    out += pca_directions(w, pcs)
    probe = w[:4]
    with torch.no_grad():
        seg = segmenter.predict(G.synthesis(G.broadcast(probe), noise_mode="const").clamp(-1, 1))
    for cls, cid in LOCAL_CLASSES.items():
        for d in stylespace_channels(G, probe, seg, cid, top=2):
            out.append(replace(d, name=f"{cls} channel {d.name[2:]}", attribute=cls,
                               source=d.source.replace(f"class {cid}", cls)))
        log(f"StyleSpace {cls}: done ({time.time() - t:.0f}s)")
    return out


def refine(G, fits: dict, read, select_n: int = 500, seed: int = 1, log=print, learn_on=None, learn_read=None,
           learn_steps: int = 150, learn_lr: float = 0.02, largest_weight: float = 0.0,
           attributes: Optional[Sequence[str]] = None, segment=None, outside_weight: float = 0.0) -> dict:
    """{attribute: the most selective variant of its W fit} (``fit.variants``: held against the
    other fits or not, on each range of W+ layers), measured by +2-unit edits of ``select_n``
    samples drawn with ``seed``, its unit rescaled so that one unit moves the attribute by one
    standard deviation as measured there (``fit.calibration``: the fit's own unit is a linear
    estimate, off where the fit is weak), named as the attribute's slider. With codes
    ``learn_on`` [N, C] (apart from the fresh samples) and ``learn_read`` (``read``, differentiable),
    a W+ vector learned from that variant (``fit.learn_direction``, ``learn_steps`` batches at
    ``learn_lr``, ``largest_weight``; with ``segment`` (images -> label maps [B, R, R]) and
    ``outside_weight``, the attributes of DRAWN_IN must be read inside their class: see
    ``learn_direction``'s region) competes with it on the same measure. ``attributes``: refine
    only these (default: every fit; the others still hold them). Its metrics add, at +2 units, the
    measured change of its own attribute and the largest other's mean |change| for the chosen
    direction (rescaled) and for the plain fit."""
    t = time.time()
    w = sample_w(G, select_n, seed=seed)
    before = label_samples(G, w, read)
    stds = {k: v for k, v in attribute_stds(before).items() if k in fits}
    effect = lambda d: edit_changes(G, w, d, read, before, stds)  # noqa: E731

    out = {}
    for attr in attributes or fits:
        d = fits[attr]
        others = [f for a, f in fits.items() if a != attr]
        plain = effect(d)  # the plain fit is the first variant: measured once
        best, _, scale = most_selective(variants(d, others, G.num_ws), attr,
                                        lambda v: plain if v is d else effect(v), calibrate=True)
        span = "every layer" if best.layers is None else f"W+ layers {best.layers[0]}-{best.layers[1] - 1}"
        best = replace(best, unit=best.unit * scale,
                       source=f"{best.source}; {span}, chosen as the most selective of its variants on "
                              f"{select_n} fresh samples, unit x {scale:.2f} to the measured std")
        if learn_on is not None:
            drawn_in = DRAWN_IN.get(attr) if segment is not None else None
            region = None if drawn_in is None else (
                lambda before, after, cls=drawn_in: edit_region(segment(before), segment(after), cls))
            learned = learn_direction(G, best, attr, learn_read, stds, learn_on, steps=learn_steps, lr=learn_lr,
                                      largest_weight=largest_weight, augment=shifted_and_blurred, seed=seed,
                                      region=region, outside_weight=outside_weight)
            winner, _, rescale = most_selective([best, learned], attr, effect, calibrate=True)
            if winner is learned:
                span, scale = "a learned W+ vector", rescale
                best = replace(learned, unit=learned.unit * rescale,
                               source=f"{learned.source}, more selective than its start on the same fresh samples, "
                                      f"unit x {rescale:.2f} to the measured std")
        out[attr] = replace(best, name=SUPERVISED[attr],
                            metrics={**d.metrics, "selection": {"chosen": leak_summary(effect(best), attr),
                                                                "plain fit": leak_summary(plain, attr),
                                                                "unit scale": round(scale, 3), "n": select_n}})
        log(f"{SUPERVISED[attr]}: {span}{', conditioned' if '|' in best.name else ''}: "
            f"{out[attr].metrics['selection']}  ({time.time() - t:.0f}s)")
    return out


def fit_learned(G, regressor, attribute: str, n: int = 1000, steps: int = 150, fresh: int = 200, seed: int = 12345,
                progress: Optional[Callable[[float, str], None]] = None) -> Direction:
    """One supervised attribute's slider as the built-in ones are made, short of the variant search
    and of the region term (each would take minutes more):
    a W fit on ``n`` samples (``fit_linear``), then one W+ vector learned from it on the same samples
    (``fit.learn_direction``, ``steps`` batches, the regressor read through ``differentiable_labeller``,
    half the batches shifted and blurred), its unit rescaled so that +2 units move the attribute by
    2 standard deviations as measured on ``fresh`` other samples (``fit.calibration``). Its metrics
    hold the fit's held-out R^2 or accuracy and, at +2 units on those samples, ``leak_summary`` of the
    learned slider ("chosen") and of the W fit ("plain fit"), as ``refine`` writes them.
    ``progress(fraction, what)`` may raise to stop."""
    if attribute not in SUPERVISED:
        raise EditingError(f"learned sliders are made for {', '.join(SUPERVISED)}; not {attribute!r}")
    report = progress or (lambda fraction, what: None)
    read = regressor_labeller(regressor)
    report(0.02, "sampling and labelling")
    w = sample_w(G, n, seed=seed)
    labels = label_samples(G, w, read)
    stds = attribute_stds(labels)
    start = replace(fit_linear(w, labels[attribute], f"learned {attribute}", binary=attribute in BINARY),
                    attribute=attribute)
    learned = learn_direction(G, start, attribute, differentiable_labeller(regressor), stds, w, steps=steps,
                              augment=shifted_and_blurred, seed=seed,
                              progress=lambda i: report(0.1 + 0.8 * i / steps, f"learning: step {i} of {steps}"))
    report(0.92, "measuring on fresh samples")
    check = sample_w(G, fresh, seed=seed + 1)
    before = label_samples(G, check, read)
    moved = edit_changes(G, check, learned, read, before, stds)
    scale = calibration(moved, attribute)
    chosen = leak_summary({k: v * scale for k, v in moved.items()}, attribute)
    plain = leak_summary(edit_changes(G, check, start, read, before, stds), attribute)
    return replace(learned, unit=learned.unit * scale,
                   source=f"{learned.source}; unit x {scale:.2f} to the std measured on {fresh} fresh samples",
                   metrics={**start.metrics, "selection": {"chosen": chosen, "plain fit": plain,
                                                           "unit scale": round(scale, 3), "n": fresh}})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded-portraits-64")
    ap.add_argument("--n", type=int, default=4000, help="samples to fit on (a quarter held out)")
    ap.add_argument("--pcs", type=int, default=5)
    ap.add_argument("--select-n", type=int, default=500, help="fresh samples the refined directions are chosen on")
    ap.add_argument("--learn-steps", type=int, default=150,
                    help="batches to learn each W+ vector from its refined start (0: no learning)")
    ap.add_argument("--learn-lr", type=float, default=0.02, help="Adam's step, relative to the start's RMS")
    ap.add_argument("--learn-largest-weight", type=float, default=0.0,
                    help="extra weight on the largest other reading's change while learning")
    ap.add_argument("--learn-outside-weight", type=float, default=0.0,
                    help="weight on smile's and hair length's change read outside the mouth / hair while learning")
    ap.add_argument("--only", nargs="+", choices=sorted(SUPERVISED), metavar="ATTRIBUTE",
                    help="refit just these sliders, every other direction of --out kept as it is")
    ap.add_argument("--out", type=Path, help="default: weights/<model>-directions.safetensors")
    a = ap.parse_args(argv)
    out = a.out or Path("weights") / f"{a.model}-directions.safetensors"
    registry = Registry.from_settings()
    spec = registry.catalogue.get(a.model)
    G = registry.get(a.model)
    command = (f"python -m semedit.training.directions --model {a.model} --n {a.n} --select-n {a.select_n} "
               f"--learn-steps {a.learn_steps} --learn-lr {a.learn_lr:g} --learn-largest-weight "
               f"{a.learn_largest_weight:g} --learn-outside-weight {a.learn_outside_weight:g}"
               + (f" --only {' '.join(a.only)}" if a.only else ""))
    kept, note = [], command
    if a.only:
        kept = read_semedit(out)
        note = f"{semedit_metadata(out).get('note', '(no note)')}; then {command}"
    directions = fit_builtin(G, registry.get(spec.config["regressor"]), registry.get(spec.config["segmenter"]),
                             n=a.n, pcs=a.pcs, select_n=a.select_n, learn_steps=a.learn_steps, learn_lr=a.learn_lr,
                             largest_weight=a.learn_largest_weight, outside_weight=a.learn_outside_weight,
                             only=a.only)
    if a.only:
        new = {d.name: d for d in directions}
        directions = [new.pop(d.name, d) for d in kept] + list(new.values())
    save_directions(out, directions, generator=a.model, note=note)
    print(f"wrote {len(directions)} directions to {out}")


if __name__ == "__main__":
    main()
