"""Hairstyle transfer on the embedded domain: against true images, the seed's retrieval protocol, speed.

    python bench/hair_transfer.py [--model embedded-portraits-64] [--hair-model NAME_OR_FILE] [--n 100]
        [--n-opt 20] [--gallery 10000] [--queries 1000] [--out bench/results/hair_transfer.md]

Pairs are held-out renders (exact ground truth): person A at its own pose, person B turned to
another yaw (0.25 to 0.6 rad away); the true result is A with B's hair at A's pose, rendered, with
its exact label map. The first row is the ceiling: for a generator paired with the renderer (the
distilled default) its own image of the true result's latent, which no method can beat; for one
that is not, its encoder's reconstruction of the true image (a bound for any encoder-based
transfer), followed by that encoder's reconstruction of the face image (the hair not changed: what
a transfer that keeps the person but not the hair scores). Methods: the naive baseline (B's hair
pixels pasted onto A), the hair model (``--hair-model``: a catalogue name or a safetensors file of an
FG'21 network or a hair mixer; default the catalogue's for the generator), the model + identity
steps (its code refined towards the face's identity, ``hair.identity_steps``), each also + alpha
blend, and the optimisation method (on the first ``--n-opt`` pairs: it takes seconds a pair), with
and without the blend. Scores: PSNR and LPIPS to the true image, hair IoU (the segmenter's map of
the result against the true labels) and the identity distance to A: the parameter regressor's,
which the identity steps, the optimisation and the encoders are steered by, and the held-out
reader's (a second regressor none of them saw, where the catalogue names one).
Retrieval: the FG'21 protocol with the regressor's weighted identity fields (the embedding
``python -m semedit eval --preset hair`` ranks by), and the held-out reader's: a gallery of
generated people, transfers of other people's hair onto the first ``--queries`` of them, each
ranked against the gallery (paper: 98.3 % top-1, mean rank 1.143, ArcFace over 100k); beside it, how much of the donor's hair each
transfer shows (hair IoU of the segmenter's maps of result and donor, on the first 200 queries),
since a transfer can keep the person by not moving the hair. Speed: one model transfer at batch 1
against G's forward in the same run, and the optimisation's wall time.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Optional

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semedit.evaluation.reports import alternating_medians, publish  # noqa: E402
from semedit import pipeline  # noqa: E402
from semedit.evaluation.hair import (RetrievalSet, hair_iou, hair_retrieval, naive_transfer,  # noqa: E402
                                     score_against_truth)
from semedit.hair import HairOptimisation, alpha_blend, identity_steps, transfer_by_optimisation  # noqa: E402
from semedit.inversion.suite import context_for  # noqa: E402
from semedit.latents import Latent, synthesize  # noqa: E402
from semedit.encoders import encode  # noqa: E402
from semedit.registry import ModelSpec, Registry  # noqa: E402
from semedit.synth.params import MAX_YAW, latent_with, params_from_latent  # noqa: E402
from semedit.synth.render import render  # noqa: E402

DEFAULT = "embedded-portraits-64"
HELD_OUT_SEED = 777_000


def held_out_pairs(n: int, size: int, seed: int = HELD_OUT_SEED) -> dict:
    """n pairs of renders with different poses and their true results (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    z_face, z_hair = torch.randn(n, 64, generator=g), torch.randn(n, 64, generator=g)
    face_yaw = params_from_latent(z_face).pose()["yaw"]
    away = (0.25 + 0.35 * torch.rand(n, generator=g)) * torch.where(face_yaw > 0, -1.0, 1.0)
    hair_yaw = (face_yaw + away).clamp(-MAX_YAW * 0.95, MAX_YAW * 0.95)
    z_true = latent_with(z_face, hair_of=z_hair)
    truth = render(params_from_latent(z_true), size)
    hair = render(params_from_latent(latent_with(z_hair, yaw=hair_yaw)), size)
    face = render(params_from_latent(z_face), size)
    return {"face": face.image, "face_labels": face.labels, "hair": hair.image, "hair_labels": hair.labels,
            "truth": truth.image, "truth_labels": truth.labels, "yaw_gap": (hair_yaw - face_yaw).abs(), "z_true": z_true}


def mean_row(label: str, scores: dict, n: int) -> str:
    cells = [f"{float(v.mean()):.3f} ± {float(v.std()):.3f}" if len(v) > 1 else f"{float(v.mean()):.3f}"
             for v in scores.values()]
    return f"| {label} | {n} | " + " | ".join(cells) + " |"


def with_hair_model(registry: Registry, model: str, name: Optional[str]) -> tuple:
    """(registry, hair model name or None): ``name`` a catalogue name, a safetensors file (joined to
    the catalogue as a hair model of ``model``, under the file's path), or None for the catalogue's."""
    if name is None:
        return registry, pipeline.hair_model_for(registry, model)
    if not name.endswith(".safetensors"):
        registry.catalogue.get(name)  # an unknown name fails here, before anything runs
        return registry, name
    path = Path(name).resolve()
    spec = ModelSpec(name=name, kind="hair", format="safetensors", file=path, description="candidate",
                     config={"domain": registry.catalogue.get(model).config.get("domain"), "generator": model})
    return registry.with_models([spec]), name


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT, help="a generator of the embedded domain")
    ap.add_argument("--hair-model", help="a hair network or mixer: catalogue name or safetensors file "
                                         "(default: the catalogue's for --model; none: no model rows)")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--n-opt", type=int, default=20)
    ap.add_argument("--opt-steps", type=int, default=150, help="steps of each inversion; the transfer runs 50 more")
    ap.add_argument("--gallery", type=int, default=10000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/hair_transfer.md")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    t0 = time.time()
    model = a.model
    registry, hair_name = with_hair_model(Registry.from_settings(), model, a.hair_model)
    G = registry.get(model, "cpu")
    spec = registry.catalogue.get(model)
    paired = spec.paired_with_renderer
    net = pipeline.load_hair_network(registry, hair_name, "cpu") if hair_name else None
    encoder_name = None if paired else pipeline.encoder_of(registry, model)
    encoder = registry.get(encoder_name, "cpu") if encoder_name else None
    seg = registry.get(spec.config["segmenter"], "cpu")
    ctx = context_for(registry, model)
    judge = pipeline.held_out_identity(registry, model)
    res = G.config.resolution
    p = held_out_pairs(a.n, res)

    @torch.no_grad()
    def network(face, hair):
        return synthesize(G, Latent("w+", net(face, hair))).clamp(-1, 1)

    def steered(face, hair, face_labels=None):
        """The network's codes refined by identity steps, the hair it drew held (identity read on
        the blend into the face image, given its ``face_labels``)."""
        with torch.no_grad():
            codes = identity_steps(G, net(face, hair), face, ctx.identity, seg.predict, face_labels=face_labels)
            return synthesize(G, Latent("w+", codes)).clamp(-1, 1)

    @torch.no_grad()
    def encoded(images):
        return torch.cat([encode(encoder, G, x)[1].clamp(-1, 1) for x in images.split(50)])

    def scores(results, idx=slice(None)):
        out = score_against_truth(results, p["truth"][idx], p["truth_labels"][idx], p["face"][idx],
                                  perceptual=ctx.scorer, segment=seg.predict, identity=ctx.identity)
        if judge is not None:
            with torch.no_grad():
                out["identity distance, held-out reader"] = judge(results, p["face"][idx])
        return out

    rows = []
    if paired:  # what the generator draws of the true latent: no method's result can be closer
        with torch.no_grad():
            ceiling = G(p["z_true"], fused=False).clamp(-1, 1)
        rows.append(mean_row("ceiling: the generator's own image of the true latent", scores(ceiling), a.n))
    elif encoder is not None:
        rows.append(mean_row(f"bound: its encoder ({encoder_name}) on the true image", scores(encoded(p["truth"])), a.n))
        rows.append(mean_row("reference: its encoder on the face image (hair not changed)",
                             scores(encoded(p["face"])), a.n))
    naive = naive_transfer(p["face"], p["hair"], p["hair_labels"])
    rows.append(mean_row("naive: the hair image's hair pasted on", scores(naive), a.n))
    if net is not None:
        model_out = torch.cat([network(f, h) for f, h in zip(p["face"].split(50), p["hair"].split(50))])
        rows.append(mean_row(f"hair model `{hair_name}`", scores(model_out), a.n))

        def blend(results):
            return torch.cat([alpha_blend(pipeline_result(results[i:i + 1]), p["face"][i:i + 1], p["face_labels"][i],
                                          seg.predict(results[i:i + 1])[0]).image for i in range(a.n)])
        if ctx.identity is not None:
            steered_out = torch.cat([steered(f, h) for f, h in zip(p["face"].split(50), p["hair"].split(50))])
            rows.append(mean_row("hair model + identity steps", scores(steered_out), a.n))
        rows.append(mean_row("hair model + alpha blend", scores(blend(model_out)), a.n))
        if ctx.identity is not None:  # the tab's default: steps that read identity on the blend, then blended
            for_blend = torch.cat([steered(f, h, fl) for f, h, fl in
                                   zip(p["face"].split(50), p["hair"].split(50), p["face_labels"].split(50))])
            rows.append(mean_row("hair model + identity steps + alpha blend", scores(blend(for_blend)), a.n))
    k = min(a.n_opt, a.n)
    opt, opt_blend, opt_seconds = [], [], []
    cfg = HairOptimisation(invert_steps=a.opt_steps, steps=a.opt_steps + 50)
    for i in range(k):
        face_yaw = float(pipeline.read_attributes(registry, model, p["face"][i:i + 1])["yaw"][0])
        r = transfer_by_optimisation(G, p["face"][i:i + 1], p["hair"][i:i + 1], face_labels=p["face_labels"][i],
                                     hair_labels=p["hair_labels"][i], perceptual=ctx.perceptual,
                                     device=torch.device("cpu"), cfg=cfg, identity=ctx.identity,
                                     turn=pipeline.yaw_turner(registry, model, face_yaw), segment=seg.predict)
        opt.append(r.image)
        opt_blend.append(alpha_blend(r, p["face"][i:i + 1], p["face_labels"][i], seg.predict(r.image)[0]).image)
        opt_seconds.append(r.seconds)
        print(f"optimisation {i + 1}/{k}: {r.seconds:.1f} s", flush=True)
    if k:
        rows.append(mean_row(f"optimisation (both inversions in one batch, {cfg.invert_steps} steps; transfer "
                             f"{cfg.steps} steps)",
                             scores(torch.cat(opt), slice(0, k)), k))
        rows.append(mean_row("optimisation + alpha blend", scores(torch.cat(opt_blend), slice(0, k)), k))

    # the FG'21 retrieval protocol (python -m semedit eval --preset hair runs it sharded, at any size)
    rset = RetrievalSet.draw(a.gallery, a.queries, HELD_OUT_SEED + 1)
    regressor = registry.get(spec.config["regressor"], "cpu")
    transfers = rset.transfers(G, net=net, segment=seg.predict, paired=paired, encoder=encoder, identity=ctx.identity)
    readers = {"regressor": regressor.identity_embedding}
    if judge is not None:
        readers["held-out"] = judge.regressor.identity_embedding
    retrieval = hair_retrieval(rset.people(G), transfers, readers, n_gallery=a.gallery, n_queries=a.queries)
    shown = torch.arange(min(200, a.queries))
    donors = rset.hair_donors(G)(shown)
    with torch.no_grad():
        donor_labels = seg.predict(donors)
        donor_iou = {name: hair_iou(seg.predict(draw(shown)), donor_labels).mean() for name, draw in transfers.items()}

    # speed
    z = torch.randn(1, G.config.z_dim)
    f1, h1 = p["face"][:1], p["hair"][:1]
    steps_time = None
    if net is not None and ctx.identity is not None:
        tr, steps_time, fw = alternating_medians([lambda: network(f1, h1), lambda: steered(f1, h1), lambda: G(z)],
                                                 repeats=20)
    elif net is not None:
        tr, fw = alternating_medians([lambda: network(f1, h1), lambda: G(z)], repeats=20)
    else:
        tr, (fw,) = None, alternating_medians([lambda: G(z)], repeats=20)

    how = "its own image of the true latent" if paired else "renders; the hair image is another render"
    lines = [f"# Hairstyle transfer on {a.n} held-out embedded pairs\n",
             f"`python bench/hair_transfer.py {' '.join(sys.argv[1:] if argv is None else argv)}` on `{model}` "
             f"({res} px; {'paired with the renderer' if paired else 'not paired with the renderer'}: inputs are "
             f"{how}); poses differ by {float(p['yaw_gap'].mean()):.2f} rad on average. Mean ± std over pairs; "
             "identity: the parameter regressor's distance to the face image (same person below "
             f"{getattr(ctx.identity, 'same_person_below', None)})"
             + (f"; the held-out reader's (`{spec.config['identity_judge']}`, same person below "
                f"{judge.same_person_below}), which no method here is steered by" if judge is not None else "")
             + ".\n",
             f"| method | pairs | PSNR dB (higher better) | LPIPS ({ctx.scorer.name}) | hair IoU | identity distance |"
             + (" identity distance, held-out reader |" if judge is not None else ""),
             "|---|---|---|---|---|---|" + ("---|" if judge is not None else ""), *rows, "",
             "## The FG'21 retrieval protocol\n",
             f"Gallery: {a.gallery:,} generated people; queries: {a.queries:,} of them with another person's "
             "hair, ranked by the regressor's identity distance (weighted identity fields)"
             + (" and by the held-out reader's" if judge is not None else "") + ". Donor hair IoU: the "
             f"segmenter's hair in the result against the donor's, first {len(shown)} queries (the donors "
             f"{'are turned to a random yaw' if paired else 'are other samples at their own pose'}).\n"]
    held_out = retrieval.get("held-out")
    lines += (["| transfer | top-1 | mean rank | top-1, held-out reader | mean rank, held-out reader "
               "| donor hair IoU |",
               "|---|---|---|---|---|---|"] if held_out else
              ["| transfer | top-1 | mean rank | donor hair IoU |", "|---|---|---|---|"])
    for name, r in retrieval["regressor"].items():
        j = f" {100 * held_out[name]['top1']:.1f} % | {held_out[name]['mean_rank']:.3f} |" if held_out else ""
        lines.append(f"| {name} | {100 * r['top1']:.1f} % | {r['mean_rank']:.3f} |{j} {float(donor_iou[name]):.3f} |")
    lines += ["| paper (FFHQ, 100k gallery, 1k queries, ArcFace) | 98.3 % | 1.143 |"
              + (" 98.3 % | 1.143 |" if held_out else "") + " |", "",
              "## Speed (batch 1, 2 CPU threads)\n", "| step | ms | ratio to G forward |", "|---|---|---|",
              f"| G forward | {fw * 1000:.1f} | 1.00 |"]
    if tr is not None:
        lines.append(f"| hair model transfer (encoders + G) | {tr * 1000:.1f} | {tr / fw:.2f} |")
    if steps_time is not None:
        lines.append(f"| hair model + identity steps | {steps_time * 1000:.1f} | {steps_time / fw:.2f} |")
    if opt_seconds:
        lines.append(f"| optimisation transfer (both inversions + transfer) | {statistics.mean(opt_seconds) * 1000:.0f} | "
                     f"{statistics.mean(opt_seconds) / fw:.0f} |")
    lines += ["", "Aims: the network (with its identity steps too) <= 0.3 s a transfer at 64 px, optimisation <= 30 s. "
              f"Total {time.time() - t0:.0f} s."]
    publish("\n".join(lines) + "\n", a.out)


def pipeline_result(image):
    """A HairResult wrapper for blending a batch-1 network image (its code is not needed here)."""
    from semedit.hair import HairResult
    return HairResult("FG'21 network", image, None, None, image, None, None, 0.0)


if __name__ == "__main__":
    main()
