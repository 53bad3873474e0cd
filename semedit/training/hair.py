"""Train the FG'21 hairstyle-transfer network for a generator of the embedded domain.

    python -m semedit.training.hair --work-dir runs/hair --steps 3000 \\
        --out weights/embedded-hair-64.safetensors

Two kinds of pairs, each a pure function of seed and step:

- **Exact pairs from the renderer** (what only our domain has): person A, person B turned to a
  random yaw; the true result is A with B's hair at A's pose, which ``synth.params.latent_with``
  gives exactly and the renderer draws. A share of pairs are the same person (turned): the
  network then reproduces the face with its own hair, which the interpolation strip starts from.
- **The paper's recipe** (pairs from the generator, any generator with a yaw direction): one
  sampled person, the hair image the same code moved along the yaw direction, so the hair is the
  same and the pose differs; the true code is the unmoved one.

For a generator *paired* with the renderer (its z is the renderer's latent, as the distilled one's
is) the renderer's pairs come with their exact code, the generator's image of the true latent is the
reachable optimum, and the inputs are the generator's images or renders (as users give either).
For a generator that is not (an adversarially trained one), the true code of a rendered pair is
unknown: its target is what the generator's encoder reads off the true render, the image loss is
against the true render itself, and a share of every batch follows the paper's recipe, whose code
is exact. The loss is the W+ error to the target code (in units of the codes' spread) plus, on a
few pairs a step (synthesis is the costly part on a CPU), the L1 error of the synthesised result to
the target image.

``--region-batch N`` adds, each step, N pairs of two of the generator's own samples scored as the
optimisation method scores a transfer (``hair.transfer.transfer_by_optimisation``): the result
against the face image outside both hair regions and against the hair image, turned to the face's
pose along the yaw direction, inside its hair region. No true image is needed, so a network learns
to do in one pass what optimisation does per pair.

``--kind mixer`` trains FG'21's map alone, on the codes of the generator's own encoder (frozen and
shared by the face and the hair image; ``networks.encoders.HairCodeMixer``). It starts from the
face's own code, so it keeps as much of the person as the encoder does from the first step, and
only the hair has to be learnt; the file holds the mixer, its catalogue entry names the encoder.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from .. import segmentation as L
from ..checkpoints import load_module, save_safetensors
from ..editing.directions import Direction
from ..editing.library import code_direction, directions_for
from ..encoders import EncoderHairTransfer, encode
from ..latents import Latent, synthesize
from ..networks.encoders import EncoderConfig, HairCodeMixer, HairMixerConfig, HairTransferConfig, HairTransferNet
from ..networks.psp import EncoderModel
from ..networks.stylegan2 import StyleGAN2Generator
from ..pipeline import encoder_of
from ..settings import resolve_device
from ..synth.params import LATENT_DIM, MAX_YAW, latent_with, params_from_latent
from ..synth.render import render
from . import loop
from .data import code_spread, step_generator


@dataclass(frozen=True)
class HairTraining:
    steps: int = 3000
    batch: int = 32
    lr: float = 1e-3
    same_person_share: float = 0.15
    render_share: float = 0.5      # inputs that are renders rather than the generator's images
    latent_weight: float = 1.0
    image_weight: float = 1.0
    image_batch: int = 8           # pairs per step whose synthesised result the image loss sees
    recipe_share: float = 0.3      # unpaired generators: pairs by the paper's recipe (the rest rendered)
    swap_batch: int = 0            # with a segmenter: pairs of two samples a step whose face region is kept
    swap_weight: float = 1.0
    region_batch: int = 0          # with a segmenter: pairs of two samples a step scored as optimisation scores
    region_weight: float = 1.0
    region_face_weight: float = 1.0  # the face term's weight against the hair term's
    region_identity_weight: float = 0.0  # with an identity model: its distance of the result to the face image
    region_perceptual: bool = False  # with a perceptual model: its distance added to each region's L1
    max_yaw_units: float = 2.0     # the paper's recipe: the hair image turned by up to this many yaw units
    widths: tuple = (32, 64, 96, 128)
    hidden: int = 256
    kind: str = "network"          # one of KINDS
    mixer_hidden: int = 512
    seed: int = 0


#: the classes of a face image that a hair transfer keeps (``swap_batch``)
FACE_REGION = (L.SKIN, L.EYES, L.BROWS, L.MOUTH, L.BEARD, L.GLASSES, L.NECK_CLOTHES)
#: "network": the FG'21 network, both encoders trained from scratch; "mixer": FG'21's map only, as an
#: MLP on the codes of the generator's own encoder (frozen, shared by both images), starting from the
#: face's own code
KINDS = ("network", "mixer")


def hair_network(G: StyleGAN2Generator, cfg: HairTraining, encoder: Optional[EncoderModel] = None) -> torch.nn.Module:
    """A small FG'21 network for G's W+ shape, reading images at G's resolution; for ``cfg.kind``
    "mixer", a HairCodeMixer on ``encoder``'s codes, centred on G's average code and scaled by the
    codes' spread per channel."""
    if cfg.kind == "mixer":
        mixer = HairCodeMixer(HairMixerConfig(G.num_ws, G.config.w_dim, cfg.mixer_hidden))
        with torch.no_grad():
            mixer.centre.copy_(G.w_avg.expand(G.num_ws, -1))
            mixer.scale.fill_(math.sqrt(code_spread(G, G.w_avg.device) / G.config.w_dim))
        return EncoderHairTransfer(encoder, mixer)
    enc = EncoderConfig(num_ws=G.num_ws, w_dim=G.config.w_dim, units=(1,) * len(cfg.widths), widths=tuple(cfg.widths),
                        input_size=G.config.resolution, pool=2, hidden=cfg.hidden)
    return HairTransferNet(HairTransferConfig(enc))


