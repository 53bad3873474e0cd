"""Finding directions: pure functions from samples (and their labels) to ``Direction``s.

- ``fit_linear``: InterFaceGAN-style supervised direction in W (ridge regression for a graded
  attribute, logistic regression for a binary one), with held-out R^2 or accuracy.
- ``condition``: InterFaceGAN's conditional edit: the normal with the chosen others projected out.
- ``variants``, ``edit_changes``, ``most_selective``, ``calibration``: a supervised direction,
  held against the others or not, on each range of W+ layers; the one whose measured edit moves
  its own attribute most and the others least, its unit set by the measured change.
- ``pca_directions``: GANSpace: principal components of W with their standard deviations.
- ``stylespace_channels``: single StyleSpace channels whose effect falls inside one segment class.
- ``guided_gradients``, ``guided_direction``: one image's step along the gradient of an attribute
  model, optionally with other readings held to first order.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ..errors import EditingError
from ..latents import Latent, convert, synthesize
from ..networks.stylegan2 import StyleGAN2Generator
from .directions import Direction, apply_edits


@torch.no_grad()
def sample_codes(G: StyleGAN2Generator, n: int, seed: int = 0, batch: int = 500) -> tuple:
    """(z [n, z_dim], w [n, C]): n latents and their mapped codes (untruncated), on G's device."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.config.z_dim, generator=g).to(G.w_avg.device)
    return z, torch.cat([G.mapping(c) for c in z.split(batch)])


def sample_w(G: StyleGAN2Generator, n: int, seed: int = 0, batch: int = 500) -> torch.Tensor:
    """n mapped codes w [n, C] (untruncated), on G's device."""
    return sample_codes(G, n, seed, batch)[1]


