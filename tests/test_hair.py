"""Hairstyle transfer: the FG'21 network and its checkpoint layout, the optimisation method,
blending and interpolation, training and the retrieval protocol on tiny models."""
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from semedit.networks.encoders import EncoderConfig, HairTransferConfig, HairTransferNet, WPlusEncoder
from semedit.networks.stylegan2 import StyleGAN2Config
from tests.conftest import FIXTURES, TINY, tiny_generator

ROSINALITY = FIXTURES / "reference" / "rosinality_32.pt"
SMALL = dict(units=(1, 1, 2, 1), widths=(16, 32, 48, 64), input_size=64, pool=2, hidden=40)


def fg21_checkpoint(path, net: HairTransferNet, with_decoder=True):
    """A reduced checkpoint in the FG'21 layout: state_dict with encoder.* (our keys prefixed) and
    decoder.* (a rosinality g_ema), and pSp-style opts."""
    state = {f"encoder.{k}": v for k, v in net.state_dict().items()}
    if with_decoder:
        g = torch.load(ROSINALITY, weights_only=True)["g_ema"]
        state.update({f"decoder.{k}": v for k, v in g.items()})
    torch.save({"state_dict": state, "opts": {"input_nc": 3, "encoder_type": "MyHairEncoderGradualStyleWPlus"}},
               path)
    return path


def test_fg21_layout_keys():
    net = HairTransferNet(HairTransferConfig(EncoderConfig(num_ws=18, w_dim=512)))
    keys = set(net.state_dict())
    assert {"encoder_face.input_layer.0.weight", "encoder_face.input_layer.2.weight",
            "encoder_face.body.0.res_layer.5.fc1.weight", "encoder_face.body.3.shortcut_layer.0.weight",
            "encoder_face.output_layer_2.0.running_var", "encoder_face.output_layer_2.3.weight",
            "encoder_face.linear.weight", "encoder_face.linear.bias", "encoder_hair.body.23.res_layer.4.bias",
            "map.0.weight", "map.0.bias"} <= keys
    assert len([k for k in keys if k.startswith("encoder_face.body.") and k.endswith("res_layer.1.weight")]) == 24
    assert net.state_dict()["map.0.weight"].shape == (18 * 512, 2 * 18 * 512)
    assert net.state_dict()["encoder_face.output_layer_2.3.weight"].shape == (512, 512 * 7 * 7)


def test_fg21_checkpoint_loads_through_the_registry(tmp_path, make_registry):
    from semedit.checkpoints import load_generator
    torch.manual_seed(0)
    G_ref = load_generator(ROSINALITY, "rosinality")
    official = {**SMALL, "input_size": 256}  # as the official model reads its inputs
    net = HairTransferNet(HairTransferConfig(EncoderConfig(num_ws=G_ref.num_ws, w_dim=G_ref.config.w_dim,
                                                           **official))).eval()
    with torch.no_grad():  # move BN statistics off their init so every buffer matters
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    (tmp_path / "weights").mkdir()
    fg21_checkpoint(tmp_path / "weights" / "hair.pt", net)
    reg = make_registry({
        "hair": {"kind": "hair", "format": "fg21", "file": "hair.pt", "config": {"generator": "hair-decoder"}},
        "hair-decoder": {"kind": "generator", "format": "fg21-decoder", "file": "hair.pt"},
    })
    loaded, G = reg.get("hair"), reg.get("hair-decoder")
    assert loaded.config.encoder.units == SMALL["units"] and loaded.config.encoder.num_ws == G_ref.num_ws
    face, hair = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(loaded(face, hair), net(face, hair), atol=1e-5)
        ws = loaded(face, hair)
        assert torch.allclose(G.synthesis(ws), G_ref.synthesis(ws), atol=1e-5)  # the decoder is rosinality's
    assert G.w_avg.abs().sum() > 0  # estimated: the file has no latent_avg


