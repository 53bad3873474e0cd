import pytest
import torch

from semedit.networks.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from tests.conftest import TINY, tiny_generator


@pytest.mark.parametrize("resolution", [4, 8, 32, 1024])
def test_any_power_of_two_resolution(resolution):
    config = StyleGAN2Config(resolution=resolution, z_dim=8, w_dim=8, mapping_layers=1,
                             channels=(4,) * (StyleGAN2Config(resolution=resolution).num_blocks))
    G = StyleGAN2Generator(config).eval()
    with torch.no_grad():
        img = G(torch.randn(2, 8))
    assert img.shape == (2, 3, resolution, resolution)
    assert G.num_ws == 2 * config.num_blocks
    assert torch.isfinite(img).all()


def test_config_f_layout():
    config = StyleGAN2Config()  # 1024 px FFHQ config-f
    assert config.num_ws == 18
    assert config.block_channels == (512, 512, 512, 512, 512, 256, 128, 64, 32)
    G = StyleGAN2Generator(StyleGAN2Config(resolution=1024, z_dim=8, w_dim=8, mapping_layers=1,
                                           channels=(4,) * 9))
    assert G.synthesis.num_styles == 26  # 17 convolutions + 9 toRGB, as in StyleSpace


@pytest.mark.parametrize("bad", [3, 2048, 48, 2])
def test_bad_resolution_refused(bad):
    with pytest.raises(ValueError):
        StyleGAN2Config(resolution=bad)


def test_mapping_and_synthesis_contract():
    G = tiny_generator()
    z = torch.randn(3, TINY.z_dim)
    w = G.mapping(z)
    assert w.shape == (3, TINY.w_dim)
    img = G.synthesis(G.broadcast(w))
    assert img.shape == (3, 3, 16, 16)
    torch.testing.assert_close(img, G(z))
    with pytest.raises(ValueError):
        G.synthesis(w[:, None])  # ws with the wrong number of layers


def test_fused_and_unfused_agree():
    G = tiny_generator()
    ws = torch.randn(4, G.num_ws, TINY.w_dim)
    torch.testing.assert_close(G.synthesis(ws, fused=True), G.synthesis(ws, fused=False), rtol=1e-4, atol=1e-5)


def test_stylespace_round_trip_and_locality():
    G = tiny_generator()
    ws = torch.randn(2, G.num_ws, TINY.w_dim)
    styles = G.synthesis.styles(ws)
    assert [s.shape[1] for s in styles] == list(G.synthesis.style_dims)
    torch.testing.assert_close(G.synthesis.from_styles(styles), G.synthesis(ws))
    edited = [s.clone() for s in styles]
    edited[3][:, 0] += 5.0  # one channel of one layer
    assert not torch.allclose(G.synthesis.from_styles(edited), G.synthesis(ws))


def test_truncation_towards_w_avg():
    G = tiny_generator()
    w = G.mapping(torch.randn(5, TINY.z_dim))
    torch.testing.assert_close(G.truncate(w, 0.0), G.w_avg.expand_as(w))
    torch.testing.assert_close(G.truncate(w, 1.0), w)
    half = G.truncate(w, 0.5)
    torch.testing.assert_close(half - G.w_avg, 0.5 * (w - G.w_avg))


def test_noise_modes():
    G = tiny_generator()
    ws = torch.randn(1, G.num_ws, TINY.w_dim)
    const = G.synthesis(ws, noise_mode="const")
    torch.testing.assert_close(const, G.synthesis(ws, noise_mode="const"))
    r1 = G.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(1))
    r1b = G.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(1))
    r2 = G.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(r1, r1b)
    assert not torch.allclose(r1, r2)
    assert not torch.allclose(const, G.synthesis(ws, noise_mode="none"))
    with pytest.raises(ValueError):
        G.synthesis(ws, noise_mode="loud")


def test_gradients_flow_to_latents_and_weights():
    G = tiny_generator().requires_grad_(True).train()
    ws = torch.randn(2, G.num_ws, TINY.w_dim, requires_grad=True)
    G.synthesis(ws, fused=False).square().mean().backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0
    assert G.synthesis.layers[0].weight.grad.abs().sum() > 0
    assert G.mapping.layers[0].weight.grad is None  # mapping not used by synthesis


def test_conv_clamp_limits_activations():
    config = StyleGAN2Config(**{**TINY.to_dict(), "conv_clamp": 0.05, "channels": TINY.channels})
    G = tiny_generator(config=config)
    ws = 5 * torch.randn(2, G.num_ws, TINY.w_dim)
    assert G.synthesis(ws).abs().max() <= 0.05 * 4 + 1e-6  # toRGB outputs clamped, upsampled sums of 3


