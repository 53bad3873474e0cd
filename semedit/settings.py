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
``HF_HUB_OFFLINE``                    ``1``: never contact the Hub, use its cache only
``HF_HOME`` / ``HF_HUB_CACHE``        the Hub cache (read by huggingface_hub itself)
``HF_ENDPOINT``                       another Hub endpoint (read by huggingface_hub itself)
====================================  ===========================================================
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import torch

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = PROJECT_ROOT / "weights"

_TRUE = {"1", "true", "yes", "on"}


def _flag(value: Optional[str]) -> bool:
    return (value or "").strip().lower() in _TRUE


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; any other name as given."""
    if name in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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
    cache_dir: Path = Path.home() / ".cache" / "semedit"
    memory_budget_mb: float = 4096
    default_generator: Optional[str] = None
    hub_offline: bool = False
    hub_endpoint: Optional[str] = None
    hub_cache_dir: Optional[Path] = None
    host: str = "127.0.0.1"
    port: int = 7860
    max_samples: int = 16
    queue_size: int = 16

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
        )
