"""Command line: ``python -m semedit {sample,convert,random-generator} ...``."""
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
