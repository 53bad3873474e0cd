"""Train the embedded domain's parameter regressor (the "inverse renderer") and calibrate its identity.

    python -m semedit.training.regressor --steps 3000 --work-dir runs/regressor \\
        --out weights/embedded-regressor-64.safetensors --report bench/results/embedded_regressor.md

Images are renderer portraits (one in ten with an out-of-domain accessory) augmented with blur,
noise and brightness so that a generator's softer images read too. The loss is L1 on every
parameter the image shows (``synth.params.observable_targets``) plus cross-entropy on the hair
style and the accessory. After training, held-out accuracy per parameter goes into the report,
and the identity threshold is calibrated on the same person turned and with another person's
hair against different people; it is stored in the checkpoint's config.
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
from ..networks.regressor import ParameterRegressor, RegressorConfig, RegressorIdentity
from ..settings import resolve_device
from ..synth.params import (ACCESSORIES, FIELDS, HAIR_STYLES, IDENTITY_FIELDS, MAX_YAW, latent_with,
                            observable_targets, params_from_latent)
from ..synth.render import render
from . import loop
from .data import augment, rendered_batch, step_generator

HELD_OUT_SEED = 987_654_321  # far from every training stream


def regressor_config(resolution: int = 64, **kw) -> RegressorConfig:
    """The embedded domain's regressor: every renderer parameter, its styles and accessories."""
    return RegressorConfig(field_names=FIELDS, identity_fields=IDENTITY_FIELDS, hair_styles=HAIR_STYLES,
                           accessories=ACCESSORIES, resolution=resolution, **kw)


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
    exactly, so the regressor reads the generator's look as well as renders'."""

    def __init__(self, cfg: RegressorTraining, device: torch.device | str = "cpu",
                 init: Optional[ParameterRegressor] = None, generator=None):
        if cfg.generator_share > 0 and generator is None:
            raise ValueError("generator_share > 0 needs a generator paired with the renderer")
        self.cfg, self.device = cfg, torch.device(device)
        self.G = None if generator is None else generator.to(self.device).eval().requires_grad_(False)
        torch.manual_seed(cfg.seed)
        net = ParameterRegressor(regressor_config(cfg.size)) if init is None else init
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
        loss = regressor_loss(self.net(img), portraits, cfg.class_weight, cfg.binary_weight)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        self.step += 1
        return {"loss": loss.item()}


# ---- held-out evaluation -----------------------------------------------------------------------

@torch.no_grad()
def held_out_accuracy(net: ParameterRegressor, n: int = 2048, blur: float = 0.0, batch: int = 256,
                      generator=None) -> dict:
    """Per parameter on ``n`` held-out renders (blurred by up to ``blur`` px), or on a paired
    ``generator``'s images of the same latents: MAE and R^2 over the images that show it;
    accuracy of hair style, beard, glasses and accessory."""
    net = net.eval()
    g = torch.Generator().manual_seed(HELD_OUT_SEED + int(blur * 1000))
    preds, targets, visible, styles, accs, true_styles, true_accs = [], [], [], [], [], [], []
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
    return out


@torch.no_grad()
def identity_pairs(identity: RegressorIdentity, n: int = 512, size: int = 64, seed: int = HELD_OUT_SEED + 7,
                   generator=None):
    """Distances for n same-person pairs (turned to another yaw and given another person's hair)
    and n different-person pairs: (same [n], different [n]); renders, or a paired generator's images."""
    g = torch.Generator().manual_seed(seed)
    z_people, z_others = torch.randn(n, 64, generator=g), torch.randn(n, 64, generator=g)
    yaw = (torch.rand(n, generator=g) * 2 - 1) * MAX_YAW * 0.99
    z_same = latent_with(z_people, hair_of=z_others, yaw=yaw)
    if generator is None:
        a, b, c = (render(params_from_latent(z), size).image for z in (z_people, z_same, z_others))
    else:
        a, b, c = (generator(z.to(generator.w_avg.device), fused=False).clamp(-1, 1).cpu()
                   for z in (z_people, z_same, z_others))
    return identity(a, b), identity(a, c)


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


def report(acc_clean: dict, acc_blur: dict, pairs: dict, threshold: float, accuracy: float, command: str,
           steps: int, acc_generator: Optional[dict] = None, generator: str = "") -> str:
    """The markdown report; ``pairs``: {images: (same, different) distances}; ``acc_generator``:
    held-out accuracy on a paired generator's images (named ``generator``), when there is one."""
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
    ident = "; ".join(f"{images}: same person {float(s_.mean()):.3f} +- {float(s_.std()):.3f}, different people "
                      f"{float(d_.mean()):.3f} +- {float(d_.std()):.3f}" for images, (s_, d_) in pairs.items())
    return (f"# Embedded parameter regressor: held-out accuracy\n\n`{command}` ({steps} steps)\n\n"
            "2,048 held-out renders (one in ten with an out-of-domain accessory); *blurred*: the same "
            "kind of renders blurred by a Gaussian of up to 1 px, as a generator's softer images look"
            + (f"; *generator*: `{generator}`'s images of the same latents (it is paired with the renderer, so "
               "their labels are exact)" if gen else "")
            + ". MAE in unit parameters [0, 1]; R^2 over the images that show the parameter (n).\n\n"
            + head + rows + "\n\n" + chead + classes +
            f"\n\n**Identity** (RMS difference of the {len(IDENTITY_FIELDS)} predicted identity parameters; "
            f"512 same-person pairs, turned to another yaw and with another person's hair, and 512 different "
            f"people): {ident}. Threshold {threshold:.3f} (same person below) separates them with accuracy "
            f"{accuracy:.3f}.\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=RegressorTraining.steps)
    ap.add_argument("--batch", type=int, default=RegressorTraining.batch)
    loop.add_run_arguments(ap)
    ap.add_argument("--out", type=Path, default=Path("weights/embedded-regressor-64.safetensors"))
    ap.add_argument("--report", type=Path, default=Path("bench/results/embedded_regressor.md"))
    ap.add_argument("--init", type=Path, help="continue from this regressor (safetensors) with a fresh optimiser")
    ap.add_argument("--lr", type=float, default=RegressorTraining.lr)
    ap.add_argument("--generator", help="catalogue name of a generator paired with the renderer whose images "
                                        "join the batches (and the report)")
    ap.add_argument("--generator-share", type=float, default=0.5)
    a = ap.parse_args(argv)
    device = resolve_device(a.device)
    G = None
    if a.generator:
        from ..registry import Registry
        registry = Registry.from_settings()
        if not registry.catalogue.get(a.generator).paired_with_renderer:
            raise SystemExit(f"{a.generator} is not paired with the renderer: its images have no exact labels")
        G = registry.get(a.generator, device)
    cfg = RegressorTraining(steps=a.steps, batch=a.batch, lr=a.lr, seed=a.seed,
                            generator_share=a.generator_share if G is not None else 0.0)
    init = load_module(a.init, "parameter-regressor") if a.init else None
    trainer = RegressorTrainer(cfg, device, init=init, generator=G)
    loop.run(trainer, work_dir=a.work_dir, total_steps=cfg.steps, minutes=a.minutes, resume=a.resume)
    net = trainer.net.eval().cpu().requires_grad_(False)
    G = None if G is None else G.cpu()
    pairs = {"renders": identity_pairs(RegressorIdentity(net))}
    if G is not None:
        pairs["generator images"] = identity_pairs(RegressorIdentity(net), generator=G)
    same = torch.cat([s_ for s_, _ in pairs.values()])
    different = torch.cat([d_ for _, d_ in pairs.values()])
    threshold, accuracy = calibrate_threshold(same, different)
    net.config = replace(net.config, same_person_below=round(threshold, 4))
    save_safetensors(a.out, net.config, net.state_dict(),
                     note=f"trained by semedit.training.regressor, {trainer.step} steps, {cfg}")
    text = report(held_out_accuracy(net), held_out_accuracy(net, blur=1.0), pairs, threshold, accuracy,
                  "python -m semedit.training.regressor " + " ".join(sys.argv[1:] if argv is None else argv),
                  trainer.step, held_out_accuracy(net, generator=G) if G is not None else None, a.generator or "")
    a.report.parent.mkdir(parents=True, exist_ok=True)
    a.report.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
