"""The harness's tasks: the seed's Table 1 and Table 2 and the FG'21 hair retrieval figures.

Each task lists its work items, turns one into rows (``harness.Task``) and makes its summary
beside the papers' figures. Presets (``PRESETS``) fix their sizes: the full runs whose results
are committed to ``bench/results/`` and small ones that CI runs in seconds.

- **table1**: every inversion method the generator has (optimisation in W, W+ and S, ChunkyGAN;
  its catalogued encoders, ReStyle and HyperStyle with their iterations; Pivotal Tuning) on
  held-out renders in the domain and wearing out-of-domain accessories (or on a folder of
  photos): LPIPS (a perceptual model other than the loss's), identity distance, L2, PSNR, time.
- **table2**: identity distance after edits, per inversion method (``editing.identity_after_edits``),
  and the leakage of a chunk edit outside its region.
- **hair**: the retrieval protocol (``hair.RetrievalSet``): gallery and query identity
  embeddings in chunks, ranked on the first shard.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import pipeline
from ..errors import SemeditError
from ..inversion.suite import Knobs, context_for, identity_for

ItemRows = List[Dict[str, object]]


@dataclass(frozen=True)
class EvalConfig:
    """What a run evaluates. table1: ``in_domain`` + ``ood`` held-out renders (or every image in
    ``images``), ``steps`` per optimisation method (PTI: + ``pti_tune_steps``), ReStyle's and
    HyperStyle's ``encoder_iterations`` (None: each model's own), ``methods`` (labels or keys;
    empty: all); table2: ``in_domain`` renders, edits of ``units``; hair:
    ``gallery`` people, ``queries`` transfers, embedded in chunks of ``chunk``."""

    task: str = "table1"
    model: Optional[str] = None
    images: Optional[str] = None
    in_domain: int = 20
    ood: int = 10
    steps: int = 200
    pti_tune_steps: int = 100
    methods: Tuple[str, ...] = ()
    units: float = 2.0
    gallery: int = 10_000
    queries: int = 1_000
    chunk: int = 250
    seed: int = 0
    encoder_iterations: Optional[int] = None

    def settings(self, model: str, registry=None) -> dict:
        """The settings a results folder records; optional fields left at None are not written, so
        folders made before they existed still resume. With ``registry``, the model files the
        results depend on too (``Registry.model_files``)."""
        d = asdict(self)
        d["model"], d["methods"] = model, list(self.methods)
        if d["encoder_iterations"] is None:
            del d["encoder_iterations"]
        if registry is not None:
            d["model_files"] = registry.model_files(model)
        return d


PRESETS: Dict[str, EvalConfig] = {
    "table1": EvalConfig("table1", in_domain=20, ood=10, steps=200, pti_tune_steps=100),
    "table1-small": EvalConfig("table1", in_domain=2, ood=1, steps=4, pti_tune_steps=2),
    "table2": EvalConfig("table2", in_domain=30, steps=150, pti_tune_steps=150),
    "table2-small": EvalConfig("table2", in_domain=2, steps=4, pti_tune_steps=4),
    "hair": EvalConfig("hair", gallery=10_000, queries=1_000),
    "hair-small": EvalConfig("hair", gallery=200, queries=50, chunk=50),
}

TABLE1_SEED = 40_000_000  # held-out renders (the generator and every trained model saw other seeds)
TABLE2_SEED = 777
HAIR_SEED = 777_001


def make_task(registry, cfg: EvalConfig):
    """The task of ``cfg`` over ``registry`` (its settings' device is the shard's)."""
    model = cfg.model or registry.catalogue.default_generator
    tasks = {"table1": Table1, "table2": Table2, "hair": HairRetrieval}
    if cfg.task not in tasks:
        raise SemeditError(f"unknown task {cfg.task!r}; one of {', '.join(tasks)}")
    return tasks[cfg.task](registry, model, cfg)


def _f(row: Dict[str, str], key: str) -> float:
    v = row.get(key, "")
    return float(v) if v not in ("", None) else math.nan


def _mean_std(values: Sequence[float]) -> str:
    v = np.array([x for x in values if math.isfinite(x)])
    if not len(v):
        return "n/a"
    digits = 5 if abs(v.mean()) < 0.01 else 4 if abs(v.mean()) < 10 else 2
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def _pyplot():
    import matplotlib  # deferred: only the plot needs it (mediapipe brings it)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


# ---- Table 1 ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Method:
    label: str
    key: str
    family: str
    knobs: dict = field(default_factory=dict)


def table1_methods(registry, model: str) -> List[Method]:
    """The methods of the seed's Table 1 that generator ``model`` has, in the paper's order:
    optimisation, encoders, generator modification."""
    out = [Method("W", "w", "optimisation"), Method("W+", "w+", "optimisation"), Method("S", "s", "optimisation"),
           Method("ChunkyGAN W+", "chunky", "optimisation", {"lambda_reg": 1.0})]
    tuned = [Method("PTI", "pti", "generator modification")]
    for key in pipeline.method_keys(registry, model):
        if key.startswith(pipeline.ENCODER_PREFIX):
            spec = registry.catalogue.get(key[len(pipeline.ENCODER_PREFIX):])
            m = Method(spec.config.get("method", spec.name), key, pipeline.method_family(registry, key))
            (tuned if m.family == "generator modification" else out).append(m)
    return out + tuned


class Table1:
    name = "table1"
    columns = ("item", "set", "target", "method", "family", "LPIPS", "identity", "L2", "PSNR", "seconds")

    def __init__(self, registry, model: str, cfg: EvalConfig):
        self.registry, self.model, self.cfg = registry, model, cfg
        methods = table1_methods(registry, model)
        if cfg.methods:
            wanted = {m.lower() for m in cfg.methods}
            methods = [m for m in methods if m.label.lower() in wanted or m.key.lower() in wanted]
            if not methods:
                raise SemeditError(f"none of {', '.join(cfg.methods)} is a method of {model}")
        self.methods = {m.label: m for m in methods}
        self._targets: Optional[Dict[str, Tuple[str, object]]] = None
        self._ctx = None

    def settings(self) -> dict:
        return self.cfg.settings(self.model, self.registry)

    def targets(self) -> Dict[str, Tuple[str, object]]:
        """{target name: (set, Target)}: a folder's images, or held-out renders of the domain."""
        if self._targets is None:
            self._targets = self._folder() if self.cfg.images else self._renders()
        return self._targets

    def _folder(self) -> Dict[str, Tuple[str, object]]:
        from ..imaging import IMAGE_SUFFIXES
        folder = Path(self.cfg.images)
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        if not paths:
            raise SemeditError(f"no images in {folder}")
        out = {}
        for p in paths:
            try:
                out[p.stem] = ("images", pipeline.load_target(self.registry, self.model, p))
            except SemeditError as e:  # unreadable, or no face: left out, said once
                print(f"{p.name}: left out: {e}")
        return out

    def _renders(self) -> Dict[str, Tuple[str, object]]:
        """Held-out renders drawn at 256 px and area-resized to the generator's resolution, as a
        photograph would be; the last ``ood`` wear an out-of-domain accessory each."""
        from ..imaging import resize
        from ..synth.params import ACCESSORIES, sample_portraits, stack
        from ..synth.render import render
        from ..targets import Target
        if not self.registry.catalogue.get(self.model).embedded:
            raise SemeditError(f"{self.model} is not of the embedded domain: give a folder of photos (--images)")
        n_in, n_ood = self.cfg.in_domain, self.cfg.ood
        p = sample_portraits(n_in + n_ood, seed=TABLE1_SEED + self.cfg.seed)
        ood = [ACCESSORIES[1 + i % (len(ACCESSORIES) - 1)] for i in range(n_ood)]
        batch = stack([p.select(slice(0, n_in))] + [p.select(n_in + i).with_accessory(a) for i, a in enumerate(ood)])
        res = self.registry.get(self.model).config.resolution
        images = resize(render(batch, 256).image, res)
        out = {}
        for i in range(n_in + n_ood):
            name = f"in-domain {i:03d}" if i < n_in else f"out-of-domain {i - n_in:03d} ({ood[i - n_in]})"
            out[name] = ("in-domain" if i < n_in else "out-of-domain",
                         Target.from_image(images[i:i + 1], name=name, truth=batch.select(i)))
        return out

    def items(self) -> List[str]:
        return [f"{t} | {m}" for t in self.targets() for m in self.methods]

    def run(self, item: str) -> ItemRows:
        name, label = item.rsplit(" | ", 1)
        subset, target = self.targets()[name]
        m = self.methods[label]
        if self._ctx is None:
            self._ctx = context_for(self.registry, self.model)
        knobs = Knobs(steps=self.cfg.steps, n_chunks=4, pti_tune_steps=self.cfg.pti_tune_steps, seed=self.cfg.seed,
                      encoder_iterations=self.cfg.encoder_iterations, **m.knobs)
        (o,) = pipeline.invert(self.registry, self.model, target, [m.key], knobs, ctx=self._ctx)
        s = o.scores
        return [{"set": subset, "target": name, "method": label, "family": m.family, "LPIPS": f"{s.lpips:.6g}",
                 "identity": "" if s.identity is None else f"{s.identity:.6g}", "L2": f"{s.l2:.6g}",
                 "PSNR": f"{s.psnr:.6g}", "seconds": f"{s.seconds:.4g}"}]

    def _by(self, rows) -> Dict[Tuple[str, str], List[Dict[str, str]]]:
        out: Dict[Tuple[str, str], List[Dict[str, str]]] = {}
        for r in rows:
            out.setdefault((r["set"], r["method"]), []).append(r)
        return out

    def summary(self, rows: List[Dict[str, str]]) -> str:
        by = self._by(rows)
        sets = list(dict.fromkeys(r["set"] for r in rows))
        ctx = self._ctx or context_for(self.registry, self.model)
        ident = getattr(ctx.identity, "name", None) or "none"
        counts = ", ".join(f"{s} (n={len({r['target'] for r in rows if r['set'] == s})})" for s in sets)
        lines = [f"# Table 1 on `{self.model}`: inversion methods compared\n",
                 f"Targets: {counts}; "
                 f"{self.cfg.steps} steps for every optimisation method (PTI: {self.cfg.steps} pivot + "
                 f"{self.cfg.pti_tune_steps} tuning steps; ChunkyGAN n = 4, lambda_reg = 1; ReStyle and HyperStyle: "
                 f"{self.cfg.encoder_iterations or 'their own'} iterations); loss "
                 f"{ctx.perceptual.name}, LPIPS column {ctx.scorer.name}; identity distance: {ident}; L2: mean "
                 "squared error of images in [-1, 1] (four times that of [0, 1] images; PSNR is the same on both). "
                 "Mean ± std over targets; seconds: mean wall time on the machine that ran it.\n",
                 "| set | family | method | LPIPS ↓ | identity ↓ | L2 ↓ | PSNR dB ↑ | seconds |",
                 "|---|---|---|---|---|---|---|---|"]
        for s in sets:
            for label in self.methods:
                rs = by.get((s, label))
                if not rs:
                    continue
                lines.append(f"| {s} | {rs[0]['family']} | {label} | " + " | ".join(
                    _mean_std([_f(r, k) for r in rs]) for k in ("LPIPS", "identity", "L2", "PSNR"))
                    + f" | {np.mean([_f(r, 'seconds') for r in rs]):.2f} |")
        lines += ["", "## The papers' orderings, checked here\n", *table1_orderings(by, sets), "",
                  "The ChunkyGAN paper's Table 1 (FFHQ, CelebA-HQ photos; ArcFace identity) reports these methods' "
                  "LPIPS, identity and L2; its numbers were not at hand when this was written, so only the "
                  "orderings it and the encoder papers state are compared, not the values."]
        return "\n".join(lines) + "\n"

    def plot(self, rows: List[Dict[str, str]], path: Path) -> None:
        plt = _pyplot()
        by = self._by(rows)
        sets = list(dict.fromkeys(r["set"] for r in rows))
        labels = [m for m in self.methods if any((s, m) in by for s in sets)]
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        width = 0.8 / max(1, len(sets))
        for ax, key in zip(axes, ("LPIPS", "identity")):
            for j, s in enumerate(sets):
                vals = [[_f(r, key) for r in by.get((s, m), [])] for m in labels]
                ax.bar(np.arange(len(labels)) + j * width, [np.nanmean(v) if v else np.nan for v in vals], width,
                       yerr=[np.nanstd(v) if v else 0 for v in vals], label=s, capsize=2)
            ax.set_xticks(np.arange(len(labels)) + width * (len(sets) - 1) / 2, labels, rotation=30, ha="right")
            ax.set_title(f"{key} (lower is better)")
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def table1_orderings(by: Dict[Tuple[str, str], List[Dict[str, str]]], sets: Sequence[str]) -> List[str]:
    """Each ordering the ChunkyGAN paper (and the encoder papers it compares) report, as a line
    saying whether it holds here, by mean LPIPS per set; orderings whose methods did not run
    are left out."""
    def lp(s, m):
        rs = by.get((s, m))
        return float(np.nanmean([_f(r, "LPIPS") for r in rs])) if rs else None

    def sec(m):
        v = [_f(r, "seconds") for s in sets for r in by.get((s, m), [])]
        return float(np.mean(v)) if v else None

    lines = []

    def check(claim: str, ok_by_set: Dict[str, bool], detail: str) -> None:
        if not ok_by_set:
            return
        verdict = "holds" if all(ok_by_set.values()) else "does not hold" if not any(ok_by_set.values()) else \
            "holds on " + ", ".join(s for s, ok in ok_by_set.items() if ok) + " only"
        lines.append(f"- {claim}: **{verdict}** ({detail}).")

    def pairs(a, b):
        return {s: (lp(s, a), lp(s, b)) for s in sets if lp(s, a) is not None and lp(s, b) is not None}

    p = pairs("W+", "W")
    check("W+ reconstructs better than W", {s: x < y for s, (x, y) in p.items()},
          "; ".join(f"{s}: {x:.4f} vs {y:.4f}" for s, (x, y) in p.items()))
    opt = ["W", "W+", "S"]
    best = {s: [m for m in opt if lp(s, m) is not None] for s in sets}
    ok = {s: lp(s, "ChunkyGAN W+") < min(lp(s, m) for m in ms) for s, ms in best.items()
          if ms and lp(s, "ChunkyGAN W+") is not None}
    check("ChunkyGAN reconstructs best of the optimisation methods", ok,
          "; ".join(f"{s}: {lp(s, 'ChunkyGAN W+'):.4f} vs {min(lp(s, m) for m in best[s]):.4f}" for s in ok))
    if {"in-domain", "out-of-domain"} <= set(sets) and all(lp(s, m) is not None for s in ("in-domain", "out-of-domain")
                                                          for m in ("W+", "ChunkyGAN W+")):
        gap = {s: lp(s, "W+") - lp(s, "ChunkyGAN W+") for s in ("in-domain", "out-of-domain")}
        check("ChunkyGAN's lead over W+ is larger out of the domain",
              {"both sets": gap["out-of-domain"] > gap["in-domain"]},
              f"lead {gap['in-domain']:.4f} in-domain, {gap['out-of-domain']:.4f} out-of-domain")
    p = pairs("pSp", "e4e")
    check("pSp reconstructs better than e4e (e4e trades fidelity for editability)",
          {s: x < y for s, (x, y) in p.items()}, "; ".join(f"{s}: {x:.4f} vs {y:.4f}" for s, (x, y) in p.items()))
    for restyle, base in (("ReStyle-pSp", "pSp"), ("ReStyle-e4e", "e4e")):
        p = pairs(restyle, base)
        check(f"{restyle}'s iterations improve on {base}", {s: x < y for s, (x, y) in p.items()},
              "; ".join(f"{s}: {x:.4f} vs {y:.4f}" for s, (x, y) in p.items()))
    encoders = [m for m in ("e4e", "pSp", "ReStyle-pSp", "ReStyle-e4e") if any((s, m) in by for s in sets)]
    for tuned in ("PTI", "HyperStyle"):
        ok = {s: lp(s, tuned) < min(lp(s, m) for m in encoders if lp(s, m) is not None)
              for s in sets if lp(s, tuned) is not None and any(lp(s, m) is not None for m in encoders)}
        check(f"{tuned} (generator modification) reconstructs better than every encoder", ok,
              "; ".join(f"{s}: {lp(s, tuned):.4f} vs best encoder "
                        f"{min(lp(s, m) for m in encoders if lp(s, m) is not None):.4f}" for s in ok))
    if sec("HyperStyle") is not None and sec("PTI") is not None:
        check("HyperStyle is much faster than PTI", {"time": sec("HyperStyle") < 0.1 * sec("PTI")},
              f"{sec('HyperStyle'):.2f} s vs {sec('PTI'):.2f} s")
    return lines


