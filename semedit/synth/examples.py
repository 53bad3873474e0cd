"""Write the embedded domain's example "photographs" that the tabs offer.

    python -m semedit.synth.examples [--out examples/embedded] [--size 256]

Held-out renderer portraits (seeds no training run draws), some turned, some with an
out-of-domain accessory; each PNG has its label map beside it (``*_labels.png``, class ids)
and ``index.json`` lists every file with its parameters.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

from ..imaging import tensor_to_uint8
from .params import ACCESSORIES, FIELDS, HAIR_STYLES, Portraits, sample_portraits, stack
from .render import render

EXAMPLE_SEED = 20_000_000


def build_examples(size: int):
    """[(name, Portraits of one)], in-domain first, then turned, then one per accessory."""
    base = sample_portraits(16, seed=EXAMPLE_SEED)
    items = [(f"portrait_{i:02d}", base.select(i)) for i in range(8)]
    items += [(f"portrait_{i:02d}_turned", base.select(i).with_yaw(0.45 if i % 2 else -0.45)) for i in range(2)]
    items += [(f"ood_{name}", base.select(8 + k).with_accessory(name)) for k, name in enumerate(ACCESSORIES[1:])]
    return items


def write_examples(out: Path, size: int) -> list:
    out.mkdir(parents=True, exist_ok=True)
    items = build_examples(size)
    r = render(stack([p for _, p in items]), size)
    index = []
    for (name, p), img, lab in zip(items, tensor_to_uint8(r.image), r.labels.numpy()):
        Image.fromarray(img).save(out / f"{name}.png")
        Image.fromarray(lab.astype(np.uint8)).save(out / f"{name}_labels.png")
        index.append({"file": f"{name}.png", "labels": f"{name}_labels.png",
                      "hair_style": HAIR_STYLES[int(p.hair_style[0])], "accessory": ACCESSORIES[int(p.accessory[0])],
                      "params": {f: round(float(v), 4) for f, v in zip(FIELDS, p.values[0])}})
    (out / "index.json").write_text(json.dumps(index, indent=1))
    return index


def example_files(folder: Path) -> list:
    """The example image paths listed in ``folder/index.json`` (empty when there is none)."""
    index = Path(folder) / "index.json"
    if not index.is_file():
        return []
    return [str(Path(folder) / e["file"]) for e in json.loads(index.read_text())]


def portraits_of_example(image, folder: Path) -> Optional[Portraits]:
    """The parameters of the example in ``folder`` whose pixels ``image`` (PIL, any mode) has,
    else None: uploads are matched by content, so a copy from anywhere is recognised."""
    index = Path(folder) / "index.json"
    if not index.is_file():
        return None
    pixels = np.asarray(image.convert("RGB"))
    for entry in json.loads(index.read_text()):
        path = Path(folder) / entry["file"]
        if not path.is_file():
            continue
        with Image.open(path) as other:
            if other.size == image.size and np.array_equal(np.asarray(other.convert("RGB")), pixels):
                values = torch.tensor([[entry["params"][f] for f in FIELDS]], dtype=torch.float32)
                return Portraits(values, torch.tensor([HAIR_STYLES.index(entry["hair_style"])]),
                                 torch.tensor([ACCESSORIES.index(entry["accessory"])]))
    return None


#: face / hair example pairs for the hair tab (file stems; the poses differ)
HAIR_PAIRS = (("portrait_02", "portrait_01_turned"), ("portrait_03", "portrait_00_turned"),
              ("portrait_04", "portrait_07"), ("portrait_06", "portrait_05"))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("examples/embedded"))
    ap.add_argument("--size", type=int, default=256)
    a = ap.parse_args(argv)
    index = write_examples(a.out, a.size)
    print(f"wrote {len(index)} examples to {a.out}")


if __name__ == "__main__":
    main()