def renderer_triplets(batch: int, g: torch.Generator, same_person_share: float) -> tuple:
    """Renderer latents [B, 64] of a pair and its truth: (face, hair image turned to a random yaw,
    the true result: the face's person with the hair's hair at the face's pose)."""
    device = g.device
    z_face = torch.randn(batch, LATENT_DIM, generator=g, device=device)
    z_other = torch.randn(batch, LATENT_DIM, generator=g, device=device)
    same = torch.rand(batch, generator=g, device=device) < same_person_share
    z_hair = torch.where(same[:, None], z_face, z_other)
    yaw = (torch.rand(batch, generator=g, device=device) * 2 - 1) * MAX_YAW * 0.9
    return z_face, latent_with(z_hair, yaw=yaw), latent_with(z_face, hair_of=z_hair)


def _rendered(z: torch.Tensor, res: int) -> torch.Tensor:
    return render(params_from_latent(z), res).image


@torch.no_grad()
def hair_pairs(G: StyleGAN2Generator, batch: int, g: torch.Generator, *, same_person_share: float = 0.15,
               render_share: float = 0.5, images: int = 8) -> dict:
    """Exact pairs for a generator paired with the renderer, on g's device: ``face``, ``hair`` [B, 3,
    R, R] inputs, the true code ``target_ws`` [B, L, C], for the first ``images`` pairs the
    generator's image of the true latent ``target`` [images, 3, R, R], and ``truth`` [B, 3, R, R],
    the true render."""
    device = g.device
    res = G.config.resolution
    z_face, z_hair_turned, z_true = renderer_triplets(batch, g, same_person_share)
    target_ws = G.broadcast(G.mapping(z_true))
    target = G.synthesis(target_ws[:images], fused=False).clamp(-1, 1)

    def shown(z):  # the generator's image or the render of the same latent; G runs only where needed
        out = _rendered(z, res)
        own = torch.rand(batch, generator=g, device=device) >= render_share
        if own.any():
            out[own] = G(z[own], fused=False).clamp(-1, 1)
        return out
    return {"face": shown(z_face), "hair": shown(z_hair_turned), "target_ws": target_ws, "target": target,
            "truth": _rendered(z_true, res)}


@torch.no_grad()
def rendered_pairs(G: StyleGAN2Generator, encoder: EncoderModel, batch: int, g: torch.Generator, *,
                   same_person_share: float = 0.15, images: int = 8) -> dict:
    """Exact pairs for a generator not paired with the renderer: renders as ``face`` and ``hair``
    [B, 3, R, R], the true render as ``truth`` and (its first ``images``) ``target``, and as
    ``target_ws`` [B, L, C] the code G's ``encoder`` reads off the true render."""
    res = G.config.resolution
    z_face, z_hair_turned, z_true = renderer_triplets(batch, g, same_person_share)
    truth = _rendered(z_true, res)
    target_ws = encode(encoder, G, truth)[0].to(truth.device)
    return {"face": _rendered(z_face, res), "hair": _rendered(z_hair_turned, res), "target_ws": target_ws,
            "target": truth[:images], "truth": truth}