def test_fg21_refuses_other_files(tmp_path):
    from semedit.checkpoints import read_fg21_decoder, read_fg21_hair
    from semedit.errors import CheckpointError, UnsafeCheckpointError
    torch.save({"state_dict": {"something.else": torch.zeros(1)}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an FG'21"):
        read_fg21_hair(tmp_path / "other.pt")
    net = HairTransferNet(HairTransferConfig(EncoderConfig(num_ws=4, w_dim=8, **SMALL)))
    fg21_checkpoint(tmp_path / "no_decoder.pt", net, with_decoder=False)
    with pytest.raises(CheckpointError, match="no generator"):
        read_fg21_decoder(tmp_path / "no_decoder.pt")

    class Payload:
        def __reduce__(self):
            return (print, ("ran",))
    torch.save({"state_dict": {"encoder.encoder_face.x": Payload()}}, tmp_path / "evil.pt")
    with pytest.raises(UnsafeCheckpointError):
        read_fg21_hair(tmp_path / "evil.pt")


def test_wplus_encoder_shapes_and_resizing():
    enc = WPlusEncoder(EncoderConfig(num_ws=6, w_dim=16, **SMALL)).eval()
    assert enc(torch.rand(3, 3, 64, 64)).shape == (3, 6, 16)
    assert enc(torch.rand(1, 3, 100, 100)).shape == (1, 6, 16)  # resized to its input size first


# ---- the methods on tiny models -----------------------------------------------------------------

def tiny_pair(seed=0, size=16):
    from semedit import segmentation as L
    g = torch.Generator().manual_seed(seed)
    face, hair = (torch.rand(1, 3, size, size, generator=g) * 2 - 1 for _ in range(2))
    face_labels = torch.full((size, size), L.SKIN)
    face_labels[:4] = L.HAIR                      # short hair on top
    hair_labels = torch.full((size, size), L.SKIN)
    hair_labels[:7] = L.HAIR                      # longer hair
    return face, hair, face_labels, hair_labels


class L1Net(torch.nn.Module):
    def forward(self, x, y):
        return (x - y).abs().mean((1, 2, 3))


def l1_perceptual():
    from semedit.losses import PerceptualModel
    return PerceptualModel(L1Net(), "L1")


def test_model_transfer_gives_the_code_and_the_faces_own():
    from semedit.hair import transfer_with_model
    G = tiny_generator()
    net = HairTransferNet(HairTransferConfig(EncoderConfig(num_ws=G.num_ws, w_dim=TINY.w_dim, units=(1, 1),
                                                           widths=(16, 32), input_size=16, pool=2, hidden=16))).eval()
    face, hair, _, _ = tiny_pair()
    r = transfer_with_model(G, net, face, hair, device=torch.device("cpu"))
    assert r.image.shape == (1, 3, 16, 16) and r.latent.value.shape == (1, G.num_ws, TINY.w_dim)
    with torch.no_grad():
        assert torch.allclose(r.latent.value, net(face, hair), atol=1e-6)
        assert torch.allclose(r.start.value, net(face, face), atol=1e-6)


def test_optimisation_transfer_follows_both_images_in_their_regions():
    from semedit.hair import HairOptimisation, transfer_by_optimisation
    G = tiny_generator()
    face, hair, face_labels, hair_labels = tiny_pair()
    turned = []

    def turn(latent):
        turned.append(latent)
        return latent
    r = transfer_by_optimisation(G, face, hair, face_labels=face_labels, hair_labels=hair_labels,
                                 perceptual=l1_perceptual(), device=torch.device("cpu"), turn=turn,
                                 cfg=HairOptimisation(invert_steps=20, steps=40, identity_weight=0.0))
    assert len(turned) == 1 and r.losses[-1] < r.losses[0]
    assert torch.equal(r.hair_region, (hair_labels == 2).float())  # no re-segmenting without a segmenter
    assert r.face_region[10:].min() == 1 and r.face_region[:7].max() == 0  # old and new hair excluded
    # against the face image where the face is kept, against the hair image in its hair region
    in_hair = (r.image - hair).abs()[..., :7, :].mean() < (r.image - face).abs()[..., :7, :].mean()
    in_face = (r.image - face).abs()[..., 10:, :].mean() < (r.image - hair).abs()[..., 10:, :].mean()
    assert in_hair and in_face


def test_alpha_blend_keeps_the_face_pixels_and_interpolation_ends_at_both_codes():
    from semedit.hair import HairResult, alpha_blend, interpolate
    from semedit.hair.transfer import blend_mask
    from semedit.latents import Latent, synthesize
    G = tiny_generator()
    face, hair, face_labels, hair_labels = tiny_pair()
    start = Latent("w+", G.broadcast(G.mapping(torch.randn(1, TINY.z_dim))))
    end = Latent("w+", G.broadcast(G.mapping(torch.randn(1, TINY.z_dim))))
    with torch.no_grad():
        image = synthesize(G, end).clamp(-1, 1)
    r = HairResult("test", image, end, start, hair, None, None, 0.0)
    blended = alpha_blend(r, face, face_labels, hair_labels)
    m = blend_mask(face_labels, (hair_labels == 2).float(), 16)
    assert torch.equal(blended.image[..., m == 0], face[..., m == 0])       # face pixels kept exactly
    assert torch.allclose(blended.image[..., m == 1], image[..., m == 1])   # the new hair is the result's
    assert (m[:7] == 1).all() and blended.latent is None
    # without the result's labels (no segmenter) the transfer's hair region marks its new hair
    region = torch.zeros(16, 16)
    region[12:, :4] = 1                                                     # hair outside the old hair
    unlabelled = alpha_blend(replace(r, hair_region=region), face, face_labels)
    assert torch.allclose(unlabelled.image[..., 12:, :4], image[..., 12:, :4])
    assert torch.equal(unlabelled.image[..., 12:, 8:], face[..., 12:, 8:])
    with torch.no_grad():
        assert torch.allclose(interpolate(G, r, 0.0), synthesize(G, start).clamp(-1, 1), atol=1e-6)
        assert torch.allclose(interpolate(G, r, 1.0), image, atol=1e-6)
    with pytest.raises(ValueError):
        interpolate(G, blended, 0.5)


# ---- training, ground truth and the retrieval protocol ---------------------------------------------

def test_latent_with_gives_the_true_transfer_latent():
    from semedit.synth.params import latent_with, params_from_latent
    g = torch.Generator().manual_seed(3)
    z, h = torch.randn(6, 64, generator=g), torch.randn(6, 64, generator=g)
    yaw = torch.linspace(-0.5, 0.5, 6)
    want = params_from_latent(z).with_hair_of(params_from_latent(h)).with_yaw(yaw)
    got = params_from_latent(latent_with(z, hair_of=h, yaw=yaw))
    assert torch.allclose(got.values, want.values, atol=1e-5) and torch.equal(got.hair_style, want.hair_style)
    assert torch.equal(params_from_latent(latent_with(z)).values, params_from_latent(z).values)
    with pytest.raises(ValueError):
        latent_with(z, yaw=1.0)


def test_hair_training_steps_and_exact_resume(tmp_path):
    from semedit.networks.stylegan2 import StyleGAN2Config
    from semedit.training import loop
    from semedit.training.hair import HairTrainer, HairTraining
    paired = tiny_generator(config=StyleGAN2Config(resolution=16, z_dim=64, w_dim=32, mapping_layers=2,
                                                   channels=(32, 32, 16)))
    cfg = HairTraining(steps=6, batch=4, image_batch=2, widths=(16, 32), hidden=16)
    a = HairTrainer(paired, cfg)
    first = [a.train_step() for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(list(m.values()))).all() for m in first)
    loop.save_state(tmp_path, {"trainer": a.state_dict()})
    b = HairTrainer(paired, cfg)
    b.load_state_dict(loop.load_state(tmp_path)["trainer"])
    assert a.train_step() == b.train_step()  # the same batch and the same weights: the same step
    with pytest.raises(ValueError, match="paired"):
        HairTrainer(tiny_generator(), cfg)  # z is not the renderer's latent


def tiny_unpaired_setup():
    """A generator whose z is not the renderer's, a tiny e4e-like encoder for it and a W yaw direction."""
    from semedit.editing.directions import Direction
    from semedit.networks.psp import EncoderModel, EncoderModelConfig, StyleEncoderConfig
    from semedit.networks.stylegan2 import StyleGAN2Config
    G = tiny_generator(config=StyleGAN2Config(resolution=16, z_dim=16, w_dim=32, mapping_layers=2, channels=(32, 32, 16)))
    torch.manual_seed(1)
    encoder = EncoderModel(EncoderModelConfig(StyleEncoderConfig(kind="e4e", n_styles=G.num_ws, w_dim=32,
                                                                 units=(1, 1, 1, 1), widths=(16, 16, 32, 32), input_size=64),
                                              name="e4e")).eval()
    yaw = Direction("yaw", "w", torch.nn.functional.normalize(torch.randn(32), dim=0), unit=0.5, attribute="yaw")
    return G, encoder, yaw


def test_hair_pairs_by_the_papers_recipe_and_from_renders():
    from semedit.training.hair import recipe_pairs, rendered_pairs
    from semedit.encoders import encode
    G, encoder, yaw = tiny_unpaired_setup()
    a = recipe_pairs(G, yaw, 5, torch.Generator().manual_seed(0), max_units=2.0, images=3)
    assert a["face"].shape == a["hair"].shape == (5, 3, 16, 16) and a["target"].shape == (3, 3, 16, 16)
    with torch.no_grad():  # the true code is the face's own: G of it is the face image
        assert torch.allclose(G.synthesis(a["target_ws"], fused=False).clamp(-1, 1), a["face"], atol=1e-5)
    moved = (a["face"] - a["hair"]).abs().flatten(1).mean(1)
    assert (moved > 1e-4).all()  # the hair image is the same code turned: another image
    b = rendered_pairs(G, encoder, 4, torch.Generator().manual_seed(0), same_person_share=0.0, images=2)
    assert torch.allclose(b["target_ws"], encode(encoder, G, b["truth"])[0])  # the encoder's reading of the truth
    assert torch.equal(b["target"], b["truth"][:2])
    assert not torch.equal(b["face"], b["truth"])  # the truth has the other person's hair


def test_hair_training_for_an_unpaired_generator_steps_and_resumes(tmp_path):
    from semedit.training import loop
    from semedit.training.hair import HairTrainer, HairTraining, yaw_direction
    G, encoder, yaw = tiny_unpaired_setup()
    cfg = HairTraining(steps=6, batch=5, image_batch=3, widths=(16, 32), hidden=16, recipe_share=0.4)
    a = HairTrainer(G, cfg, paired=False, encoder=encoder, yaw=yaw)
    face, hair, target_ws, rows, target = a.batch(torch.Generator().manual_seed(0))
    assert face.shape[0] == target_ws.shape[0] == 5 and rows.tolist() == [0, 2, 3] and target.shape[0] == 3
    first = [a.train_step() for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(list(m.values()))).all() for m in first)
    loop.save_state(tmp_path, {"trainer": a.state_dict()})
    b = HairTrainer(G, cfg, paired=False, encoder=encoder, yaw=yaw)
    b.load_state_dict(loop.load_state(tmp_path)["trainer"])
    assert a.train_step() == b.train_step()
    with pytest.raises(ValueError, match="encoder"):
        HairTrainer(G, cfg, paired=False, yaw=yaw)
    with pytest.raises(ValueError, match="yaw direction"):
        yaw_direction([])


