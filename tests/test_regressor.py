"""The embedded domain's parameter regressor (inverse renderer), its identity distance, and the
generator measures that rest on it."""
import math

import pytest
import torch

from semedit.checkpoints import load_module, save_safetensors
from semedit.evaluation.realism import frechet_distance
from semedit.evaluation.embedded import ridge_r2
from semedit.networks.regressor import ParameterRegressor, RegressorIdentity, crop_window
from semedit.registry import Registry, load_catalogue
from semedit.segmentation import CLASS_NAMES
from semedit.settings import WEIGHTS_DIR, Settings
from semedit.synth.ground_truth import predict_portraits
from semedit.synth.params import (BEARD_THRESHOLD, FIELDS, GLASSES_THRESHOLD, INDEX, IDENTITY_FIELDS,
                                  hair_style_index, observable_targets, sample_portraits)
from semedit.synth.render import render
from semedit.training.directions import attribute_stds
from semedit.training.regressor import (RegressorTrainer, RegressorTraining, calibrate_threshold, crosstalk,
                                        domain_parts, held_out_accuracy, identity_pairs, moved_alone, part_centres,
                                        regressor_config, with_parts)

DISTILLED = "embedded-portraits-64"  # the distilled generator (paired with the renderer; every encoder)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    settings = Settings(device="cpu", cache_dir=tmp_path_factory.mktemp("cache"), hub_offline=True,
                        hub_cache_dir=tmp_path_factory.mktemp("hub"))
    return Registry(load_catalogue(WEIGHTS_DIR / "catalogue.json"), settings)


def test_observable_targets_hide_what_the_image_cannot_show():
    p = sample_portraits(64, seed=4)
    p = p.with_fields(glasses=torch.linspace(0, 1, 64))
    targets, visible = observable_targets(p)
    has_glasses = p["glasses"] > GLASSES_THRESHOLD
    assert torch.equal(targets[:, INDEX["glasses"]], has_glasses.float())
    assert torch.equal(visible[:, INDEX["frame_color"]].bool(), has_glasses)
    bald = p.hair_style == hair_style_index("bald")
    assert (visible[bald, INDEX["hair_volume"]] == 0).all() and (visible[~bald, INDEX["hair_volume"]] == 1).all()
    masked = p.with_accessory("mask")
    _, v = observable_targets(masked)
    assert (v[:, INDEX["smile"]] == 0).all() and (v[:, INDEX["skin_tone"]] == 1).all()


def test_calibrated_threshold_separates_two_groups():
    same, different = torch.linspace(0.0, 0.1, 50), torch.linspace(0.2, 0.5, 50)
    thr, acc = calibrate_threshold(same, different)
    assert 0.1 < thr < 0.2 and acc == 1.0
    thr, acc = calibrate_threshold(torch.tensor([0.1, 0.3]), torch.tensor([0.2, 0.4]))
    assert acc == 0.75


def test_identity_weights_count_steady_fields_most_and_ride_in_the_checkpoint(tmp_path):
    from dataclasses import replace
    from semedit.training.regressor import fit_identity_weights
    g = torch.Generator().manual_seed(0)
    first = torch.rand(500, 3, generator=g)
    noise = torch.randn(500, 3, generator=g) * torch.tensor([0.01, 0.04, 0.04])  # field 0 read steadily
    weights = torch.tensor(fit_identity_weights(first, first + noise))
    assert torch.isclose(weights.square().mean(), torch.tensor(1.0), atol=1e-3)    # scaled to RMS 1
    assert torch.allclose(weights[0] / weights[1:], torch.tensor([4.0, 4.0]), rtol=0.15)
    net = RegressorTrainer(RegressorTraining(batch=8, size=16, steps=1)).net.eval()
    x, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    plain = RegressorIdentity(net)(x, y)
    unit = tuple([1.0] * len(IDENTITY_FIELDS))
    net.config = replace(net.config, identity_weights=unit)
    assert torch.allclose(RegressorIdentity(net)(x, y), plain, atol=1e-6)             # weights of 1: unweighted
    net.config = replace(net.config, identity_weights=(2.0,) + unit[1:])
    only_first = (net.identity(x) - net.identity(y))[:, 0].square()
    assert torch.allclose(RegressorIdentity(net)(x, y).square(), plain.square() + 3 * only_first / len(unit),
                          atol=1e-6)                                                 # field 0 counts 4x in the square
    save_safetensors(tmp_path / "r.safetensors", net.config, net.state_dict())
    assert load_module(tmp_path / "r.safetensors", "parameter-regressor").config.identity_weights == net.config.identity_weights


