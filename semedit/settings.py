"""Settings from the environment, read once by whoever needs them (no import-time reads).

====================================  ===========================================================
``SEMEDIT_DEVICE``                    ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda:0`` ...
``SEMEDIT_CATALOGUE``                 model catalogue file (default: ``weights/catalogue.json``)
``SEMEDIT_CACHE_DIR``                 converted checkpoints (default: ``~/.cache/semedit``)
``SEMEDIT_MEMORY_BUDGET_MB``          budget of the in-memory model cache (default 4096)
``SEMEDIT_DEFAULT_GENERATOR``         generator selected at start-up (default: the catalogue's)
``SEMEDIT_HOST`` / ``SEMEDIT_PORT``   where the app listens (default 127.0.0.1:7860; ``PORT`` also read)
``SEMEDIT_MAX_SAMPLES``               largest sample grid the UI renders (default 16)
``SEMEDIT_QUEUE_SIZE``                pending requests before new ones are refused (default 16)
``SEMEDIT_LONG_JOBS``                 long jobs (inversions, transfers by optimisation, fitting) run at
                                      once, over all sessions (default 1); short ones have their own slots
``SEMEDIT_SHORT_JOBS``                short jobs (samples, slider frames, chunk edits, segments) at once (default 1)
``SEMEDIT_LONG_JOBS_PER_SESSION``     long jobs one browser session may run at once (default 1)
``SEMEDIT_SESSION_TTL_MINUTES``       a session's results and files are freed this long after its last
                                      use, or when its browser leaves (default 60)
``SEMEDIT_TEMP_DIR``                  the sessions' temporary folders (default: the system's temp dir)
``SEMEDIT_CACHE_MIN_AGE_MINUTES``     Gradio's cached uploads and results live at least this long (default
                                      60: an upload must outlive its request's wait in the queue)
``SEMEDIT_MAX_IMAGE_SIDE``            uploads are reduced to this many px on the long side as they load (default 4096)
``SEMEDIT_MAX_IMAGE_MEGAPIXELS``      larger uploads are refused before they are decoded (default 50)
``SEMEDIT_COMPILE``                   ``auto`` (compile generators on CUDA), ``on``, ``off`` (semedit/acceleration.py)
``SEMEDIT_TF32``                      ``1`` (default): TF32 matmuls and convolutions on CUDA; ``0``: exact float32
``HF_HUB_OFFLINE``                    ``1``: never contact the Hub, use its cache only
``HF_HOME`` / ``HF_HUB_CACHE``        the Hub cache (read by huggingface_hub itself)
``HF_ENDPOINT``                       another Hub endpoint (read by huggingface_hub itself)
====================================  ===========================================================
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

import torch

from .imaging import ImageLimits

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = PROJECT_ROOT / "weights"

_TRUE = {"1", "true", "yes", "on"}


def _flag(value: Optional[str]) -> bool:
    return (value or "").strip().lower() in _TRUE


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> the current CUDA device when a GPU is visible, else ``cpu``; any other name as
    given, ``cuda`` with its index (``cuda:0``), as a tensor's ``.device`` names it."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if name in ("", "auto") else torch.device(name)
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())  # one name per GPU, as tensors report it
    return device


def _hub_cache_dir(env: Mapping[str, str]) -> Optional[Path]:
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    return None  # huggingface_hub's own default


@dataclass(frozen=True)
class Settings:
    device: str = "auto"
    catalogue_path: Path = WEIGHTS_DIR / "catalogue.json"
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "semedit")
    memory_budget_mb: float = 4096
    default_generator: Optional[str] = None
    hub_offline: bool = False
    hub_endpoint: Optional[str] = None
    hub_cache_dir: Optional[Path] = None
    host: str = "127.0.0.1"
    port: int = 7860
    max_samples: int = 16
    queue_size: int = 16
    long_jobs: int = 1
    short_jobs: int = 1
    long_jobs_per_session: int = 1
    session_ttl_minutes: float = 60
    cache_min_age_minutes: float = 60
    temp_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    image_limits: ImageLimits = ImageLimits()
    compile: str = "auto"
    tf32: bool = True

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        env = os.environ if env is None else env
        d = cls()
        return cls(
            device=env.get("SEMEDIT_DEVICE", d.device),
            catalogue_path=Path(env.get("SEMEDIT_CATALOGUE", d.catalogue_path)).expanduser(),
            cache_dir=Path(env.get("SEMEDIT_CACHE_DIR", d.cache_dir)).expanduser(),
            memory_budget_mb=float(env.get("SEMEDIT_MEMORY_BUDGET_MB", d.memory_budget_mb)),
            default_generator=env.get("SEMEDIT_DEFAULT_GENERATOR") or None,
            hub_offline=_flag(env.get("HF_HUB_OFFLINE")),
            hub_endpoint=env.get("HF_ENDPOINT") or None,
            hub_cache_dir=_hub_cache_dir(env),
            host=env.get("SEMEDIT_HOST", env.get("GRADIO_SERVER_NAME", d.host)),
            port=int(env.get("SEMEDIT_PORT") or env.get("GRADIO_SERVER_PORT") or env.get("PORT") or d.port),
            max_samples=int(env.get("SEMEDIT_MAX_SAMPLES", d.max_samples)),
            queue_size=int(env.get("SEMEDIT_QUEUE_SIZE", d.queue_size)),
            long_jobs=int(env.get("SEMEDIT_LONG_JOBS", d.long_jobs)),
            short_jobs=int(env.get("SEMEDIT_SHORT_JOBS", d.short_jobs)),
            long_jobs_per_session=int(env.get("SEMEDIT_LONG_JOBS_PER_SESSION", d.long_jobs_per_session)),
            session_ttl_minutes=float(env.get("SEMEDIT_SESSION_TTL_MINUTES", d.session_ttl_minutes)),
            cache_min_age_minutes=float(env.get("SEMEDIT_CACHE_MIN_AGE_MINUTES", d.cache_min_age_minutes)),
            temp_dir=Path(env.get("SEMEDIT_TEMP_DIR") or d.temp_dir).expanduser(),
            compile=env.get("SEMEDIT_COMPILE", d.compile).strip().lower(),
            tf32=_flag(env.get("SEMEDIT_TF32", "1")),
            image_limits=ImageLimits(
                max_side=int(env.get("SEMEDIT_MAX_IMAGE_SIDE", d.image_limits.max_side)),
                max_pixels=int(float(env.get("SEMEDIT_MAX_IMAGE_MEGAPIXELS", d.image_limits.max_pixels / 1e6)) * 1e6)),
        )
