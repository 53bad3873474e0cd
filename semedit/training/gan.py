"""Adversarial training of the embedded StyleGAN2 on renderer images, from scratch.

    python -m semedit.training.gan --work-dir runs/gan --kimg 5000 --minutes 9 [--resume] \\
        --out weights/embedded-portraits-64.safetensors

The StyleGAN2 recipe as NVIDIA's stylegan2-ada-pytorch configures it for 64 px ("auto"):
non-saturating logistic loss, R1 on real images every 16 discriminator steps (gamma
0.0002 * res^2 / batch = 0.0256 at batch 32), path-length regularisation every 4 generator
steps (weight 2, batch halved), style mixing with probability 0.9, Adam (lr 0.0025, betas 0 and
0.99, adjusted for lazy regularisation), an EMA of G with a half-life of batch x 10 / 32 kimg
(10 kimg at batch 32) ramped up over the first 5 % of images, a 2-layer mapping network with lr
multiplier 0.01 (``--mapping-layers 8``: StyleGAN2 config-f's depth, whose W is more linear in the
domain's attributes; see the README), no augmentation (the renderer gives unlimited images),
non-finite gradients cleaned before every optimiser step.

``--linear-weight`` adds what the recipe does not ask for and the app's sliders need, attributes
linear in w (issue 10's editability): every 4 steps, the held-out error of a running ridge fit from
w to the attribute regressor's readings of G(w) (one minus R^2, per attribute, the fit made on the
previous ~6k samples), plus how far those readings' mean and spread are from the renders' (without
it, G makes a reading predictable by dropping what it reads: beards, glasses). Readings are taken
through ``augment`` (blur, brightness, noise): what G changes to move them must survive those, a
guard against pixel patterns only the regressor sees. ``--branch-from`` continues another run's
state under such new settings.

The renderer draws the real images on the training device, several steps' worth at a time. Every batch is a function of (seed, step), so a resumed run is
bit-for-bit the run it continues (on the same device).

The same script runs on CUDA and, slowly, on the CPU; ``--minutes`` bounds one invocation and
``--resume`` continues it (state saved every ``--save-minutes`` in shards of at most 15 MiB; the
run's settings are recorded in ``settings.json`` and a resume with other settings is refused).
``--export-dir`` receives, at every save, what a cut-off run should not lose and is small
enough to carry off a GPU machine: the EMA generator as a shipped safetensors file (about
14 MB), the curve and the sample grid (the full state, about 110 MB, stays in ``--work-dir``).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from PIL import Image

from ..checkpoints import save_safetensors
from ..imaging import make_grid, tensor_to_uint8
from ..networks.discriminator import DiscriminatorConfig, StyleGAN2Discriminator
from ..networks.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from ..settings import resolve_device
from . import loop
from .data import augment, rendered_batch, step_generator

#: the embedded generator for adversarial training: the distilled one's synthesis widths (same CPU
#: cost), a 2-layer mapping as in NVIDIA's 64 px configuration, a wider W for editing
GAN_GENERATOR = StyleGAN2Config(resolution=64, z_dim=128, w_dim=256, mapping_layers=2,
                                channels=(256, 256, 192, 96, 48), mapping_lr_mul=0.01)
GAN_DISCRIMINATOR = DiscriminatorConfig(resolution=64, channels=(64, 128, 256, 256, 256))
#: the same generator with a quarter of the synthesis widths and a discriminator to match: what 2 CPU
#: cores can train (30 to 100 images/s at batch 32, by machine; G forward at batch 1 about 12 ms)
QUARTER_GENERATOR = replace(GAN_GENERATOR, channels=tuple(c // 4 for c in GAN_GENERATOR.channels))
QUARTER_DISCRIMINATOR = DiscriminatorConfig(resolution=64, channels=(16, 32, 64, 64, 64))
#: ``--size``: (generator, discriminator)
SIZES = {"full": (GAN_GENERATOR, GAN_DISCRIMINATOR), "quarter": (QUARTER_GENERATOR, QUARTER_DISCRIMINATOR)}
#: ``--linear-fields``' default: the attributes of the built-in sliders
LINEAR_FIELDS = ("smile", "age", "yaw", "hair_length", "hair_gray", "hair_color", "beard", "glasses", "skin_tone",
                 "light_angle")


@dataclass(frozen=True)
class GANConfig:
    generator: StyleGAN2Config = GAN_GENERATOR
    discriminator: DiscriminatorConfig = GAN_DISCRIMINATOR
    batch: int = 32
    lr_g: float = 0.0025
    lr_d: float = 0.0025
    betas: tuple = (0.0, 0.99)
    r1_gamma: float = 0.0256
    r1_interval: int = 16
    pl_weight: float = 2.0  # 0 turns path-length regularisation off
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing: float = 0.9
    render_block: int = 8  # steps whose renders are drawn at once (the renderer's cost is mostly per call)
    ema_kimg: float = 10.0
    ema_rampup: Optional[float] = 0.05
    #: the editability term (0: off): the held-out error of a running linear fit from w to the
    #: attribute readings of G(w), every ``linear_interval`` steps on batch / pl_batch_shrink samples
    linear_weight: float = 0.0
    linear_fields: tuple = ()
    linear_regressor: str = ""  # the reader of linear_fields: a catalogue name or a safetensors file
    linear_field_weights: tuple = ()  # one per linear_fields (empty: all 1): how hard each is pulled
    linear_interval: int = 4
    linear_half_life: float = 4096.0  # samples: the running fit's memory
    seed: int = 0
    notes: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return {**asdict(self), "generator": self.generator.to_dict(), "discriminator": self.discriminator.to_dict()}


def auto_settings(batch: int, resolution: int = 64) -> dict:
    """The batch-dependent settings of NVIDIA's "auto" configuration: R1 gamma 0.0002 res^2 /
    batch and an EMA half-life of batch x 10 / 32 kimg (0.0256 and 10 kimg at batch 32, 64 px)."""
    return {"r1_gamma": 0.0002 * resolution ** 2 / batch, "ema_kimg": batch * 10 / 32}


#: the run's settings, written into the work dir when a run starts and checked when it resumes
SETTINGS_FILE = "settings.json"


def settings_differences(recorded: dict, cfg: GANConfig) -> list[str]:
    """"name: recorded -> now" for every setting of ``cfg`` that differs from ``recorded`` (a
    ``GANConfig.to_dict()`` read back from JSON); ``notes`` do not count."""
    now = json.loads(json.dumps(cfg.to_dict()))
    defaults = json.loads(json.dumps(GANConfig().to_dict()))
    recorded = {**{k: v for k, v in defaults.items() if k not in recorded}, **recorded}  # settings added since
    out = []
    for key in sorted(set(recorded) | set(now)):
        if key == "notes" or recorded.get(key) == now.get(key):
            continue
        old, new = recorded.get(key), now.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            out += [f"{key}.{k}: {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new))
                    if old.get(k) != new.get(k)]
        else:
            out.append(f"{key}: {old} -> {new}")
    return out


# ---- the losses (pure functions of the networks and their inputs) ---------------------------

def mapped_ws(G: StyleGAN2Generator, z: torch.Tensor, z_mix: torch.Tensor, mixing_prob: float,
              g: torch.Generator) -> torch.Tensor:
    """ws [N, num_ws, w_dim] from z [N, z_dim]; with probability ``mixing_prob`` a sample takes
    the layers from a random cutoff on from ``z_mix`` (style mixing)."""
    n, num_ws = z.shape[0], G.num_ws
    ws = G.broadcast(G.mapping(z))
    if mixing_prob <= 0:
        return ws
    mix = torch.rand(n, generator=g, device=z.device) < mixing_prob
    cutoff = torch.randint(1, num_ws, (n,), generator=g, device=z.device)
    cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, num_ws))
    later = torch.arange(num_ws, device=z.device)[None] >= cutoff[:, None]  # [N, num_ws]
    return torch.where(later[..., None], G.broadcast(G.mapping(z_mix)), ws)


def synthesize(G: StyleGAN2Generator, ws: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Training-time synthesis: random noise from ``g``, shared convolution weights."""
    return G.synthesis(ws, noise_mode="random", fused=False, generator=g)


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating logistic loss of G: softplus(-D(G(z))), mean."""
    return F.softplus(-fake_logits).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Logistic loss of D: softplus(D(G(z))) + softplus(-D(x)), mean."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def r1_penalty(D: torch.nn.Module, real: torch.Tensor) -> torch.Tensor:
    """||grad_x D(x)||^2 per real image [N] (differentiable, for the lazy R1 step)."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
    return grad.square().sum(dim=[1, 2, 3])