def test_regressor_training_steps_and_checkpoint_round_trip(tmp_path):
    t = RegressorTrainer(RegressorTraining(batch=8, size=16, steps=40))
    assert t.net.config.parts == domain_parts(16)
    logs = [t.train_step() for _ in range(3)]
    assert all(math.isfinite(v["loss"]) and math.isfinite(v["centre_px"]) for v in logs)
    net = t.net.eval()
    save_safetensors(tmp_path / "r.safetensors", net.config, net.state_dict())
    back = load_module(tmp_path / "r.safetensors", "parameter-regressor")
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert back.config == net.config
    assert torch.allclose(back(x).fields, net(x).fields, atol=1e-6)
    assert back.identity(x).shape == (2, len(IDENTITY_FIELDS))


def test_crop_window_is_the_pixel_window_at_its_centre():
    img = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).view(2, 3, 16, 16)
    centre = torch.tensor([[5 / 16, 8 / 16], [10 / 16, 4 / 16]])  # (x, y) on pixel boundaries
    w = crop_window(img, centre, 4, 6)
    assert torch.equal(w[0], img[0, :, 6:10, 2:8]) and torch.equal(w[1], img[1, :, 2:6, 7:13])


def test_part_centres_are_class_centroids_or_nan():
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[0, 2:4, 4:8] = CLASS_NAMES.index("mouth")   # rows 2-3, cols 4-7
    parts = domain_parts(8)
    c = part_centres(labels, parts) * 8
    mouth = [p.name for p in parts].index("mouth")
    assert torch.allclose(c[0, mouth], torch.tensor([6.0, 3.0]))
    assert torch.isnan(c[1, mouth]).all() and torch.isnan(c[:, [p.name for p in parts].index("eyes")]).all()


def test_part_fields_read_their_window():
    """Where a part's window sits changes that part's fields and nothing else; without given
    centres the window sits at the predicted centre."""
    torch.manual_seed(0)
    net = ParameterRegressor(regressor_config(32)).eval()
    parts = net.config.parts
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    here, there = torch.full((1, len(parts), 2), 0.3), torch.full((1, len(parts), 2), 0.7)
    a, b = net(x, crop_centres=here).fields[0], net(x, crop_centres=there).fields[0]
    for part in parts:
        idx = [INDEX[f] for f in part.fields]
        assert not torch.allclose(a[idx], b[idx])
    in_parts = torch.zeros(len(FIELDS), dtype=torch.bool)
    in_parts[[INDEX[f] for p in parts for f in p.fields]] = True
    assert torch.equal(a[~in_parts], b[~in_parts])
    pred = net(x)
    assert torch.equal(pred.fields, net(x, crop_centres=pred.part_centres).fields)


def test_with_parts_keeps_the_whole_image_network():
    torch.manual_seed(0)
    old = ParameterRegressor(regressor_config(16, parts=False)).eval()
    new = with_parts(old).eval()
    assert new.config.parts == domain_parts(16)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    keep = torch.ones(len(FIELDS), dtype=torch.bool)
    keep[[INDEX[f] for p in new.config.parts for f in p.fields]] = False
    assert torch.equal(old(x).fields[:, keep], new(x).fields[:, keep])
    assert new(x).part_centres.shape == (2, len(new.config.parts), 2)


