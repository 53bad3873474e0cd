"""Test set-up: no test may reach the network, and every test gets its own caches."""
import os
import tempfile

# Before anything imports gradio or huggingface_hub (they read these at import time).
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="semedit-test-hf-"))
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"  # closed loopback port: a stray download fails fast
os.environ.pop("HF_HUB_OFFLINE", None)

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from semedit.checkpoints import save_safetensors  # noqa: E402
from semedit.networks.stylegan2 import StyleGAN2Config, StyleGAN2Generator  # noqa: E402
from semedit.registry import Registry, load_catalogue  # noqa: E402
from semedit.settings import Settings  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
TINY = StyleGAN2Config(resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channels=(32, 32, 16))


def tiny_generator(seed: int = 0, config: StyleGAN2Config = TINY) -> StyleGAN2Generator:
    """A small random generator whose weights are moved off their init, so every weight matters."""
    torch.manual_seed(seed)
    G = StyleGAN2Generator(config)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(0.1 * torch.randn_like(p))
        G.w_avg.copy_(0.1 * torch.randn_like(G.w_avg))
    return G.eval().requires_grad_(False)


@pytest.fixture
def tiny_file(tmp_path) -> Path:
    G = tiny_generator()
    path = tmp_path / "weights" / "tiny.safetensors"
    save_safetensors(path, G.config, G.state_dict())
    return path


def write_catalogue(folder: Path, models: dict, default=None, **defaults) -> Path:
    """``defaults``: further catalogue defaults, e.g. default_identity="name"."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "catalogue.json"
    path.write_text(json.dumps({"default_generator": default, "models": models, **defaults}, indent=1))
    return path


@pytest.fixture
def make_registry(tmp_path):
    """make_registry(models, default, defaults={...}, **settings) -> Registry over a catalogue in
    tmp_path/weights."""
    def make(models: dict, default=None, defaults=None, **settings) -> Registry:
        cat = load_catalogue(write_catalogue(tmp_path / "weights", models, default, **(defaults or {})))
        base = dict(device="cpu", cache_dir=tmp_path / "cache", hub_cache_dir=tmp_path / "hub",
                    hub_endpoint="http://127.0.0.1:9")
        return Registry(cat, Settings(**{**base, **settings}))
    return make
