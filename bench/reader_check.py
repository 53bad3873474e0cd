"""How far the attribute reader (the parameter regressor) can be trusted, on renders and on a generator's samples.

    python bench/reader_check.py [--model embedded-portraits-64-gan-map8] [--n 1000] [--out bench/results/reader_check.md]

The slider bench (`editing_directions.py`) and the fitted directions see attributes only through
the regressor. This checks the instrument:

1. *Crosstalk on renders*, where the truth is exact: each supervised attribute's true parameter
   is moved alone (+0.2 of its unit range where that stays in range and the picture shows it;
   beard and glasses: drawn where absent) and every attribute is read before and after, in the
   slider bench's units (std of the readings over the renders; beard and glasses 0.5). What shows
   in the other attributes is the leak the reader adds to a perfectly clean edit.
2. *Pixel noise*: the mean |change| of each reading under Gaussian noise of std 0.01, in std of
   the readings, on renders and on the model's samples; and the readings' spread on each.
3. *What the reader answers to* on the model's samples: how many of the images it reads lowest and
   highest in the --grid attribute it also reads with a beard, on renders and on the samples, and
   a picture of the samples it reads lowest, in the middle and highest (``<out>.png``).
4. *The floor under a slider's per-sample leak*: each graded supervised attribute's true parameter
   moved alone on renders by as much as makes the reader's change of it +2 standard deviations of
   the model's samples (what a slider at +2 units aims at), every reading in those std, as the
   slider bench counts them: the least per-sample leak the bench could show for a perfectly clean
   slider of that attribute.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semedit import pipeline  # noqa: E402
from semedit.editing.fit import changes_between, largest_leak, sample_w  # noqa: E402
from semedit.evaluation.reports import publish  # noqa: E402
from semedit.imaging import make_grid, tensor_to_uint8  # noqa: E402
from semedit.latents import Latent, synthesize  # noqa: E402
from semedit.registry import Registry  # noqa: E402
from semedit.synth.params import sample_portraits  # noqa: E402
from semedit.synth.render import render  # noqa: E402
from semedit.training.directions import BINARY, SUPERVISED, attribute_stds  # noqa: E402
from semedit.training.regressor import crosstalk  # noqa: E402

SHIFT = 0.2
NOISE_STD = 0.01
#: the own change a slider aims at at +2 units (standard deviations), and the largest true shift tried for it
SLIDER_AIM, MAX_SHIFT = 2.0, 0.8


def crosstalk_row(c: dict, field: str) -> tuple:
    """(own mean change, (other, its mean change), (other, its mean |change|)) from changes [M]."""
    k_mean = max((k for k in c if k != field), key=lambda k: abs(float(c[k].mean())))
    return float(c[field].mean()), (k_mean, float(c[k_mean].mean())), largest_leak(c, field)


def floor_row(read, portraits, base: dict, field: str, stds: dict, resolution: int) -> tuple:
    """(true shift, rows, own mean change, (other, its mean |change|)) for ``field`` moved alone on
    renders by the shift (at most MAX_SHIFT of its range) that makes its own mean reading change
    SLIDER_AIM in ``stds``, found from the change at SHIFT (readings are close to linear in it)."""
    first = float(crosstalk(read, portraits, base, field, stds, resolution, SHIFT)[field].mean())
    shift = min(MAX_SHIFT, SHIFT * SLIDER_AIM / max(first, 1e-6))
    changes = crosstalk(read, portraits, base, field, stds, resolution, shift)
    return shift, len(changes[field]), float(changes[field].mean()), largest_leak(changes, field)


def noise_moves(read, images: torch.Tensor, base: dict, stds: dict, seed: int = 0) -> dict:
    """{attribute: mean |reading change| / std} under Gaussian pixel noise of std NOISE_STD."""
    g = torch.Generator().manual_seed(seed)
    noisy = (images + NOISE_STD * torch.randn(images.shape, generator=g)).clamp(-1, 1)
    return {k: float(v.abs().mean()) for k, v in changes_between(base, read(noisy), stds).items()}


def beard_shares(readings: dict, attribute: str) -> tuple:
    """Share of images read with a beard: (all, the tenth read lowest in ``attribute``, the highest)."""
    beard = (readings["beard"] > 0.5).float()
    order = readings[attribute].argsort()
    tenth = max(1, len(order) // 10)
    return float(beard.mean()), float(beard[order[:tenth]].mean()), float(beard[order[-tenth:]].mean())


def grid_picture(images: torch.Tensor, reading: torch.Tensor, per_row: int = 8) -> Image.Image:
    """Rows of the samples read lowest, in the middle and highest, upscaled 2x."""
    order = reading.argsort()
    mid = len(order) // 2 - per_row // 2
    pick = torch.cat([order[:per_row], order[mid:mid + per_row], order[-per_row:]])
    picture = Image.fromarray(make_grid(list(tensor_to_uint8(images[pick])), ncols=per_row, pad=0))
    return picture.resize((picture.width * 2, picture.height * 2), Image.NEAREST)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded-portraits-64-gan-map8", help="an embedded-domain generator")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--grid", default="smile", choices=sorted(SUPERVISED))
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/reader_check.md")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    registry = Registry.from_settings()
    G = registry.get(a.model, "cpu")
    resolution = G.config.resolution

    def read(images: torch.Tensor) -> dict:
        parts = [pipeline.read_attributes(registry, a.model, chunk) for chunk in images.split(250)]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    portraits = sample_portraits(a.n, seed=2026)
    renders = render(portraits, resolution).image
    base = read(renders)
    stds = attribute_stds(base)
    lines = ["# The attribute reader: crosstalk, noise, and what it answers to\n",
             f"`python bench/reader_check.py {' '.join(sys.argv[1:] if argv is None else argv)}`: {a.n} renders, "
             f"{a.n} samples of `{a.model}`, read by the parameter regressor (with its parts). Changes in "
             "standard deviations of each reading (beard and glasses: units of 0.5), as in "
             "`editing_directions.md`.\n",
             f"## 1. Crosstalk on renders: the true parameter moved alone (+{SHIFT} of its range; beard and "
             "glasses drawn)\n",
             "An exact reader would show only the own column. The other columns are the leak it adds to a "
             "perfectly clean edit. The per-sample column is mostly the reader's noise, which does not grow "
             "with the edit: compare it, as it is, with the sliders' per-sample leak at +2 units.\n",
             "| moved | n | own reading change | largest other, mean | largest other, per sample (mean abs.) "
             "| per sample / own |",
             "|---|---|---|---|---|---|"]
    for field in SUPERVISED:
        changes = crosstalk(read, portraits, base, field, stds, resolution, SHIFT)
        own, (k_mean, mean), (k_abs, abs_mean) = crosstalk_row(changes, field)
        lines.append(f"| {field} | {len(changes[field])} | {own:+.2f} | {mean:+.2f} ({k_mean}) | {abs_mean:.2f} ({k_abs}) "
                     f"| {abs_mean / max(abs(own), 1e-6):.2f} |")
        print(lines[-1], flush=True)

    with torch.no_grad():
        w = sample_w(G, a.n, seed=4242)
        samples = torch.cat([synthesize(G, Latent("w", chunk)).clamp(-1, 1) for chunk in w.split(250)])
    sample_base = read(samples)
    sample_stds = attribute_stds(sample_base)
    on_renders = noise_moves(read, renders, base, stds)
    on_samples = noise_moves(read, samples, sample_base, sample_stds)
    lines += ["", f"## 2. Pixel noise of std {NOISE_STD} (about 1/200 of the image range)\n",
              "| attribute | reading std, renders | reading std, samples | noise move, renders (std) "
              "| noise move, samples (std) |",
              "|---|---|---|---|---|"]
    for k in SUPERVISED:
        lines.append(f"| {k} | {float(base[k].std()):.3f} | {float(sample_base[k].std()):.3f} "
                     f"| {on_renders[k]:.2f} | {on_samples[k]:.2f} |")

    picture_path = a.out.with_suffix(".png")
    g = a.grid
    lines += ["", f"## 3. What the reader answers to: who it reads with the lowest and highest {g}\n",
              f"Share of images read with a beard: over all, and among the tenth read with the lowest and the "
              f"highest {g} (a reader that answers to {g} alone shows the same share in all three on renders).\n",
              f"| images | all | lowest tenth of {g} | highest tenth of {g} |", "|---|---|---|---|"]
    for name, readings in (("renders", base), (f"`{a.model}` samples", sample_base)):
        lines.append(f"| {name} | " + " | ".join(f"{share:.2f}" for share in beard_shares(readings, g)) + " |")
    shown = picture_path.relative_to(ROOT) if picture_path.is_relative_to(ROOT) else picture_path
    lines += ["", f"`{shown}`: the 8 samples read with the lowest {g}, 8 in the middle, 8 with the highest "
              "(top to bottom).\n", f"![samples by {g} reading]({picture_path.name})"]
    lines += ["", f"## 4. The floor under a slider's per-sample leak: a clean edit of +{SLIDER_AIM:g} std of "
                  f"`{a.model}`'s samples\n",
              f"Each true parameter moved alone on the renders by as much as makes its own reading move about "
              f"+{SLIDER_AIM:g} std of the samples' readings (the slider bench's unit; at most {MAX_SHIFT} of its "
              "range, on the renders where that stays in range), every change in those std. The last columns are "
              "the least per-sample leak the slider bench could read for a perfectly clean slider at +2 units: "
              "compare a slider's row of `editing_directions*.md` with them.\n",
              "| moved | true shift (of its range) | n | own reading change | largest other, per sample "
              "(mean abs.) | per sample / own |", "|---|---|---|---|---|---|"]
    for field in SUPERVISED:
        if field in BINARY:
            continue
        shift, rows, own, (other, leak) = floor_row(read, portraits, base, field, sample_stds, resolution)
        lines.append(f"| {field} | {shift:.2f} | {rows} | {own:+.2f} | {leak:.2f} ({other}) "
                     f"| {leak / max(abs(own), 1e-6):.2f} |")
        print(lines[-1], flush=True)

    picture_path.parent.mkdir(parents=True, exist_ok=True)
    grid_picture(samples, sample_base[g]).save(picture_path)
    publish("\n".join(lines) + "\n", a.out)


if __name__ == "__main__":
    main()