def test_shipped_regressor_reads_held_out_renders(registry):
    net = registry.get("embedded-regressor-64")
    acc = held_out_accuracy(net, n=256)
    assert acc["fields"]["yaw"]["r2"] > 0.95
    assert acc["fields"]["hair_length"]["r2"] > 0.85 and acc["fields"]["hair_gray"]["r2"] > 0.6
    assert acc["fields"]["skin_tone"]["r2"] > 0.9
    # the few-pixel features, read in the mouth and eyes windows (about 0 without them)
    assert acc["fields"]["smile"]["r2"] > 0.8 and acc["fields"]["mouth_width"]["r2"] > 0.7
    assert acc["fields"]["eye_spacing"]["r2"] > 0.85 and acc["fields"]["brow_tilt"]["r2"] > 0.5
    assert max(acc["part centre px"].values()) < 0.5
    assert acc["hair style"] > 0.85 and acc["accessory"] > 0.9 and acc["glasses (present)"] > 0.9


def test_moved_alone_moves_one_parameter_where_it_shows():
    p = sample_portraits(64, seed=3)
    i = INDEX["hair_length"]
    moved, rows = moved_alone(p, "hair_length", shift=0.2)
    others = torch.ones(len(FIELDS), dtype=torch.bool)
    others[i] = False
    assert torch.equal(moved.values[:, others], p.values[:, others]) and torch.equal(moved.hair_style, p.hair_style)
    assert torch.allclose(moved["hair_length"][rows], p["hair_length"][rows] + 0.2)
    assert rows.any() and not (rows & (observable_targets(p)[1][:, i] == 0)).any()  # never where it is not drawn
    moved, rows = moved_alone(p, "beard")
    assert rows.any() and (p["beard"][rows] <= BEARD_THRESHOLD).all() and (moved["beard"][rows] > BEARD_THRESHOLD).all()


def test_shipped_regressor_reads_a_clean_edit_as_clean(registry):
    """One true parameter moved alone on renders: its reading moves, and no other reading moves by a
    quarter as much per image (the floor under the leaks the slider bench measures)."""
    net = registry.get("embedded-regressor-64")

    def read(images):
        p = predict_portraits(net, images)
        return {**p.attributes(), **p.pose()}

    p = sample_portraits(200, seed=77)
    before = read(render(p, 64).image)
    stds = attribute_stds(before)
    for field in ("smile", "age", "yaw", "hair_length"):
        changes = crosstalk(read, p, before, field, stds, shift=0.2)
        own = float(changes[field].mean())
        leak = max(float(c.abs().mean()) for k, c in changes.items() if k != field)
        assert own > 0.25 and leak < own / 4, (field, own, leak)


@pytest.mark.parametrize("reader", ["the generator's", "held-out"])
def test_embedded_identity_tells_the_same_person_from_others(registry, reader):
    """The same person turned and with another's hair is closer than other people, and the
    calibrated threshold shipped in the checkpoint separates most pairs: for the identity model of
    the embedded generators and for the held-out reader that ranks hair transfers beside it."""
    from semedit.inversion.suite import identity_for
    if reader == "held-out":
        identity = RegressorIdentity(registry.get(registry.catalogue.get(DISTILLED).config["identity_judge"]))
    else:
        identity = identity_for(registry, DISTILLED)
    assert isinstance(identity, RegressorIdentity) and identity.same_person_below is not None
    same, different = identity_pairs(identity, n=128, seed=42)
    assert same.mean() < 0.5 * different.mean()
    correct = torch.cat([same < identity.same_person_below, different >= identity.same_person_below]).float().mean()
    assert correct > 0.85


def test_predicted_portraits_have_the_ground_truth_api(registry):
    p = sample_portraits(8, seed=11)
    pred = predict_portraits(registry.get("embedded-regressor-64"), render(p, 64).image)
    assert pred.values.shape == (8, len(FIELDS))
    assert set(pred.attributes()) == set(p.attributes()) and set(pred.pose()) == set(p.pose())
    assert (pred.pose()["yaw"] - p.pose()["yaw"]).abs().mean() < 0.1


