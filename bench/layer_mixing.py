"""Where a generator keeps the person and the hair: style mixing by W+ layer range.

    python bench/layer_mixing.py [--model embedded-portraits-64-gan-map8] [--n 300]
        [--out bench/results/layer_mixing_<model>.md]

For n pairs of the generator's samples (a face and a donor), the face's W+ code takes the donor's
code on one range of layers, and the parameter regressor reads the result: its identity distance to
the face image (the domain's identity model; same person below its threshold), how far its hair
fields (colour, grey, length, volume) moved from the face's towards the donor's (median over pairs of
1 - |result - donor| / |face - donor|, summed over the fields: 0 = the face's hair, 1 = the donor's)
and how often its hair style is the donor's. A range that takes the hair and keeps the person is
what a hair transfer by mixing codes (FG'21's map, a hair mixer) can find; where hair and person
share the same layers, such a transfer has to find them within the layers' codes, or change both.
Rows: every single layer, every range from the first layer, and every range to the last.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semedit.evaluation.reports import publish  # noqa: E402
from semedit.networks.regressor import RegressorIdentity  # noqa: E402
from semedit.registry import Registry  # noqa: E402
from semedit.synth.params import INDEX  # noqa: E402

#: the regressor's hair fields that a transfer should carry over (parting and curl phase are not
#: read steadily enough to count)
HAIR_READ = ("hair_color", "hair_gray", "hair_length", "hair_volume")


def layer_ranges(num_ws: int) -> list:
    """[(start, end)]: each single layer, each range from layer 0, each range to the last layer."""
    singles = [(a, a + 1) for a in range(num_ws)]
    prefixes = [(0, b) for b in range(2, num_ws + 1)]
    suffixes = [(a, num_ws) for a in range(1, num_ws - 1)]
    return singles + prefixes + suffixes


@torch.no_grad()
def mix(face_ws: torch.Tensor, donor_ws: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """face_ws with donor_ws on layers [start, end): [N, num_ws, w_dim]."""
    out = face_ws.clone()
    out[:, start:end] = donor_ws[:, start:end]
    return out


@torch.no_grad()
def hair_moved(result: torch.Tensor, face: torch.Tensor, donor: torch.Tensor) -> torch.Tensor:
    """Per pair [N]: 1 - |result - donor| / |face - donor| over hair fields [N, F] (1: the donor's)."""
    return 1 - (result - donor).abs().sum(1) / (face - donor).abs().sum(1).clamp(min=1e-6)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded-portraits-64-gan-map8", help="a generator of the embedded domain")
    ap.add_argument("--n", type=int, default=300, help="face and donor pairs")
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    out = a.out or ROOT / "bench" / "results" / f"layer_mixing_{a.model}.md"
    t0 = time.time()
    registry = Registry.from_settings()
    G = registry.get(a.model)
    regressor = registry.get(registry.catalogue.get(a.model).config["regressor"])
    identity = RegressorIdentity(regressor)
    hair_index = [INDEX[f] for f in HAIR_READ]
    device = G.w_avg.device
    g = torch.Generator().manual_seed(a.seed)
    z = torch.randn(2 * a.n, G.config.z_dim, generator=g).to(device)
    with torch.no_grad():
        ws = G.broadcast(G.mapping(z))

        def draw(codes):
            return torch.cat([G.synthesis(c, noise_mode="const").clamp(-1, 1) for c in codes.split(100)])

        def read(images):
            p = regressor(images)
            return p.fields[:, hair_index], p.hair_style_logits.argmax(1)

        face_ws, donor_ws = ws[:a.n], ws[a.n:]
        face, donor = draw(face_ws), draw(donor_ws)
        (face_hair, face_style), (donor_hair, donor_style) = read(face), read(donor)
        rows = []
        for start, end in layer_ranges(G.num_ws):
            result = draw(mix(face_ws, donor_ws, start, end))
            hair, style = read(result)
            rows.append(f"| [{start}, {end}) | {float(identity(result, face).mean()):.3f} | "
                        f"{float(hair_moved(hair, face_hair, donor_hair).median()):.2f} | "
                        f"{float((style == donor_style).float().mean()):.2f} |")
        apart = float(identity(donor, face).mean())
    lines = [f"# Style mixing by layer range on `{a.model}`\n",
             f"`python bench/layer_mixing.py {' '.join(sys.argv[1:] if argv is None else argv)}`: {a.n} pairs of "
             f"samples, {G.num_ws} W+ layers. The face and the donor are {apart:.3f} apart by the identity model "
             f"(same person below {identity.same_person_below:.3f}); the face's hair style is the donor's in "
             f"{float((face_style == donor_style).float().mean()):.2f} of pairs.\n",
             "| donor's layers | identity distance to the face | hair fields moved to the donor's (median) | "
             "hair style the donor's |", "|---|---|---|---|", *rows, "",
             f"{time.time() - t0:.0f} s on {device.type}."]
    publish("\n".join(lines) + "\n", out)


if __name__ == "__main__":
    main()
