"""pSp, e4e, ReStyle and HyperStyle: the official state-dict layouts (read off the public
repositories), loading reduced checkpoints in those layouts through the registry without
running pickled code, and encoder inversion on a small generator."""
import math
from dataclasses import replace

import pytest
import torch

from semedit import pipeline
from semedit.checkpoints import CheckpointError, load_generator, read_psp
from semedit.encoders import EncoderMismatchError, encode, invert_encoder
from semedit.inversion.suite import Context, Knobs
from semedit.losses import PerceptualModel
from semedit.networks.psp import EncoderModel, EncoderModelConfig, StyleEncoder, StyleEncoderConfig
from semedit.targets import Target
from tests.conftest import FIXTURES

ROSINALITY = FIXTURES / "reference" / "rosinality_32.pt"  # 32 px, 8 W+ codes of 64
SMALL = dict(units=(1, 1, 2, 1), widths=(16, 32, 48, 64))
TYPES = {"GradualStyleEncoder": "gradual", "Encoder4Editing": "e4e", "BackboneEncoder": "backbone",
         "ProgressiveBackboneEncoder": "progressive-backbone", "ResNetBackboneEncoder": "backbone",
         "ResNetProgressiveBackboneEncoder": "progressive-backbone", "WEncoder": "w"}


def official_shapes(kind: str, input_nc: int = 3) -> dict:
    with torch.device("meta"):  # the full IR-SE50 encoder, shapes only
        return {k: tuple(v.shape) for k, v in StyleEncoder(StyleEncoderConfig(kind=kind, input_nc=input_nc))
                .state_dict().items()}


@pytest.mark.parametrize("kind", ["gradual", "e4e"])
def test_psp_and_e4e_layout(kind):
    """pSp's GradualStyleEncoder and e4e's Encoder4Editing at 1024 px (18 styles of 512)."""
    s = official_shapes(kind)
    assert s["input_layer.0.weight"] == (64, 3, 3, 3) and s["input_layer.2.weight"] == (64,)
    assert len({k.split(".")[1] for k in s if k.startswith("body.")}) == 24
    assert {k.split(".")[1] for k in s if "shortcut_layer.0" in k} == {"3", "7", "21"}  # the width changes
    assert s["body.7.shortcut_layer.0.weight"] == (256, 128, 1, 1)
    assert s["body.0.res_layer.5.fc1.weight"] == (4, 64, 1, 1) and s["body.23.res_layer.5.fc2.weight"] == (512, 32, 1, 1)
    assert s["body.3.res_layer.3.weight"] == (128, 128, 3, 3)
    assert s["latlayer1.weight"] == (512, 256, 1, 1) and s["latlayer2.weight"] == (512, 128, 1, 1)
    convs = {i: len([k for k in s if k.startswith(f"styles.{i}.convs.") and k.endswith(".weight")]) for i in range(18)}
    assert [convs[i] for i in (0, 2, 3, 6, 7, 17)] == [4, 4, 5, 5, 6, 6]  # 16, 32, 64 px maps
    assert s["styles.0.convs.6.weight"] == (512, 512, 3, 3) and s["styles.17.convs.10.bias"] == (512,)
    assert s["styles.5.linear.weight"] == (512, 512) and s["styles.5.linear.bias"] == (512,)
    assert "styles.18.linear.weight" not in s


def test_restyle_resnet34_and_w_encoder_layouts():
    """ReStyle's ResNet-34 encoders (other domains, and HyperStyle's trunk) and pSp's WEncoder."""
    with torch.device("meta"):
        s = {k: tuple(v.shape) for k, v in StyleEncoder(StyleEncoderConfig(
            kind="backbone", input_nc=6, trunk="resnet", units=(3, 4, 6, 3))).state_dict().items()}
        w = {k: tuple(v.shape) for k, v in StyleEncoder(StyleEncoderConfig(kind="w")).state_dict().items()}
    assert s["conv1.weight"] == (64, 6, 7, 7) and s["relu.weight"] == (64,) and "bn1.running_var" in s
    assert len({k.split(".")[1] for k in s if k.startswith("body.")}) == 16
    assert {k.split(".")[1] for k in s if ".downsample.0." in k} == {"3", "7", "13"}
    assert s["body.3.conv1.weight"] == (128, 64, 3, 3) and s["body.15.conv2.weight"] == (512, 512, 3, 3)
    assert s["styles.17.convs.6.weight"] == (512, 512, 3, 3) and "styles.17.convs.8.weight" not in s
    assert not any(k.startswith("input_layer") for k in s)
    assert w["linear.weight"] == (512, 512) and w["input_layer.0.weight"] == (64, 3, 3, 3)
    assert len({k.split(".")[1] for k in w if k.startswith("body.")}) == 24 and not any("styles" in k for k in w)