def test_frechet_distance():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 8, generator=g)
    b = torch.randn(4000, 8, generator=g)
    assert frechet_distance(a, b) < 0.05
    assert frechet_distance(a, b + 1.0) == pytest.approx(8.0, rel=0.05)      # |mu_a - mu_b|^2
    assert frechet_distance(a, b * 2.0) == pytest.approx(8.0, rel=0.1)       # tr: 8 + 32 - 2 * 16


def test_ridge_r2_recovers_a_planted_linear_attribute():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(800, 16, generator=g)
    y = w @ torch.randn(16, generator=g)
    assert ridge_r2(w, y + 0.1 * torch.randn(800, generator=g), train=600) > 0.95
    assert ridge_r2(w, torch.randn(800, generator=g), train=600) < 0.1


def test_perceptual_pooled_features(registry):
    model = registry.get("stlpips-alex")
    f = model.pooled_features(torch.rand(3, 3, 64, 64) * 2 - 1)
    assert f.shape[0] == 3 and f.ndim == 2 and f.shape[1] >= 256 and torch.isfinite(f).all()


def test_regressor_can_learn_from_a_paired_generators_images():
    """generator_share of each batch comes from the generator: the trainer needs one, and steps run."""
    from semedit.networks.stylegan2 import StyleGAN2Config
    from tests.conftest import tiny_generator
    paired = tiny_generator(config=StyleGAN2Config(resolution=16, z_dim=64, w_dim=32, mapping_layers=2,
                                                   channels=(32, 32, 16)))
    cfg = RegressorTraining(batch=8, size=16, steps=40, generator_share=0.5)
    with pytest.raises(ValueError, match="needs a generator"):
        RegressorTrainer(cfg)
    t = RegressorTrainer(cfg, generator=paired)
    assert all(math.isfinite(t.train_step()["loss"]) for _ in range(2))
    acc = held_out_accuracy(t.net.eval(), n=16, batch=8, generator=paired)
    assert set(acc["fields"]) == set(FIELDS) - {"beard", "glasses"}  # every other parameter is scored
    assert all(math.isfinite(f["mae"]) and f["mae"] > 0 for f in acc["fields"].values() if f["n"])
    assert sum(f["n"] > 0 for f in acc["fields"].values()) > len(acc["fields"]) // 2


def test_attribute_names_are_what_read_attributes_gives(registry):
    from semedit import pipeline
    images = render(sample_portraits(2, seed=1), 64).image
    assert pipeline.attribute_names(registry, DISTILLED) == list(pipeline.read_attributes(registry, DISTILLED, images))


def test_differentiable_labeller_reads_as_the_labeller_and_passes_gradients():
    """The labeller that learned directions train through reads what the built-in directions are
    measured with (beard and glasses soft, so only near their thresholds do they differ), and its
    readings have gradients with respect to the images."""
    from semedit.training.directions import differentiable_labeller, regressor_labeller
    torch.manual_seed(0)
    net = ParameterRegressor(regressor_config(32)).eval()
    x = (torch.rand(3, 3, 32, 32) * 2 - 1).requires_grad_(True)
    soft, hard = differentiable_labeller(net)(x), regressor_labeller(net)(x.detach())
    assert set(soft) == set(hard)
    for k in hard:
        if k in ("beard", "glasses"):
            assert ((soft[k] > 0.5).float() == hard[k]).all()
        else:
            assert torch.allclose(soft[k].detach().float(), hard[k].float(), atol=1e-5), k
    soft["smile"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_soft_presence_is_half_at_the_threshold_and_follows_the_field():
    p = sample_portraits(3, 0).with_fields(beard=torch.tensor([BEARD_THRESHOLD - 0.2, BEARD_THRESHOLD,
                                                                BEARD_THRESHOLD + 0.2]))
    soft, hard = p.attributes(softness=0.03)["beard"], p.attributes()["beard"]
    assert soft[1] == pytest.approx(0.5) and soft[0] < 0.01 and soft[2] > 0.99
    assert hard.tolist() == [0.0, 0.0, 1.0]
