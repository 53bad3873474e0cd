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
non-finite gradients cleaned before every optimiser step. The renderer draws the real images on the
training device, several steps' worth at a time. Every batch is a function of (seed, step), so a resumed run is
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
from typing import Optional

import torch
import torch.nn.functional as F
from PIL import Image

from ..checkpoints import save_safetensors
from ..imaging import make_grid, tensor_to_uint8
from ..networks.discriminator import DiscriminatorConfig, StyleGAN2Discriminator
from ..networks.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from ..settings import resolve_device
from . import loop
from .data import rendered_batch, step_generator

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


# ---- the trainer -------------------------------------------------------------------------------

class GANTrainer:
    """G, D, the EMA of G, their optimisers and the path-length mean, stepped by ``train_step``."""

    def __init__(self, cfg: GANConfig, device: torch.device | str = "cpu"):
        self.cfg, self.device = cfg, torch.device(device)
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

    # ---- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"step": self.step, "G": self.G.state_dict(), "D": self.D.state_dict(),
                "G_ema": self.G_ema.state_dict(), "opt_G": self.opt_G.state_dict(),
                "opt_D": self.opt_D.state_dict(), "pl_mean": self.pl_mean}

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.pl_mean = state["pl_mean"].to(self.device)
        self.step = int(state["step"])

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
    return GANConfig(generator=init_generator or generator, discriminator=discriminator, batch=a.batch,
                     r1_gamma=auto["r1_gamma"] if a.gamma is None else a.gamma, ema_kimg=auto["ema_kimg"],
                     pl_weight=a.pl_weight, lr_g=a.lr, lr_d=a.lr, seed=a.seed)


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
    cfg = config_from_args(a, init.config if init else None)
    settings_file = a.work_dir / SETTINGS_FILE
    if a.resume and settings_file.is_file():
        differences = settings_differences(json.loads(settings_file.read_text()), cfg)
        if differences:
            ap.error(f"{a.work_dir} was trained with other settings; resume it with the same flags "
                     f"(recorded -> given: {'; '.join(differences)})")
    a.work_dir.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(cfg.to_dict(), indent=1))
    trainer = GANTrainer(cfg, device)
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
             log_every=a.log_every, resume=a.resume, snapshot=snapshot)
    if a.out:
        trainer.export(a.out, note=note())
        print(f"wrote {a.out} at {trainer.step * cfg.batch / 1000:.0f} kimg")


if __name__ == "__main__":
    main()