@torch.no_grad()
def label_samples(G: StyleGAN2Generator, w: torch.Tensor, labeller: Callable[[torch.Tensor], dict],
                  batch: int = 250) -> dict:
    """labeller(images [B, 3, R, R] in [-1, 1]) -> {name: [B]} over every code of w, concatenated."""
    out: dict = {}
    for chunk in w.split(batch):
        for k, v in labeller(G.synthesis(G.broadcast(chunk), noise_mode="const").clamp(-1, 1)).items():
            out.setdefault(k, []).append(torch.as_tensor(v, dtype=torch.float32).reshape(-1).cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def _split(n: int, train_frac: float, seed: int):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = int(n * train_frac)
    return perm[:k], perm[k:]


def fit_linear(w: torch.Tensor, y: torch.Tensor, name: str, *, binary: Optional[bool] = None,
               train_frac: float = 0.75, ridge: float = 1.0, seed: int = 0, space: str = "w") -> Direction:
    """A direction in ``space`` ("w" or "z") for attribute values y [N] of codes w [N, C].

    Graded y: ridge regression, metrics: held-out R^2. Binary y (0/1; detected when ``binary``
    is None): logistic regression, metrics: held-out accuracy. ``normal`` is the fitted model's
    unit normal (InterFaceGAN's boundary). The edit ``vector`` is the steepest ascent of the fit
    in the codes' own metric, Sigma @ normal (Sigma: the codes' covariance), normalised: in a
    tangled, anisotropic W (the distilled generator's spans eigenvalues from 18 to 1e-5) the bare
    normal points mostly along directions the codes never vary in, where the generator does
    not respond, while Sigma @ normal follows how codes vary with the attribute (for an isotropic
    W the two are the same). ``unit``: graded, the step along ``vector`` that moves the fitted
    attribute by one standard deviation of y; binary, one standard deviation of the codes along it."""
    w, y = w.detach().double().cpu(), y.detach().double().cpu().reshape(-1)
    ok = torch.isfinite(y)
    w, y = w[ok], y[ok]
    if len(y) < 20:
        raise EditingError(f"{name}: need at least 20 labelled samples, got {len(y)}")
    if binary is None:
        binary = bool(((y == 0) | (y == 1)).all())
    tr, te = _split(len(y), train_frac, seed)
    mu, sd = w[tr].mean(0), w[tr].std(0).clamp(min=1e-8)
    x = (w - mu) / sd
    xa = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    reg = ridge * torch.eye(xa.shape[1], dtype=x.dtype)
    reg[-1, -1] = 0
    if binary:
        if y[tr].min() == y[tr].max():
            raise EditingError(f"{name}: every training sample has the same label")
        coef = torch.zeros(xa.shape[1], dtype=x.dtype)
        for _ in range(25):  # Newton steps on the ridge-penalised logistic loss
            p = torch.sigmoid(xa[tr] @ coef)
            grad = xa[tr].T @ (p - y[tr]) + reg @ coef
            hess = (xa[tr] * (p * (1 - p))[:, None]).T @ xa[tr] + reg
            coef = coef - torch.linalg.solve(hess, grad)
        metric = {"accuracy": float(((xa[te] @ coef > 0).double() == y[te]).double().mean())}
    else:
        coef = torch.linalg.solve(xa[tr].T @ xa[tr] + reg, xa[tr].T @ y[tr])
        pred = xa[te] @ coef
        metric = {"r2": float(1 - (pred - y[te]).square().sum() / (y[te] - y[te].mean()).square().sum())}
    gradient = coef[:-1] / sd  # back to code coordinates: f(w) = gradient . w + const
    ascent = torch.cov(w[tr].T) @ gradient  # steepest ascent of f in the codes' own metric
    vector = ascent / ascent.norm().clamp(min=1e-12)
    if binary:
        unit = float((w[tr] @ vector).std())
    else:
        unit = float(y[tr].std() / (gradient @ vector).clamp(min=1e-12))
    return Direction(name=name, space=space, vector=vector.float(), unit=unit, attribute=name,
                     normal=(gradient / gradient.norm()).float(),
                     source="supervised " + ("logistic" if binary else "ridge") + f" regression in {space.upper()}",
                     metrics={**metric, "n": int(len(y))})


def condition(direction: Direction, others: Sequence[Direction]) -> Direction:
    """``direction`` moved only within the null space of ``others``' normals (their vectors when
    they have none; W or Z directions of one space), so moving along it leaves their attributes'
    linear fits unchanged (InterFaceGAN's conditional edit). ``unit`` grows so one unit still moves
    the direction's own fit by as much as before."""
    if any(o.space != direction.space for o in others) or direction.space not in ("w", "z"):
        raise EditingError("conditional editing needs W (or Z) directions, all in one space")
    v = direction.vector.double()
    if others:
        q, _ = torch.linalg.qr(torch.stack([(o.normal if o.normal is not None else o.vector).double()
                                            for o in others], 1))
        v = v - q @ (q.T @ v)
    length = v.norm()
    if length < 1e-6:
        raise EditingError(f"{direction.name} lies within the span of the conditions")
    v = v / length
    own = (direction.normal if direction.normal is not None else direction.vector).double()
    kept = float(own @ v) / max(float(own @ direction.vector.double()), 1e-12)  # the fit's change per length, kept
    if kept < 1e-6:
        raise EditingError(f"{direction.name} cannot move its attribute while holding the conditions")
    return replace(direction, name=f"{direction.name} | " + ", ".join(o.name for o in others), vector=v.float(),
                   unit=direction.unit / kept, metrics=dict(direction.metrics),
                   source=direction.source + ", conditioned on " + ", ".join(o.attribute or o.name for o in others))


def variants(direction: Direction, others: Sequence[Direction], num_ws: int, parts: int = 5) -> List[Direction]:
    """``direction`` (a W fit) and, when ``others`` are given, ``condition(direction, others)``, each
    on every contiguous range of W+ layers whose ends lie on a grid of ``parts`` equal steps
    (``layers`` None: every layer). The candidates ``most_selective`` chooses from."""
    if direction.space != "w":
        raise EditingError("layer ranges and conditions need a W direction")
    bases = [direction]
    if others:
        try:
            bases.append(condition(direction, others))
        except ValueError:  # the attribute cannot move while holding the others: the plain fit only
            pass
    grid = sorted({round(num_ws * i / parts) for i in range(parts + 1)})
    ranges = [None] + [(a, b) for i, a in enumerate(grid) for b in grid[i + 1:] if (a, b) != (0, num_ws)]
    return [d if r == d.layers else replace(d, layers=r) for d in bases for r in ranges]


@torch.no_grad()
def edit_changes(G: StyleGAN2Generator, w: torch.Tensor, direction: Direction, read: Callable[[torch.Tensor], dict],
                 before: Dict[str, torch.Tensor], stds: Dict[str, float], units: float = 2.0,
                 batch: int = 250) -> Dict[str, torch.Tensor]:
    """{attribute: change [N] of each code of w [N, C], in standard deviations ``stds``} when every
    code moves by +``units`` of ``direction``; ``read(images [B, 3, R, R] in [-1, 1]) -> {name: [B]}``
    and ``before`` [N] per attribute: the readings of the unedited images."""
    after: Dict[str, list] = {}
    for chunk in w.split(batch):
        images = synthesize(G, apply_edits(G, Latent("w", chunk), [(direction, units)])).clamp(-1, 1)
        for k, v in read(images).items():
            after.setdefault(k, []).append(torch.as_tensor(v, dtype=torch.float32).reshape(-1).cpu())
    return changes_between(before, {k: torch.cat(v) for k, v in after.items()}, stds)


def changes_between(before: Dict[str, torch.Tensor], after: Dict[str, torch.Tensor],
                    stds: Dict[str, float]) -> Dict[str, torch.Tensor]:
    """{attribute: (after - before) / its std, per image [N]} for every attribute of ``stds``, from
    readings [N] of the same images before and after an edit."""
    return {k: (after[k].float().cpu() - before[k].float().cpu()) / stds[k] for k in stds}


def largest_leak(changes: Dict[str, torch.Tensor], attribute: str) -> Tuple[str, float]:
    """(the other attribute with the largest mean |change| per code, that mean) from per-code
    changes [N]; ("", 0.0) when there is no other."""
    leaks = {k: float(v.abs().mean()) for k, v in changes.items() if k != attribute}
    other = max(leaks, key=leaks.get, default="")
    return other, leaks.get(other, 0.0)


def leak_summary(changes: Dict[str, torch.Tensor], attribute: str) -> dict:
    """{"own": mean change of ``attribute``, "largest other": the largest other mean |change| per
    code (what ``selectivity`` uses), "largest other attribute": its name}, rounded, from per-code
    changes [N] in standard deviations."""
    other, leak = largest_leak(changes, attribute)
    return {"own": round(float(changes[attribute].mean()), 3), "largest other": round(leak, 3),
            "largest other attribute": other}


def selectivity(changes: Dict[str, torch.Tensor], attribute: str) -> float:
    """min(own, own / (4 x leak)) from per-code changes [N] in standard deviations at +2 units:
    own, the mean change of ``attribute``; leak, the largest mean absolute change of any other
    (per code, so an edit that moves another attribute up in some images and down in others
    leaks as much as one that moves it one way). >= 1 exactly where the sliders' aim holds: the
    attribute moves by at least one std while every other moves by less than a quarter of that."""
    own = float(changes[attribute].mean())
    _, leak = largest_leak(changes, attribute)
    return min(own, own / max(4 * leak, 1e-9))


def calibration(changes: Dict[str, torch.Tensor], attribute: str, units: float = 2.0, max_scale: float = 3.0) -> float:
    """The factor on a direction's ``unit`` that makes +``units`` move ``attribute`` by ``units``
    standard deviations, from its measured per-code changes [N] at +``units`` (edits are close to
    linear in the step): units / own, clamped to [1 / max_scale, max_scale] so no slider reaches
    far beyond the codes it was measured on; 1 when the attribute does not move up."""
    own = float(changes[attribute].mean())
    if own <= 1e-6:
        return 1.0
    return min(max(units / own, 1.0 / max_scale), max_scale)


def most_selective(candidates: Sequence[Direction], attribute: str,
                   effect: Callable[[Direction], Dict[str, torch.Tensor]],
                   calibrate: bool = False) -> Tuple[Direction, Dict[str, torch.Tensor], float]:
    """The candidate whose measured ``effect`` (+2 units -> {attribute: per-code changes [N] in
    stds}, as ``edit_changes`` gives) has the highest ``selectivity`` for ``attribute`` (the first
    on ties), its effect and its unit's factor: with ``calibrate``, each candidate is scored as if
    its unit were rescaled by ``calibration`` (its changes scaled alike), so candidates compete on
    how little they leak per unit of their own change, not on their fitted step; else 1."""
    best = None
    for d in candidates:
        change = effect(d)
        scale = calibration(change, attribute) if calibrate else 1.0
        score = selectivity({k: v * scale for k, v in change.items()}, attribute)
        if best is None or score > best[0]:
            best = (score, d, change, scale)
    if best is None:
        raise EditingError("no candidate directions")
    return best[1], best[2], best[3]


def edit_region(labels_before: torch.Tensor, labels_after: torch.Tensor, class_id: int, grow: int = 2) -> torch.Tensor:
    """Where an edit draws segment class ``class_id``: [N, 1, R, R] in {0, 1}, the class in either
    label map [N, R, R] (before and after the edit), grown by ``grow`` px."""
    region = ((labels_before == class_id) | (labels_after == class_id)).float()[:, None]
    return torch.nn.functional.max_pool2d(region, 2 * grow + 1, 1, grow)


def learn_direction(G: StyleGAN2Generator, start: Direction, attribute: str,
                    read: Callable[[torch.Tensor], Dict[str, torch.Tensor]], stds: Dict[str, float],
                    w: torch.Tensor, *, units: float = 2.0, steps: int = 150, batch: int = 64,
                    leak_weight: float = 1.0, leak_margin: float = 0.1, lr: float = 0.02, seed: int = 0,
                    augment: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                    progress: Optional[Callable[[int], None]] = None, largest_weight: float = 0.0,
                    region: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
                    outside_weight: float = 0.0, outside_margin: float = 0.2) -> Direction:
    """A W+ direction (vector [L, C], one unit its length) learned from ``start`` (W or W+) on
    codes w [N, C]: Adam on one vector shared by every code, ``steps`` batches of ``batch`` codes,
    minimising  relu(units - own)^2 + leak_weight * (sum_k leak_k + largest_weight * max_k leak_k),
    leak_k = relu(mean |change_k| - leak_margin), where a change is (``read`` after - before) /
    ``stds[k]`` of an edit by +``units`` units, own that of ``attribute`` and k every other
    attribute of ``stds``. ``read(images [B, 3, R, R] in
    [-1, 1]) -> {name: [B]}`` must be differentiable in the images; with ``augment`` (images ->
    images), half of the batches read both images through it, so the vector gains less from a
    pixel pattern that fools the reader than from a drawn change. ``lr`` is relative to the
    starting vector's RMS. ``progress(steps done)`` is called after every step (it may raise to
    stop). With ``region(before, after) -> [B, 1, R, R]`` in [0, 1], where the attribute is drawn,
    the loss adds outside_weight * relu(mean own change of the edit pasted only outside the region
    - outside_margin): the attribute must be read where it is drawn, not from a tint elsewhere.
    Its measured effect on fresh codes is for the caller to judge."""
    if attribute not in stds:
        raise EditingError(f"{attribute} is not among the attributes read")
    if len(w) == 0:
        raise EditingError("no codes to learn on")
    g = torch.Generator().manual_seed(seed)
    device = G.w_avg.device
    with torch.no_grad():
        v0 = start.delta(G, "w+").to(device)
    vector = v0.clone().requires_grad_(True)
    opt = torch.optim.Adam([vector], lr=lr * float(v0.square().mean().sqrt().clamp(min=1e-8)))
    grads = [p.requires_grad for p in G.parameters()]
    G.requires_grad_(False)
    try:
        for i in range(steps):
            codes = G.broadcast(w[torch.randint(0, len(w), (min(batch, len(w)),), generator=g)].to(device))
            with torch.no_grad():
                before = synthesize(G, Latent("w+", codes)).clamp(-1, 1)
            after = synthesize(G, Latent("w+", codes + units * vector)).clamp(-1, 1)
            images = [before, after]
            if region is not None and outside_weight:
                with torch.no_grad():
                    where = region(before, after.detach()).to(after)
                images.append(after - where * (after - before))  # the edit outside the region only
            if augment is not None and bool(torch.rand((), generator=g) < 0.5):
                images = [augment(x) for x in images]
            with torch.no_grad():
                read_before = read(images[0])
            read_after = read(images[1])
            change = {k: (read_after[k] - read_before[k]) / stds[k] for k in stds}
            over = [(change[k].abs().mean() - leak_margin).clamp(min=0) for k in stds if k != attribute]
            leak = sum(over) + largest_weight * max(over) if over else 0.0
            loss = (units - change[attribute].mean()).clamp(min=0).square() + leak_weight * leak
            if len(images) == 3:
                outside = (read(images[2])[attribute] - read_before[attribute]) / stds[attribute]
                loss = loss + outside_weight * (outside.mean() - outside_margin).clamp(min=0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if progress is not None:
                progress(i + 1)
    finally:
        for p, r in zip(G.parameters(), grads):
            p.requires_grad_(r)
    v = vector.detach()
    length = float(v.norm())
    if not length > 1e-12:
        raise EditingError(f"learning {attribute}'s direction collapsed it to nothing")
    how = f"{steps} steps of {batch} of {len(w)} codes, lr {lr:g}"
    if largest_weight:
        how += f", the largest leak weighing {1 + largest_weight:g}x"
    if region is not None and outside_weight:
        how += f", its change read outside its region weighing {outside_weight:g}"
    return Direction(name=start.name, space="w+", vector=(v / length).cpu(), unit=length, attribute=attribute,
                     source=f"{start.source}; then one W+ vector learned from it ({how}) to move {attribute} and "
                            "hold the other readings",
                     metrics=dict(start.metrics))


def pca_directions(w: torch.Tensor, k: int = 10) -> List[Direction]:
    """GANSpace: the top ``k`` principal components of codes w [N, C], each with ``unit`` = its
    standard deviation and the share of variance it explains."""
    w = w.detach().double().cpu()
    centred = w - w.mean(0)
    _, s, vt = torch.linalg.svd(centred, full_matrices=False)
    var = s.square() / (len(w) - 1)
    return [Direction(name=f"PC{i}", space="w", vector=vt[i].float(), unit=float(var[i].sqrt()),
                      source="GANSpace: PCA of W", metrics={"explained variance": float(var[i] / var.sum())})
            for i in range(min(k, len(var)))]


@torch.no_grad()
def stylespace_channels(G: StyleGAN2Generator, w: torch.Tensor, labels: torch.Tensor, class_id: int, *,
                        top: int = 5, strength: float = 5.0, batch: int = 256,
                        layers: Optional[Sequence[int]] = None) -> List[Direction]:
    """StyleSpace channels that act locally on class ``class_id``: each channel of S is moved by
    ``strength`` of its standard deviation over the samples w [M, C], the absolute change of the
    image is measured, and channels rank by the share of that change falling inside the class's
    pixels (labels [M, R, R]). Returns the ``top`` channels as S directions (unit: one std)."""
    dims = G.synthesis.style_dims
    offsets = [0] + list(torch.tensor(dims).cumsum(0).tolist())
    base = convert(G, Latent("w", w.to(G.w_avg.device)), "s").value  # [M, S]
    std = base.std(0).clamp(min=1e-6) if len(base) > 1 else torch.ones_like(base[0])
    inside = (labels.to(base.device) == class_id).float()  # [M, R, R]
    if inside.sum() == 0:
        raise EditingError(f"class {class_id} appears in none of the samples")
    scores = torch.zeros(base.shape[1], device=base.device)
    ref = synthesize(G, Latent("s", base))  # [M, 3, R, R]
    chosen = range(len(dims)) if layers is None else layers
    for m in range(len(base)):
        for layer in chosen:
            for start in range(offsets[layer], offsets[layer + 1], batch):
                idx = torch.arange(start, min(start + batch, offsets[layer + 1]), device=base.device)
                s = base[m].expand(len(idx), -1).clone()
                s[torch.arange(len(idx)), idx] += strength * std[idx]
                change = (synthesize(G, Latent("s", s)) - ref[m]).abs().sum(1)  # [B, R, R]
                share = (change * inside[m]).sum((1, 2)) / change.sum((1, 2)).clamp(min=1e-8)
                scores[idx] += share / len(base)
    best = scores.argsort(descending=True)[:top]
    out = []
    for c in best.tolist():
        layer = next(i for i in range(len(dims)) if offsets[i] <= c < offsets[i + 1])
        v = torch.zeros(base.shape[1])
        v[c] = 1.0
        out.append(Direction(name=f"S {layer}:{c - offsets[layer]}", space="s", vector=v, unit=float(std[c]),
                             source=f"StyleSpace channel, {float(scores[c]):.2f} of its effect inside class {class_id}",
                             metrics={"locality": float(scores[c]), "layer": layer, "channel": c - offsets[layer]}))
    return out


def guided_gradients(G: StyleGAN2Generator, latent: Latent, attribute: Callable[[torch.Tensor], torch.Tensor],
                     hold: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> Tuple[torch.Tensor, ...]:
    """(value [N], g, p; g and p shaped like ``latent.value`` [N, ...]): per code, the attribute
    ``attribute(images) -> [N]``, its gradient with respect to the code, and the part of g
    orthogonal to the gradient of every reading of ``hold(images) -> [N, K]`` (g itself without
    ``hold``): the direction that moves the attribute while the held readings stay put to first
    order. Codes are independent (G mixes no batch)."""
    x = latent.value.detach().to(G.w_avg.device).clone().requires_grad_(True)
    images = synthesize(G, Latent(latent.space, x))
    value = attribute(images)
    (g,) = torch.autograd.grad(value.sum(), x, retain_graph=hold is not None)
    if hold is None:
        return value.detach(), g, g
    held = hold(images)
    rows = [torch.autograd.grad(held[:, k].sum(), x, retain_graph=k + 1 < held.shape[1])[0].flatten(1)
            for k in range(held.shape[1])]
    q, _ = torch.linalg.qr(torch.stack(rows, 2))  # [N, D, K]: orthonormal basis of the held gradients
    flat = g.flatten(1)
    p = flat - (q @ (q.transpose(1, 2) @ flat[:, :, None]))[:, :, 0]
    return value.detach(), g, p.view_as(g)


def guided_direction(G: StyleGAN2Generator, latent: Latent, attribute: Callable[[torch.Tensor], torch.Tensor],
                     name: str = "guided", *, hold: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                     std: Optional[float] = None) -> Direction:
    """One image's direction: the gradient of ``attribute(image) -> [1]`` with respect to the
    code (W, W+ or S), with every reading of ``hold(image) -> [1, K]`` held to first order (see
    ``guided_gradients``), normalised. One unit changes the attribute by ``std`` (e.g. its standard
    deviation over samples, so slider values mean what they mean for fitted directions) to first
    order; without ``std`` by 0.1 (a small, local move)."""
    value, g, p = guided_gradients(G, latent, attribute, hold)
    g, p = g[0], p[0]
    rate = p.norm()  # the attribute's first-order change per unit length along p / |p|
    if not torch.isfinite(rate) or rate < 1e-12:
        raise EditingError("the attribute does not change near this code")
    if hold is not None and rate < 1e-3 * g.norm():
        raise EditingError("near this code the attribute cannot move without moving the held readings")
    step = 0.1 if std is None else std
    held = "" if hold is None else ", other readings held to first order"
    return Direction(name=name, space=latent.space, vector=(p / rate).cpu(), unit=float(step / rate),
                     attribute=name, source=f"attribute-model gradient at one code{held}",
                     metrics={"attribute": float(value[0])})


__all__ = ["sample_codes", "sample_w", "label_samples", "fit_linear", "condition", "variants", "edit_changes",
           "changes_between", "largest_leak", "selectivity", "calibration", "most_selective", "learn_direction",
           "pca_directions", "stylespace_channels", "guided_gradients",
           "guided_direction"]
