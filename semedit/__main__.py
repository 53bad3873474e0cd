"""Command line: ``python -m semedit {sample,invert,edit,chunk-edit,hair,eval,faces,convert,random-generator} ...``."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PIL import Image


#: the largest edit the command line accepts, in units (the app's sliders reach 3)
MAX_UNITS = 10.0


def _seed(text: str) -> int:
    """argparse type: a seed in [0, 2^32)."""
    from .sampling import MAX_SEED
    value = int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is not a seed (0 to {MAX_SEED})")
    return value


def _count(text: str) -> int:
    """argparse type: a whole number >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give at least 1")
    return value


def _truncation(text: str) -> float:
    """argparse type: a truncation psi in [0, 1.5], the app's range (0: the average face)."""
    value = float(text)
    if not 0.0 <= value <= 1.5:
        raise argparse.ArgumentTypeError(f"{value:g} is outside 0 to 1.5")
    return value


#: what --out may end in for images (Pillow writes each by its suffix)
IMAGE_OUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def _writable(path: Path) -> Path:
    """``path`` when its folder exists and is writable, or can be made in a writable folder."""
    folder = path.parent.resolve()
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"{path}: cannot write in {folder}")
    return path


def _image_out(text: str) -> Path:
    """argparse type: an image file to write, checked before any work is done (suffix, folder)."""
    path = Path(text)
    if path.suffix.lower() not in IMAGE_OUT_SUFFIXES:
        raise argparse.ArgumentTypeError(f"{text}: end it in one of {', '.join(IMAGE_OUT_SUFFIXES)}")
    return _writable(path)


def _file_out(text: str) -> Path:
    """argparse type: a file to write (any suffix), checked before any work is done."""
    return _writable(Path(text))


def _generator(registry, name) -> str:
    """``name`` (default: the catalogue's default generator), or exit when it is not a generator."""
    name = name or registry.catalogue.default_generator
    kind = registry.catalogue.get(name).kind
    if kind != "generator":
        sys.exit(f"error: {name} is a {kind}, not a generator; generators: "
                 + ", ".join(registry.catalogue.names("generator")))
    return name


def _named_units(item: str, option: str, known: dict, model: str):
    """'NAME=UNITS' -> (the direction, units); exit with a message on anything else."""
    name, sep, value = item.rpartition("=")
    if not sep:
        sys.exit(f"error: {option} {item!r}: give NAME=UNITS, e.g. {option} 'smile=2'")
    if name not in known:
        sys.exit(f"error: {option} {item!r}: unknown direction {name!r}; {model} has: {', '.join(known) or 'none'}")
    try:
        units = float(value)
    except ValueError:
        sys.exit(f"error: {option} {item!r}: the value must be a number (units)")
    if not abs(units) <= MAX_UNITS:
        sys.exit(f"error: {option} {item!r}: at most {MAX_UNITS:g} units either way (beyond, codes leave the "
                 "generator's range)")
    return known[name], units


def _cmd_sample(a: argparse.Namespace) -> None:
    from .imaging import make_grid, tensor_to_uint8
    from .registry import Registry
    from .sampling import MAX_SEED, sample
    registry = Registry.from_settings()
    name = _generator(registry, a.model)
    if a.seed + a.n > MAX_SEED + 1:
        sys.exit(f"error: the seeds run past {MAX_SEED}: lower --seed or -n")
    G = registry.get(name)
    s = sample(G, range(a.seed, a.seed + a.n), truncation_psi=a.truncation)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_grid(list(tensor_to_uint8(s.images)))).save(a.out)
    print(f"wrote {a.n} samples of {name} to {a.out}")


def _cmd_convert(a: argparse.Namespace) -> None:
    from .checkpoints import convert_to_safetensors
    out = convert_to_safetensors(Path(a.src), a.format, Path(a.out))
    print(f"wrote {out}")


