"""Command line: ``python -m semedit {sample,invert,edit,convert,random-generator} ...``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image


def _cmd_sample(a: argparse.Namespace) -> None:
    from .imaging import make_grid, tensor_to_uint8
    from .registry import Registry
    from .sampling import sample
    registry = Registry.from_settings()
    name = a.model or registry.catalogue.default_generator
    G = registry.get(name)
    s = sample(G, range(a.seed, a.seed + a.n), truncation_psi=a.truncation)
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
    from .imaging import tensor_to_pil
    from .inversion.suite import METHODS, Knobs, context_for
    from .pipeline import invert, load_target, save_latents
    from .registry import Registry
    registry = Registry.from_settings()
    model = a.model or registry.catalogue.default_generator
    methods = [m.strip() for m in a.methods.split(",")]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        sys.exit(f"error: unknown methods {unknown}; choose from {', '.join(METHODS)}")
    ctx = context_for(registry, model, a.perceptual)
    if a.identity_weight and ctx.identity is None:
        sys.exit("error: --identity-weight needs an identity model, and this generator's domain has none")
    knobs = Knobs(steps=a.steps, lambda_reg=a.lambda_reg, n_chunks=a.chunks, chunky_space=a.chunky_space,
                  pti_tune_steps=a.steps, identity_weight=a.identity_weight, seed=a.seed)
    paths = []
    for src in map(Path, a.inputs):
        paths += sorted(p for p in src.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")) \
            if src.is_dir() else [src]
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
                continue
            for o in invert(registry, model, target, methods, knobs, ctx=ctx):
                r, s, m = o.result, o.scores, o.result.key
                tensor_to_pil(r.image).save(out / f"{path.stem}_{m}.png")
                o.pasted.save(out / f"{path.stem}_{m}_photo.png")
                save_latents([r], out / f"{path.stem}_{m}.pt")
                writer.writerow([path.name, r.method] + list(s.as_row().values()))
                print(f"{path.name}  {r.method:32s}  LPIPS {s.lpips:.4f}  MSE {s.l2:.5f}  {s.seconds:.1f}s", flush=True)
    print(f"wrote {out / 'metrics.csv'}" + (f" (identity: {ctx.identity.name})" if ctx.identity else ""))


def _cmd_edit(a: argparse.Namespace) -> None:
    from .editing.library import directions_for
    from .imaging import tensor_to_pil
    from . import pipeline
    from .registry import Registry
    registry = Registry.from_settings()
    model = a.model or registry.catalogue.default_generator
    known = {d.name: d for d in directions_for(registry, model)}
    edits = []
    for item in a.direction:
        name, _, value = item.rpartition("=")
        if name not in known:
            sys.exit(f"error: unknown direction {name!r}; {model} has: {', '.join(known) or 'none'}")
        try:
            edits.append((known[name], float(value)))
        except ValueError:
            sys.exit(f"error: --direction {item!r}: the value must be a number (units)")
    if a.image and any(d.space == "z" for d, _ in edits):
        sys.exit("error: Z directions move a sample's z; an inverted image has none (use the W ones, "
                 "named 'NAME (w)' where both exist)")
    if a.image:
        target = pipeline.load_target(registry, model, a.image, alignment=a.align, face_index=a.face)
        source = pipeline.source_from_target(registry, model, target, steps=a.steps)
    else:
        source = pipeline.source_from_sample(registry, model, a.seed, a.truncation)
    image = pipeline.render_source(registry, source, pipeline.edited_latent(registry, source, edits))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tensor_to_pil(image).save(out)
    print(f"wrote {out}")
    if source.target is not None:
        photo = out.with_name(out.stem + "_photo" + out.suffix)
        pipeline.paste(source.target, image).save(photo)
        print(f"wrote {photo}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m semedit", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("sample", help="write a grid of samples of a catalogued generator")
    p.add_argument("--model", help="catalogue name (default: the catalogue's default generator)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-n", type=int, default=16)
    p.add_argument("--truncation", type=float, default=0.7)
    p.add_argument("--out", default="samples.png")
    p.set_defaults(func=_cmd_sample)
    p = sub.add_parser("invert", help="invert images (files or folders) with several methods; write images, "
                                      "latents and metrics.csv")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--methods", default="w,w+,chunky", help="comma-separated: w, w+, s, pti, chunky")
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="inversion-out")
    p.set_defaults(func=_cmd_invert)
    p = sub.add_parser("edit", help="move a sample or an inverted image along named directions")
    p.add_argument("--model", help="generator (default: the catalogue's default)")
    p.add_argument("--seed", type=int, default=0, help="the sample to edit (without --image)")
    p.add_argument("--truncation", type=float, default=0.7)
    p.add_argument("--image", help="an image to invert (W+) and edit instead of a sample")
    p.add_argument("--steps", type=int, default=300, help="W+ steps for --image")
    p.add_argument("--align", default="auto", choices=["auto", "align", "centre"])
    p.add_argument("--face", type=int, default=0)
    p.add_argument("--direction", action="append", default=[], metavar="NAME=UNITS",
                   help="repeatable, e.g. --direction smile=2 --direction age=-1")
    p.add_argument("--out", default="edit.png")
    p.set_defaults(func=_cmd_edit)
    p = sub.add_parser("convert", help="convert a rosinality .pt or NVIDIA .pkl to pickle-free safetensors")
    p.add_argument("src")
    p.add_argument("--format", required=True, choices=["rosinality", "nvlabs", "safetensors"])
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


if __name__ == "__main__":
    main()