def test_a_hair_mixer_starts_at_the_face_code_trains_only_itself_and_resumes(tmp_path):
    """The mixer variant: an MLP on the generator's encoder's codes. Untrained it gives the face's
    own code (so it starts from the encoder's identity, not from noise); training moves the mixer
    alone, the shared encoder stays frozen and in eval mode; the state resumes exactly."""
    from dataclasses import replace
    from semedit.training import loop
    from semedit.training.hair import HairTrainer, HairTraining
    G, encoder, yaw = tiny_unpaired_setup()
    cfg = HairTraining(steps=6, batch=5, image_batch=3, recipe_share=0.4, kind="mixer", mixer_hidden=16)
    a = HairTrainer(G, cfg, paired=False, encoder=encoder, yaw=yaw)
    face, hair, *_ = a.batch(torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(a.net(face, hair), encoder(torch.nn.functional.interpolate(face, size=64, mode="bilinear")),
                              atol=1e-6)
    frozen = {k: v.clone() for k, v in encoder.state_dict().items()}
    first = [a.train_step() for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(list(m.values()))).all() for m in first)
    assert all(torch.equal(v, encoder.state_dict()[k]) for k, v in frozen.items()) and not encoder.training
    with torch.no_grad():
        assert not torch.allclose(a.net(face, hair), a.net(face, face))  # the hair image now counts
    loop.save_state(tmp_path, {"trainer": a.state_dict()})
    b = HairTrainer(G, cfg, paired=False, encoder=encoder, yaw=yaw)
    b.load_state_dict(loop.load_state(tmp_path)["trainer"])
    assert a.train_step() == b.train_step()
    paired = tiny_generator(config=StyleGAN2Config(resolution=16, z_dim=64, w_dim=32, mapping_layers=2,
                                                   channels=(32, 32, 16)))
    with pytest.raises(ValueError, match="hair mixer"):
        HairTrainer(paired, cfg)  # a mixer needs an encoder, paired generator or not
    with pytest.raises(ValueError, match="unknown kind"):
        HairTrainer(G, replace(cfg, kind="paste"), paired=False, encoder=encoder, yaw=yaw)
    c = HairTrainer(G, cfg, paired=False, encoder=encoder, yaw=yaw, init=a.net.mixer)  # continue from a mixer
    assert all(torch.equal(x, y) for x, y in zip(c.net.mixer.state_dict().values(), a.net.mixer.state_dict().values()))
    with pytest.raises(ValueError, match="another configuration"):
        HairTrainer(G, replace(cfg, mixer_hidden=8), paired=False, encoder=encoder, yaw=yaw, init=a.net.mixer)