def _cmd_random_generator(a: argparse.Namespace) -> None:
    import torch
    from .networks.stylegan2 import StyleGAN2Config, StyleGAN2Generator
    from .checkpoints import save_safetensors
    torch.manual_seed(a.seed)
    config = StyleGAN2Config(resolution=a.resolution, z_dim=a.dim, w_dim=a.dim, mapping_layers=a.mapping_layers,
                             channels=tuple(a.channels) if a.channels else None,
                             channel_base=a.channel_base, channel_max=a.channel_max)
    G = StyleGAN2Generator(config)
    G.w_avg.copy_(G.estimate_w_avg(4096, generator=torch.Generator().manual_seed(a.seed)))
    save_safetensors(Path(a.out), config, G.state_dict(), note=f"random weights, seed {a.seed}")
    print(f"wrote {a.out}: {sum(p.numel() for p in G.parameters())} parameters")


def _cmd_invert(a: argparse.Namespace) -> None:
    import csv
    from .errors import SemeditError
    from .imaging import IMAGE_SUFFIXES, tensor_to_pil
    from .inversion.suite import METHODS, Knobs, context_for
    from .pipeline import invert, load_target, save_latents
    from .registry import Registry
    from .pipeline import ENCODER_PREFIX
    methods = [m.strip() if m.strip().lower().startswith(ENCODER_PREFIX) else m.strip().lower()
               for m in a.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS and not m.lower().startswith(ENCODER_PREFIX)]
    if unknown or not methods:
        sys.exit(f"error: unknown methods {unknown}; choose from {', '.join(METHODS)} (any case) or "
                 f"{ENCODER_PREFIX}NAME for a catalogued encoder")
    registry = Registry.from_settings()
    model = _generator(registry, a.model)
    from .pipeline import method_keys
    foreign = [m for m in methods if m.startswith(ENCODER_PREFIX) and m not in method_keys(registry, model)]
    if foreign:
        sys.exit(f"error: {', '.join(foreign)}: no such encoder for {model} in the catalogue")
    ctx = context_for(registry, model, a.perceptual)
    if a.identity_weight and ctx.identity is None:
        sys.exit("error: --identity-weight needs an identity model, and this generator's domain has none")
    knobs = Knobs(steps=a.steps, lambda_reg=a.lambda_reg, n_chunks=a.chunks, chunky_space=a.chunky_space,
                  pti_tune_steps=a.steps, identity_weight=a.identity_weight, seed=a.seed,
                  encoder_iterations=a.encoder_iterations)
    paths = []
    for src in map(Path, a.inputs):
        paths += sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if src.is_dir() else [src]
    if not paths:
        sys.exit("error: no images found in " + ", ".join(a.inputs))
    failed = []
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "metrics.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "method", "LPIPS", "L2 (MSE)", "PSNR dB", "identity distance", "seconds"])
        for path in paths:
            try:  # unreadable files and photos without a face are skipped, the rest go on
                target = load_target(registry, model, path, alignment=a.align, face_index=a.face)
            except SemeditError as e:
                print(f"{path.name}: skipped: {e}", file=sys.stderr)
                failed.append(path.name)
                continue
            for o in invert(registry, model, target, methods, knobs, ctx=ctx):
                r, s, m = o.result, o.scores, o.result.key
                tensor_to_pil(r.image).save(out / f"{path.stem}_{m}.png")
                o.pasted.save(out / f"{path.stem}_{m}_photo.png")
                save_latents([r], out / f"{path.stem}_{m}.pt")
                writer.writerow([path.name, r.method] + list(s.as_row().values()))
                print(f"{path.name}  {r.method:32s}  LPIPS {s.lpips:.4f}  MSE {s.l2:.5f}  {s.seconds:.1f}s", flush=True)
    print(f"wrote {out / 'metrics.csv'}" + (f" (identity: {ctx.identity.name})" if ctx.identity else ""))
    if failed:  # a batch script must be able to tell: exit status 1 when any input was skipped
        sys.exit(f"error: {len(failed)} of {len(paths)} inputs could not be inverted: {', '.join(failed)}")


