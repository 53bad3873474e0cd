"""The inversion metrics rank reconstructions of known quality in the right order, at 64 and
256 px, and the perceptual model that scores is never the one the methods optimised."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semedit.imaging import load_image, pil_to_tensor
from semedit.inversion.suite import context_for
from semedit.metrics import psnr, score
from semedit.registry import Registry, load_catalogue
from semedit.settings import PROJECT_ROOT, WEIGHTS_DIR, Settings

EXAMPLE = PROJECT_ROOT / "examples" / "embedded" / "portrait_01.png"


@pytest.fixture(scope="module")
def registry():
    return Registry(load_catalogue(WEIGHTS_DIR / "catalogue.json"), Settings(device="cpu", hub_offline=True))


def target_at(size: int) -> torch.Tensor:
    """[1, 3, size, size] in [-1, 1]: an embedded portrait at 64 px, a photograph at 256 px."""
    if size == 64:
        return pil_to_tensor(load_image(EXAMPLE).resize((64, 64)))
    from skimage.data import astronaut
    return pil_to_tensor(load_image(astronaut()).crop((100, 0, 356, 256)))


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = int(2 * round(3 * sigma) + 1)
    t = torch.arange(k, dtype=torch.float32) - k // 2
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = (g / g.sum()).repeat(3, 1)
    x = F.pad(x, (k // 2,) * 4, mode="reflect")
    return F.conv2d(F.conv2d(x, g[:, None, None, :], groups=3), g[:, None, :, None], groups=3)


def shift(x: torch.Tensor, pixels: int) -> torch.Tensor:
    return torch.roll(x, shifts=(pixels, pixels), dims=(2, 3))


def noise(x: torch.Tensor, sigma: float) -> torch.Tensor:
    return (x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)


DEGRADATIONS = {"blur": (blur, [0.5, 1, 2, 4]), "shift": (shift, [1, 2, 4, 8]), "noise": (noise, [0.05, 0.1, 0.2, 0.4])}


@pytest.mark.parametrize("size", [64, 256])
@pytest.mark.parametrize("kind", list(DEGRADATIONS))
def test_every_metric_ranks_increasing_degradation_as_worse(registry, size, kind):
    ctx = context_for(registry, "embedded-portraits-64")
    target = target_at(size)
    fn, levels = DEGRADATIONS[kind]
    levels = [2 * v for v in levels] if kind == "shift" and size == 256 else levels
    scores = [score(fn(target, v), target, ctx.scorer, 0.0) for v in levels]
    loss_model = [float(ctx.perceptual(fn(target, v), target)) for v in levels]
    for name, values in (("LPIPS", [s.lpips for s in scores]), ("MSE", [s.l2 for s in scores]),
                         ("-PSNR", [-s.psnr for s in scores]), ("loss model", loss_model)):
        assert np.all(np.diff(values) > 0), f"{name} at {size} px, {kind} {levels}: {values}"


def test_the_scoring_model_is_not_fooled_by_an_image_optimised_against_the_loss(registry):
    """Pixels optimised for the loss model alone, from a heavy blur: the loss model calls the
    result nearly perfect (better than a light blur), while MSE and the scoring model, which
    the optimisation never saw, rank it behind the light blur."""
    ctx = context_for(registry, "embedded-portraits-64")
    assert ctx.scorer.name != ctx.perceptual.name
    target = target_at(64)
    x = blur(target, 3).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.01)
    for _ in range(150):
        loss = ctx.perceptual(x.clamp(-1, 1), target).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    fooled, light = x.detach().clamp(-1, 1), blur(target, 1)
    with torch.no_grad():
        assert float(ctx.perceptual(fooled, target)) < 0.3 * float(ctx.perceptual(light, target))  # it is fooled
        assert score(fooled, target, ctx.scorer, 0).lpips > score(light, target, ctx.scorer, 0).lpips
    assert psnr(fooled, target) < psnr(light, target)


def test_scores_are_of_the_image_as_shown_clamped_to_its_range():
    """A generator's raw output can overshoot [-1, 1]; every image shown or saved is clamped, and
    so is what the metrics score."""
    class L1(torch.nn.Module):
        def forward(self, a, b):
            return (a - b).abs().flatten(1).mean(1)

    g = torch.Generator().manual_seed(0)
    target = torch.rand(1, 3, 8, 8, generator=g) * 2 - 1
    raw = target * 1.5  # overshoots where |target| > 2/3
    shown, clamped = score(raw, target, L1(), 0.0), score(raw.clamp(-1, 1), target, L1(), 0.0)
    assert (shown.l2, shown.psnr, shown.lpips) == (clamped.l2, clamped.psnr, clamped.lpips)
    assert shown.l2 < float(((raw - target) ** 2).mean())
