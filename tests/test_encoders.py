"""pSp, e4e and ReStyle encoders: the official state-dict layouts (read off the public
repositories), loading reduced checkpoints in those layouts through the registry without
running pickled code, and encoder inversion on a small generator."""
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
         "ProgressiveBackboneEncoder": "progressive-backbone"}


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
                                          input_nc=6 if "Backbone" in encoder_type else 3, **SMALL)).eval()
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
    result = invert_encoder(G, target, encoder)
    assert result.method.startswith({"GradualStyleEncoder": "pSp", "Encoder4Editing": "e4e",
                                     "BackboneEncoder": "ReStyle-pSp (3 iterations)",
                                     "ProgressiveBackboneEncoder": "ReStyle-e4e (3 iterations)"}[encoder_type])
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


def test_bad_encoder_files_are_refused(tmp_path):
    torch.save({"state_dict": {"decoder.x": torch.zeros(1)}}, tmp_path / "no_encoder.pt")
    with pytest.raises(CheckpointError, match="not a pSp, e4e or ReStyle checkpoint"):
        read_psp(tmp_path / "no_encoder.pt")
    checkpoint(tmp_path / "resnet.pt", "ResNetBackboneEncoder")
    with pytest.raises(CheckpointError, match="not supported"):
        read_psp(tmp_path / "resnet.pt")
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