def test_pairs_of_two_samples_teach_the_transfer_to_keep_the_face():
    """With a segmenter, each step also transfers between two different samples and pays the L1
    error to the face image over its face region where the result has no hair: finite, counted
    in the loss, and zero where nothing is kept (a segmenter that sees only background)."""
    from semedit.networks.segmenter import SegmenterConfig, UNetSegmenter
    from semedit.training.hair import HairTrainer, HairTraining
    G, encoder, yaw = tiny_unpaired_setup()
    torch.manual_seed(2)
    segmenter = UNetSegmenter(SegmenterConfig(widths=(8, 8))).eval()
    cfg = HairTraining(steps=4, batch=4, image_batch=2, recipe_share=0.5, kind="mixer", mixer_hidden=16, swap_batch=3)
    t = HairTrainer(G, cfg, paired=False, encoder=encoder, yaw=yaw, segmenter=segmenter)
    m = t.train_step()
    assert m["face_kept_l1"] > 0 and torch.isfinite(torch.tensor(m["loss"]))
    assert m["loss"] > m["latent"] + m["image_l1"]  # the term counts in the loss
    with torch.no_grad():
        segmenter.head.bias.copy_(torch.tensor([1e3] + [0.0] * 9))  # background everywhere: no face to keep
    assert t.train_step()["face_kept_l1"] == 0.0
    assert "face_kept_l1" not in HairTrainer(G, cfg, paired=False, encoder=encoder, yaw=yaw).train_step()


def test_a_catalogued_hair_mixer_runs_with_the_encoder_it_names(tmp_path, make_registry):
    """A hair mixer's file holds the mixer alone; ``pipeline.hair_network`` joins it with the
    encoder its catalogue entry names (or the generator's e4e), and refuses one of another shape."""
    from semedit import pipeline
    from semedit.checkpoints import save_safetensors
    from semedit.encoders import EncoderHairTransfer, EncoderMismatchError
    from semedit.errors import SemeditError
    from semedit.networks.encoders import HairCodeMixer, HairMixerConfig
    G, encoder, _ = tiny_unpaired_setup()
    mixer = HairCodeMixer(HairMixerConfig(G.num_ws, 32, hidden=8))
    torch.nn.init.normal_(mixer.mlp[-1].weight, std=0.1)
    (tmp_path / "weights").mkdir()
    save_safetensors(tmp_path / "weights" / "enc.safetensors", encoder.config, encoder.state_dict())
    save_safetensors(tmp_path / "weights" / "mix.safetensors", mixer.config, mixer.state_dict())
    wrong = HairCodeMixer(HairMixerConfig(G.num_ws, 16, hidden=8))
    save_safetensors(tmp_path / "weights" / "wrong.safetensors", wrong.config, wrong.state_dict())
    reg = make_registry({
        "g-e4e": {"kind": "encoder", "format": "safetensors", "file": "enc.safetensors",
                  "config": {"generator": "g", "method": "e4e"}},
        "g-hair": {"kind": "hair", "format": "safetensors", "file": "mix.safetensors", "config": {"generator": "g"}},
        "g-hair-named": {"kind": "hair", "format": "safetensors", "file": "mix.safetensors",
                         "config": {"generator": "nobody", "encoder": "g-e4e"}},
        "g-hair-wrong": {"kind": "hair", "format": "safetensors", "file": "wrong.safetensors",
                         "config": {"generator": "g"}},
        "lone-hair": {"kind": "hair", "format": "safetensors", "file": "mix.safetensors", "config": {"generator": "x"}},
    })
    net = pipeline.load_hair_network(reg, "g-hair")
    assert isinstance(net, EncoderHairTransfer) and net.encoder is reg.get("g-e4e")
    face, hair = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        codes = encoder(torch.nn.functional.interpolate(torch.cat([face, hair]), size=64, mode="bilinear"))
        assert torch.allclose(net(face, hair), mixer(codes[:2], codes[2:]), atol=1e-3)  # stored in float32 here
    assert pipeline.load_hair_network(reg, "g-hair-named").encoder is reg.get("g-e4e")
    with pytest.raises(EncoderMismatchError, match="the hair mixer takes"):
        pipeline.load_hair_network(reg, "g-hair-wrong")
    with pytest.raises(SemeditError, match="has no encoder"):
        pipeline.load_hair_network(reg, "lone-hair")