def path_lengths(G: StyleGAN2Generator, ws: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """||J_w^T y|| per sample [N] for y ~ N(0, I) / sqrt(H W), averaged over the W+ layers.
    ``ws`` [N, num_ws, w_dim] must require grad; when it comes from the mapping network the
    penalty trains the mapping too, as NVIDIA's does."""
    img = synthesize(G, ws, g)
    noise = torch.randn(img.shape, generator=g, device=img.device) / math.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    return grad.square().sum(2).mean(1).sqrt()


def with_bias(w: torch.Tensor) -> torch.Tensor:
    """w [N, C] -> [N, C + 1] with a column of ones (the fit's intercept)."""
    return torch.cat([w, w.new_ones(len(w), 1)], 1)


def linear_fit_update(stats: Optional[dict], w: torch.Tensor, y: torch.Tensor, decay: float = 1.0) -> dict:
    """A running ridge fit of readings y [N, K] from codes w [N, C]: the sums x^T x, x^T y and
    y^2 over samples (x = [w, 1]), earlier ones weighted down by ``decay`` per update."""
    x, y = with_bias(w.detach().double()), y.detach().double()
    new = {"xtx": x.T @ x, "xty": x.T @ y, "yy": y.square().sum(0)}
    return new if stats is None else {k: stats[k] * decay + new[k] for k in new}


def linear_fit_residual(stats: dict, w: torch.Tensor, y: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Held-out 1 - R^2 per reading [K]: the squared error of predicting y [N, K] from w [N, C] by
    the ridge fit in ``stats`` (made on earlier samples, fixed here), over the readings' variance
    there; differentiable in w and y, so it pulls G towards images whose readings are linear in w."""
    xtx, xty = stats["xtx"], stats["xty"]
    reg = alpha * torch.eye(len(xtx), dtype=xtx.dtype, device=xtx.device)
    reg[-1, -1] = 0
    coef = torch.linalg.solve(xtx + reg, xty).to(w.dtype)
    count = xtx[-1, -1]
    variance = (stats["yy"] / count - (xty[-1] / count).square()).to(y.dtype)
    return (y - with_bias(w) @ coef).square().mean(0) / variance.clamp(min=1e-8)


def spread_mismatch(y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """How far the readings y [N, K] of a batch of samples are from the domain's (``mean``,
    ``std`` [K], the readings of renders) in mean and spread, in units of ``std``, per reading [K]:
    the editability term's guard against the easy way to a linear reading, a constant one (G
    dropping beards, say)."""
    return ((y.mean(0) - mean) / std).square() + ((y.std(0) - std) / std).square()


# ---- the trainer -------------------------------------------------------------------------------

class GANTrainer:
    """G, D, the EMA of G, their optimisers, the path-length mean and (with the editability term)
    the running linear fit, stepped by ``train_step``. ``reader``: images [N, 3, R, R] -> readings
    [N, K], differentiable (the attribute regressor's ``cfg.linear_fields``); needed only when
    ``cfg.linear_weight`` > 0."""

    def __init__(self, cfg: GANConfig, device: torch.device | str = "cpu",
                 reader: Optional[Callable[[torch.Tensor], torch.Tensor]] = None):
        if cfg.linear_weight > 0 and reader is None:
            raise ValueError("the editability term needs a reader of the attributes")
        if cfg.linear_field_weights and len(cfg.linear_field_weights) != len(cfg.linear_fields):
            raise ValueError("linear_field_weights needs one weight per field of linear_fields")
        self.cfg, self.device, self.reader = cfg, torch.device(device), reader
        self.linear_stats: Optional[dict] = None
        torch.manual_seed(cfg.seed)
        self.G = StyleGAN2Generator(cfg.generator).to(self.device).train().requires_grad_(True)
        self.D = StyleGAN2Discriminator(cfg.discriminator).to(self.device).train().requires_grad_(True)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_G = self._adam(self.G, cfg.lr_g, cfg.pl_interval if cfg.pl_weight > 0 else None)
        self.opt_D = self._adam(self.D, cfg.lr_d, cfg.r1_interval if cfg.r1_gamma > 0 else None)
        self.pl_mean = torch.zeros([], device=self.device)
        self.step = 0
        self.images_per_step = cfg.batch
        self._renders: Optional[tuple] = None  # (block, its renders): see ``renders``

    def _adam(self, module: torch.nn.Module, lr: float, interval: Optional[int]) -> torch.optim.Adam:
        """Adam with lr and betas adjusted for lazy regularisation every ``interval`` steps."""
        c = interval / (interval + 1) if interval else 1.0
        b1, b2 = self.cfg.betas
        return torch.optim.Adam(module.parameters(), lr=lr * c, betas=(b1 ** c, b2 ** c), eps=1e-8)

    @staticmethod
    def _descend(opt: torch.optim.Optimizer, module: torch.nn.Module, loss: torch.Tensor) -> None:
        """One optimiser step on ``loss``, its non-finite gradients cleaned first (as NVIDIA's loop
        does: one bad batch must not poison a long run)."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        loop.clean_gradients_(module)
        opt.step()

    def _z(self, g: torch.Generator, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.generator.z_dim, generator=g, device=self.device)

    def renders(self, step: int) -> torch.Tensor:
        """The real images of ``step`` [batch, 3, R, R]: a slice of the renders of its block of
        ``render_block`` steps, drawn at once from (seed, block), so still a function of (seed, step)."""
        cfg = self.cfg
        block = step // cfg.render_block
        if self._renders is None or self._renders[0] != block:
            g = step_generator(cfg.seed, block, self.device, 1)
            self._renders = (block, rendered_batch(cfg.batch * cfg.render_block, cfg.generator.resolution, g).image)
        i = step % cfg.render_block
        return self._renders[1][i * cfg.batch:(i + 1) * cfg.batch]

    def train_step(self) -> dict:
        """One G step, one D step and their lazy regularisers; metrics as 0-dim tensors on the
        device (reading them here would make the CPU wait for the GPU every step)."""
        cfg, G, D, step = self.cfg, self.G, self.D, self.step
        g = step_generator(cfg.seed, step, self.device)
        real = self.renders(step)
        metrics = {}

        # G: non-saturating loss through a frozen D
        D.requires_grad_(False)
        ws = mapped_ws(G, self._z(g, cfg.batch), self._z(g, cfg.batch), cfg.style_mixing, g)
        fake_logits = D(synthesize(G, ws, g))
        loss_g = generator_loss(fake_logits)
        self._descend(self.opt_G, G, loss_g)
        metrics["loss_G"] = loss_g.detach()

        # G: lazy path-length regularisation
        if cfg.pl_weight > 0 and step % cfg.pl_interval == 0:
            n = max(1, cfg.batch // cfg.pl_batch_shrink)
            ws = mapped_ws(G, self._z(g, n), self._z(g, n), cfg.style_mixing, g)
            lengths = path_lengths(G, ws, g)
            pl_mean = self.pl_mean.lerp(lengths.mean(), cfg.pl_decay)
            self.pl_mean = pl_mean.detach()
            self._descend(self.opt_G, G, (lengths - pl_mean).square().mean() * cfg.pl_weight * cfg.pl_interval)
            metrics["path_length"] = lengths.mean().detach()

        # G: the editability term, lazily as the path length
        if cfg.linear_weight > 0 and step % cfg.linear_interval == 0:
            if self.linear_stats is None:
                self.prime_linear_fit()
            n = max(2, cfg.batch // cfg.pl_batch_shrink)
            w = G.mapping(self._z(g, n))
            readings = self.reader(augment(synthesize(G, G.broadcast(w), g), g))
            stats = self.linear_stats
            residual = linear_fit_residual(stats, w, readings)
            mismatch = spread_mismatch(readings, stats["render_mean"].to(readings), stats["render_std"].to(readings))
            weights = torch.tensor(cfg.linear_field_weights or [1.0] * len(cfg.linear_fields)).to(residual)
            loss = ((residual + mismatch) * weights).mean() * cfg.linear_weight * cfg.linear_interval
            self._descend(self.opt_G, G, loss)
            self.linear_stats = {**stats, **linear_fit_update(stats, w, readings, 0.5 ** (n / cfg.linear_half_life))}
            metrics.update(linear_residual=residual.mean().detach(), spread_mismatch=mismatch.mean().detach())
        D.requires_grad_(True)

        # D: logistic loss on renders and (detached) samples
        with torch.no_grad():
            fake = synthesize(G, mapped_ws(G, self._z(g, cfg.batch), self._z(g, cfg.batch), cfg.style_mixing, g), g)
        real_logits, fake_logits = D(real), D(fake)
        loss_d = discriminator_loss(real_logits, fake_logits)
        self._descend(self.opt_D, D, loss_d)
        metrics.update(loss_D=loss_d.detach(), D_real=real_logits.detach().mean(), D_fake=fake_logits.detach().mean())

        # D: lazy R1 on renders
        if cfg.r1_gamma > 0 and step % cfg.r1_interval == 0:
            r1 = r1_penalty(D, real)
            self._descend(self.opt_D, D, r1.mean() * (cfg.r1_gamma / 2) * cfg.r1_interval)
            metrics["r1"] = r1.detach().mean()

        # EMA of G, half-life in images, ramped up at the start
        ema_images = cfg.ema_kimg * 1000
        if cfg.ema_rampup is not None:
            ema_images = min(ema_images, (step + 1) * cfg.batch * cfg.ema_rampup)
        loop.update_ema(self.G_ema, G, loop.ema_beta(cfg.batch, ema_images))
        self.step += 1
        return metrics

    @torch.no_grad()
    def prime_linear_fit(self, n: int = 4096, batch: int = 256) -> None:
        """Start the running linear fit on ``n`` samples of G (a run that starts or branches with
        the editability term has no earlier samples to fit on), and read ``n`` renders for the
        readings' mean and spread in the domain."""
        g = step_generator(self.cfg.seed, self.step, self.device, 2)
        stats, rendered = None, []
        for i in range(0, n, batch):
            w = self.G.mapping(self._z(g, min(batch, n - i)))
            stats = linear_fit_update(stats, w, self.reader(augment(synthesize(self.G, self.G.broadcast(w), g), g)))
            renders = rendered_batch(min(batch, n - i), self.cfg.generator.resolution, g).image
            rendered.append(self.reader(augment(renders, g)))
        rendered = torch.cat(rendered)
        self.linear_stats = {**stats, "render_mean": rendered.mean(0), "render_std": rendered.std(0)}

    # ---- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {"step": self.step, "G": self.G.state_dict(), "D": self.D.state_dict(),
                 "G_ema": self.G_ema.state_dict(), "opt_G": self.opt_G.state_dict(),
                 "opt_D": self.opt_D.state_dict(), "pl_mean": self.pl_mean}
        if self.linear_stats is not None:
            state["linear_stats"] = self.linear_stats
        return state

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.pl_mean = state["pl_mean"].to(self.device)
        self.step = int(state["step"])
        stats = state.get("linear_stats")
        self.linear_stats = None if stats is None else {k: v.to(self.device) for k, v in stats.items()}

    @torch.no_grad()
    def sample_grid(self, n: int = 16) -> Image.Image:
        """EMA samples of ``n`` fixed latents above 8 fixed renders, 8 to a row."""
        z = torch.randn(n, self.cfg.generator.z_dim, generator=torch.Generator().manual_seed(0)).to(self.device)
        fakes = self.G_ema(z, noise_mode="const").clamp(-1, 1).cpu()
        real = rendered_batch(8, self.cfg.generator.resolution, step_generator(0, 0, self.device, 9)).image.cpu()
        return Image.fromarray(make_grid(list(tensor_to_uint8(torch.cat([fakes, real]))), ncols=8))

    def snapshot(self, folder: Path) -> None:
        """``folder/samples.png``: the sample grid."""
        self.sample_grid().save(folder / "samples.png")

    def export(self, path: Path, note: str) -> None:
        """G_ema as a shipped generator (safetensors), with w_avg estimated from 20k latents."""
        G = copy.deepcopy(self.G_ema).cpu()
        G.w_avg.copy_(G.estimate_w_avg(20000, generator=torch.Generator().manual_seed(0)))
        save_safetensors(path, G.config, G.state_dict(), note=note, training=str(self.cfg.to_dict()),
                         paired_with_renderer="false")


def command_line() -> argparse.ArgumentParser:
    """The trainer's command line (``python -m semedit.training.gan --help``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work-dir", type=Path, required=True, help="state, curve.csv and samples.png")
    ap.add_argument("--kimg", type=float, default=5000, help="length of the whole run in thousands of images")
    ap.add_argument("--minutes", type=float, default=math.inf, help="wall-clock budget of this invocation")
    ap.add_argument("--resume", action="store_true", help="continue the run in --work-dir (same settings)")
    ap.add_argument("--init", type=Path, help="start G (and its EMA) from this generator (safetensors), D afresh")
    ap.add_argument("--out", type=Path, help="export G_ema here (safetensors) when this invocation ends")
    ap.add_argument("--export-dir", type=Path, help="at every save: G_ema (safetensors), curve.csv, samples.png")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--size", choices=sorted(SIZES), default="full",
                    help="network widths: full (for a GPU) or quarter (trainable on a CPU)")
    ap.add_argument("--mapping-layers", type=int, default=GAN_GENERATOR.mapping_layers,
                    help="depth of G's mapping network (2 in NVIDIA's 64 px configuration, 8 in StyleGAN2's "
                         "config-f); an --init generator keeps its own")
    ap.add_argument("--batch", type=int, default=GANConfig.batch)
    ap.add_argument("--gamma", type=float, help="R1 weight (default: NVIDIA's auto value for the batch, "
                                                "0.0002 res^2 / batch; the EMA half-life follows the batch too)")
    ap.add_argument("--pl-weight", type=float, default=GANConfig.pl_weight)
    ap.add_argument("--lr", type=float, default=GANConfig.lr_g, help="learning rate of G and D")
    ap.add_argument("--linear-weight", type=float, default=GANConfig.linear_weight,
                    help="weight of the editability term: the held-out error of a running linear fit from w "
                         "to the attribute regressor's readings of G(w) (0: off)")
    ap.add_argument("--linear-fields", default=",".join(LINEAR_FIELDS),
                    help="the regressor's fields the editability term asks to be linear in w (comma-separated)")
    ap.add_argument("--linear-emphasis", default="",
                    help="weights of single fields in the editability term, e.g. 'hair_length=3' "
                         "(comma-separated; the other fields weigh 1)")
    ap.add_argument("--regressor", default="embedded-regressor-64",
                    help="the attribute regressor of the editability term (catalogue name or safetensors file)")
    ap.add_argument("--branch-from", type=Path,
                    help="start from another run's full state (G, D, EMA, optimisers, step) with this "
                         "invocation's settings, into a fresh --work-dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-minutes", type=float, default=3.0)
    ap.add_argument("--log-every", type=int, default=100)
    return ap


def config_from_args(a: argparse.Namespace, init_generator: Optional[StyleGAN2Config] = None) -> GANConfig:
    """The run's settings from parsed command-line arguments (``init_generator``: the config of
    the ``--init`` generator, which replaces the ``--size`` one)."""
    auto = auto_settings(a.batch, GANConfig.generator.resolution)
    generator, discriminator = SIZES[a.size]
    generator = replace(generator, mapping_layers=a.mapping_layers)
    fields = tuple(f for f in a.linear_fields.split(",") if f) if a.linear_weight > 0 else ()
    emphasis = field_emphasis(a.linear_emphasis, fields)
    return GANConfig(generator=init_generator or generator, discriminator=discriminator, batch=a.batch,
                     r1_gamma=auto["r1_gamma"] if a.gamma is None else a.gamma, ema_kimg=auto["ema_kimg"],
                     pl_weight=a.pl_weight, lr_g=a.lr, lr_d=a.lr, seed=a.seed, linear_weight=a.linear_weight,
                     linear_fields=fields, linear_regressor=a.regressor if fields else "",
                     linear_field_weights=tuple(emphasis.get(f, 1.0) for f in fields) if emphasis else (),
                     notes={"branched_from": str(a.branch_from)} if a.branch_from else {})


def field_emphasis(text: str, fields: tuple) -> dict:
    """'hair_length=3,smile=2' -> {field: weight}; ValueError for a field not in ``fields`` or a
    weight that is not a positive number."""
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if name not in fields:
            raise ValueError(f"--linear-emphasis names {name!r}, not one of the editability term's fields "
                             f"({', '.join(fields) or 'none: the term is off'})")
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not weight > 0:
            raise ValueError(f"--linear-emphasis wants name=positive number, not {item!r}")
        out[name] = weight
    return out


def attribute_reader(regressor_name: str, fields: tuple, device: torch.device) -> Callable:
    """images [N, 3, R, R] -> the regressor's readings of ``fields`` [N, K], differentiable in the
    images (the regressor itself frozen). ValueError for a field it does not read."""
    from ..checkpoints import load_module
    from ..networks.regressor import field_reader
    from ..registry import Registry
    path = Path(regressor_name)
    regressor = (load_module(path, "parameter-regressor") if path.suffix == ".safetensors"
                 else Registry.from_settings().get(regressor_name))
    return field_reader(regressor.to(device).eval().requires_grad_(False), fields)


def favour_training_speed(device: torch.device) -> None:
    """On CUDA: TF32 matmuls and convolutions, cuDNN's autotuner (speed over bit-exact float32)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def main(argv=None) -> None:
    ap = command_line()
    a = ap.parse_args(argv)
    device = resolve_device(a.device)
    favour_training_speed(device)
    init = None
    if a.init:
        from ..checkpoints import load_module
        init = load_module(a.init, "stylegan2")
    try:
        cfg = config_from_args(a, init.config if init else None)
    except ValueError as e:
        ap.error(str(e))
    settings_file = a.work_dir / SETTINGS_FILE
    if a.branch_from:
        if a.resume or loop.has_state(a.work_dir):
            ap.error("--branch-from starts a new run: give it a fresh --work-dir (and --resume that later)")
        if not loop.has_state(a.branch_from):
            ap.error(f"{a.branch_from} has no training state to branch from")
    elif a.resume and settings_file.is_file():
        recorded = json.loads(settings_file.read_text())
        differences = settings_differences(recorded, cfg)
        if differences:
            ap.error(f"{a.work_dir} was trained with other settings; resume it with the same flags "
                     f"(recorded -> given: {'; '.join(differences)})")
        cfg = replace(cfg, notes=recorded.get("notes", {}))
    a.work_dir.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(cfg.to_dict(), indent=1))
    reader = attribute_reader(cfg.linear_regressor, cfg.linear_fields, device) if cfg.linear_weight > 0 else None
    trainer = GANTrainer(cfg, device, reader)
    if a.branch_from:
        shutil.copytree(a.branch_from / loop.STATE_DIR, a.work_dir / loop.STATE_DIR)
    if a.init:
        trainer.G.load_state_dict(init.state_dict())
        trainer.G_ema.load_state_dict(init.state_dict())
    total = math.ceil(a.kimg * 1000 / cfg.batch)

    def note() -> str:
        return (f"semedit.training.gan: {trainer.step * cfg.batch / 1000:.0f} kimg adversarial training on renderer "
                f"images ({device.type}), gamma {cfg.r1_gamma}, batch {cfg.batch}")

    def snapshot(folder: Path) -> None:
        trainer.snapshot(folder)
        if a.export_dir:
            a.export_dir.mkdir(parents=True, exist_ok=True)
            trainer.export(a.export_dir / "embedded-portraits-64.safetensors", note=note())
            for name in (loop.CURVE_FILE, "samples.png"):
                shutil.copy(folder / name, a.export_dir / name)

    loop.run(trainer, work_dir=a.work_dir, total_steps=total, minutes=a.minutes, save_minutes=a.save_minutes,
             log_every=a.log_every, resume=a.resume or bool(a.branch_from), snapshot=snapshot)
    if a.out:
        trainer.export(a.out, note=note())
        print(f"wrote {a.out} at {trainer.step * cfg.batch / 1000:.0f} kimg")


if __name__ == "__main__":
    main()