@torch.no_grad()
def recipe_pairs(G: StyleGAN2Generator, yaw: Direction, batch: int, g: torch.Generator, *,
                 max_units: float = 2.0, images: int = 8) -> dict:
    """The paper's recipe, for any generator with a yaw direction: ``face`` = G(w) for a sampled
    w, ``hair`` = G(w moved k units along ``yaw``), k uniform in [-max_units, max_units] (the same
    hair, another pose); ``target_ws`` [B, L, C] = w, exact; ``target`` = the first ``images`` faces."""
    device = g.device
    ws = G.broadcast(G.mapping(torch.randn(batch, G.config.z_dim, generator=g, device=device)))
    k = (torch.rand(batch, generator=g, device=device) * 2 - 1) * max_units
    turned = ws + k[:, None, None] * yaw.delta(G, "w+")[None]
    face = G.synthesis(ws, fused=False).clamp(-1, 1)
    return {"face": face, "hair": G.synthesis(turned, fused=False).clamp(-1, 1), "target_ws": ws,
            "target": face[:images]}


def masked_l1(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of images [N, 3, R, R] over the pixels of ``mask`` [N, 1, R, R] in [0, 1],
    pooled over the batch (0 where the mask is empty)."""
    return ((x - y).abs() * mask).sum() / (3 * mask.sum()).clamp(min=1)


def turned_to(ws: torch.Tensor, to: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Codes ``ws`` [N, L, C] moved along ``delta`` [L, C] (one unit of a direction) until their
    coordinate along it is that of ``to`` [N, L, C]: another person's code turned to this one's pose."""
    k = ((to - ws) * delta).sum((1, 2)) / delta.square().sum()
    return ws + k[:, None, None] * delta


def yaw_direction(directions) -> Direction:
    """The first W (or W+) direction among ``directions`` whose attribute is yaw."""
    d = code_direction(directions, "yaw")
    if d is not None:
        return d
    raise ValueError("the paper's recipe needs a yaw direction in W: fit the generator's directions first "
                     "(python -m semedit.training.directions)")


class HairTrainer(loop.NetTrainerState):
    """``paired``: G's z is the renderer's latent (exact codes for rendered pairs). Otherwise
    ``encoder`` (G's encoder, for the rendered pairs' target codes) and ``yaw`` (for the paper's
    recipe) are needed. With G's ``segmenter``, ``cfg.swap_batch`` > 0 also keeps the face of pairs of
    two different samples each step (``_kept_face_error``), and ``cfg.region_batch`` > 0 scores such
    pairs as optimisation does (``_region_error``, which needs ``yaw``; with ``cfg.region_perceptual``
    and ``perceptual``, a perceptual model such as LPIPS, each region's error is its L1 plus its
    perceptual distance; with ``cfg.region_identity_weight`` and ``identity``, (x, y) -> distances
    [N], its distance of the result to the face image is added, as optimisation's identity term).
    ``init``: a trained network (or, for the mixer kind, mixer) of the same configuration to continue
    from, with a fresh optimiser."""

    def __init__(self, G: StyleGAN2Generator, cfg: HairTraining, device: torch.device | str = "cpu", *,
                 paired: bool = True, encoder: Optional[EncoderModel] = None, yaw: Optional[Direction] = None,
                 segmenter: Optional[torch.nn.Module] = None, perceptual: Optional[torch.nn.Module] = None,
                 identity: Optional[torch.nn.Module] = None, init: Optional[torch.nn.Module] = None):
        if paired and G.config.z_dim != LATENT_DIM:
            raise ValueError("this generator is not paired with the renderer (its z is not the renderer's "
                             "latent): train with its encoder and yaw direction instead (paired=False)")
        if not paired and (encoder is None or yaw is None):
            raise ValueError("a generator not paired with the renderer needs its encoder (target codes of "
                             "rendered pairs) and a yaw direction (the paper's recipe)")
        if cfg.kind not in KINDS:
            raise ValueError(f"unknown kind {cfg.kind!r}; choose one of {', '.join(KINDS)}")
        if cfg.region_batch > 0 and (segmenter is None or yaw is None):
            raise ValueError("region pairs need the generator's segmenter and a yaw direction")
        if cfg.kind == "mixer" and encoder is None:
            raise ValueError("a hair mixer works on the codes of the generator's encoder: give one")
        self.cfg, self.device, self.paired = cfg, torch.device(device), paired
        self.G = G.to(self.device).eval().requires_grad_(False)
        self.encoder = None if encoder is None else encoder.to(self.device).eval().requires_grad_(False)
        self.yaw = yaw
        self.segmenter = None if segmenter is None else segmenter.to(self.device).eval().requires_grad_(False)
        self.perceptual = None if perceptual is None else perceptual.to(self.device).eval().requires_grad_(False)
        self.identity = None if identity is None else identity.to(self.device).eval().requires_grad_(False)
        if cfg.region_identity_weight and identity is None:
            raise ValueError("region_identity_weight > 0 needs an identity model")
        if cfg.region_perceptual and perceptual is None:
            raise ValueError("region_perceptual needs a perceptual model")
        torch.manual_seed(cfg.seed)
        self.net = hair_network(G, cfg, self.encoder).to(self.device).train()
        trained = self.net.mixer if cfg.kind == "mixer" else self.net
        if init is not None:
            if getattr(init, "config", None) != trained.config:
                raise ValueError(f"the {cfg.kind} to continue from has another configuration than this run's "
                                 f"({trained.config})")
            trained.load_state_dict(init.state_dict())
        self.opt = torch.optim.Adam(trained.parameters(), lr=cfg.lr)
        self.sched = loop.one_cycle(self.opt, cfg.lr, cfg.steps)
        self.w_var = code_spread(G, self.device)
        paired_terms = cfg.batch if (cfg.latent_weight or cfg.image_weight) else 0
        self.step, self.images_per_step = 0, paired_terms + 2 * (cfg.swap_batch + cfg.region_batch)

    def batch(self, g: torch.Generator) -> tuple:
        """(face, hair, target codes [B, L, C], rows the image loss sees, their target images)."""
        cfg = self.cfg
        if self.paired:
            b = hair_pairs(self.G, cfg.batch, g, same_person_share=cfg.same_person_share,
                           render_share=cfg.render_share, images=cfg.image_batch)
            return b["face"], b["hair"], b["target_ws"], torch.arange(cfg.image_batch), b["target"]
        n = min(cfg.batch - 1, max(1, round(cfg.batch * cfg.recipe_share)))
        k = min(n, max(1, round(cfg.image_batch * cfg.recipe_share)))
        a = recipe_pairs(self.G, self.yaw, n, g, max_units=cfg.max_yaw_units, images=k)
        b = rendered_pairs(self.G, self.encoder, cfg.batch - n, g, same_person_share=cfg.same_person_share,
                           images=cfg.image_batch - k)
        rows = torch.cat([torch.arange(k), n + torch.arange(len(b["target"]))])
        return (torch.cat([a["face"], b["face"]]), torch.cat([a["hair"], b["hair"]]),
                torch.cat([a["target_ws"], b["target_ws"]]), rows, torch.cat([a["target"], b["target"]]))

    def train_step(self) -> dict:
        cfg = self.cfg
        g = step_generator(cfg.seed, self.step, self.device)
        loss, metrics = torch.zeros((), device=self.device), {}
        if cfg.latent_weight or cfg.image_weight:  # the paired terms (skipped when both weigh nothing)
            face, hair, target_ws, rows, target = self.batch(g)
            ws = self.net(face, hair)
            latent = (ws - target_ws).square().sum(-1).mean() / self.w_var
            image = (synthesize(self.G, Latent("w+", ws[rows.to(ws.device)])) - target).abs().mean()
            loss = cfg.latent_weight * latent + cfg.image_weight * image
            metrics = {"latent": latent.item(), "image_l1": image.item()}
        if self.segmenter is not None and cfg.swap_batch > 0:
            kept = self._kept_face_error(g)
            loss = loss + cfg.swap_weight * kept
            metrics["face_kept_l1"] = kept.item()
        if cfg.region_batch > 0:
            face_error, hair_error, identity = self._region_error(g)
            loss = loss + cfg.region_weight * (cfg.region_face_weight * face_error + hair_error
                                               + cfg.region_identity_weight * identity)
            metrics.update(region_face=face_error.item(), region_hair=hair_error.item())
            if self.identity is not None:
                metrics["region_identity"] = identity.item()
        self.update(loss)
        return {"loss": loss.item(), **metrics}

    def _region_error(self, g: torch.Generator) -> tuple:
        """Two different samples of G as face image A and hair image B, scored as optimisation
        scores a transfer: (the result's error to A outside A's hair and B's turned hair, its error
        to B turned inside its hair), each the mean L1 in the region plus, with a perceptual model,
        the perceptual distance of the masked images, and the identity model's mean distance of the
        result to A (0 without one). B is turned to A's pose by moving its code along the yaw
        direction until its yaw coordinate is A's."""
        G, n = self.G, self.cfg.region_batch
        with torch.no_grad():
            ws = G.broadcast(G.mapping(torch.randn(2 * n, G.config.z_dim, generator=g, device=self.device)))
            turned = turned_to(ws[n:], ws[:n], self.yaw.delta(G, "w+"))
            images = G.synthesis(torch.cat([ws, turned]), fused=False).clamp(-1, 1)
            face, hair, hair_turned = images.split(n)
            labels = self.segmenter.predict(torch.cat([face, hair_turned]))
            hair_region = (labels[n:] == L.HAIR).float()[:, None]
            face_region = (labels[:n] != L.HAIR).float()[:, None] * (1 - hair_region)
        out = synthesize(G, Latent("w+", self.net(face, hair))).clamp(-1, 1)

        def error(target, region):
            e = masked_l1(out, target, region)
            if self.cfg.region_perceptual:
                e = e + self.perceptual(out * region, target * region).mean()
            return e
        identity = out.new_zeros(()) if self.identity is None else self.identity(out, face).mean()  # as optimisation
        return error(face, face_region), error(hair_turned, hair_region), identity

    def _kept_face_error(self, g: torch.Generator) -> torch.Tensor:
        """Two different samples of G as face and hair image (the pairs a user makes, which no
        other term shows the network): the mean L1 error of the result to the face image over
        the face image's face, neck and clothes (``FACE_REGION``) where the result has no hair."""
        G, n = self.G, self.cfg.swap_batch
        with torch.no_grad():
            ws = G.broadcast(G.mapping(torch.randn(2 * n, G.config.z_dim, generator=g, device=self.device)))
            images = G.synthesis(ws, fused=False).clamp(-1, 1)
            face, hair = images[:n], images[n:]
            region = torch.isin(self.segmenter.predict(face), torch.tensor(FACE_REGION, device=self.device))
        out = synthesize(G, Latent("w+", self.net(face, hair))).clamp(-1, 1)
        with torch.no_grad():
            keep = (region & (self.segmenter.predict(out) != L.HAIR)).float()[:, None]
        return masked_l1(out, face, keep)


def generator_encoder(registry, model: str, name: Optional[str] = None) -> EncoderModel:
    """The encoder ``name``, or the catalogue's encoder for ``model`` by preference e4e, pSp, then
    ReStyle (single passes first; HyperStyle changes weights and gives no codes of its own)."""
    name = name or encoder_of(registry, model)
    if name:
        return registry.get(name)
    raise ValueError(f"{model} has no encoder in the catalogue: train one first (python -m "
                     f"semedit.training.encoder), or name one with --encoder")


def default_out(model: str, kind: str) -> Path:
    """Where a run writes without ``--out``: over the shipped network only when it trains that
    network (the distilled generator's, embedded-portraits-64), so training for another generator
    keeps the shipped file."""
    if model == "embedded-portraits-64" and kind == "network":
        return Path("weights/embedded-hair-64.safetensors")
    return Path(f"weights/{model}-hair-{kind}.safetensors")


def main(argv=None) -> None:
    from ..registry import Registry
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded-portraits-64", help="the generator (of the embedded domain)")
    ap.add_argument("--kind", choices=KINDS, default=HairTraining.kind,
                    help="network: the FG'21 network from scratch; mixer: an MLP on the codes of the generator's "
                         "encoder (small, fast to train, starts from the face's own code)")
    ap.add_argument("--mixer-hidden", type=int, default=HairTraining.mixer_hidden, help="mixer: hidden width")
    ap.add_argument("--encoder", help="the generator's encoder: the mixer's, and for a generator not paired with "
                                      "the renderer the rendered pairs' target codes (default: its first e4e or "
                                      "pSp in the catalogue)")
    ap.add_argument("--swap-batch", type=int, default=HairTraining.swap_batch,
                    help="pairs of two samples a step whose result must keep the face image's face (needs the "
                         "generator's segmenter)")
    ap.add_argument("--swap-weight", type=float, default=HairTraining.swap_weight)
    ap.add_argument("--region-batch", type=int, default=HairTraining.region_batch,
                    help="pairs of two samples a step scored as the optimisation method scores a transfer (face "
                         "region against the face image, hair region against the hair image turned to its pose; "
                         "needs the generator's segmenter and yaw direction)")
    ap.add_argument("--region-weight", type=float, default=HairTraining.region_weight)
    ap.add_argument("--region-face-weight", type=float, default=HairTraining.region_face_weight,
                    help="region pairs: the face term's weight against the hair term's")
    ap.add_argument("--region-identity-weight", type=float, default=HairTraining.region_identity_weight,
                    help="region pairs: weight of the generator's identity model's distance to the face image")
    ap.add_argument("--region-perceptual", action="store_true",
                    help="region pairs: add the catalogue's perceptual distance to each region's L1 (as optimisation)")
    ap.add_argument("--latent-weight", type=float, default=HairTraining.latent_weight,
                    help="the W+ error to the pairs' target codes (0 with --image-weight 0: region pairs only)")
    ap.add_argument("--image-weight", type=float, default=HairTraining.image_weight)
    ap.add_argument("--steps", type=int, default=HairTraining.steps)
    ap.add_argument("--batch", type=int, default=HairTraining.batch)
    ap.add_argument("--lr", type=float, default=HairTraining.lr)
    ap.add_argument("--init", type=Path, help="continue from this network or mixer (safetensors, same configuration) "
                                              "with a fresh optimiser, e.g. after its encoder was retrained")
    loop.add_run_arguments(ap)
    ap.add_argument("--out", type=Path, help="default: the shipped weights/embedded-hair-64.safetensors for the "
                                              "distilled generator's network, else weights/<model>-hair-<kind>.safetensors")
    a = ap.parse_args(argv)
    out = a.out or default_out(a.model, a.kind)
    device = resolve_device(a.device)
    registry = Registry.from_settings()
    paired = registry.catalogue.get(a.model).paired_with_renderer
    G = registry.get(a.model, device)
    cfg = HairTraining(steps=a.steps, batch=a.batch, lr=a.lr, kind=a.kind, mixer_hidden=a.mixer_hidden,
                       swap_batch=a.swap_batch, swap_weight=a.swap_weight, region_batch=a.region_batch,
                       region_weight=a.region_weight, region_face_weight=a.region_face_weight,
                       region_identity_weight=a.region_identity_weight, region_perceptual=a.region_perceptual,
                       latent_weight=a.latent_weight, image_weight=a.image_weight, seed=a.seed)
    try:
        extra = {}
        if not paired or a.kind == "mixer":
            extra["encoder"] = generator_encoder(registry, a.model, a.encoder)
        if not paired or a.region_batch > 0:
            extra["yaw"] = yaw_direction(directions_for(registry, a.model))
        if a.init:
            extra["init"] = load_module(a.init, "hair-mixer" if a.kind == "mixer" else "hair-transfer")
        if a.region_identity_weight:
            from ..inversion.suite import identity_for
            extra["identity"] = identity_for(registry, a.model)
        if a.region_perceptual:
            extra["perceptual"] = registry.get(registry.catalogue.default_perceptual, device)
        if a.swap_batch > 0 or a.region_batch > 0:
            segmenter = registry.catalogue.get(a.model).config.get("segmenter")
            if not segmenter:
                raise ValueError(f"--swap-batch and --region-batch need a segmenter for {a.model} in the catalogue")
            extra["segmenter"] = registry.get(segmenter, device)
        trainer = HairTrainer(G, cfg, device, paired=paired, **extra)
    except ValueError as e:
        raise SystemExit(str(e))
    loop.run(trainer, work_dir=a.work_dir, total_steps=cfg.steps, minutes=a.minutes, resume=a.resume)
    net = trainer.net.eval().cpu()
    net = net.mixer if a.kind == "mixer" else net  # a mixer's file holds the mixer; the catalogue names its encoder
    how = "exact renderer pairs" if paired else "rendered pairs (encoder targets) and the paper's yaw recipe"
    save_safetensors(out, net.config, net.state_dict(), storage=torch.float16 if a.kind == "mixer" else torch.float32,
                     note=f"python -m semedit.training.hair, {trainer.step} steps on {a.model} ({how}), {cfg}")
    print(f"wrote {out} after {trainer.step} steps")


if __name__ == "__main__":
    main()