def test_retrieval_ranks_and_protocol():
    from semedit.evaluation.hair import hair_retrieval, retrieval_ranks
    gallery = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    queries = torch.tensor([[0.1, 0.0], [0.1, 0.0], [4.0, 4.0]])
    assert retrieval_ranks(gallery, queries, torch.tensor([0, 1, 3])).tolist() == [1, 2, 1]

    def people(idx):  # person i: a flat image of brightness i / 50 (its identity)
        return (idx.float() / 50)[:, None, None, None].expand(-1, 3, 4, 4) * 2 - 1

    def embed(images):
        return images[:, 0, :2, 0]  # two pixels of the face region: identity

    def hair_of(idx):
        return torch.ones(len(idx), 3, 4, 4)

    def keep_person(face, hair):  # hair goes in the bottom rows only
        out = face.clone()
        out[:, :, 3:] = hair[:, :, 3:]
        return out

    found = hair_retrieval(people, {"good": lambda idx: keep_person(people(idx), hair_of(idx)), "bad": hair_of},
                           {"two pixels": embed, "one pixel": lambda images: embed(images)[:, :1]},
                           n_gallery=50, n_queries=20)
    good, bad = found["two pixels"]["good"], found["two pixels"]["bad"]
    assert good["top1"] == 1.0 and good["mean_rank"] == 1.0
    assert bad["top1"] < 0.1 and bad["mean_rank"] > 10
    assert found["one pixel"]["good"]["top1"] == 1.0 and found["one pixel"]["bad"]["top1"] < 0.1  # each reader ranks


def test_retrieval_with_a_perfect_generator_draws_the_true_renders():
    """The renderer's reference row: gallery person i and query i are the renders of their
    latents, and the query is person i (same identity fields) with another's hair and pose."""
    from semedit.evaluation.hair import RetrievalSet
    from semedit.synth.params import IDENTITY_FIELDS, params_from_latent
    from semedit.synth.render import render
    rset = RetrievalSet.draw(12, 4, seed=5)
    people, truth = rset.rendered(size=32)
    idx = torch.tensor([0, 3])
    assert torch.equal(people(idx), render(params_from_latent(rset.z_people[idx]), 32).image)
    assert torch.equal(truth(idx), render(params_from_latent(rset.z_truth[idx]), 32).image)
    face, result = params_from_latent(rset.z_people[idx]), params_from_latent(rset.z_truth[idx])
    assert torch.allclose(face.identity(), result.identity()) and len(IDENTITY_FIELDS) == face.identity().shape[1]
    assert not torch.allclose(face["hair_color"], result["hair_color"])


def test_retrieval_on_a_generator_not_paired_with_the_renderer():
    """A generator whose z is not the renderer's draws its people and hair donors from its own
    latents, the same ones every time; its encoder's reconstruction of the face image is a row."""
    from semedit.encoders import encode
    from semedit.evaluation.hair import ENCODER_REFERENCE, RetrievalSet
    G, encoder, _ = tiny_unpaired_setup()
    rset = RetrievalSet.draw(12, 4, seed=5)
    people, donors = rset.latents_for(G)
    assert people.shape == (12, 16) and donors.shape == (4, 16)
    assert torch.equal(people, RetrievalSet.draw(12, 4, seed=5).latents_for(G)[0])
    assert not torch.equal(people, RetrievalSet.draw(12, 4, seed=6).latents_for(G)[0])
    idx = torch.tensor([1, 2])
    with torch.no_grad():
        assert torch.equal(rset.people(G)(idx), G(people[idx], fused=False).clamp(-1, 1))
    rows = rset.transfers(G, encoder=encoder, paired=False)
    assert list(rows) == [ENCODER_REFERENCE]
    with torch.no_grad():
        expected = encode(encoder, G, G(people[idx], fused=False).clamp(-1, 1))[1].clamp(-1, 1)
    torch.testing.assert_close(rows[ENCODER_REFERENCE](idx), expected)
    paired = tiny_generator(config=StyleGAN2Config(resolution=16, z_dim=64, w_dim=32, mapping_layers=2,
                                                   channels=(32, 32, 16)))
    assert rset.latents_for(paired)[0] is rset.z_people  # a paired generator reads the renderer latents


class _MeanColour(torch.nn.Module):
    """A stand-in identity model: distance of the images' mean colours, [N]."""

    def forward(self, x, y):
        return (x.mean((2, 3)) - y.mean((2, 3))).norm(dim=1)