# ---- Table 2 ------------------------------------------------------------------------------------

class Table2:
    name = "table2"
    columns = ("item", "target", "method", "edit", "identity reconstruction vs edited", "identity input vs edited",
               "change inside", "change outside")

    def __init__(self, registry, model: str, cfg: EvalConfig):
        from .editing import TABLE2_METHODS, table2_directions
        self.registry, self.model, self.cfg = registry, model, cfg
        wanted = {m.lower() for m in cfg.methods}
        self.methods = {label: (label, key, over) for label, key, over in TABLE2_METHODS
                        if not wanted or label.lower() in wanted or key in wanted}
        if not self.methods:
            raise SemeditError(f"none of {', '.join(cfg.methods)} is a Table 2 method "
                               f"({', '.join(m[0] for m in TABLE2_METHODS)})")
        self.directions, self.missing = table2_directions(registry, model)
        if not self.directions:
            raise SemeditError(f"{model} has no built-in W or W+ directions to edit with")
        self._targets = None
        self._ctx = None

    def settings(self) -> dict:
        return self.cfg.settings(self.model, self.registry)

    def targets(self):
        """{name: Target}: held-out renders with their exact label maps."""
        if self._targets is None:
            from ..synth.params import params_from_latent
            from ..synth.render import render
            from ..targets import Target
            n = self.cfg.in_domain
            g = torch.Generator().manual_seed(TABLE2_SEED + self.cfg.seed)
            p = params_from_latent(torch.randn(n, 64, generator=g))
            r = render(p, self.registry.get(self.model).config.resolution)
            self._targets = {f"render {i:03d}": Target.from_image(r.image[i:i + 1], labels=r.labels[i],
                                                                  name=f"render {i:03d}") for i in range(n)}
        return self._targets

    def items(self) -> List[str]:
        return [f"{t} | {m}" for t in self.targets() for m in self.methods]

    def run(self, item: str) -> ItemRows:
        from .editing import identity_after_edits
        name, label = item.rsplit(" | ", 1)
        if self._ctx is None:
            self._ctx = context_for(self.registry, self.model)
        identity = identity_for(self.registry, self.model)
        table, leaks = identity_after_edits(self.registry, self.model, [self.targets()[name]], self.directions,
                                            identity, self._ctx, steps=self.cfg.steps,
                                            pti_tune_steps=self.cfg.pti_tune_steps, seed=self.cfg.seed,
                                            units=self.cfg.units,
                                            methods=[self.methods[label]])
        leak = {x[0]: x[1:] for x in leaks}
        rows = []
        for (method, edit), [(recon, source)] in table.items():
            inside, outside = leak.get(method, ("", "")) if edit == "hair length" else ("", "")
            rows.append({"target": name, "method": method, "edit": edit,
                         "identity reconstruction vs edited": f"{recon:.6g}",
                         "identity input vs edited": f"{source:.6g}",
                         "change inside": inside if inside == "" else f"{inside:.6g}",
                         "change outside": outside if outside == "" else f"{outside:.6g}"})
        return rows

    def _tables(self, rows):
        table: Dict[Tuple[str, str], List[Tuple[float, float]]] = {}
        leaks = []
        for r in rows:
            table.setdefault((r["method"], r["edit"]), []).append(
                (_f(r, "identity reconstruction vs edited"), _f(r, "identity input vs edited")))
            if r["change inside"] != "":
                leaks.append((r["method"], _f(r, "change inside"), _f(r, "change outside")))
        return table, leaks

    def summary(self, rows: List[Dict[str, str]]) -> str:
        from .editing import TABLE2_METHODS, table2_markdown
        table, leaks = self._tables(rows)
        n = len({r["target"] for r in rows})
        lines = [f"# Table 2 on `{self.model}`: identity after editing, per inversion method\n",
                 f"{n} held-out renders with exact label maps; {self.cfg.steps} steps per method (PTI: "
                 f"{self.cfg.steps} pivot + {self.cfg.pti_tune_steps} tuning steps); edits of "
                 f"+{self.cfg.units:g} units with the built-in sliders (W or W+ directions; ChunkyGAN: every "
                 "chunk, the hair chunk for hair length); identity: the domain's identity model.\n"]
        lines += table2_markdown(table, leaks, list(self.directions), self.missing,
                                 [m for m in TABLE2_METHODS if m[0] in self.methods])
        return "\n".join(lines) + "\n"

    def plot(self, rows: List[Dict[str, str]], path: Path) -> None:
        plt = _pyplot()
        table, _ = self._tables(rows)
        edits = list(self.directions)
        methods = [m for m in self.methods if any((m, e) in table for e in edits)]
        fig, ax = plt.subplots(figsize=(9, 3.6))
        width = 0.8 / max(1, len(methods))
        for j, m in enumerate(methods):
            ax.bar(np.arange(len(edits)) + j * width,
                   [np.mean([b for _, b in table.get((m, e), [(np.nan, np.nan)])]) for e in edits], width, label=m)
        ax.set_xticks(np.arange(len(edits)) + width * (len(methods) - 1) / 2, edits)
        ax.set_ylabel("identity distance, input vs edited")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


