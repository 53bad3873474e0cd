"""The loop every trainer shares: steps under a time budget, a curve file, resumable state.

A trainer is any object with ``step`` (int, steps done), ``images_per_step``,
``train_step() -> dict`` of scalar metrics (numbers, or 0-dim tensors, read only when a curve row
is written), ``state_dict()`` / ``load_state_dict(d)`` (everything a resumed run needs, plain
tensors and numbers only) and optionally ``snapshot(folder)`` (a sample grid, say). ``run``
drives it; the trainer decides what one step is.

State is written with ``torch.save`` and split into files of at most ``shard_mb`` MiB
(``state/000.bin``, ``001.bin``, ... and ``state/index.json``), so it can travel through
channels that limit file sizes; reading it back uses ``torch.load(weights_only=True)``.
A new state replaces the old one only once it is complete.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import shutil
import time
from pathlib import Path
from typing import Callable, Optional, Protocol

import torch

from ..errors import CheckpointError

STATE_DIR = "state"
CURVE_FILE = "curve.csv"


class Trainer(Protocol):
    step: int
    images_per_step: int

    def train_step(self) -> dict: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class NetTrainerState:
    """``state_dict`` / ``load_state_dict`` for a trainer whose whole state is one network
    (``net``), its optimiser (``opt``), learning-rate schedule (``sched``) and ``step``."""

    def state_dict(self) -> dict:
        return {"step": self.step, "net": self.net.state_dict(), "opt": self.opt.state_dict(),
                "sched": self.sched.state_dict()}

    def update(self, loss) -> None:
        """One optimiser and schedule step on ``loss``; counts the step."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        self.step += 1

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.step = int(state["step"])


def one_cycle(opt: torch.optim.Optimizer, lr: float, steps: int, warmup: float = 0.05):
    """PyTorch's one-cycle schedule (warm-up over a ``warmup`` share of ``steps``, then cosine
    decay). PyTorch divides by zero when the warm-up is exactly one step (20 steps at 0.05, say),
    so such a warm-up is halved."""
    if abs(warmup * steps - 1) < 1e-9:
        warmup /= 2
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=warmup)


def add_run_arguments(ap) -> None:
    """The options every trainer's command line has: ``--seed``, ``--work-dir`` (state and
    curve), ``--resume``, ``--minutes`` (this invocation's budget) and ``--device``."""
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work-dir", type=Path, required=True, help="state and curve.csv")
    ap.add_argument("--resume", action="store_true", help="continue the run in --work-dir")
    ap.add_argument("--minutes", type=float, default=math.inf, help="wall-clock budget of this invocation")
    ap.add_argument("--device", default="auto")


def save_state(folder: Path, state: dict, shard_mb: float = 15.0) -> Path:
    """Write ``state`` into ``folder/state/`` in shards of at most ``shard_mb`` MiB."""
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    shard = max(1, int(shard_mb * 2 ** 20))
    folder = Path(folder)
    new, final, old = folder / (STATE_DIR + ".new"), folder / STATE_DIR, folder / (STATE_DIR + ".old")
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    names = []
    for i in range(0, max(1, len(data)), shard):
        names.append(f"{len(names):03d}.bin")
        (new / names[-1]).write_bytes(data[i:i + shard])
    (new / "index.json").write_text(json.dumps({"shards": names, "bytes": len(data),
                                                "sha256": hashlib.sha256(data).hexdigest()}))
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_state(folder: Path, map_location: str | torch.device = "cpu") -> dict:
    """The state written by ``save_state`` into ``folder`` (checked against its sha256)."""
    final = Path(folder) / STATE_DIR
    try:
        index = json.loads((final / "index.json").read_text())
        data = b"".join((final / name).read_bytes() for name in index["shards"])
    except (OSError, KeyError, ValueError) as e:
        raise CheckpointError(f"{final}: no complete training state ({e})") from e
    if len(data) != index["bytes"] or hashlib.sha256(data).hexdigest() != index["sha256"]:
        raise CheckpointError(f"{final}: the training state is incomplete or damaged (size or sha256 differs)")
    return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)


def has_state(folder: Path) -> bool:
    return (Path(folder) / STATE_DIR / "index.json").is_file()


