"""Parity with the reference implementations on their own checkpoint files.

The fixtures in tests/fixtures/reference/ were written by ../shared/tools/record_reference_outputs.py
running rosinality/stylegan2-pytorch and NVlabs/stylegan2-ada-pytorch outside this project
(32 px, style_dim 64, 2 mapping layers, widths / 8, seed 0); no reference code is in this repo.
"""
import pytest
import torch

from semedit.checkpoints import convert_to_safetensors, load_generator, read_nvlabs_pickle
from tests.conftest import FIXTURES

REF = FIXTURES / "reference"
CASES = [("rosinality", REF / "rosinality_32.pt", REF / "rosinality_32_ref.pt"),
         ("nvlabs", REF / "nvlabs_32.pkl", REF / "nvlabs_32_ref.pt")]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("fmt,ckpt,ref", CASES, ids=[c[0] for c in CASES])
def test_matches_reference_outputs(fmt, ckpt, ref, fused):
    G = load_generator(ckpt, fmt)
    r = torch.load(ref, weights_only=True)
    with torch.no_grad():
        img_z = G(r["z"], truncation_psi=1.0, noise_mode="const", fused=fused)
        img_ws = G.synthesis(r["ws"], noise_mode="const", fused=fused)
    assert img_z.shape == r["img_z"].shape
    assert relative_error(img_z, r["img_z"]) <= 1e-4
    assert relative_error(img_ws, r["img_ws"]) <= 1e-4
    # a wrong layer order or a missing weight is far outside the tolerance
    assert relative_error(G.synthesis(r["ws"].flip(1)), r["img_ws"]) > 1e-2


def test_rosinality_config_is_inferred_from_keys():
    G = load_generator(REF / "rosinality_32.pt", "rosinality")
    r = torch.load(REF / "rosinality_32_ref.pt", weights_only=True)["config"]
    assert G.config.resolution == r["size"] and G.config.z_dim == r["style_dim"]
    assert G.config.mapping_layers == r["n_mlp"]
    assert G.config.block_channels == tuple(r["channels"][k] for k in sorted(r["channels"]))


def test_nvlabs_hyper_parameters_come_from_init_kwargs():
    config, state = read_nvlabs_pickle(REF / "nvlabs_32.pkl")
    assert (config.resolution, config.z_dim, config.w_dim, config.mapping_layers) == (32, 64, 64, 2)
    assert config.channel_base == 4096 and config.channel_max == 64
    assert state["w_avg"].abs().sum() > 0  # the tracked w_avg, not zeros


@pytest.mark.parametrize("fmt,ckpt,ref", CASES, ids=[c[0] for c in CASES])
def test_safetensors_conversion_is_lossless(tmp_path, fmt, ckpt, ref):
    out = convert_to_safetensors(ckpt, fmt, tmp_path / "g.safetensors")
    a, b = load_generator(ckpt, fmt), load_generator(out, "safetensors")
    assert a.config == b.config
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
