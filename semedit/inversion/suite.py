"""The comparison suite: run named methods with shared knobs on one target, and score them.

Shared by the Inversion tab, the command line (``python -m semedit invert``) and the results
script, so all three run exactly the same code."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch

from ..errors import SettingError
from ..latents import SPACES
from ..losses import PerceptualModel
from ..metrics import Scores, score
from ..networks.stylegan2 import StyleGAN2Generator
from .chunky import ChunkyConfig, invert_chunky
from .common import InversionResult, ProgressFn
from .optimization import OptimizationConfig, invert_optimization
from .pti import PTIConfig, invert_pti


@dataclass(frozen=True)
class Knobs:
    """The main knobs a user sets once for every method."""

    steps: int = 300
    lambda_reg: float = 1.0
    n_chunks: int = 4
    chunky_space: str = "w+"
    pti_tune_steps: int = 300
    identity_weight: float = 0.0  # > 0 adds the identity distance to every method's loss
    seed: int = 0
    encoder_iterations: Optional[int] = None  # ReStyle / HyperStyle refinement steps (None: the model's own)

    def __post_init__(self) -> None:
        """SettingError for a knob out of its range (numbers as a form gives them, None included),
        so the tabs and the command line refuse it with one message before any method runs."""
        at_least = {"steps": 1, "n_chunks": 1, "pti_tune_steps": 0}
        for name, low in at_least.items():
            value = getattr(self, name)
            if not _is_number(value) or value < low or value != int(value):
                raise SettingError(f"{name} must be a whole number >= {low}, got {value!r}")
        for name in ("lambda_reg", "identity_weight"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                raise SettingError(f"{name} must be a number >= 0, got {value!r}")
        if self.chunky_space not in SPACES:
            raise SettingError(f"chunky_space must be one of {', '.join(SPACES)}, got {self.chunky_space!r}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Context:
    """What a method may need besides G and the target."""

    perceptual: PerceptualModel
    device: torch.device
    segmenter: Optional[torch.nn.Module] = None
    labels: Optional[torch.Tensor] = None  # [H, W] label map of the target, when known
    masks: Optional[torch.Tensor] = None   # [n, H, W] user-painted ChunkyGAN masks
    identity: Optional[torch.nn.Module] = None  # identity metric (and loss, when weighted)
    judge: Optional[PerceptualModel] = None  # the perceptual model that scores results (None: ``perceptual``)

    @property
    def scorer(self) -> PerceptualModel:
        return self.judge or self.perceptual


def identity_for(registry, model: str):
    """The identity model for generator ``model``: for photographic generators the catalogue's
    default (ArcFace) when it is on this machine, else the first local one (the offline face-api
    descriptor); for the embedded domain the distance between the identity parameters its
    regressor predicts (None when the catalogue names no regressor for it)."""
    spec = registry.catalogue.get(model)
    if spec.embedded:
        from ..networks.regressor import RegressorIdentity
        name = spec.config.get("regressor")
        return RegressorIdentity(registry.get(name, registry.get(model).w_avg.device)) if name else None
    name = registry.first_local("identity", registry.catalogue.default_identity)
    return registry.get(name) if name else None


def aligns_faces(registry, model: str, alignment: str, size: Optional[Tuple[int, int]] = None) -> bool:
    """Whether the target is FFHQ-aligned around a face: alignment "align"; "auto" for face
    generators, and for the embedded domain's generators when the image (``size``: width,
    height) is not square, since the domain's own images are squares and a photo's centred square
    is rarely its face (a tall photo's is the chest); "centre" never."""
    if alignment != "auto":
        return alignment == "align"
    if not registry.catalogue.get(model).embedded:
        return True
    return size is not None and abs(size[0] - size[1]) > 0.02 * max(size)


def judge_for(registry, loss: str) -> str:
    """The perceptual model that scores results optimised against ``loss``: another one whenever
    another is on this machine. A loss model reports near zero for images optimised against it
    that are visibly wrong (ST-LPIPS AlexNet: 0.002 for an image the VGG net scores 0.27 and whose
    MSE is worse than a blur's; tests/test_metrics.py), so it cannot judge its own results."""
    others = [n for n in registry.catalogue.names("perceptual") if n != loss]
    return next((n for n in others if registry.is_local(n)), loss)


def context_for(registry, model: str, perceptual: Optional[str] = None) -> Context:
    """Everything the methods need for generator ``model`` of ``registry``: the perceptual loss
    model (catalogue default unless named) and the one that scores (``judge_for``), the
    generator's segmenter and identity model."""
    G = registry.get(model)
    segmenter = registry.catalogue.get(model).config.get("segmenter")
    loss = perceptual or registry.catalogue.default_perceptual
    return Context(perceptual=registry.get(loss), judge=registry.get(judge_for(registry, loss)),
                   device=G.w_avg.device, segmenter=registry.get(segmenter) if segmenter else None,
                   identity=identity_for(registry, model))


def _optimisation(space: str):
    def run(G, target, k: Knobs, ctx: Context, progress):
        cfg = OptimizationConfig(space=space, steps=k.steps, identity_weight=k.identity_weight, seed=k.seed)
        return invert_optimization(G, target, cfg, perceptual=ctx.perceptual, device=ctx.device, progress=progress,
                                   identity=ctx.identity)
    return run


def _pti(G, target, k: Knobs, ctx: Context, progress):
    cfg = PTIConfig(pivot=OptimizationConfig(space="w", steps=k.steps, optimize_noise=False,
                                             identity_weight=k.identity_weight, seed=k.seed),
                    tune_steps=k.pti_tune_steps, identity_weight=k.identity_weight)
    return invert_pti(G, target, cfg, perceptual=ctx.perceptual, device=ctx.device, progress=progress,
                      identity=ctx.identity)


def _chunky(G, target, k: Knobs, ctx: Context, progress):
    if ctx.masks is not None:
        init = "given"
    elif ctx.labels is not None or ctx.segmenter is not None:
        init = "segmentation"
    else:
        init = "bands"
    cfg = ChunkyConfig(n_chunks=k.n_chunks if ctx.masks is None else ctx.masks.shape[0], space=k.chunky_space,
                       steps=k.steps, lambda_reg=k.lambda_reg, mask_init=init, identity_weight=k.identity_weight,
                       seed=k.seed)
    return invert_chunky(G, target, cfg, perceptual=ctx.perceptual, device=ctx.device, progress=progress,
                         labels=ctx.labels, masks=ctx.masks, segmenter=ctx.segmenter, identity=ctx.identity)


Method = Callable[[StyleGAN2Generator, torch.Tensor, Knobs, Context, Optional[ProgressFn]], InversionResult]

#: every method by its short name (CLI) with its display name
METHODS: Dict[str, Method] = {
    "w": _optimisation("w"),
    "w+": _optimisation("w+"),
    "s": _optimisation("s"),
    "pti": _pti,
    "chunky": _chunky,
}
DISPLAY_NAMES = {"w": "W optimisation", "w+": "W+ optimisation", "s": "S optimisation", "pti": "Pivotal Tuning",
                 "chunky": "ChunkyGAN"}


def run_method(name: str, G: StyleGAN2Generator, target: torch.Tensor, knobs: Knobs, ctx: Context,
               progress: Optional[ProgressFn] = None) -> InversionResult:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; one of {', '.join(METHODS)}")
    return METHODS[name](G, target, knobs, ctx, progress)


def score_result(result: InversionResult, target: torch.Tensor, ctx: Context) -> Scores:
    return score(result.image.to(ctx.device), target.to(ctx.device), ctx.scorer, result.seconds, ctx.identity)


__all__ = ["Knobs", "Context", "METHODS", "DISPLAY_NAMES", "aligns_faces", "context_for", "identity_for",
           "run_method", "score_result"]