def _cmd_edit(a: argparse.Namespace) -> None:
    from .editing.directions import weakness
    from .editing.library import directions_for
    from .imaging import tensor_to_pil
    from . import pipeline
    from .registry import Registry
    registry = Registry.from_settings()
    model = _generator(registry, a.model)
    known = {d.name: d for d in directions_for(registry, model)}
    edits = [_named_units(item, "--direction", known, model) for item in a.direction]
    for d, _ in edits:
        why = weakness(d)
        if why:
            print(f"warning: {d.name!r} is weak on {model} ({why}): it may move other things more", file=sys.stderr)
    z_only = [d.name for d, _ in edits if d.space == "z"]
    if a.image and z_only:
        w_names = [d.name for d in known.values() if d.space != "z"][:6]
        sys.exit(f"error: {', '.join(z_only)}: Z directions move a sample's z, and an inverted image has none; "
                 f"use a W direction ({', '.join(w_names)}, ...)")
    readable = pipeline.guided_attributes(registry, model) if a.guided else []
    if a.guided and not readable:
        sys.exit(f"error: --guided needs a differentiable attribute model; only the embedded domain has one, not {model}")
    guided = [_named_units(item, "--guided", {n: n for n in readable}, model) for item in a.guided]
    if a.image:
        target = pipeline.load_target(registry, model, a.image, alignment=a.align, face_index=a.face)
        source = pipeline.source_from_target(registry, model, target, steps=a.steps, inversion=a.inversion)
    else:
        source = pipeline.source_from_sample(registry, model, a.seed, a.truncation)
    for attribute, units in guided:  # each computed at this source's code
        edits.append((pipeline.guided_direction_at(registry, source, attribute), units))
    image = pipeline.render_source(registry, source, pipeline.edited_latent(registry, source, edits))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tensor_to_pil(image).save(out)
    print(f"wrote {out}")
    if source.target is not None:
        photo = out.with_name(out.stem + "_photo" + out.suffix)
        pipeline.paste(source.target, image).save(photo)
        print(f"wrote {photo}")


def _chunk_index(spec: str, n: int) -> int:
    """'2' (1-based) or a class name ('hair') -> the 0-based chunk; SystemExit when it fits none."""
    from . import segmentation as L
    from .inversion.chunky import chunk_of_class
    if spec.isdigit():
        if not 1 <= int(spec) <= n:
            sys.exit(f"error: chunk {spec}: the project has chunks 1 to {n}")
        return int(spec) - 1
    if spec not in L.CLASS_NAMES:
        sys.exit(f"error: chunk {spec!r}: give a number (1 to {n}) or a class ({', '.join(L.CLASS_NAMES)})")
    return chunk_of_class(n, L.CLASS_NAMES.index(spec))


def _cmd_chunk_edit(a: argparse.Namespace) -> None:
    from dataclasses import replace
    from . import pipeline
    from .editing.chunks import ChunkProject, composite, load_project, render_chunks, reshape_mask, save_project
    from .editing.directions import apply_edits
    from .editing.library import directions_for
    from .imaging import tensor_to_pil
    from .inversion.suite import Knobs
    from .registry import Registry
    if a.image and a.project:
        sys.exit("error: give an image to invert with ChunkyGAN or --project, not both")
    if not (a.image or a.project):
        sys.exit("error: give an image to invert with ChunkyGAN, or --project with a saved project")
    if a.compare and not a.image:
        sys.exit("error: --compare inverts the image with W+ for the global edit: give the image, not a project")
    registry = Registry.from_settings()
    model = _generator(registry, a.model)
    G = registry.get(model)
    known = {d.name: d for d in directions_for(registry, model) if d.space != "z"}
    target = None
    if a.project:
        project = load_project(Path(a.project), G, model)
    else:
        target = pipeline.load_target(registry, model, a.image, alignment=a.align, face_index=a.face)
        knobs = Knobs(steps=a.steps, n_chunks=a.chunks, lambda_reg=a.lambda_reg, chunky_space=a.space)
        (o,) = pipeline.invert(registry, model, target, ["chunky"], knobs)
        project = ChunkProject.from_result(o.result)
        print(f"ChunkyGAN: {project.n_chunks} chunks, LPIPS {o.scores.lpips:.4f} ({o.scores.seconds:.1f}s)")
    for item in a.edit:
        where, sep, rest = item.partition(":")
        if not sep:
            sys.exit(f"error: --edit {item!r}: give CHUNK:NAME=UNITS, e.g. --edit 'hair:grey hair=2'")
        direction, units = _named_units(rest, "--edit", known, model)
        project = project.with_edit(_chunk_index(where, project.n_chunks), direction, units)
    for item in a.mask:
        where, _, rest = item.partition(":")
        op, _, pixels = rest.partition("=")
        try:
            project = replace(project, masks=reshape_mask(project.masks, _chunk_index(where, project.n_chunks), op,
                                                          float(pixels or 2)))
        except ValueError as e:
            sys.exit(f"error: --mask {item!r}: {e}")
    image = composite(render_chunks(G, project), project.masks).clamp(-1, 1)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tensor_to_pil(image).save(out)
    print(f"wrote {out}")
    if target is not None:
        pipeline.paste(target, image).save(out.with_name(out.stem + "_photo" + out.suffix))
        print(f"wrote {out.with_name(out.stem + '_photo' + out.suffix)}")
    if a.save:
        print(f"wrote {save_project(Path(a.save), project)}")
    if a.compare and target is not None and project.edits:
        source = pipeline.source_from_target(registry, model, target, steps=a.steps)
        by_name = {d.name: d for d in project.directions}
        edits = [(by_name[e.direction], e.value) for e in project.edits]
        glob = pipeline.render_source(registry, source, apply_edits(G, source.latent, edits))
        tensor_to_pil(glob).save(out.with_name(out.stem + "_global" + out.suffix))
        print(f"wrote {out.with_name(out.stem + '_global' + out.suffix)} (the same edits on a W+ inversion)")