def test_retrieval_blends_the_networks_transfer_into_the_face_image():
    """With a network and a segmenter, the protocol also ranks the network's transfer blended
    into the face image: the transfer inside the hair (the face's and the result's), the face
    image's own pixels away from it."""
    from semedit import segmentation as L
    from semedit.evaluation.hair import NETWORK_BLENDED, NETWORK_IDENTITY, NETWORK_IDENTITY_BLENDED, RetrievalSet
    G, _, _ = tiny_unpaired_setup()

    class AverageCode(torch.nn.Module):  # a "network" that puts every face on the average code
        def forward(self, face, hair):
            return G.w_avg.expand(len(face), G.num_ws, -1)

    def segment(images):  # hair in the top 4 rows, skin below
        labels = torch.full((len(images), 16, 16), L.SKIN, dtype=torch.long)
        labels[:, :4] = L.HAIR
        return labels

    rows = RetrievalSet.draw(6, 3, seed=2).transfers(G, net=AverageCode(), segment=segment, identity=_MeanColour())
    assert NETWORK_BLENDED in rows and "FG'21 network" in rows and NETWORK_IDENTITY in rows
    idx = torch.tensor([0, 2])
    faces = RetrievalSet.draw(6, 3, seed=2).people(G)(idx)
    network, blended = rows["FG'21 network"](idx), rows[NETWORK_BLENDED](idx)
    torch.testing.assert_close(blended[..., 8:, :], faces[..., 8:, :])  # far from the hair: the face image
    torch.testing.assert_close(blended[..., :4, :], network[..., :4, :])  # the hair: the transfer
    assert not torch.allclose(network[..., 8:, :], faces[..., 8:, :])
    steered = rows[NETWORK_IDENTITY](idx)  # the network's codes refined towards each face
    assert (_MeanColour()(steered, faces) < _MeanColour()(network, faces)).all()
    steered_blend = rows[NETWORK_IDENTITY_BLENDED](idx)  # steps that read the blend, then blended
    torch.testing.assert_close(steered_blend[..., 8:, :], faces[..., 8:, :])
    assert (_MeanColour()(steered_blend, faces) < _MeanColour()(blended, faces)).all()


def test_identity_steps_move_a_code_towards_the_face_and_hold_the_hair():
    """A few steps lower the identity model's distance to the face image; with the whole image
    held as hair and a heavy hold, the image moves less; codes refined together are refined as
    if alone (each its own Adam coordinates)."""
    from semedit import segmentation as L
    from semedit.hair.transfer import IdentitySteps, identity_steps
    from semedit.latents import Latent, synthesize
    G, _, _ = tiny_unpaired_setup()
    with torch.no_grad():
        codes = G.broadcast(G.mapping(torch.randn(3, G.config.z_dim, generator=torch.Generator().manual_seed(3))))
        faces = G.synthesis(G.broadcast(G.mapping(torch.randn(3, G.config.z_dim))), fused=False).clamp(-1, 1)
        start = synthesize(G, Latent("w+", codes)).clamp(-1, 1)
    identity = _MeanColour()
    cfg = IdentitySteps(steps=6, lr=0.05)
    refined = identity_steps(G, codes, faces, identity, cfg=cfg)
    assert not refined.requires_grad and refined.shape == codes.shape
    with torch.no_grad():
        after = synthesize(G, Latent("w+", refined)).clamp(-1, 1)
        assert (identity(after, faces) < identity(start, faces)).all()
        all_hair = lambda images: torch.full((len(images), 16, 16), L.HAIR)  # noqa: E731
        held = identity_steps(G, codes, faces, identity, all_hair, replace(cfg, hair_weight=50.0))
        held_image = synthesize(G, Latent("w+", held)).clamp(-1, 1)
        assert (held_image - start).abs().mean() < 0.7 * (after - start).abs().mean()
    alone = identity_steps(G, codes[1:2], faces[1:2], identity, cfg=cfg)
    torch.testing.assert_close(alone, refined[1:2], atol=1e-5, rtol=1e-4)


def test_identity_steps_on_the_blend_read_only_what_the_blend_keeps():
    """Given the face images' label maps, the steps read identity on the code's image blended into
    the face image: with no hair anywhere the blend is the face image itself and nothing moves; with
    old hair in the top rows, the blend's identity distance falls."""
    from semedit import segmentation as L
    from semedit.hair.transfer import IdentitySteps, blend_into_face, identity_steps
    from semedit.latents import Latent, synthesize
    G, _, _ = tiny_unpaired_setup()
    with torch.no_grad():
        z = torch.randn(4, G.config.z_dim, generator=torch.Generator().manual_seed(4))
        codes = G.broadcast(G.mapping(z[:2]))
        faces = G.synthesis(G.broadcast(G.mapping(z[2:])), fused=False).clamp(-1, 1)
    identity, cfg = _MeanColour(), IdentitySteps(steps=6, lr=0.05)
    bald = torch.full((2, 16, 16), L.SKIN)
    torch.testing.assert_close(identity_steps(G, codes, faces, identity, cfg=cfg, face_labels=bald), codes)
    haired = bald.clone()
    haired[:, :5] = L.HAIR
    moved = identity_steps(G, codes, faces, identity, cfg=cfg, face_labels=haired)

    def blended(c):
        with torch.no_grad():
            x = synthesize(G, Latent("w+", c)).clamp(-1, 1)
        return torch.cat([blend_into_face(x[i:i + 1], faces[i:i + 1], haired[i], torch.zeros(16, 16))[0]
                          for i in range(2)])
    assert (identity(blended(moved), faces) < identity(blended(codes), faces)).all()


def test_hair_transfer_refuses_a_photo_without_a_face_and_an_unknown_method(make_registry, tiny_file):
    """For a face generator photos are aligned around a face: none found is a clear error."""
    import numpy as np
    from PIL import Image
    from semedit import pipeline
    from semedit.errors import SemeditError
    from semedit.faces.landmarks import NoFaceError
    reg = make_registry({"tiny": {"kind": "generator", "format": "safetensors", "file": "tiny.safetensors"}})
    wall = Image.fromarray(np.full((200, 200, 3), 180, np.uint8))
    with pytest.raises(NoFaceError, match="no face"):
        pipeline.load_target(reg, "tiny", wall)
    target = pipeline.load_target(reg, "tiny", wall, alignment="centre")
    with pytest.raises(SemeditError, match="unknown hair method"):
        pipeline.transfer_hair(reg, "tiny", target, target, "paste")
    with pytest.raises(SemeditError, match="no trained hair network"):
        pipeline.transfer_hair(reg, "tiny", target, target, "model")


