"""What each built-in direction of the embedded generator does, and how fast a slider frame is.

    python bench/editing_directions.py [--model embedded-portraits-64] [--n 200] [--directions FILE] [--out bench/results/editing_directions.md]

For every direction: n held-out samples (drawn apart from those the directions were fitted and
chosen on) are moved by +2 units; the parameter regressor reads every attribute before and after,
and each change is given in standard deviations of that attribute over the samples (beard and
glasses, present or not: in units of 0.5). *own*: the attribute the direction is meant to move;
*largest other*: the largest mean change of any other attribute; *per sample*: the largest mean
absolute change of any other attribute (an edit that moves it up in some images and down in
others leaks although its mean is near 0; the reader's own noise on edited images adds to it);
*identity*: the regressor's identity distance between before and after. The supervised (the
built-in slider, and the plain W fit it was refined from), PCA (the component closest to the
plain fit) and StyleSpace versions of an attribute are compared. Aim (issue #11): supervised
smile, age, yaw and hair length move their attribute by >= 1 std at +2 units while every other
attribute moves by less than a quarter of that; judged on the mean changes, and per sample.
*guided, others held*: for each aimed attribute, on the first ``--guided-n`` samples, each sample's
own direction in W+: the gradient of the regressor's reading of the attribute with every other
reading of the regressor held to first order (``editing.fit.guided_gradients``), one unit its
first-order change by the attribute's std; what the fit-your-own form's "guided" method gives.
Since the same regressor guides and measures (and the built-in sliders are W+ vectors learned
through it), an edit could fool it rather than change the face: *robust*, in both tables, reads
the own change again after both images are shifted by a pixel and blurred (sigma 0.5 px), which a
pixel pattern made to fool the reader does not survive but a drawn change does (a drawn change
the reader wrongly takes for the attribute survives it: look at the pictures too).
*Where the reader finds the change*: the smile and hair-length sliders' +2-unit edits pasted into
the unedited images only inside their segment class (mouth, hair; grown by 2 px) or only outside.
Speed: one slider frame (apply the edits, synthesise at batch 1) against the generator's forward
pass, both measured here, median of repeated runs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semedit.evaluation.reports import alternating_medians, publish  # noqa: E402
from semedit.imaging import shifted_and_blurred  # noqa: E402
from semedit import pipeline  # noqa: E402
from semedit.editing.directions import Direction, apply_edits  # noqa: E402
from semedit.editing.fit import changes_between, edit_region, guided_gradients, sample_w  # noqa: E402
from semedit.editing.formats import read_semedit  # noqa: E402
from semedit.editing.library import directions_for  # noqa: E402
from semedit.inversion.suite import identity_for  # noqa: E402
from semedit.latents import Latent, synthesize  # noqa: E402
from semedit.networks.regressor import field_readings  # noqa: E402
from semedit.registry import Registry  # noqa: E402
from semedit.segmentation import CLASS_NAMES  # noqa: E402
from semedit.training.directions import DRAWN_IN, attribute_stds  # noqa: E402

DEFAULT = "embedded-portraits-64"
AIMED = ("smile", "age", "yaw", "hair_length")


@torch.no_grad()
def effect(G, w, d: Direction, units: float, read, before: torch.Tensor, base: dict, stds: dict, identity,
           robust_base: dict) -> dict:
    """What +``units`` of ``d`` does to the codes w, whose images ``before`` read as ``base`` (and,
    shifted and blurred, as ``robust_base``); "robust": the mean changes read on shifted, blurred images."""
    after = synthesize(G, apply_edits(G, Latent("w", w), [(d, units)])).clamp(-1, 1)
    robust = changes_between(robust_base, read(shifted_and_blurred(after)), stds)
    return {**summary(changes_between(base, read(after), stds)), "identity": float(identity(before, after).mean()),
            "robust": {k: float(v.mean()) for k, v in robust.items()}}


def summary(changes: dict) -> dict:
    """Per-image changes {attribute: [N]} -> their means, standard errors and mean absolute values."""
    return {"change": {k: float(v.mean()) for k, v in changes.items()},
            "se": {k: float(v.std() / len(v) ** 0.5) for k, v in changes.items()},
            "abs": {k: float(v.abs().mean()) for k, v in changes.items()}}


def guided_moves(G, ws, attr: str, units: float, regressor, std: float, batch: int = 25) -> torch.Tensor:
    """W+ codes ws [N, L, C] each moved ``units`` along its own guided direction for ``attr`` (every
    other regressor reading held), one unit the first-order change of ``std``."""
    field, others = field_readings(regressor, attr)
    moved = []
    for chunk in ws.split(batch):
        _, _, p = guided_gradients(G, Latent("w+", chunk), field, others)
        rate = p.flatten(1).square().sum(1).clamp(min=1e-12)  # |p|^2: first-order change per unit of p
        moved.append(chunk + units * std * p / rate[:, None, None])
    return torch.cat(moved)


def guided_effect(G, w, attr: str, units: float, regressor, read, stds: dict, identity) -> dict:
    """What +``units`` of each code's own guided direction (W+, every other regressor reading
    held) does to the codes w, as ``effect`` reports it, plus ``robust``: the own change read on
    shifted and blurred images."""
    ws = G.broadcast(w)
    with torch.no_grad():
        before = synthesize(G, Latent("w+", ws)).clamp(-1, 1)
        std = float(field_readings(regressor, attr)[0](before).std())
    moved = guided_moves(G, ws, attr, units, regressor, std)
    with torch.no_grad():
        after = synthesize(G, Latent("w+", moved)).clamp(-1, 1)
        changes = changes_between(read(before), read(after), stds)
        robust = changes_between(read(shifted_and_blurred(before)), read(shifted_and_blurred(after)), stds)[attr]
        distance = float(identity(before, after).mean())
    return {**summary(changes), "identity": distance, "robust": float(robust.mean()),
            "robust_se": float(robust.std() / len(robust) ** 0.5)}


def guided_grid(G, w, attr: str, units: float, regressor, zoom: int = 3):
    """A PIL image: rows -units, 0, +units of each code's own guided direction for ``attr`` (as
    ``guided_effect`` moves them), codes w [n, C] side by side, scaled up ``zoom`` times."""
    from PIL import Image
    from semedit.imaging import tensor_to_uint8
    ws = G.broadcast(w)
    with torch.no_grad():
        std = float(field_readings(regressor, attr)[0](synthesize(G, Latent("w+", ws)).clamp(-1, 1)).std())
    codes = [guided_moves(G, ws, attr, k * units, regressor, std) if k else ws for k in (-1, 0, 1)]
    with torch.no_grad():
        rows = [synthesize(G, Latent("w+", c)) for c in codes]
    image = Image.fromarray(tensor_to_uint8(torch.cat([torch.cat(list(r.clamp(-1, 1)), 2) for r in rows], 1)[None])[0])
    return image.resize((image.width * zoom, image.height * zoom), Image.NEAREST)


def region_changes(G, w, d: Direction, attr: str, units: float, read, before: torch.Tensor, base: dict,
                   stds: dict, segment, class_id: int, grow: int = 2) -> dict:
    """Where the reader finds the change of ``attr`` that +``units`` of ``d`` makes to the codes w
    (images ``before``, read as ``base``): {"inside", "outside", "whole": mean change (std), "area":
    mean pixels of the region} when the edit is pasted into the unedited images only inside the
    region (``class_id`` in either image as ``segment`` labels it, grown by ``grow`` px), only
    outside it, and whole."""
    after = synthesize(G, apply_edits(G, Latent("w", w), [(d, units)])).clamp(-1, 1)
    region = edit_region(segment(before), segment(after), class_id, grow)
    own = lambda images: float(changes_between(base, read(images), stds)[attr].mean())  # noqa: E731
    return {"inside": own(before + region * (after - before)), "outside": own(after - region * (after - before)),
            "whole": own(after), "area": float(region.sum((1, 2, 3)).mean())}


def frame_times(G, d: Direction, repeats: int = 30) -> tuple:
    """(median seconds of a slider frame, of G's forward), batch 1, measured alternately."""
    latent = Latent("w+", G.broadcast(sample_w(G, 1, seed=1)))
    z = torch.randn(1, G.config.z_dim)
    frame, forward = alternating_medians([lambda: synthesize(G, apply_edits(G, latent, [(d, 1.0)])), lambda: G(z)],
                                         repeats)
    return frame, forward


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT, help="an embedded-domain generator of the catalogue")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--units", type=float, default=2.0)
    ap.add_argument("--guided-n", type=int, default=100, help="samples for the guided rows (0: none)")
    ap.add_argument("--guided-grid", type=Path, help="also save 8 samples at -units, 0, +units of their guided smile")
    ap.add_argument("--directions", type=Path,
                    help="a semedit directions file to measure instead of the catalogue's (e.g. an earlier version)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/editing_directions.md")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    registry = Registry.from_settings()
    G = registry.get(a.model, "cpu")
    identity = identity_for(registry, a.model)
    found = read_semedit(a.directions) if a.directions else directions_for(registry, a.model)
    directions = [d for d in found if d.space != "z"]  # Z ones move only a z
    w = sample_w(G, a.n, seed=999)
    read = lambda images: pipeline.read_attributes(registry, a.model, images)  # noqa: E731
    with torch.no_grad():
        before = synthesize(G, Latent("w", w)).clamp(-1, 1)
        base = read(before)
        robust_base = read(shifted_and_blurred(before))
    stds = attribute_stds(base)

    supervised = {d.attribute: d for d in reversed(directions) if d.source.startswith("supervised")}  # first wins
    plain = {d.attribute: d for d in directions if d.name.endswith("(w, plain)")}
    pcs = [d for d in directions if d.name.startswith("PC")]
    rows = []
    for d in directions:
        kind = ("supervised" if d in supervised.values() else "supervised, plain fit" if d in plain.values()
                else "PCA" if d in pcs else "StyleSpace")
        rows.append((d, kind, d.attribute))
    for attr in AIMED:  # the PCA version of each aimed attribute: the closest component, signed
        s = plain.get(attr, supervised[attr])
        best = max(pcs, key=lambda p: abs(float(p.vector @ s.vector)))
        sign = 1.0 if float(best.vector @ s.vector) > 0 else -1.0
        rows.append((Direction(f"{best.name} as {attr}", "w", sign * best.vector, best.unit, source=best.source,
                               attribute=attr), f"PCA (cos {abs(float(best.vector @ s.vector)):.2f})", attr))

    lines = ["# Built-in directions of the embedded generator: what +%g units does\n" % a.units,
             f"`python bench/editing_directions.py {' '.join(sys.argv[1:] if argv is None else argv)}`: "
             f"{a.n} held-out samples of `{a.model}`, attributes read by the parameter regressor, changes in "
             "standard deviations of each attribute over the samples (beard and glasses: units of 0.5), mean ± "
             "standard error over the samples.\n",
             "Read with care: the regressor's readings follow the truth only as far as it reads this generator's "
             "images; its held-out R^2 on renders and on the paired (distilled) generator's images is in "
             "`bench/results/embedded_regressor.md` (the blurry distilled generator draws little of smile, age, yaw and "
             "hair length, so on it the table measures the regressor's reading of images that do not show them).\n",
             "| direction | kind | own attribute change (std) | robust: own change on shifted, blurred images "
             "| largest other change (std) | per sample: largest other mean abs. change | identity distance "
             "| aim met: mean / per sample |",
             "|---|---|---|---|---|---|---|---|"]
    for d, kind, attr in rows:
        e = effect(G, w, d, a.units, read, before, base, stds, identity, robust_base)
        own = e["change"].get(attr) if attr in stds else None
        others = {k: v for k, v in e["change"].items() if k != attr}
        k_max = max(others, key=lambda k: abs(others[k]))
        k_abs = max(others, key=lambda k: e["abs"][k])
        aim = ""
        if kind.startswith("supervised") and attr in AIMED:
            met = lambda leak: "yes" if own >= 1 and leak < own / 4 else "no"  # noqa: E731
            aim = f"{met(abs(others[k_max]))} / {met(e['abs'][k_abs])}"
        se = e["se"]
        robust = "" if own is None else f"{e['robust'][attr]:+.2f}"
        lines.append(f"| {d.name} | {kind} | {'' if own is None else f'{own:+.2f} ± {se[attr]:.2f}'} | {robust} "
                     f"| {others[k_max]:+.2f} ± {se[k_max]:.2f} ({k_max}) | {e['abs'][k_abs]:.2f} ({k_abs}) "
                     f"| {e['identity']:.3f} | {aim} |")
        print(lines[-1], flush=True)
    if a.guided_n:
        regressor = registry.get(registry.catalogue.get(a.model).config["regressor"], "cpu")
        m = min(a.guided_n, a.n)
        lines += ["", f"## Guided, others held: each sample's own direction ({m} samples)\n",
                  "| attribute | own change (std) | robust: own change on shifted, blurred images | largest other "
                  "change (std) | per sample: largest other mean abs. change | identity distance | aim met: mean / "
                  "per sample |", "|---|---|---|---|---|---|---|"]
        for attr in AIMED:
            e = guided_effect(G, w[:m], attr, a.units, regressor, read, stds, identity)
            own, se = e["change"][attr], e["se"]
            others = {k: v for k, v in e["change"].items() if k != attr}
            k_max = max(others, key=lambda k: abs(others[k]))
            k_abs = max(others, key=lambda k: e["abs"][k])
            met = lambda leak: "yes" if own >= 1 and leak < own / 4 else "no"  # noqa: E731
            lines.append(f"| {attr} | {own:+.2f} ± {se[attr]:.2f} | {e['robust']:+.2f} ± {e['robust_se']:.2f} | "
                         f"{others[k_max]:+.2f} ± {se[k_max]:.2f} ({k_max}) | {e['abs'][k_abs]:.2f} ({k_abs}) | "
                         f"{e['identity']:.3f} | {met(abs(others[k_max]))} / {met(e['abs'][k_abs])} |")
            print(lines[-1], flush=True)
        if a.guided_grid:
            guided_grid(G, w[:8], "smile", a.units, regressor).save(a.guided_grid)
    segment = registry.get(registry.catalogue.get(a.model).config["segmenter"], "cpu").predict
    lines += ["", f"## Where the reader finds the change: +{a.units:g} units pasted inside or outside the attribute's "
              "region\n", "The edit pasted into the unedited images only inside the region the segmenter labels "
              "with the attribute's class in either image, grown by 2 px, or only outside it; the own attribute's "
              "mean change (std). A change read mostly outside is drawn somewhere the attribute is not.\n",
              "| slider | region | mean area (px) | inside only | outside only | whole edit |", "|---|---|---|---|---|---|"]
    for attr, class_id in DRAWN_IN.items():
        if attr in supervised:
            r = region_changes(G, w, supervised[attr], attr, a.units, read, before, base, stds, segment, class_id)
            lines.append(f"| {supervised[attr].name} | {CLASS_NAMES[class_id]} | {r['area']:.0f} | {r['inside']:+.2f} | "
                         f"{r['outside']:+.2f} | {r['whole']:+.2f} |")
    frame, forward = frame_times(G, supervised["smile"])
    lines += ["", "## Slider frame speed (batch 1, 2 CPU threads)\n", "| step | median ms | ratio to G forward |",
              "|---|---|---|", f"| G forward (z -> image) | {forward * 1000:.1f} | 1.00 |",
              f"| slider frame (apply edits to a W+ code, synthesise) | {frame * 1000:.1f} | {frame / forward:.2f} |",
              "", "Aim: a slider frame <= 50 ms on 2 cores."]
    publish("\n".join(lines) + "\n", a.out)


if __name__ == "__main__":
    main()