def test_restyle_backbone_layout():
    s = official_shapes("backbone", input_nc=6)
    assert s["input_layer.0.weight"] == (64, 6, 3, 3)
    assert not any(k.startswith("latlayer") for k in s)
    assert all(len([k for k in s if k.startswith(f"styles.{i}.convs.") and k.endswith(".weight")]) == 4
               for i in range(18))
    assert official_shapes("progressive-backbone", 6).keys() == s.keys()


def checkpoint(path, encoder_type: str, seed: int = 0, opts=None, with_latent_avg=True):
    """A reduced checkpoint in the official layout: state_dict = encoder.* + decoder.* (a rosinality
    generator), opts as the training scripts save them, latent_avg [n_styles, 512-like]."""
    kind = TYPES.get(encoder_type, "gradual")
    torch.manual_seed(seed)
    G = load_generator(ROSINALITY, "rosinality")
    net = StyleEncoder(StyleEncoderConfig(kind=kind, n_styles=G.config.num_ws, w_dim=G.config.w_dim,
                                          input_nc=6 if "Backbone" in encoder_type else 3,
                                          trunk="resnet" if encoder_type.startswith("ResNet") else "ir-se",
                                          **SMALL)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(0.5)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    state = {f"encoder.{k}": v for k, v in net.state_dict().items()}
    state.update({f"decoder.{k}": v for k, v in torch.load(ROSINALITY, weights_only=True)["g_ema"].items()})
    ckpt = {"state_dict": state, "opts": {"encoder_type": encoder_type, "input_nc": 6 if "Backbone" in encoder_type
                                          else 3, "output_size": 32, "start_from_latent_avg": True,
                                          "n_iters_per_batch": 3, **(opts or {})}}
    if with_latent_avg:
        ckpt["latent_avg"] = G.w_avg.repeat(G.config.num_ws, 1)
    torch.save(ckpt, path)
    return net, G


@pytest.mark.parametrize("encoder_type", list(TYPES))
def test_official_checkpoints_load_through_the_registry_and_invert(tmp_path, make_registry, encoder_type):
    (tmp_path / "weights").mkdir()
    net, G_ref = checkpoint(tmp_path / "weights" / "enc.pt", encoder_type)
    reg = make_registry({
        "enc": {"kind": "encoder", "format": "psp", "file": "enc.pt", "config": {"generator": "enc-decoder"}},
        "enc-decoder": {"kind": "generator", "format": "psp-decoder", "file": "enc.pt"},
    })
    encoder, G = reg.get("enc"), reg.get("enc-decoder")
    assert encoder.config.encoder.kind == TYPES[encoder_type] and encoder.config.encoder.units == SMALL["units"]
    torch.testing.assert_close(G.w_avg, G_ref.w_avg)  # the decoder's average latent is the file's
    target = torch.rand(1, 3, 80, 80) * 2 - 1
    x = torch.nn.functional.interpolate(target, size=(256, 256), mode="bilinear", align_corners=False)
    with torch.no_grad():
        if encoder.iterative:
            average = G.synthesis(encoder.latent_avg[None])
            first = net(torch.cat([x, torch.nn.functional.interpolate(average, size=(256, 256), mode="bilinear",
                                                                      align_corners=False)], 1))
            expected_first = first + encoder.latent_avg  # ReStyle's first step starts from the average
        else:
            expected_first = net(x) + encoder.latent_avg  # pSp and e4e add the average latent
    codes, image, images = encode(encoder, G, target)
    assert codes.shape == (1, G.config.num_ws, G.config.w_dim) and image.shape == (1, 3, 32, 32)
    if encoder.iterative:
        assert len(images) == 3 and encoder.config.iterations == 3
        one, _, _ = encode(encoder, G, target, iterations=1)
        torch.testing.assert_close(one, expected_first, rtol=1e-4, atol=1e-4)
        assert not torch.allclose(codes, one)  # later iterations correct the first
    else:
        torch.testing.assert_close(codes, expected_first, rtol=1e-4, atol=1e-4)
    other = torch.rand(1, 3, 80, 80) * 2 - 1
    batch, _, _ = encode(encoder, G, torch.cat([target, other]))  # a batch: each target as if alone
    torch.testing.assert_close(batch, torch.cat([codes, encode(encoder, G, other)[0]]), rtol=1e-4, atol=1e-4)
    result = invert_encoder(G, target, encoder)
    assert result.method.startswith({"GradualStyleEncoder": "pSp", "Encoder4Editing": "e4e", "WEncoder": "W encoder",
                                     "BackboneEncoder": "ReStyle-pSp (3 iterations)",
                                     "ProgressiveBackboneEncoder": "ReStyle-e4e (3 iterations)",
                                     "ResNetBackboneEncoder": "ReStyle-pSp (3 iterations)",
                                     "ResNetProgressiveBackboneEncoder": "ReStyle-e4e (3 iterations)"}[encoder_type])
    if encoder_type == "WEncoder":  # one code for every style
        assert torch.equal(codes - encoder.latent_avg, (codes - encoder.latent_avg)[:, :1].expand_as(codes))
    assert result.latent.space == "w+" and result.losses == ()


def test_e4e_codes_are_one_code_plus_offsets():
    """e4e: code 0 is w0, and every other code adds its own block's output to w0."""
    torch.manual_seed(0)
    net = StyleEncoder(StyleEncoderConfig(kind="e4e", n_styles=8, w_dim=64, **SMALL)).eval()
    x = torch.rand(2, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        w = net(x)
        c3 = net.body(net.input_layer(x))
        w0 = net.styles[0](c3)
        torch.testing.assert_close(w[:, 0], w0)
        torch.testing.assert_close(w[:, 1], w0 + net.styles[1](c3))


def test_a_narrow_last_stage_keeps_an_encoder_for_a_wide_w_small():
    """Widths ending below w_dim: the pyramid and the style blocks stay at the last width, only each
    block's linear layer reaches w_dim, so the codes keep their shape at a fraction of the weights."""
    wide = StyleEncoder(StyleEncoderConfig(kind="e4e", n_styles=8, w_dim=96, units=(1, 1, 1, 1),
                                           widths=(16, 32, 48, 96), input_size=64))
    narrow = StyleEncoder(StyleEncoderConfig(kind="e4e", n_styles=8, w_dim=96, units=(1, 1, 1, 1),
                                             widths=(16, 32, 48, 32), input_size=64))
    s = {k: tuple(v.shape) for k, v in narrow.state_dict().items()}
    assert s["latlayer1.weight"] == (32, 48, 1, 1) and s["styles.7.convs.0.weight"] == (32, 32, 3, 3)
    assert s["styles.7.linear.weight"] == (96, 32)
    size = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert size(narrow) < 0.25 * size(wide)
    with torch.no_grad():
        assert narrow(torch.rand(2, 3, 64, 64) * 2 - 1).shape == (2, 8, 96)


def test_bad_encoder_files_are_refused(tmp_path):
    torch.save({"state_dict": {"decoder.x": torch.zeros(1)}}, tmp_path / "no_encoder.pt")
    with pytest.raises(CheckpointError, match="not a pSp, e4e or ReStyle checkpoint"):
        read_psp(tmp_path / "no_encoder.pt")
    checkpoint(tmp_path / "fpn.pt", "GradualStyleEncoder", opts={"encoder_type": "ResNetGradualStyleEncoder"})
    with pytest.raises(CheckpointError, match="not supported"):
        read_psp(tmp_path / "fpn.pt")
    checkpoint(tmp_path / "mislabelled.pt", "BackboneEncoder", opts={"encoder_type": "ResNetBackboneEncoder"})
    with pytest.raises(CheckpointError, match="does not match its weights' trunk"):
        read_psp(tmp_path / "mislabelled.pt")
    checkpoint(tmp_path / "no_avg.pt", "GradualStyleEncoder", with_latent_avg=False)
    with pytest.raises(CheckpointError, match="no 'latent_avg'"):
        read_psp(tmp_path / "no_avg.pt")


def test_an_encoder_for_another_generator_is_refused():
    torch.manual_seed(0)
    G = load_generator(ROSINALITY, "rosinality")
    wrong = EncoderModel(EncoderModelConfig(StyleEncoderConfig(kind="gradual", n_styles=18, w_dim=64, **SMALL)))
    with pytest.raises(EncoderMismatchError, match="18 x 64 codes"):
        encode(wrong, G, torch.zeros(1, 3, 32, 32))


def test_encoders_are_inversion_methods_of_their_generator(tmp_path, make_registry):
    """A catalogued encoder is one more method of the suite for the generator it names, scored
    like the others."""
    (tmp_path / "weights").mkdir()
    checkpoint(tmp_path / "weights" / "enc.pt", "Encoder4Editing")
    reg = make_registry({
        "e4e-small": {"kind": "encoder", "format": "psp", "file": "enc.pt", "config": {"generator": "small"}},
        "small": {"kind": "generator", "format": "psp-decoder", "file": "enc.pt"},
    })
    assert pipeline.method_keys(reg, "small")[-1] == "encoder:e4e-small"
    assert pipeline.method_name("encoder:e4e-small") == "encoder e4e-small"
    class L1(torch.nn.Module):
        def forward(self, x, y):
            return (x - y).abs().mean((1, 2, 3))
    ctx = Context(perceptual=PerceptualModel(L1(), "L1"), device=torch.device("cpu"))
    target = Target.from_image(torch.rand(1, 3, 32, 32) * 2 - 1)
    (outcome,) = pipeline.invert(reg, "small", target, ["encoder:e4e-small"], Knobs(steps=1), ctx=ctx)
    assert outcome.result.method == "e4e" and outcome.result.key == "encoder:e4e-small"
    assert outcome.scores.lpips > 0 and outcome.result.image.shape == (1, 3, 32, 32)


@pytest.mark.parametrize("kind", ["e4e", "backbone"])
def test_encoder_training_learns_and_its_file_loads_as_an_encoder(tmp_path, kind):
    """A few steps on a tiny paired generator lower the W+ error; the saved file is a catalogue
    encoder (kind 'encoder', safetensors) that inverts the generator's own images."""
    from semedit.checkpoints import load_module, save_safetensors
    from semedit.networks.stylegan2 import StyleGAN2Config
    from semedit.training import loop
    from semedit.training.encoder import EncoderTrainer, EncoderTraining
    from tests.conftest import tiny_generator
    G = tiny_generator(config=StyleGAN2Config(resolution=16, z_dim=64, w_dim=32, mapping_layers=2,
                                              channels=(32, 32, 16)))
    cfg = EncoderTraining(kind=kind, steps=32, batch=8, image_batch=2, widths=(16, 16), lr=3e-3)
    trainer = EncoderTrainer(G, cfg)
    curve = [trainer.train_step()["latent"] for _ in range(30)]
    assert sum(curve[-5:]) < 0.8 * sum(curve[:5])
    loop.save_state(tmp_path, {"trainer": trainer.state_dict()})  # resumable like every trainer
    again = EncoderTrainer(G, cfg)
    again.load_state_dict(loop.load_state(tmp_path)["trainer"])
    assert again.train_step() == trainer.train_step()
    net = trainer.net.eval()
    save_safetensors(tmp_path / "enc.safetensors", net.config, net.state_dict())
    loaded = load_module(tmp_path / "enc.safetensors", "style-encoder")
    assert loaded.config == net.config and loaded.iterative == (kind == "backbone")
    with torch.no_grad():
        image = G(torch.randn(1, 64), fused=False)
    codes, _, images = encode(loaded, G, image)
    assert codes.shape == (1, G.config.num_ws, 32) and len(images) == (2 if kind == "backbone" else 1)


def test_hyperstyle_layout_of_the_official_ffhq_model():
    """The 1024 px FFHQ hypernetwork: ResNet-34 trunk on 6 channels, shared blocks for the
    512 x 512 layers with the shared tensors repeated under each, per-pair blocks for the rest."""
    from semedit.networks.hyperstyle import HyperNetwork, HyperStyleConfig
    layers = [(3, 512, 512), (1, 512, 3)]
    ch = [512, 512, 512, 512, 512, 256, 128, 64, 32]
    for i in range(1, 9):
        layers += [(3, ch[i - 1], ch[i]), (3, ch[i], ch[i]), (1, ch[i], 3)]
    tuned = (0, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 23, 24)
    with torch.device("meta"):
        s = {k: tuple(v.shape) for k, v in HyperNetwork(HyperStyleConfig(
            tuple(layers), tuned, shared_layers=(0, 2, 3, 5, 6, 8, 9, 11, 12))).state_dict().items()}
    assert s["conv1.weight"] == (64, 6, 7, 7) and s["relu.weight"] == (64,) and s["body.13.downsample.0.weight"] == (512, 256, 1, 1)
    assert s["shared_weight_hypernet.w1"] == (512, 4608) and s["shared_weight_hypernet.w2"] == (512, 262144)
    assert s["shared_weight_hypernet.b2"] == (262144,)
    assert not any(".hypernet." in k for k in s)  # kept once (the official file repeats them under each block)
    assert [s[f"refinement_blocks.0.convs.{i}.weight"] for i in (0, 2, 8)] == [(128, 512, 3, 3), (128, 128, 3, 3),
                                                                           (512, 128, 3, 3)]
    assert s["refinement_blocks.0.linear.weight"] == (512, 512) and "refinement_blocks.0.convs.10.weight" not in s
    assert s["refinement_blocks.14.convs.4.weight"] == (512, 256, 3, 3) and "refinement_blocks.14.convs.6.weight" not in s
    assert s["refinement_blocks.14.output.1.weight"] == (131072, 512, 1, 1) and s["refinement_blocks.24.output.1.bias"] == (1024,)
    assert not any(k.startswith(f"refinement_blocks.{j}.") for j in (1, 4, 13, 16, 25) for k in s)  # toRGB untouched


def hyperstyle_checkpoint(path, seed=0, opts=None):
    """A reduced HyperStyle checkpoint in the official layout for the 32 px fixture generator:
    hypernet.* (coarse layers shared, fine ones per pair) + decoder.*, opts, latent_avg."""
    from semedit.networks.hyperstyle import HyperNetwork, HyperStyleConfig
    G = load_generator(ROSINALITY, "rosinality")
    cfg = HyperStyleConfig(G.synthesis.kernel_shapes, (0, 2, 3, 5, 6, 8, 9), shared_layers=(0, 2, 3, 5, 6),
                           units=(1, 1, 1, 1), widths=(8, 16, 16, 32), input_size=64, code=16, shared_inner=8, inner=8,
                           num_ws=G.config.num_ws, w_dim=G.config.w_dim, iterations=3)
    torch.manual_seed(seed)
    net = HyperNetwork(cfg).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        for j in (8, 9):  # moderate offsets
            net.refinement_blocks[j].output[1].weight.mul_(0.05)
    state = {f"hypernet.{k}": v for k, v in net.state_dict().items()}
    for j in cfg.shared_layers:  # as the official file has them: the shared tensors under every shared block
        state.update({f"hypernet.refinement_blocks.{j}.hypernet.{p}": v
                      for p, v in net.shared_weight_hypernet.state_dict().items()})
    state.update({f"decoder.{k}": v for k, v in torch.load(ROSINALITY, weights_only=True)["g_ema"].items()})
    torch.save({"state_dict": state, "latent_avg": G.w_avg.repeat(G.config.num_ws, 1),
                "opts": {"encoder_type": "SharedWeightsHyperNetResNet", "output_size": 32, "n_iters_per_batch": 3,
                         "layers_to_tune": "0,2,3,5,6,8,9", **(opts or {})}}, path)
    return cfg, net


def test_hyperstyle_checkpoint_loads_through_the_registry_and_tunes_the_generator(tmp_path, make_registry):
    from semedit.encoders import hyperstyle
    from semedit.inversion.common import with_weight_delta
    from semedit.latents import Latent, synthesize
    from semedit.networks.hyperstyle import HyperStyleModel
    (tmp_path / "weights").mkdir()
    cfg, net = hyperstyle_checkpoint(tmp_path / "weights" / "hyperstyle.pt")
    w_net, _ = checkpoint(tmp_path / "weights" / "w_encoder.pt", "WEncoder", seed=1)
    reg = make_registry({
        "hs": {"kind": "encoder", "format": "hyperstyle", "file": "hyperstyle.pt",
               "config": {"generator": "g", "w_encoder": "w-enc"}},
        "w-enc": {"kind": "encoder", "format": "psp", "file": "w_encoder.pt", "config": {"generator": "g"}},
        "g": {"kind": "generator", "format": "hyperstyle-decoder", "file": "hyperstyle.pt"},
    })
    model, G, initial = reg.get("hs"), reg.get("g"), reg.get("w-enc")
    assert isinstance(model, HyperStyleModel) and model.config == cfg  # every setting read off the keys
    for k, v in net.state_dict().items():
        assert torch.equal(model.hypernet.state_dict()[k], v), k
    assert "encoder:hs" in pipeline.method_keys(reg, "g")
    assert pipeline.method_family(reg, "encoder:hs") == "generator modification"
    assert pipeline.method_family(reg, "encoder:w-enc") == "encoder"
    target = torch.rand(1, 3, 48, 48) * 2 - 1
    codes, deltas, image, images = hyperstyle(model, initial, G, target)
    assert len(images) == 3 and [d is None for d in deltas] == [j not in cfg.layers_to_tune for j in range(11)]
    with torch.no_grad():  # the first iteration, by hand: W codes, then the target beside their image at 64 px
        x = torch.nn.functional.interpolate(target, size=(256, 256), mode="bilinear", align_corners=False)
        expected_codes = w_net(x) + model.latent_avg
        y0 = synthesize(G, Latent("w+", expected_codes))
        first = net(torch.cat([torch.nn.functional.interpolate(t, size=(64, 64), mode="bilinear", align_corners=False)
                               for t in (target, y0)], 1))
        _, one, _, _ = hyperstyle(model, initial, G, target, iterations=1)
    torch.testing.assert_close(codes, expected_codes, rtol=1e-4, atol=1e-5)
    for a, b in zip(one, first):
        assert (a is None and b is None) or torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(deltas[8], one[8])  # later iterations add to the offsets
    (outcome,) = pipeline.invert(reg, "g", Target.from_image(target), ["encoder:hs"], Knobs(steps=1),
                                 ctx=Context(perceptual=PerceptualModel(torch.nn.L1Loss(), "L1"),
                                             device=torch.device("cpu")))
    r = outcome.result
    assert r.method == "HyperStyle (3 iterations)" and set(r.weight_delta) == {
        f"synthesis.{G.synthesis.weight_keys()[j]}" for j in cfg.layers_to_tune}
    with torch.no_grad():  # the offsets as a tuned copy of G give the same image (edits then work as for PTI)
        tuned = synthesize(with_weight_delta(G, r.weight_delta), r.latent)
    torch.testing.assert_close(tuned.clamp(-1, 1), r.image, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(r.image, image.clamp(-1, 1), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(r.image, synthesize(G, r.latent).clamp(-1, 1), atol=1e-3)  # the weights moved
    (short,) = pipeline.invert(reg, "g", Target.from_image(target), ["encoder:hs"], Knobs(encoder_iterations=1),
                               ctx=Context(perceptual=PerceptualModel(torch.nn.L1Loss(), "L1"),
                                           device=torch.device("cpu")))
    assert short.result.method == "HyperStyle (1 iterations)"  # the knob reaches the model
    *_, one_image, _ = hyperstyle(model, initial, G, target, iterations=1)
    torch.testing.assert_close(short.result.image, one_image.clamp(-1, 1), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(short.result.image, r.image, atol=1e-4)


def test_bad_hyperstyle_files_are_refused(tmp_path):
    from semedit.checkpoints import read_hyperstyle
    from semedit.encoders import hyperstyle
    from semedit.networks.hyperstyle import HyperStyleModel
    hyperstyle_checkpoint(tmp_path / "separable.pt", opts={"encoder_type": "SharedWeightsHyperNetResNetSeparable"})
    with pytest.raises(CheckpointError, match="not supported"):
        read_hyperstyle(tmp_path / "separable.pt")
    torch.save({"state_dict": {"encoder.x": torch.zeros(1)}}, tmp_path / "psp.pt")
    with pytest.raises(CheckpointError, match="not a HyperStyle checkpoint"):
        read_hyperstyle(tmp_path / "psp.pt")
    cfg, _ = hyperstyle_checkpoint(tmp_path / "ok.pt")
    model = HyperStyleModel(cfg).eval()
    other = load_generator(ROSINALITY, "rosinality")
    with torch.no_grad():  # same W+ shape, other layers: refused
        other.synthesis.layers[6].weight.data = torch.zeros(32, 64, 3, 3)
    w_enc = EncoderModel(EncoderModelConfig(StyleEncoderConfig(kind="w", n_styles=8, w_dim=64, **SMALL)))
    with pytest.raises(EncoderMismatchError, match="another generator's layers"):
        hyperstyle(model, w_enc, other, torch.zeros(1, 3, 32, 32))


def test_hyperstyle_training_learns_offsets_and_its_file_loads_as_an_encoder(tmp_path):
    """On a tiny paired generator over a one-pass encoder: a few steps make the refined images
    closer to the inputs than the encoder's alone; the state resumes exactly; the float16 file
    is a catalogue encoder that runs HyperStyle's loop."""
    from semedit.checkpoints import load_module, save_safetensors
    from semedit.encoders import hyperstyle
    from semedit.networks.hyperstyle import HyperStyleModel
    from semedit.networks.stylegan2 import StyleGAN2Config
    from semedit.training import loop
    from semedit.training.encoder import EncoderTraining, encoder_for
    from semedit.training.hyperstyle import HyperStyleTrainer, HyperStyleTraining
    from tests.conftest import tiny_generator
    G = tiny_generator(config=StyleGAN2Config(resolution=16, z_dim=64, w_dim=32, mapping_layers=2,
                                              channels=(32, 32, 16)))
    initial = encoder_for(G, EncoderTraining(kind="e4e", widths=(16, 16))).eval()
    mse = PerceptualModel(torch.nn.MSELoss(reduction="none"), "MSE")
    cfg = HyperStyleTraining(steps=40, batch=4, iterations=2, widths=(8, 8, 16, 16), code=16, inner=8, lr=3e-3,
                             lpips_weight=0.0, skip=())
    trainer = HyperStyleTrainer(G, initial, cfg, mse)
    assert trainer.net.config.shared_layers == (0, 2, 3) and trainer.net.config.layers_to_tune == (0, 2, 3, 5, 6)
    seen = [trainer.train_step() for _ in range(30)]
    assert all(math.isfinite(m["loss"]) for m in seen)
    assert sum(m["l2_2"] for m in seen[-5:]) < 0.9 * sum(m["l2_start"] for m in seen[-5:])  # better than the codes alone
    loop.save_state(tmp_path, {"trainer": trainer.state_dict()})
    again = HyperStyleTrainer(G, initial, cfg, mse)
    again.load_state_dict(loop.load_state(tmp_path)["trainer"])
    assert again.train_step() == trainer.train_step()
    net = trainer.net.eval()
    save_safetensors(tmp_path / "hs.safetensors", net.config, net.state_dict(), storage=torch.float16)
    loaded = load_module(tmp_path / "hs.safetensors", ("style-encoder", "hyperstyle"))
    assert isinstance(loaded, HyperStyleModel) and loaded.config == net.config
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    _, deltas, image, images = hyperstyle(loaded, initial, G, torch.rand(1, 3, 16, 16) * 2 - 1, iterations=4)
    assert len(images) == 4 and image.shape == (1, 3, 16, 16) and deltas[0].shape == (1, 32, 32, 3, 3)


@pytest.mark.parametrize("name", ["embedded-e4e-64", "embedded-portraits-64-gan-map8-e4e",
                                  "embedded-portraits-64-gan-linear-e4e"])
def test_shipped_e4e_encoders_reconstruct_their_generators_samples(name, tmp_path):
    """A regression guard on the shipped e4e encoders: on held-out samples of the generator each
    was trained for, the reconstruction is far closer than the generator's average image."""
    from semedit.editing.fit import sample_w
    from semedit.latents import Latent, synthesize
    from semedit.registry import Registry, load_catalogue
    from semedit.settings import WEIGHTS_DIR, Settings
    reg = Registry(load_catalogue(WEIGHTS_DIR / "catalogue.json"),
                   Settings(device="cpu", cache_dir=tmp_path, hub_offline=True, hub_cache_dir=tmp_path / "hub"))
    G = reg.get(reg.catalogue.get(name).config["generator"])
    with torch.no_grad():
        samples = synthesize(G, Latent("w", sample_w(G, 16, seed=999))).clamp(-1, 1)
        average = synthesize(G, Latent("w", G.w_avg[None])).clamp(-1, 1)
        _, reconstruction, _ = encode(reg.get(name), G, samples)
    error = (reconstruction.clamp(-1, 1) - samples).abs().mean()
    assert error < 0.5 * (average - samples).abs().mean(), float(error)


def test_encoder_training_on_real_stand_ins_scores_them_by_image_alone(tmp_path):
    """For a generator not paired with the renderer, renders join each step as e4e's real photos:
    scored by image losses alone (L1, a perceptual and an identity distance), their error falls; a
    run continues from a trained encoder of the same configuration and refuses another one, and a
    loss that needs a model it was not given is refused."""
    from semedit.networks.stylegan2 import StyleGAN2Config
    from semedit.training.encoder import EncoderTrainer, EncoderTraining
    from tests.conftest import tiny_generator

    class L1(torch.nn.Module):
        def forward(self, x, y):
            return (x - y).abs().mean((1, 2, 3))

    G = tiny_generator(config=StyleGAN2Config(resolution=16, z_dim=32, w_dim=32, mapping_layers=2,
                                              channels=(32, 32, 16)))
    cfg = EncoderTraining(kind="e4e", steps=40, batch=4, image_batch=2, widths=(16, 16), lr=3e-3, real_batch=6,
                          real_perceptual=True, real_identity_weight=0.5)
    trainer = EncoderTrainer(G, cfg, perceptual=L1(), identity=L1())
    assert trainer.images_per_step == 10
    curve = [trainer.train_step()["real"] for _ in range(30)]
    assert all(math.isfinite(c) for c in curve) and sum(curve[-5:]) < 0.9 * sum(curve[:5]), curve
    again = EncoderTrainer(G, cfg, init=trainer.net, perceptual=L1(), identity=L1())
    assert all(torch.equal(a, b) for a, b in zip(again.net.state_dict().values(), trainer.net.state_dict().values()))
    with pytest.raises(ValueError, match="another configuration"):
        EncoderTrainer(G, replace(cfg, widths=(16, 32)), init=trainer.net, perceptual=L1(), identity=L1())
    with pytest.raises(ValueError, match="perceptual"):
        EncoderTrainer(G, cfg, identity=L1())
    with pytest.raises(ValueError, match="identity"):
        EncoderTrainer(G, cfg, perceptual=L1())
