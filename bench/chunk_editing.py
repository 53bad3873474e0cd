"""ChunkyGAN segment editing on the embedded domain: leakage, the seed's Table 2, and speed.

    python bench/chunk_editing.py [--n 30] [--steps 300] [--out bench/results/chunk_editing.md]

Per-target results are appended to a .jsonl file beside the output, so a cut-off run resumes; rows
of other settings or other model files (``Registry.model_files``) are redone.

Targets are held-out renders, whose label maps are exact. ChunkyGAN (n = 4, masks started from
the exact labels) and single-code methods invert each target; then each edit the domain has
(smile, age, beard, glasses, hair length: the built-in directions, +2 units) is applied:
- **Leakage**: the hair-length edit on the chunk that holds the hair against the same edit on the
  W+ code; mean absolute change outside and inside the exact hair region. Aim: the chunk edit
  changes pixels outside its region at most a tenth as much as the global edit.
- **Table 2** (identity distance after editing, the regressor's identity): (a) reconstruction
  vs edited, (b) input vs edited, for W, W+, ChunkyGAN W+ with lambda_reg 0 and 1, and PTI.
  Chunk edits move every chunk for global attributes (smile, age, beard, glasses) and the hair
  chunk for hair length. Paper (FFHQ, ArcFace): the regulariser lowers identity change after
  edits (beard: 0.312 -> 0.091).
- **Speed**: recompositing after a chunk edit (one chunk synthesised again) against the
  generator's forward pass, median of repeated runs, batch 1.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semedit.evaluation.reports import alternating_medians, publish  # noqa: E402
from semedit import pipeline  # noqa: E402
from semedit.editing.chunks import ChunkProject, composite, render_chunks, update_chunk  # noqa: E402
from semedit.evaluation.editing import identity_after_edits, table2_directions, table2_markdown  # noqa: E402
from semedit.inversion.suite import Knobs, context_for, identity_for  # noqa: E402
from semedit.registry import Registry  # noqa: E402
from semedit.synth.params import params_from_latent  # noqa: E402
from semedit.synth.render import render  # noqa: E402
from semedit.targets import Target  # noqa: E402

DEFAULT = "embedded-portraits-64"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--units", type=float, default=2.0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/chunk_editing.md")
    ap.add_argument("--rows", type=Path, help="per-target results, appended (default: beside --out, .rows.jsonl)")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    registry = Registry.from_settings()
    G = registry.get(DEFAULT, "cpu")
    identity = identity_for(registry, DEFAULT)
    ctx = context_for(registry, DEFAULT)
    dirs, missing = table2_directions(registry, DEFAULT)  # e.g. no beard the generator draws visibly
    edits = list(dirs)
    p = params_from_latent(torch.randn(a.n, 64, generator=torch.Generator().manual_seed(777)))
    renders = render(p, G.config.resolution)
    targets = [Target.from_image(renders.image[i:i + 1], labels=renders.labels[i]) for i in range(a.n)]
    t0 = time.time()
    table, leaks = {}, []
    rows = a.rows or a.out.with_suffix(".rows.jsonl")  # one line per target: an interrupted run resumes
    done, models = {}, registry.model_files(DEFAULT)
    if rows.is_file():
        for line in rows.read_text().splitlines():
            entry = json.loads(line)
            if entry["steps"] == a.steps and entry["units"] == a.units and entry.get("models") == models:
                done[entry["target"]] = entry
    for i, target in enumerate(targets):
        if i not in done:
            one, leak = identity_after_edits(registry, DEFAULT, [target], dirs, identity, ctx, steps=a.steps,
                                             units=a.units)
            done[i] = {"target": i, "steps": a.steps, "units": a.units, "models": models, "leaks": leak,
                       "table": [[m, e, v[0]] for (m, e), v in one.items()]}
            with open(rows, "a") as f:
                f.write(json.dumps(done[i]) + "\n")
            print(f"target {i + 1}/{a.n} ({time.time() - t0:.0f} s)", flush=True)
        for m, e, v in done[i]["table"]:
            table.setdefault((m, e), []).append(tuple(v))
        leaks += [tuple(x) for x in done[i]["leaks"]]

    lines = [f"# ChunkyGAN segment editing on {a.n} held-out renders\n",
             f"`python bench/chunk_editing.py {' '.join(sys.argv[1:] if argv is None else argv)}`; {a.steps} steps "
             f"per method, edits of +{a.units:g} units with the built-in W directions; identity: the parameter "
             "regressor's (RMS difference of predicted identity parameters, each weighted by how steadily it "
             "reads for one person).\n"]
    lines += table2_markdown(table, leaks, edits, missing)

    # speed: recomposite after a chunk edit vs G forward
    project = ChunkProject.from_result(next(iter(pipeline.invert(
        registry, DEFAULT, Target.from_image(renders.image[:1]), ["chunky"], Knobs(steps=5), ctx=ctx))).result)
    cached = render_chunks(G, project)
    edited = project.with_edit(0, dirs["smile"], 1.0)
    z = torch.randn(1, G.config.z_dim)
    r, f = alternating_medians([lambda: composite(update_chunk(G, edited, cached, 0), project.masks), lambda: G(z)])
    lines += ["", "## Speed (batch 1, 2 CPU threads, median of 30)\n", "| step | ms | ratio to G forward |",
              "|---|---|---|", f"| G forward | {f * 1000:.1f} | 1.00 |",
              f"| recomposite after a chunk edit | {r * 1000:.1f} | {r / f:.2f} |", "",
              f"Aim: <= 100 ms at 64 px. Total {time.time() - t0:.0f} s."]
    publish("\n".join(lines) + "\n", a.out)


if __name__ == "__main__":
    main()