def test_weight_deltas_scale_each_samples_weights():
    """HyperStyle's offsets: zero offsets change nothing; an offset on one sample's layer moves
    that sample only, exactly as a copy of G whose weight is W (1 + delta) would."""
    import copy
    G = tiny_generator()
    ws = G.broadcast(G.mapping(torch.randn(2, TINY.z_dim, generator=torch.Generator().manual_seed(0))))
    zeros = [torch.zeros(2, o, i, k, k) for k, i, o in G.synthesis.kernel_shapes]
    with torch.no_grad():
        plain = G.synthesis(ws, fused=False)
        torch.testing.assert_close(G.synthesis(ws, weight_deltas=zeros), plain, rtol=1e-4, atol=1e-5)
        deltas = [None] * G.synthesis.num_styles
        j = 2  # the first upsampling layer (a transposed convolution)
        k, i, o = G.synthesis.kernel_shapes[j]
        d = 0.3 * torch.randn(1, o, i, k, k, generator=torch.Generator().manual_seed(1))
        deltas[j] = torch.cat([d, torch.zeros_like(d)])
        moved = G.synthesis(ws, weight_deltas=deltas)
        tuned = copy.deepcopy(G)
        key = G.synthesis.weight_keys()[j]
        tuned.synthesis.get_parameter(key).mul_(1 + d[0])
        torch.testing.assert_close(moved[:1], tuned.synthesis(ws[:1], fused=False), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(moved[1:], plain[1:], rtol=1e-4, atol=1e-5)
    assert (moved[0] - plain[0]).abs().max() > 1e-3
    assert G.synthesis.weight_keys()[:3] == ("layers.0.weight", "to_rgbs.0.weight", "layers.1.weight")


@pytest.mark.parametrize("pad,gain", [((2, 1), 4.0), ((1, 1), 1.0), ((0, 0), 2.0)])
def test_blur_as_one_depthwise_convolution_equals_the_shifted_adds(pad, gain):
    from semedit.networks.stylegan2 import blur
    x = torch.randn(3, 5, 9, 9, requires_grad=True)
    adds, conv = blur(x, pad, gain, depthwise=False), blur(x, pad, gain, depthwise=True)  # CPU / CUDA default
    torch.testing.assert_close(conv, adds, rtol=1e-5, atol=1e-5)
    (ga,) = torch.autograd.grad(adds.square().sum(), x)
    (gc,) = torch.autograd.grad(conv.square().sum(), x)
    torch.testing.assert_close(gc, ga, rtol=1e-5, atol=1e-5)
    with torch.inference_mode():  # a filter first made in inference mode still trains afterwards
        blur(torch.randn(1, 6, 8, 8), pad, gain, depthwise=True)
    blur(torch.randn(1, 6, 8, 8, requires_grad=True), pad, gain, depthwise=True).sum().backward()


@pytest.mark.parametrize("pad", [(2, 1), (1, 1), (0, 0)])
def test_blur_backward_and_double_backward_equal_autograds_own(pad):
    """The CPU blur's hand-written adjoint gives autograd's gradients of the shifted adds, also when
    differentiated again (as R1 and the path-length penalty do)."""
    from semedit.networks.stylegan2 import _shifted_adds_1d, blur
    x = torch.randn(2, 3, 10, 7, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 3, 10 + sum(pad) - 3, 7 + sum(pad) - 3, dtype=torch.float64)

    def plain(t):  # the same filter, differentiated by autograd through its slices
        t = torch.nn.functional.pad(t, [pad[0], pad[1], pad[0], pad[1]])
        return _shifted_adds_1d(_shifted_adds_1d(t, 3), 2) * 4.0

    def first_and_second_gradients(f):
        (g,) = torch.autograd.grad((f(x) * y).sin().sum(), x, create_graph=True)
        return g, torch.autograd.grad(g.square().sum(), x)[0]

    g_ref, h_ref = first_and_second_gradients(plain)
    g, h = first_and_second_gradients(lambda t: blur(t, pad, 4.0, depthwise=False))
    torch.testing.assert_close(g, g_ref)
    torch.testing.assert_close(h, h_ref)
    assert h.abs().sum() > 0
    torch.autograd.gradcheck(lambda t: blur(t, pad, 1.0, depthwise=False), (x[:1, :1],))