def _cmd_faces(a: argparse.Namespace) -> None:
    from .faces.landmarks import detect_faces, draw_faces
    from .imaging import load_image
    import numpy as np
    photo = load_image(a.image)
    faces = detect_faces(np.asarray(photo))
    print(f"{len(faces)} faces in {a.image} (index: left, top, right, bottom in pixels; 0 is the largest)")
    for i, face in enumerate(faces):
        print(f"{i}: " + ", ".join(f"{v:.0f}" for v in face.box))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        draw_faces(photo, faces).save(a.out)
        print(f"wrote {a.out}")
    if not faces:
        sys.exit(1)


def _cmd_hair(a: argparse.Namespace) -> None:
    import math
    from . import pipeline
    from .hair.transfer import HairOptimisation
    from .imaging import tensor_to_pil
    from .registry import Registry
    registry = Registry.from_settings()
    model = _generator(registry, a.model)
    if a.method not in pipeline.HAIR_METHODS:
        sys.exit(f"error: unknown method {a.method!r}; one of {', '.join(pipeline.HAIR_METHODS)}")
    face = pipeline.load_target(registry, model, a.face, alignment=a.align, face_index=a.face_index)
    hair = pipeline.load_target(registry, model, a.hair, alignment=a.align, face_index=a.hair_index)
    cfg = HairOptimisation(invert_steps=a.steps, steps=a.steps + 50)
    outcome = pipeline.transfer_hair(registry, model, face, hair, a.method, cfg=cfg)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tensor_to_pil(outcome.result.image).save(out)
    photo = out.with_name(out.stem + "_photo" + out.suffix)
    outcome.pasted.save(photo)
    print(f"wrote {out} and {photo} ({outcome.result.method}, {outcome.result.seconds:.2f} s)")
    for k, v in outcome.measures.items():
        print(f"  {k}: {'n/a' if isinstance(v, float) and math.isnan(v) else round(float(v), 4)}")


