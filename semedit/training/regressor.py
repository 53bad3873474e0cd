"""Train the embedded domain's parameter regressor (the "inverse renderer") and calibrate its identity.

    python -m semedit.training.regressor --steps 3000 --work-dir runs/regressor \\
        --out weights/embedded-regressor-64.safetensors --report bench/results/embedded_regressor.md

Images are renderer portraits (one in ten with an out-of-domain accessory) augmented with blur,
noise and brightness so that a generator's softer images read too. The loss is L1 on every
parameter the image shows (``synth.params.observable_targets``) plus cross-entropy on the hair
style and the accessory. The parts (PART_LAYOUT: mouth and eyes) are cropped at the label map's
centroid of their class, jittered by up to 1.5 px, while the network learns to predict that centre
(L1) for images without labels. After training, held-out accuracy per parameter goes into the report,
and the identity distance is calibrated on the same person turned and with another person's hair
(a weight per identity field, then the same-person threshold against different people); both are
stored in the checkpoint's config. ``--calibrate --init FILE`` does only that, for a trained file.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from ..checkpoints import load_module, save_safetensors
from ..editing.fit import changes_between
from ..networks.regressor import ParameterRegressor, Part, RegressorConfig, RegressorIdentity
from ..segmentation import CLASS_NAMES
from ..settings import resolve_device
from ..synth.params import (ACCESSORIES, BEARD_THRESHOLD, FIELDS, GLASSES_THRESHOLD, HAIR_STYLES, IDENTITY_FIELDS,
                            INDEX, MAX_YAW, Portraits, latent_with, observable_targets, params_from_latent)
from ..synth.render import render
from . import loop
from .data import augment, rendered_batch, step_generator

HELD_OUT_SEED = 987_654_321  # far from every training stream


#: the windows read at full resolution: (name, segment class it centres on, height and width as
#: shares of the image side, fields). The mouth window holds the nostrils; the eyes window the brows
#: and the forehead's wrinkles (measured: where each field changes pixels, relative to the centroid)
PART_LAYOUT = (
    ("mouth", "mouth", 0.3125, 0.375, ("smile", "mouth_width", "lip_thickness", "nose_width")),
    ("eyes", "eyes", 0.4375, 0.5, ("eye_size", "eye_aspect", "eye_spacing", "iris_hue", "brow_thickness",
                                  "brow_tilt", "age")),
)


def domain_parts(resolution: int) -> tuple:
    """PART_LAYOUT at ``resolution`` px (window sides rounded to multiples of 4, at least 4)."""
    side = lambda share: max(4, 4 * round(share * resolution / 4))  # noqa: E731
    return tuple(Part(name, label, side(h), side(w), fields) for name, label, h, w, fields in PART_LAYOUT)


def regressor_config(resolution: int = 64, parts: bool = True, **kw) -> RegressorConfig:
    """The embedded domain's regressor: every renderer parameter, its styles and accessories, and
    (``parts``) the windows of PART_LAYOUT."""
    return RegressorConfig(field_names=FIELDS, identity_fields=IDENTITY_FIELDS, hair_styles=HAIR_STYLES,
                           accessories=ACCESSORIES, resolution=resolution,
                           parts=domain_parts(resolution) if parts else (), **kw)


def with_parts(net: ParameterRegressor) -> ParameterRegressor:
    """A regressor with the domain's parts whose whole-image layers are ``net``'s (its part
    layers start fresh): for continuing a regressor trained without parts."""
    if net.config.parts:
        return net
    out = ParameterRegressor(replace(net.config, parts=domain_parts(net.config.resolution)))
    missing, unexpected = out.load_state_dict(net.state_dict(), strict=False)
    if unexpected or any(not k.startswith("part_") for k in missing):
        raise ValueError(f"not the same whole-image network: {unexpected or missing}")
    return out


def part_centres(labels: torch.Tensor, parts: tuple) -> torch.Tensor:
    """labels [N, H, W] (segment classes) -> [N, P, 2] centroid (x, y) in [0, 1] of each part's
    class, NaN where the class is absent."""
    n, h, w = labels.shape
    ys = (torch.arange(h, device=labels.device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=labels.device, dtype=torch.float32) + 0.5) / w
    out = []
    for part in parts:
        m = (labels == CLASS_NAMES.index(part.label)).float()
        count = m.sum((1, 2))
        c = torch.stack([(m.sum(1) * xs).sum(1), (m.sum(2) * ys).sum(1)], 1) / count.clamp(min=1)[:, None]
        out.append(torch.where(count[:, None] > 0, c, torch.full_like(c, float("nan"))))
    return torch.stack(out, 1)


@dataclass(frozen=True)
class RegressorTraining:
    steps: int = 3500
    batch: int = 64
    size: int = 64
    lr: float = 2e-3
    accessory_share: float = 0.1
    max_blur: float = 1.5
    class_weight: float = 0.1
    binary_weight: float = 0.5
    centre_weight: float = 5.0   # L1 on the parts' centres (units of the image side)
    centre_jitter: float = 1.5   # px: training crops sit this far (at most) off the true centre
    generator_share: float = 0.0  # share of each batch drawn by a generator paired with the renderer
    seed: int = 0


#: parameters an image shows only as present or absent: binary cross-entropy, not L1 (whose
#: optimum on imbalanced 0/1 targets is the majority value)
BINARY_FIELDS = ("beard", "glasses")
_BINARY = torch.tensor([f in BINARY_FIELDS for f in FIELDS])


def regressor_loss(pred, portraits, class_weight: float, binary_weight: float) -> torch.Tensor:
    """Masked L1 over the observable graded parameters, binary cross-entropy on beard and glasses,
    and weighted cross-entropy on hair style and accessory."""
    targets, visible = observable_targets(portraits)
    binary = _BINARY.to(targets.device)
    graded = visible * ~binary
    l1 = ((pred.fields - targets).abs() * graded).sum() / graded.sum().clamp(min=1)
    p = pred.fields[:, binary].clamp(1e-6, 1 - 1e-6)
    bce = (F.binary_cross_entropy(p, targets[:, binary], reduction="none") * visible[:, binary]).mean()
    ce = F.cross_entropy(pred.hair_style_logits, portraits.hair_style) + \
        F.cross_entropy(pred.accessory_logits, portraits.accessory)
    return l1 + class_weight * ce + binary_weight * bce


class RegressorTrainer(loop.NetTrainerState):
    """``generator``: a generator paired with the renderer (its z is the renderer's latent);
    ``cfg.generator_share`` of every batch is then its image of the batch's latents, labelled
    exactly, so the regressor reads the generator's look as well as renders'. ``init``: a regressor
    to continue (one trained without parts gets fresh ones, ``with_parts``)."""

    def __init__(self, cfg: RegressorTraining, device: torch.device | str = "cpu",
                 init: Optional[ParameterRegressor] = None, generator=None):
        if cfg.generator_share > 0 and generator is None:
            raise ValueError("generator_share > 0 needs a generator paired with the renderer")
        self.cfg, self.device = cfg, torch.device(device)
        self.G = None if generator is None else generator.to(self.device).eval().requires_grad_(False)
        torch.manual_seed(cfg.seed)
        net = ParameterRegressor(regressor_config(cfg.size)) if init is None else with_parts(init)
        self.net = net.to(self.device).train().requires_grad_(True)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=1e-4)
        self.sched = loop.one_cycle(self.opt, cfg.lr, cfg.steps, warmup=0.1)
        self.step, self.images_per_step = 0, cfg.batch

    def train_step(self) -> dict:
        cfg = self.cfg
        b = rendered_batch(cfg.batch, cfg.size, step_generator(cfg.seed, self.step, self.device),
                           accessory_share=cfg.accessory_share)
        img = augment(b.image, step_generator(cfg.seed, self.step, self.device, 1), max_blur=cfg.max_blur)
        portraits = b.portraits
        k = int(round(cfg.batch * cfg.generator_share))
        if k:  # the generator's images of the first k latents; it draws no accessories
            with torch.no_grad():
                img[:k] = self.G(b.z[:k], fused=False).clamp(-1, 1)
            accessory = portraits.accessory.clone()
            accessory[:k] = 0
            portraits = replace(portraits, accessory=accessory)
        true = part_centres(b.labels, self.net.config.parts)
        g = step_generator(cfg.seed, self.step, self.device, 2)
        jitter = (torch.rand(true.shape, generator=g, device=self.device) * 2 - 1) * cfg.centre_jitter / cfg.size
        pred = self.net(img, crop_centres=true + jitter)
        known = ~torch.isnan(true)
        centre = (pred.part_centres - true.nan_to_num()).abs()[known].mean() if known.any() else img.new_zeros(())
        loss = regressor_loss(pred, portraits, cfg.class_weight, cfg.binary_weight) + cfg.centre_weight * centre
        self.update(loss)
        return {"loss": loss.item(), "centre_px": centre.item() * cfg.size}


# ---- held-out evaluation -----------------------------------------------------------------------

@torch.no_grad()
def held_out_accuracy(net: ParameterRegressor, n: int = 2048, blur: float = 0.0, batch: int = 256,
                      generator=None) -> dict:
    """Per parameter on ``n`` held-out renders (blurred by up to ``blur`` px), or on a paired
    ``generator``'s images of the same latents: MAE and R^2 over the images that show it;
    accuracy of hair style, beard, glasses and accessory."""
    net = net.eval()
    g = torch.Generator().manual_seed(HELD_OUT_SEED + int(blur * 1000))
    preds, targets, visible, styles, accs, true_styles, true_accs, centre_err = [], [], [], [], [], [], [], []
    for i in range(0, n, batch):
        b = rendered_batch(min(batch, n - i), net.config.resolution, g, accessory_share=0.0 if generator else 0.1)
        img = augment(b.image, g, max_blur=blur, brightness=0.0, max_noise=0.0) if blur else b.image
        if generator is not None:
            img = generator(b.z.to(generator.w_avg.device), fused=False).clamp(-1, 1).cpu()
        p = net(img)
        t, v = observable_targets(b.portraits)
        preds.append(p.fields), targets.append(t), visible.append(v)
        styles.append(p.hair_style_logits.argmax(1)), accs.append(p.accessory_logits.argmax(1))
        true_styles.append(b.portraits.hair_style), true_accs.append(b.portraits.accessory)
        if net.config.parts:
            centre_err.append((p.part_centres - part_centres(b.labels, net.config.parts)).abs().mean(2))
    pred, tgt, vis = torch.cat(preds), torch.cat(targets), torch.cat(visible).bool()
    out = {"fields": {}}
    for j, name in enumerate(FIELDS):
        m = vis[:, j]
        if name in ("beard", "glasses"):
            out[name + " (present)"] = float(((pred[m, j] > 0.5) == (tgt[m, j] > 0.5)).float().mean())
            continue
        e, t = pred[m, j], tgt[m, j]
        out["fields"][name] = {"mae": float((e - t).abs().mean()), "n": int(m.sum()),
                               "r2": float(1 - (e - t).square().sum() / (t - t.mean()).square().sum().clamp(min=1e-12))}
    out["hair style"] = float((torch.cat(styles) == torch.cat(true_styles)).float().mean())
    out["accessory"] = float((torch.cat(accs) == torch.cat(true_accs)).float().mean())
    if centre_err:  # mean |predicted - true| centre of each part, px, where the part shows
        err = torch.cat(centre_err) * net.config.resolution
        out["part centre px"] = {part.name: float(e[~torch.isnan(e)].mean())
                                 for part, e in zip(net.config.parts, err.T)}
    return out


#: the unit values above which the renderer draws a beard / glasses
PRESENT_ABOVE = {"beard": BEARD_THRESHOLD, "glasses": GLASSES_THRESHOLD}


def moved_alone(p: Portraits, field: str, shift: float = 0.2) -> tuple:
    """(``p`` with the unit parameter ``field`` alone raised by ``shift`` (beard and glasses: drawn
    where absent), rows [N] bool where it moved and the picture shows it)."""
    v = p[field]
    if field in PRESENT_ABOVE:
        rows = v <= PRESENT_ABOVE[field]
        new = torch.where(rows, torch.full_like(v, 0.9), v)
    else:
        rows = v + shift <= 1
        new = torch.where(rows, v + shift, v)
    _, visible = observable_targets(p)
    return p.with_fields(**{field: new}), rows & (visible[:, INDEX[field]] > 0)


@torch.no_grad()
def crosstalk(read, p: Portraits, before: dict, field: str, stds: dict, size: int = 64, shift: float = 0.2) -> dict:
    """What a reader sees of a perfectly clean edit: {attribute: reading change / stds[attribute]}
    [M] over the M renders of ``p`` where ``field`` alone moved (``moved_alone``) and shows.
    ``read``: images [N, 3, size, size] -> {attribute: [N]}; ``before``: its readings of p's renders."""
    moved, rows = moved_alone(p, field, shift)
    changes = changes_between(before, read(render(moved, size).image), stds)
    return {k: v[rows] for k, v in changes.items()}


@torch.no_grad()
def same_person_images(n: int = 512, size: int = 64, seed: int = HELD_OUT_SEED + 7, generator=None) -> tuple:
    """(people, the same people turned to another yaw and given another person's hair, other
    people), each [n, 3, size, size] in [-1, 1]: renders, or a paired generator's images."""
    g = torch.Generator().manual_seed(seed)
    z_people, z_others = torch.randn(n, 64, generator=g), torch.randn(n, 64, generator=g)
    yaw = (torch.rand(n, generator=g) * 2 - 1) * MAX_YAW * 0.99
    z_same = latent_with(z_people, hair_of=z_others, yaw=yaw)
    if generator is None:
        return tuple(render(params_from_latent(z), size).image for z in (z_people, z_same, z_others))
    return tuple(generator(z.to(generator.w_avg.device), fused=False).clamp(-1, 1).cpu()
                 for z in (z_people, z_same, z_others))


@torch.no_grad()
def identity_pairs(identity: RegressorIdentity, n: int = 512, size: int = 64, seed: int = HELD_OUT_SEED + 7,
                   generator=None):
    """Distances for n same-person pairs (turned to another yaw and given another person's hair)
    and n different-person pairs: (same [n], different [n]); renders, or a paired generator's images."""
    a, b, c = same_person_images(n, size, seed, generator)
    return identity(a, b), identity(a, c)


def fit_identity_weights(first: torch.Tensor, second: torch.Tensor) -> tuple:
    """Identity fields read twice from the same people [n, F] (turned, other hair) -> one weight
    per field: 1 / the field's RMS difference between the two readings, scaled to RMS weight 1.
    Fields the regressor reads unsteadily for one person count less in the identity distance."""
    spread = (first - second).square().mean(0).sqrt().clamp_min(1e-4)
    weights = spread.reciprocal()
    weights = weights / weights.square().mean().sqrt()
    return tuple(round(float(v), 4) for v in weights)


@torch.no_grad()
def calibrate_identity(net: ParameterRegressor, generator=None, n_weights: int = 2048) -> tuple:
    """Calibrate ``net``'s identity distance: the field weights on n_weights rendered same-person
    pairs (``fit_identity_weights``), then the same-person threshold on the held-out pairs of
    ``identity_pairs`` (renders, and a paired ``generator``'s images when given). Sets both in
    ``net``'s config and returns (net, {images: (same, different) distances}, threshold, accuracy)."""
    net = net.eval()

    def read(images: torch.Tensor) -> torch.Tensor:
        return torch.cat([net.identity(chunk) for chunk in images.split(256)])

    first, second, _ = same_person_images(n_weights, seed=HELD_OUT_SEED + 8)
    net.config = replace(net.config, identity_weights=fit_identity_weights(read(first), read(second)))
    pairs = {"renders": identity_pairs(RegressorIdentity(net))}
    if generator is not None:
        pairs["generator images"] = identity_pairs(RegressorIdentity(net), generator=generator)
    same = torch.cat([s_ for s_, _ in pairs.values()])
    different = torch.cat([d_ for _, d_ in pairs.values()])
    threshold, accuracy = calibrate_threshold(same, different)
    net.config = replace(net.config, same_person_below=round(threshold, 4))
    return net, pairs, threshold, accuracy


def calibrate_threshold(same: torch.Tensor, different: torch.Tensor) -> tuple:
    """The threshold that best separates same from different (max accuracy): (threshold, accuracy)."""
    d = torch.cat([same, different])
    is_same = torch.cat([torch.ones_like(same), torch.zeros_like(different)])
    order = d.argsort()
    d, is_same = d[order], is_same[order]
    zero = torch.zeros(1)
    same_first = torch.cat([zero, is_same.cumsum(0)])                          # same among the k smallest
    diff_rest = (1 - is_same).sum() - torch.cat([zero, (1 - is_same).cumsum(0)])  # different among the rest
    correct = same_first + diff_rest                                          # k = 0 .. 2n
    k = int(correct.argmax())
    thr = float(d[0]) / 2 if k == 0 else float(d[-1]) * 1.01 if k == len(d) else float(d[k - 1] + d[k]) / 2
    return thr, float(correct[k]) / len(d)


def parts_line(acc_clean: dict, acc_generator: Optional[dict], parts: tuple) -> str:
    """The ``parts`` and their centre errors as a report paragraph (empty without parts)."""
    if not parts:
        return ""
    def errors(acc):
        return ", ".join(f"{k} {v:.2f} px" for k, v in acc["part centre px"].items())
    return ("\n\n**Parts** read at full resolution around a predicted centre: "
            + "; ".join(f"{p.name} ({p.height}x{p.width} px: {', '.join(p.fields)})" for p in parts)
            + f". Mean centre error against the label map's centroid: renders {errors(acc_clean)}"
            + (f"; generator images (the renders' centroids) {errors(acc_generator)}" if acc_generator else "") + ".")


def report(acc_clean: dict, acc_blur: dict, pairs: dict, threshold: float, accuracy: float, command: str,
           steps: int, acc_generator: Optional[dict] = None, generator: str = "", parts: tuple = ()) -> str:
    """The markdown report; ``pairs``: {images: (same, different) distances}; ``acc_generator``:
    held-out accuracy on a paired generator's images (named ``generator``), when there is one;
    ``parts``: the regressor's parts."""
    gen = acc_generator is not None
    rows = "\n".join(f"| {name} | {acc_clean['fields'][name]['mae']:.3f} | {acc_clean['fields'][name]['r2']:.3f} | "
                     f"{acc_blur['fields'][name]['r2']:.3f} | "
                     + (f"{acc_generator['fields'][name]['r2']:.3f} | " if gen else "")
                     + f"{acc_clean['fields'][name]['n']} |" for name in acc_clean["fields"])
    classes = "\n".join(f"| {k} | {acc_clean[k]:.3f} | {acc_blur[k]:.3f} |" + (f" {acc_generator[k]:.3f} |" if gen else "")
                        for k in ("hair style", "accessory", "beard (present)", "glasses (present)"))
    head = "| parameter | MAE | R^2 | R^2 blurred |" + (" R^2 generator |" if gen else "") + " n |\n|---|---|---|---|" \
        + ("---|" if gen else "") + "---|\n"
    chead = "| class | accuracy | accuracy blurred |" + (" accuracy generator |" if gen else "") + "\n|---|---|---|" \
        + ("---|" if gen else "") + "\n"
    return (f"# Embedded parameter regressor: held-out accuracy\n\n`{command}` ({steps} steps)\n\n"
            "2,048 held-out renders (one in ten with an out-of-domain accessory); *blurred*: the same "
            "kind of renders blurred by a Gaussian of up to 1 px, as a generator's softer images look"
            + (f"; *generator*: `{generator}`'s images of the same latents (it is paired with the renderer, so "
               "their labels are exact)" if gen else "")
            + ". MAE in unit parameters [0, 1]; R^2 over the images that show the parameter (n).\n\n"
            + head + rows + "\n\n" + chead + classes
            + parts_line(acc_clean, acc_generator, parts) + "\n\n" + identity_paragraph(pairs, threshold, accuracy))


def identity_paragraph(pairs: dict, threshold: float, accuracy: float) -> str:
    """The report's identity paragraph (one line starting ``**Identity**``); ``pairs``: {images:
    (same, different) distances}."""
    ident = "; ".join(f"{images}: same person {float(s_.mean()):.3f} +- {float(s_.std()):.3f}, different people "
                      f"{float(d_.mean()):.3f} +- {float(d_.std()):.3f}" for images, (s_, d_) in pairs.items())
    return (f"**Identity** (RMS difference of the {len(IDENTITY_FIELDS)} predicted identity parameters, each "
            "weighted by 1 / its spread over 2,048 rendered people read twice, turned and with other hair "
            "(weights scaled to RMS 1); 512 held-out same-person pairs, turned to another yaw and with another "
            f"person's hair, and 512 different people): {ident}. Threshold {threshold:.3f} (same person below) "
            f"separates them with accuracy {accuracy:.3f}.\n")


def replace_identity_paragraph(text: str, paragraph: str) -> str:
    """``text`` (a report) with its ``**Identity**`` line replaced by ``paragraph`` (appended if none)."""
    lines = text.splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if line.startswith("**Identity**")]
    if not at:
        return text.rstrip("\n") + "\n\n" + paragraph
    lines[at[0]] = paragraph
    return "".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=RegressorTraining.steps)
    ap.add_argument("--batch", type=int, default=RegressorTraining.batch)
    loop.add_run_arguments(ap)
    ap.add_argument("--out", type=Path, default=Path("weights/embedded-regressor-64.safetensors"))
    ap.add_argument("--report", type=Path, default=Path("bench/results/embedded_regressor.md"))
    ap.add_argument("--init", type=Path, help="continue from this regressor (safetensors) with a fresh optimiser")
    ap.add_argument("--lr", type=float, default=RegressorTraining.lr)
    ap.add_argument("--max-blur", type=float, default=RegressorTraining.max_blur,
                    help="renders are blurred by a Gaussian of sigma up to this many px")
    ap.add_argument("--generator", help="catalogue name of a generator paired with the renderer whose images "
                                        "join the batches (and the report)")
    ap.add_argument("--generator-share", type=float, default=0.5)
    ap.add_argument("--calibrate", action="store_true",
                    help="train nothing: recalibrate the identity distance (field weights, threshold) of --init, "
                         "write it to --out and replace the identity paragraph of --report")
    a = ap.parse_args(argv)
    device = resolve_device(a.device)
    G = None
    if a.generator:
        from ..registry import Registry
        registry = Registry.from_settings()
        if not registry.catalogue.get(a.generator).paired_with_renderer:
            raise SystemExit(f"{a.generator} is not paired with the renderer: its images have no exact labels")
        G = registry.get(a.generator, device)
    if a.calibrate:
        if not a.init:
            raise SystemExit("--calibrate needs --init (the regressor to calibrate)")
        net = load_module(a.init, "parameter-regressor").eval().cpu().requires_grad_(False)
        net, pairs, threshold, accuracy = calibrate_identity(net, None if G is None else G.cpu())
        save_safetensors(a.out, net.config, net.state_dict(), storage=torch.float16,
                         note=f"semedit.training.regressor --calibrate of {a.init.name}")
        paragraph = identity_paragraph(pairs, threshold, accuracy)
        old = a.report.read_text() if a.report.exists() else ""
        a.report.parent.mkdir(parents=True, exist_ok=True)
        a.report.write_text(replace_identity_paragraph(old, paragraph))
        print(paragraph, "weights:", dict(zip(net.config.identity_fields, net.config.identity_weights)))
        return
    cfg = RegressorTraining(steps=a.steps, batch=a.batch, lr=a.lr, seed=a.seed, max_blur=a.max_blur,
                            generator_share=a.generator_share if G is not None else 0.0)
    init = load_module(a.init, "parameter-regressor") if a.init else None
    trainer = RegressorTrainer(cfg, device, init=init, generator=G)
    loop.run(trainer, work_dir=a.work_dir, total_steps=cfg.steps, minutes=a.minutes, resume=a.resume)
    net = trainer.net.eval().cpu().requires_grad_(False)
    G = None if G is None else G.cpu()
    net, pairs, threshold, accuracy = calibrate_identity(net, G)
    save_safetensors(a.out, net.config, net.state_dict(), storage=torch.float16,  # half the file; loads as float32
                     note=f"trained by semedit.training.regressor, {trainer.step} steps, {cfg}")
    text = report(held_out_accuracy(net), held_out_accuracy(net, blur=1.0), pairs, threshold, accuracy,
                  "python -m semedit.training.regressor " + " ".join(sys.argv[1:] if argv is None else argv),
                  trainer.step, held_out_accuracy(net, generator=G) if G is not None else None, a.generator or "",
                  net.config.parts)
    a.report.parent.mkdir(parents=True, exist_ok=True)
    a.report.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