def test_the_hair_trainer_picks_the_generators_e4e_for_target_codes(tmp_path, make_registry):
    from semedit.checkpoints import save_safetensors
    from semedit.training.hair import generator_encoder
    _, encoder, _ = tiny_unpaired_setup()
    (tmp_path / "weights").mkdir()
    save_safetensors(tmp_path / "weights" / "enc.safetensors", encoder.config, encoder.state_dict())
    entry = {"kind": "encoder", "format": "safetensors", "file": "enc.safetensors"}
    reg = make_registry({
        "g-restyle": {**entry, "config": {"generator": "g", "method": "ReStyle-pSp"}},
        "g-hyper": {**entry, "config": {"generator": "g", "method": "HyperStyle"}},
        "g-e4e": {**entry, "config": {"generator": "g", "method": "e4e"}},
        "other-e4e": {**entry, "config": {"generator": "other", "method": "e4e"}},
    })
    assert reg.get("g-e4e") is not reg.get("g-restyle")  # one object per catalogue name
    assert generator_encoder(reg, "g") is reg.get("g-e4e")
    assert generator_encoder(reg, "g", "g-restyle") is reg.get("g-restyle")
    with pytest.raises(ValueError, match="no encoder"):
        generator_encoder(reg, "nobody")


def test_hair_training_writes_over_the_shipped_network_only_when_it_trains_that_network():
    from semedit.training.hair import default_out
    shipped = Path("weights/embedded-hair-64.safetensors")
    assert default_out("embedded-portraits-64", "network") == shipped
    others = {default_out(m, k) for m in ("embedded-portraits-64", "embedded-portraits-64-gan-map8")
              for k in ("network", "mixer")} - {shipped}
    assert len(others) == 3 and all(p.parent == Path("weights") for p in others)


def test_hair_bench_scores_a_candidate_mixer_on_an_unpaired_generator(tmp_path):
    """bench/hair_transfer.py on the shipped 8-layer GAN with a hair-mixer file as candidate: an
    unpaired generator gets its encoder's bound and reference rows, and an untrained mixer (which
    gives the face's own code) scores as that reference does, on the pairs and in the retrieval."""
    import importlib.util
    from semedit.checkpoints import save_safetensors
    from semedit.networks.encoders import HairCodeMixer, HairMixerConfig
    from semedit.registry import Registry
    model = "embedded-portraits-64-gan-map8"
    G = Registry.from_settings().get(model)
    mixer = HairCodeMixer(HairMixerConfig(G.num_ws, G.config.w_dim, hidden=8))
    save_safetensors(tmp_path / "mixer.safetensors", mixer.config, mixer.state_dict())
    path = Path(__file__).resolve().parents[1] / "bench" / "hair_transfer.py"
    spec = importlib.util.spec_from_file_location("hair_transfer_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "hair.md"
    bench.main(["--model", model, "--hair-model", str(tmp_path / "mixer.safetensors"), "--n", "3", "--n-opt", "0",
                "--gallery", "6", "--queries", "3", "--out", str(out)])
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in out.read_text().splitlines()
            if line.startswith("| ")}
    reference = rows["reference: its encoder on the face image (hair not changed)"]
    assert any(name.startswith("bound: its encoder") for name in rows)
    assert rows[f"hair model `{tmp_path / 'mixer.safetensors'}`"] == reference  # same pairs, same scores
    retrieval = "reference: the generator's encoder on the face image (no hair changed)"
    assert rows["FG'21 network"][-1] == rows[retrieval][-1]  # donor hair IoU
    assert 0 <= float(rows["naive paste"][-1].strip(" |")) <= 1
    # the identity steps move an untrained mixer's face code too, and both readers rank every row
    assert "hair model + identity steps" in rows and "FG'21 network + identity steps" in rows
    assert len(rows["FG'21 network"]) == 5 and "held-out reader" in out.read_text()