def ema_beta(batch: int, half_life_images: float) -> float:
    """EMA decay per step such that the weight of an image halves every ``half_life_images``."""
    return 0.5 ** (batch / max(half_life_images, 1e-8))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * model for parameters (one fused call, not one per tensor:
    a GPU step is bound by how many kernels it launches); buffers copied."""
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - beta)
    for be, b in zip(ema.buffers(), model.buffers()):
        be.copy_(b)


@torch.no_grad()
def clean_gradients_(module: torch.nn.Module) -> None:
    """Gradients of ``module`` with NaN set to 0 and +-inf to +-1e5, in place."""
    for p in module.parameters():
        if p.grad is not None:
            p.grad.nan_to_num_(nan=0.0, posinf=1e5, neginf=-1e5)


CURVE_FIRST = ["step", "kimg", "elapsed_s", "images_per_s"]


def append_curve_row(path: Path, row: dict) -> None:
    """Append ``row`` to the curve file at ``path`` (columns: step, kimg, elapsed_s, images_per_s,
    then the metrics in name order). A metric the file has no column for (a lazy regulariser's,
    first reported after the file began) adds one, "nan" in the rows before; a missing one is "nan"."""
    rows, header = [], None
    if path.exists():
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            new = sorted(set(row) - set(header or []))
            if header is None or new:
                rows = list(reader)
    if header is None or new:
        old = header or []
        header = CURVE_FIRST + sorted((set(old) | set(row)) - set(CURVE_FIRST))
        index = {k: i for i, k in enumerate(old)}
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows([r[index[k]] if k in index else "nan" for k in header] for r in rows)
    with open(path, "a", newline="") as f:
        csv.writer(f).writerow([row.get(k, "nan") for k in header])


def run(trainer: Trainer, *, work_dir: Path, total_steps: int, minutes: float = math.inf,
        save_minutes: float = 3.0, log_every: int = 50, resume: bool = False, shard_mb: float = 15.0,
        log: Callable[[str], None] = print, snapshot: Optional[Callable[[Path], None]] = None) -> Trainer:
    """Train until ``total_steps`` or ``minutes`` of wall time, whichever comes first.

    Every ``log_every`` steps a row (step, thousands of images, seconds, images per second, the
    mean of each metric over the steps since the last row that reported it) goes to
    ``work_dir/curve.csv``; every ``save_minutes`` and at the end the state is saved (and
    ``snapshot(work_dir)`` called). ``resume`` continues from ``work_dir``'s state."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    elapsed_before = 0.0
    if resume and has_state(work_dir):
        state = load_state(work_dir)
        trainer.load_state_dict(state["trainer"])
        elapsed_before = float(state.get("elapsed_s", 0.0))
        log(f"resumed at step {trainer.step} ({elapsed_before / 60:.1f} min trained before)")
    curve_path = work_dir / CURVE_FILE
    if not (resume and trainer.step > 0):
        curve_path.unlink(missing_ok=True)
    t0 = last_save = time.time()
    sums: dict = {}
    counts: dict = {}
    window_start, window_step = time.time(), trainer.step

    def save() -> None:
        save_state(work_dir, {"trainer": trainer.state_dict(), "elapsed_s": elapsed_before + time.time() - t0},
                   shard_mb=shard_mb)
        if snapshot is not None:
            snapshot(work_dir)

    while trainer.step < total_steps and time.time() - t0 < minutes * 60:
        metrics = trainer.train_step()
        for k, v in metrics.items():  # tensors stay on their device until a row is written
            sums[k] = sums.get(k, 0.0) + (v.detach() if torch.is_tensor(v) else float(v))
            counts[k] = counts.get(k, 0) + 1
        if trainer.step % log_every == 0 or trainer.step == total_steps:
            means = {k: float(v) / counts[k] for k, v in sums.items()}
            now = time.time()
            elapsed = elapsed_before + now - t0
            rate = (trainer.step - window_step) * trainer.images_per_step / max(now - window_start, 1e-9)
            append_curve_row(curve_path, {"step": trainer.step, "kimg": f"{trainer.step * trainer.images_per_step / 1000:.2f}",
                                          "elapsed_s": f"{elapsed:.1f}", "images_per_s": f"{rate:.1f}",
                                          **{k: f"{v:.5g}" for k, v in means.items()}})
            log(f"step {trainer.step}  " + "  ".join(f"{k} {v:.4g}" for k, v in sorted(means.items()))
                + f"  {rate:.0f} img/s  {elapsed:.0f}s")
            sums, counts = {}, {}
            window_start, window_step = time.time(), trainer.step
        if time.time() - last_save > save_minutes * 60:
            save()
            last_save = time.time()
    save()
    return trainer