# ---- the FG'21 retrieval protocol ------------------------------------------------------------------

#: the retrieval protocol with a perfect generator: renders of the true results against a rendered gallery
RENDERED = "renderer: the true image (rendered gallery)"
RENDERED_GALLERY = "rendered gallery"


class HairRetrieval:
    """The retrieval protocol on an embedded generator. Each image is embedded by its regressor's
    identity fields and, when the generator's entry names one (``config.identity_judge``), by a
    second regressor that no training term uses: transfers and encoders trained against the first
    can move its reading without moving the person, and the second ranks them unswayed by that."""

    name = "hair"
    columns = ("item", "role", "person", "embedding", "judge embedding")

    def __init__(self, registry, model: str, cfg: EvalConfig):
        from ..synth.params import LATENT_DIM
        from .hair import RetrievalSet
        self.registry, self.model, self.cfg = registry, model, cfg
        spec = registry.catalogue.get(model)
        if not (spec.embedded and spec.config.get("regressor")):
            raise SemeditError(f"the hair retrieval protocol runs on the embedded domain's generators; "
                               f"{model} is not one")
        if spec.paired_with_renderer and registry.get(model).config.z_dim != LATENT_DIM:
            raise SemeditError(f"{model} is catalogued as paired with the renderer, but its z is not the "
                               f"renderer's {LATENT_DIM}-wide latent")
        if not 0 < cfg.queries <= cfg.gallery:
            raise SemeditError("need 0 < queries <= gallery")
        self.set = RetrievalSet.draw(cfg.gallery, cfg.queries, HAIR_SEED + cfg.seed)
        self._draws = None

    def settings(self) -> dict:
        return self.cfg.settings(self.model, self.registry)

    def draws(self):
        """(people, {transfer: draw}, embed), built once per shard; embed(images) -> (the
        regressor's identity embeddings [B, D], the judge's [B, D'] or None)."""
        if self._draws is None:
            reg, model = self.registry, self.model
            spec = reg.catalogue.get(model)
            G = reg.get(model)
            hair = pipeline.hair_model_for(reg, model)
            seg = reg.get(spec.config["segmenter"]) if spec.config.get("segmenter") else None
            regressor = reg.get(spec.config["regressor"])
            encoder = self._encoder()
            transfers = self.set.transfers(G, net=pipeline.load_hair_network(reg, hair) if hair else None,
                                           segment=(lambda x: seg.predict(x.to(G.w_avg.device)).cpu()) if seg else None,
                                           paired=spec.paired_with_renderer,
                                           encoder=reg.get(encoder) if encoder else None,
                                           identity=identity_for(reg, model))
            judge = pipeline.held_out_identity(reg, model)

            def embed(x: torch.Tensor) -> tuple:
                x = x.to(G.w_avg.device)
                return (regressor.identity_embedding(x).cpu(),
                        None if judge is None else judge.regressor.identity_embedding(x).cpu())
            rendered_people, rendered_truth = self.set.rendered(G.config.resolution)
            self._draws = ({"gallery": self.set.people(G), RENDERED_GALLERY: rendered_people},
                           {**transfers, RENDERED: rendered_truth}, embed)
        return self._draws

    def judge(self) -> Optional[str]:
        """The catalogue name of the held-out identity reader, or None."""
        return self.registry.catalogue.get(self.model).config.get("identity_judge")

    def _encoder(self) -> Optional[str]:
        """An unpaired generator's encoder, whose reconstruction of the face image is the reference
        row there (a paired generator has the exact ceiling instead)."""
        if self.registry.catalogue.get(self.model).paired_with_renderer:
            return None
        return pipeline.encoder_of(self.registry, self.model)

    def transfer_names(self) -> List[str]:
        from .hair import ENCODER_REFERENCE, NETWORK_BLENDED, NETWORK_IDENTITY, NETWORK_IDENTITY_BLENDED
        spec = self.registry.catalogue.get(self.model)
        names = ["ceiling: G of the true latent"] if spec.paired_with_renderer else []
        names += [ENCODER_REFERENCE] if self._encoder() else []
        if pipeline.hair_model_for(self.registry, self.model):
            names += ["FG'21 network", NETWORK_IDENTITY]
            names += [NETWORK_BLENDED, NETWORK_IDENTITY_BLENDED] if spec.config.get("segmenter") else []
        return names + (["naive paste"] if spec.config.get("segmenter") else []) + [RENDERED]

    def items(self) -> List[str]:
        c = self.cfg.chunk
        return ([f"{gallery}:{i}" for gallery in ("gallery", RENDERED_GALLERY) for i in range(0, self.cfg.gallery, c)]
                + [f"query:{name}:{i}" for name in self.transfer_names() for i in range(0, self.cfg.queries, c)])

    @torch.no_grad()
    def run(self, item: str) -> ItemRows:
        role, _, start = item.rpartition(":")
        start = int(start)
        people, transfers, embed = self.draws()
        if role in people:
            idx, draw = torch.arange(start, min(start + self.cfg.chunk, self.cfg.gallery)), people[role]
        else:
            role = role[len("query:"):]
            idx, draw = torch.arange(start, min(start + self.cfg.chunk, self.cfg.queries)), transfers[role]
        e, judged = embed(draw(idx))

        def text(row: torch.Tensor) -> str:
            return " ".join(f"{v:.6g}" for v in row.tolist())
        return [{"role": role, "person": int(i), "embedding": text(e[k]),
                 "judge embedding": "" if judged is None else text(judged[k])} for k, i in enumerate(idx.tolist())]

    def _results(self, rows, column: str = "embedding") -> Dict[str, dict]:
        """{transfer: {top1, mean_rank, ranks}} by the embeddings in ``column`` ("embedding", the
        regressor's, or "judge embedding"); {} when the rows have none there."""
        from .hair import retrieval_summary
        emb: Dict[str, Dict[int, List[float]]] = {}
        for r in rows:
            if r.get(column):
                emb.setdefault(r["role"], {})[int(r["person"])] = [float(v) for v in r[column].split()]
        if not emb:
            return {}
        galleries = {}
        for name in ("gallery", RENDERED_GALLERY):
            gallery = emb.get(name, {})
            if len(gallery) < self.cfg.gallery:
                raise SemeditError(f"the {name} is incomplete ({len(gallery)} of {self.cfg.gallery}): run again to finish")
            galleries[name] = torch.tensor([gallery[i] for i in range(self.cfg.gallery)])
        queries = {name: torch.tensor([v[i] for i in range(self.cfg.queries)]) for name, v in emb.items()
                   if name not in galleries and len(v) == self.cfg.queries}
        out = retrieval_summary(galleries["gallery"], {k: q for k, q in queries.items() if k != RENDERED})
        if RENDERED in queries:
            out.update(retrieval_summary(galleries[RENDERED_GALLERY], {RENDERED: queries[RENDERED]}))
        return out

    def summary(self, rows: List[Dict[str, str]]) -> str:
        from .hair import (ENCODER_REFERENCE, NETWORK_BLENDED, NETWORK_IDENTITY, NETWORK_IDENTITY_BLENDED,
                           PAPER_RETRIEVAL)
        results, judged = self._results(rows), self._results(rows, "judge embedding")
        paired = self.registry.catalogue.get(self.model).paired_with_renderer
        donor = ("another person's hair (turned to a random yaw)" if paired else
                 "another sample's hair (this generator is not paired with the renderer: its people and donors "
                 "are its own samples, at the poses it draws them)")
        lines = [f"# The FG'21 retrieval protocol on `{self.model}`\n",
                 f"Gallery: {self.cfg.gallery:,} generated people; queries: {self.cfg.queries:,} of them given "
                 f"{donor} by each transfer; each query ranked against the whole gallery "
                 "by the parameter regressor's identity distance (its identity fields, each weighted by how "
                 "steadily it reads them for one person)"
                 + (f" and, in the last two columns, by the same distance read by `{self.judge()}`, a second "
                    "regressor trained apart (another seed, renders only) that no transfer, encoder or slider was "
                    "trained against: what a method trained against the first reader gained by moving that reader's "
                    "output without moving the person shows as a gap between the two" if judged else "") + ".\n"]
        both = bool(judged)
        lines += (["| transfer | top-1 | mean rank | top-1, held-out reader | mean rank, held-out reader |",
                   "|---|---|---|---|---|"] if both else ["| transfer | top-1 | mean rank |", "|---|---|---|"])
        for name, r in results.items():
            j = judged.get(name)
            extra = (f" {100 * j['top1']:.1f} % | {j['mean_rank']:.3f} |" if j else " | |") if both else ""
            lines.append(f"| {name} | {100 * r['top1']:.1f} % | {r['mean_rank']:.3f} |" + extra)
        paper = f"{100 * PAPER_RETRIEVAL['top1']:.1f} % | {PAPER_RETRIEVAL['mean_rank']:.3f} |"
        lines.append("| paper (FFHQ, 100k gallery, 1k queries, ArcFace) | " + paper + (" " + paper if both else ""))
        net = (judged or results).get("FG'21 network")
        if net is not None:
            beats = net["top1"] > PAPER_RETRIEVAL["top1"] and net["mean_rank"] < PAPER_RETRIEVAL["mean_rank"]
            lines += ["", f"The FG'21 network {'beats' if beats else 'does not reach'} the paper's figures here"
                      + (" (by the held-out reader)" if both else "")
                      + ("" if beats or not paired else "; the ceiling row bounds what a transfer that draws its result "
                         "with this generator can reach with this identity model (the naive paste, which keeps the "
                         "face image's own pixels, is not bound by it)") + "."]
        if NETWORK_IDENTITY in results:
            lines += ["", f"*{NETWORK_IDENTITY}*: the network's code refined by a few gradient steps towards the face "
                      "image's identity as the regressor reads it, the hair the network drew held (the hair tab's "
                      "method of that name)" + (": it is steered by the first reader, so the held-out reader is the "
                                                "one to read it by." if both else ".")]
        if NETWORK_BLENDED in results:
            lines += ["", f"*{NETWORK_BLENDED}*: the network's transfer inside the hair (the face image's and the "
                      "result's, by the segmenter, feathered), the face image's own pixels elsewhere (after identity "
                      "steps the hair tab's default on the embedded generators): the face's pixels are the person's "
                      "own, so this row measures how far the new hair and the seam alone move the identity reading, "
                      "not how well the network keeps the person."]
        if NETWORK_IDENTITY_BLENDED in results:
            lines += ["", f"*{NETWORK_IDENTITY_BLENDED}*: the hair tab's default on the embedded generators: identity "
                      "steps that read the face image's identity on the transfer as the blend will show it (the "
                      "network's pixels inside the blend's mask, the face image's elsewhere), then that blend."]
        if ENCODER_REFERENCE in results:
            lines += ["", f"*{ENCODER_REFERENCE}*: the generator's encoder ({self._encoder()}) reconstructing the face "
                      "image itself, no hair changed: how much of a person survives the trip through the encoder "
                      "and the generator's latent, which any encoder-based transfer makes."]
        lines += ["", f"*{RENDERED}*: the same people and transfers drawn by the renderer and ranked against a "
                  "rendered gallery, i.e. the protocol with a perfect generator: what the identity model itself can "
                  "tell apart."]
        return "\n".join(lines) + "\n"

    def plot(self, rows: List[Dict[str, str]], path: Path) -> None:
        plt = _pyplot()
        results = self._results(rows)
        fig, ax = plt.subplots(figsize=(7, 3.6))
        bins = np.unique(np.logspace(0, math.log10(max(2, self.cfg.gallery)), 30).astype(int))
        for name, r in results.items():
            ax.hist(r["ranks"].numpy(), bins=bins, histtype="step", label=name, linewidth=1.5)
        ax.set_xscale("log")
        ax.set_xlabel("rank of the true person (1 = retrieved first)")
        ax.set_ylabel("queries")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def preset(name: str, **overrides) -> EvalConfig:
    """The preset ``name`` with the given fields replaced (None values are ignored)."""
    if name not in PRESETS:
        raise SemeditError(f"unknown preset {name!r}; one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