def test_layer_mixing_bench_ranges_mix_and_hair_moved():
    """bench/layer_mixing.py: the layer ranges it tries, a mix that takes only those layers from the
    donor, and the hair measure's ends (0 at the face's hair, 1 at the donor's)."""
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "bench" / "layer_mixing.py"
    spec = importlib.util.spec_from_file_location("layer_mixing_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.layer_ranges(4) == [(0, 1), (1, 2), (2, 3), (3, 4), (0, 2), (0, 3), (0, 4), (1, 4), (2, 4)]
    face, donor = torch.zeros(2, 4, 3), torch.ones(2, 4, 3)
    mixed = bench.mix(face, donor, 1, 3)
    assert mixed[:, 1:3].eq(1).all() and mixed[:, [0, 3]].eq(0).all() and face.eq(0).all()
    hf, hd = torch.tensor([[0.2, 0.4]]), torch.tensor([[0.6, 0.0]])
    assert bench.hair_moved(hf, hf, hd).item() == pytest.approx(0)
    assert bench.hair_moved(hd, hf, hd).item() == pytest.approx(1)
    assert bench.hair_moved((hf + hd) / 2, hf, hd).item() == pytest.approx(0.5)


def test_a_code_turned_to_another_takes_its_coordinate_along_the_direction_and_nothing_else():
    from semedit.training.hair import turned_to
    g = torch.Generator().manual_seed(0)
    ws, to, delta = (torch.randn(4, 3, 8, generator=g) for _ in range(3))
    delta = delta[0]
    out = turned_to(ws, to, delta)
    along = lambda x: (x * delta).sum((1, 2))  # noqa: E731
    assert torch.allclose(along(out), along(to), atol=1e-5)
    moved = out - ws  # only along delta
    assert torch.allclose(moved, along(moved)[:, None, None] * delta / delta.square().sum(), atol=1e-5)


def test_region_pairs_train_a_transfer_as_optimisation_scores_one():
    """``region_batch`` pairs of two samples are scored against the face image outside both hair
    regions and the turned hair image inside its hair: with the paired terms weighted 0 they are
    the whole loss, training moves the mixer, and a segmenter that sees no hair leaves no hair
    term. Without a segmenter or yaw direction the trainer refuses."""
    from semedit.networks.segmenter import SegmenterConfig, UNetSegmenter
    from semedit.training.hair import HairTrainer, HairTraining
    G, encoder, yaw = tiny_unpaired_setup()
    torch.manual_seed(2)
    segmenter = UNetSegmenter(SegmenterConfig(widths=(8, 8))).eval()
    with torch.no_grad():
        segmenter.head.bias.copy_(torch.tensor([0.0] * 2 + [1e3] + [0.0] * 7))  # hair everywhere
    cfg = HairTraining(steps=4, batch=4, kind="mixer", mixer_hidden=16, region_batch=3, latent_weight=0.0,
                       image_weight=0.0, lr=1e-2)
    t = HairTrainer(G, cfg, paired=False, encoder=encoder, yaw=yaw, segmenter=segmenter)
    before = [p.clone() for p in t.net.mixer.parameters()]
    m = t.train_step()
    assert set(m) == {"loss", "region_face", "region_hair"}
    assert m["region_hair"] > 0 and m["region_face"] == 0.0  # all hair: no face region to keep
    assert m["loss"] == pytest.approx(m["region_face"] + m["region_hair"], rel=1e-5)
    t.train_step()
    assert any(not torch.equal(a, b) for a, b in zip(before, t.net.mixer.parameters()))
    with torch.no_grad():
        segmenter.head.bias.copy_(torch.tensor([1e3] + [0.0] * 9))  # background everywhere: no hair
    m = t.train_step()
    assert m["region_hair"] == 0.0 and m["region_face"] > 0
    with pytest.raises(ValueError, match="segmenter and a yaw"):
        HairTrainer(G, cfg, paired=False, encoder=encoder, yaw=yaw)
    with_id = replace(cfg, region_identity_weight=2.0)
    with pytest.raises(ValueError, match="identity model"):
        HairTrainer(G, with_id, paired=False, encoder=encoder, yaw=yaw, segmenter=segmenter)
    m = HairTrainer(G, with_id, paired=False, encoder=encoder, yaw=yaw, segmenter=segmenter,
                    identity=_MeanColour()).train_step()
    assert m["region_identity"] > 0
    assert m["loss"] == pytest.approx(m["region_face"] + m["region_hair"] + 2 * m["region_identity"], rel=1e-5)
    with pytest.raises(ValueError, match="perceptual model"):
        HairTrainer(G, replace(cfg, region_perceptual=True), paired=False, encoder=encoder, yaw=yaw,
                    segmenter=segmenter)
    plain = HairTrainer(G, cfg, paired=False, encoder=encoder, yaw=yaw, segmenter=segmenter)
    perceptual = HairTrainer(G, replace(cfg, region_perceptual=True), paired=False, encoder=encoder, yaw=yaw,
                             segmenter=segmenter, perceptual=_MeanColour())
    a, b = plain.train_step(), perceptual.train_step()
    assert b["region_face"] > a["region_face"] > 0  # the same pairs, the perceptual distance added


@pytest.mark.parametrize("model", ["embedded-portraits-64-gan-map8", "embedded-portraits-64-gan-linear"])
def test_the_shipped_mixers_of_the_8_layer_gans_move_the_hair_and_keep_the_person(model):
    """The catalogue's hair model for each 8-layer GAN (a mixer trained on region pairs) is what the
    tab picks; on 16 pairs of its samples the result's hair is nearer the donor's (turned to the
    face's yaw) than the face's own code's is, and the result stays far nearer the face's person
    than the donor is (the regressor's identity distance)."""
    from semedit import pipeline
    from semedit.evaluation.hair import hair_iou
    from semedit.inversion.suite import identity_for
    from semedit.registry import Registry
    from semedit.training.hair import turned_to, yaw_direction
    from semedit.editing.library import directions_for
    reg = Registry.from_settings()
    name = pipeline.hair_model_for(reg, model)
    assert name == f"{model}-hair-mixer"
    net, G = pipeline.load_hair_network(reg, name, "cpu"), reg.get(model, "cpu")
    segment = reg.get(reg.catalogue.get(model).config["segmenter"], "cpu").predict
    identity = identity_for(reg, model)
    with torch.no_grad():
        ws = G.broadcast(G.mapping(torch.randn(32, G.config.z_dim, generator=torch.Generator().manual_seed(7))))
        turned = turned_to(ws[16:], ws[:16], yaw_direction(directions_for(reg, model)).delta(G, "w+"))
        images = G.synthesis(torch.cat([ws, turned]), fused=False).clamp(-1, 1)
        face, hair, hair_turned = images.split(16)
        result = G.synthesis(net(face, hair), fused=False).clamp(-1, 1)
        own = G.synthesis(net(face, face), fused=False).clamp(-1, 1)
        donor_labels = segment(hair_turned)
        assert hair_iou(segment(result), donor_labels).mean() > hair_iou(segment(own), donor_labels).mean() + 0.1
        assert identity(result, face).mean() < 0.4 * identity(hair, face).mean()