def _cmd_eval(a: argparse.Namespace) -> None:
    from dataclasses import replace
    from .evaluation import sharding
    from .evaluation.harness import evaluate
    from .evaluation.tables import make_task, preset
    from .registry import Registry
    from .settings import Settings
    methods = tuple(m.strip() for m in a.methods.split(",") if m.strip()) if a.methods else None
    cfg = preset(a.preset, model=a.model, images=a.images, in_domain=a.in_domain, ood=a.ood, steps=a.steps,
                 pti_tune_steps=a.pti_tune_steps, methods=methods, units=a.units, gallery=a.gallery,
                 queries=a.queries, chunk=a.chunk, seed=a.seed, encoder_iterations=a.encoder_iterations)
    shard = sharding.start(a.device)
    try:
        registry = Registry.from_settings(replace(Settings.from_env(), device=str(shard.device)))
        report = evaluate(make_task(registry, cfg), Path(a.out or f"eval-out/{a.preset}"), shard=shard,
                          restart=a.restart)
        if report is not None:
            print(report.summary.read_text())
    finally:
        sharding.finish(shard)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m semedit", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("sample", help="write a grid of samples of a catalogued generator")
    p.add_argument("--model", help="catalogue name (default: the catalogue's default generator)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("-n", type=_count, default=16)
    p.add_argument("--truncation", type=_truncation, default=0.7)
    p.add_argument("--out", type=_image_out, default="samples.png")
    p.set_defaults(func=_cmd_sample)
    p = sub.add_parser("invert", help="invert images (files or folders) with several methods; write images, "
                                      "latents and metrics.csv")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--methods", default="w,w+,chunky",
                   help="comma-separated: w, w+, s, pti, chunky, encoder:NAME (a catalogued pSp, e4e or ReStyle encoder)")
    p.add_argument("--model", help="generator (default: the catalogue's default)")
    p.add_argument("--perceptual", help="perceptual model (default: the catalogue's default)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lambda-reg", type=float, default=1.0)
    p.add_argument("--chunks", type=int, default=4)
    p.add_argument("--chunky-space", default="w+", choices=["w", "w+", "s"])
    p.add_argument("--align", default="auto", choices=["auto", "align", "centre"],
                   help="FFHQ-align a face (auto: for face generators) or take the centred square")
    p.add_argument("--face", type=int, default=0, help="which face to align: 0 = the largest")
    p.add_argument("--identity-weight", type=float, default=0.0, help="add the identity distance to the loss")
    p.add_argument("--encoder-iterations", type=int,
                   help="ReStyle and HyperStyle refinement steps (default: each model's own; the papers use 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="inversion-out")
    p.set_defaults(func=_cmd_invert)
    p = sub.add_parser("edit", help="move a sample or an inverted image along named directions")
    p.add_argument("--model", help="generator (default: the catalogue's default)")
    p.add_argument("--seed", type=_seed, default=0, help="the sample to edit (without --image)")
    p.add_argument("--truncation", type=_truncation, default=0.7)
    p.add_argument("--image", help="an image to invert and edit instead of a sample")
    p.add_argument("--inversion", default="w+", choices=["w+", "encoder"],  # pipeline.SOURCE_INVERSIONS
                   help="how --image is inverted: W+ optimisation, or one pass of the generator's encoder (e4e first)")
    p.add_argument("--steps", type=int, default=300, help="W+ optimisation steps for --image")
    p.add_argument("--align", default="auto", choices=["auto", "align", "centre"])
    p.add_argument("--face", type=int, default=0)
    p.add_argument("--direction", action="append", default=[], metavar="NAME=UNITS",
                   help="repeatable, e.g. --direction smile=2 --direction age=-1")
    p.add_argument("--guided", action="append", default=[], metavar="ATTRIBUTE=UNITS",
                   help="repeatable: the embedded regressor's attribute moved along its gradient at this code, every "
                        "other reading held (units: its std over samples), e.g. --guided smile=2")
    p.add_argument("--out", type=_image_out, default="edit.png")
    p.set_defaults(func=_cmd_edit)
    p = sub.add_parser("chunk-edit", help="invert an image with ChunkyGAN (or open a project) and edit single chunks")
    p.add_argument("image", nargs="?", help="an image to invert with ChunkyGAN")
    p.add_argument("--project", help="a saved ChunkyGAN project (.safetensors) instead of an image")
    p.add_argument("--model", help="generator (default: the catalogue's default)")
    p.add_argument("--chunks", type=int, default=4)
    p.add_argument("--lambda-reg", type=float, default=1.0)
    p.add_argument("--space", default="w+", choices=["w", "w+", "s"])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--align", default="auto", choices=["auto", "align", "centre"])
    p.add_argument("--face", type=int, default=0)
    p.add_argument("--edit", action="append", default=[], metavar="CHUNK:NAME=UNITS",
                   help="repeatable; CHUNK is a number from 1 or the class it started from, e.g. "
                        "--edit 'hair:grey hair=2'")
    p.add_argument("--mask", action="append", default=[], metavar="CHUNK:OP=PIXELS",
                   help="repeatable; OP is grow, shrink or feather, e.g. --mask hair:grow=2")
    p.add_argument("--compare", action="store_true", help="also write the same edits on a W+ inversion (_global)")
    p.add_argument("--save", type=_file_out, help="write the project (codes, masks, edits) here")
    p.add_argument("--out", type=_image_out, default="chunk-edit.png")
    p.set_defaults(func=_cmd_chunk_edit)
    p = sub.add_parser("hair", help="put the hair of one face image on the person of another")
    p.add_argument("face", help="the person")
    p.add_argument("hair", help="the hairstyle")
    p.add_argument("--method", default="model", help="model, model+identity, model+blend, model+identity+blend, "
                                                     "optimisation or optimisation+blend")
    p.add_argument("--model", help="generator (default: the catalogue's default)")
    p.add_argument("--steps", type=int, default=150, help="optimisation: steps of each inversion")
    p.add_argument("--align", default="auto", choices=["auto", "align", "centre"])
    p.add_argument("--face-index", type=int, default=0, help="which face of the face photo: 0 = the largest")
    p.add_argument("--hair-index", type=int, default=0, help="which face of the hair photo")
    p.add_argument("--out", type=_image_out, default="hair.png")
    p.set_defaults(func=_cmd_hair)
    p = sub.add_parser("eval", help="the evaluation harness: Table 1, Table 2 or the hair retrieval figures, "
                                    "resumable, sharded under torchrun")
    p.add_argument("--preset", default="table1-small",
                   help="table1, table2, hair (the full runs) or table1-small, table2-small, hair-small (seconds)")
    p.add_argument("--out", help="output folder (default eval-out/PRESET); a run there resumes")
    p.add_argument("--restart", action="store_true", help="discard the rows already in --out")
    p.add_argument("--model", help="generator (default: the catalogue's default)")
    p.add_argument("--images", help="table1: a folder of photos instead of held-out renders")
    p.add_argument("--methods", help="table1, table2: comma-separated labels or keys (default: every one)")
    p.add_argument("--in-domain", type=int, help="table1: in-domain renders; table2: renders")
    p.add_argument("--ood", type=int, help="table1: renders with an out-of-domain accessory")
    p.add_argument("--steps", type=int, help="optimisation steps of every method")
    p.add_argument("--pti-tune-steps", type=int)
    p.add_argument("--encoder-iterations", type=int,
                   help="table1: ReStyle and HyperStyle refinement steps (default: each model's own; the papers use 5)")
    p.add_argument("--units", type=float, help="table2: edit strength")
    p.add_argument("--gallery", type=int, help="hair: gallery people")
    p.add_argument("--queries", type=int, help="hair: transfers ranked against the gallery")
    p.add_argument("--chunk", type=int, help="hair: people per work item")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", default="auto", help="auto: the local rank's GPU when there is one, else the CPU")
    p.set_defaults(func=_cmd_eval)
    p = sub.add_parser("faces", help="list the faces of a photo with their boxes (for --face)")
    p.add_argument("image")
    p.add_argument("--out", type=_image_out, help="also write the photo with the numbered boxes drawn on it")
    p.set_defaults(func=_cmd_faces)
    p = sub.add_parser("convert", help="convert a rosinality .pt or NVIDIA .pkl to pickle-free safetensors")
    p.add_argument("src")
    p.add_argument("--format", required=True,
                   choices=["rosinality", "nvlabs", "safetensors", "fg21", "fg21-decoder", "psp", "psp-decoder",
                            "hyperstyle", "hyperstyle-decoder"],
                   help="fg21: the hair network of an FG'21 checkpoint; fg21-decoder: its generator; psp: the encoder "
                        "of a pSp, e4e or ReStyle checkpoint; psp-decoder: its generator; hyperstyle: a HyperStyle "
                        "checkpoint's hypernetwork; hyperstyle-decoder: its generator")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_convert)
    p = sub.add_parser("random-generator", help="write a StyleGAN2 with random weights (placeholders, tests)")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--dim", type=int, default=128, help="z and w dimension")
    p.add_argument("--mapping-layers", type=int, default=4)
    p.add_argument("--channels", type=int, nargs="*", help="width per block from 4 px up")
    p.add_argument("--channel-base", type=int, default=32768)
    p.add_argument("--channel-max", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_random_generator)
    a = ap.parse_args(argv)
    from .errors import SemeditError
    try:
        a.func(a)
    except SemeditError as e:
        sys.exit(f"error: {e}")
    except OSError as e:  # a full disk, a folder removed meanwhile: a message, not a traceback
        sys.exit(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "))


if __name__ == "__main__":
    main()
