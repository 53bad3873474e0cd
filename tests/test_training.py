"""Training on the CPU at small scale: finite losses, exact resumption, sharded state, renderer on any device."""
import csv
import math
from dataclasses import replace

import pytest
import torch

from semedit.editing.fit import condition, fit_linear, label_samples, sample_w
from semedit.errors import CheckpointError
from semedit.networks.discriminator import DiscriminatorConfig, StyleGAN2Discriminator, minibatch_stddev
from semedit.networks.stylegan2 import StyleGAN2Config
from semedit.synth.params import sample_portraits
from semedit.synth.render import render
from semedit.training import loop
from semedit.training.data import augment, rendered_batch, step_generator
from semedit.training.directions import SUPERVISED, refine
from semedit.training.gan import GANConfig, GANTrainer, r1_penalty
from tests.conftest import tiny_generator

TINY_GAN = GANConfig(generator=StyleGAN2Config(resolution=16, z_dim=16, w_dim=16, mapping_layers=2,
                                               channels=(16, 16, 8)),
                     discriminator=DiscriminatorConfig(resolution=16, channels=(8, 16, 16)), batch=4,
                     r1_interval=2, pl_interval=2)


def test_renderer_makes_every_tensor_on_the_portraits_device():
    """With the default device set to 'meta', any tensor the renderer made without naming the
    portraits' device would land there and fail: so it renders on whatever device it is given."""
    p = sample_portraits(6, 3)
    p = replace(p, accessory=torch.arange(6) % 6)
    expected = render(p, 32)
    torch.set_default_device("meta")
    try:
        got = render(p, 32)
        batch = rendered_batch(3, 16, step_generator(0, 0, "cpu"), accessory_share=0.5)
        aug = augment(batch.image, step_generator(0, 0, "cpu"))
    finally:
        torch.set_default_device("cpu")
    assert got.image.device.type == "cpu" and batch.image.device.type == "cpu" and aug.device.type == "cpu"
    assert torch.equal(got.image, expected.image) and torch.equal(got.labels, expected.labels)


def test_rendered_batches_depend_only_on_seed_and_step():
    a = rendered_batch(4, 16, step_generator(1, 5))
    b = rendered_batch(4, 16, step_generator(1, 5))
    c = rendered_batch(4, 16, step_generator(1, 6))
    assert torch.equal(a.image, b.image) and not torch.equal(a.image, c.image)


def test_discriminator_shapes_and_minibatch_stddev():
    D = StyleGAN2Discriminator(DiscriminatorConfig(resolution=16, channels=(8, 16, 16)))
    assert D(torch.randn(6, 3, 16, 16)).shape == (6,)
    x = torch.randn(4, 8, 4, 4)
    y = minibatch_stddev(x, group=4, channels=1)
    assert y.shape == (4, 9, 4, 4)
    expected = x.std(dim=0, unbiased=False).mean()
    assert torch.allclose(y[:, 8], expected.expand(4, 4, 4), atol=1e-5)
    with pytest.raises(ValueError):
        DiscriminatorConfig(resolution=16, channels=(8, 16))


def test_r1_penalty_is_zero_for_a_constant_critic_and_positive_otherwise():
    D = StyleGAN2Discriminator(DiscriminatorConfig(resolution=16, channels=(8, 16, 16)))
    real = torch.randn(4, 3, 16, 16)
    assert (r1_penalty(D, real) > 0).all()
    with torch.no_grad():
        D.out.weight.zero_()
    assert torch.allclose(r1_penalty(D, real), torch.zeros(4))


def test_gan_steps_give_finite_losses_and_move_every_network():
    t = GANTrainer(TINY_GAN)
    g0 = [p.clone() for p in t.G.parameters()]
    d0 = [p.clone() for p in t.D.parameters()]
    e0 = [p.clone() for p in t.G_ema.parameters()]
    seen = {}
    for _ in range(4):
        seen.update(t.train_step())
    assert {"loss_G", "loss_D", "D_real", "D_fake", "r1", "path_length"} <= set(seen)
    assert all(math.isfinite(v) for v in seen.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, t.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, t.D.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(e0, t.G_ema.parameters()))
    assert t.pl_mean.item() > 0


def test_path_length_penalty_trains_the_mapping_network_too():
    from semedit.training.gan import mapped_ws, path_lengths
    t = GANTrainer(TINY_GAN)
    g = torch.Generator().manual_seed(0)
    ws = mapped_ws(t.G, t._z(g, 4), t._z(g, 4), 0.9, g)
    lengths = path_lengths(t.G, ws, g)
    assert lengths.shape == (4,) and (lengths > 0).all()
    lengths.square().mean().backward()
    mapping = [p.grad for name, p in t.G.named_parameters() if name.startswith("mapping")]
    assert mapping and all(gr is not None and gr.abs().sum() > 0 for gr in mapping)


def test_non_finite_gradients_are_cleaned_before_a_step():
    layer = torch.nn.Linear(3, 1)
    layer.weight.grad = torch.tensor([[float("nan"), float("inf"), -float("inf")]])
    layer.bias.grad = torch.tensor([0.5])
    loop.clean_gradients_(layer)
    assert layer.weight.grad.tolist() == [[0.0, 1e5, -1e5]] and layer.bias.grad.tolist() == [0.5]
    # a GAN optimiser step on a loss whose gradient is NaN leaves the weights finite
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    GANTrainer._descend(opt, layer, (layer.weight * float("nan")).sum() + layer.bias.sum())
    assert all(torch.isfinite(p).all() for p in layer.parameters())


def test_gan_training_resumes_exactly(tmp_path):
    straight = GANTrainer(TINY_GAN)
    loop.run(straight, work_dir=tmp_path / "a", total_steps=5, log_every=1, log=lambda s: None)

    first = GANTrainer(TINY_GAN)
    loop.run(first, work_dir=tmp_path / "b", total_steps=3, log_every=1, log=lambda s: None)
    resumed = GANTrainer(replace(TINY_GAN))
    loop.run(resumed, work_dir=tmp_path / "b", total_steps=5, log_every=1, resume=True, log=lambda s: None)

    assert resumed.step == straight.step == 5
    for a, b in zip(straight.state_dict()["G_ema"].values(), resumed.state_dict()["G_ema"].values()):
        assert torch.equal(a, b)
    for a, b in zip(straight.D.parameters(), resumed.D.parameters()):
        assert torch.equal(a, b)
    rows = list(csv.DictReader(open(tmp_path / "b" / loop.CURVE_FILE)))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(float(r["loss_D"])) for r in rows)


def test_a_metric_first_reported_later_gets_a_curve_column(tmp_path):
    path = tmp_path / loop.CURVE_FILE
    loop.append_curve_row(path, {"step": 1, "kimg": "0.01", "elapsed_s": "1.0", "images_per_s": "9", "loss": "0.5"})
    loop.append_curve_row(path, {"step": 2, "kimg": "0.02", "elapsed_s": "2.0", "images_per_s": "9", "loss": "0.4",
                                 "extra": "7"})
    loop.append_curve_row(path, {"step": 3, "kimg": "0.03", "elapsed_s": "3.0", "images_per_s": "9", "extra": "6"})
    rows = list(csv.DictReader(open(path)))
    assert list(rows[0]) == loop.CURVE_FIRST + ["extra", "loss"]
    assert [(r["step"], r["loss"], r["extra"]) for r in rows] == [("1", "0.5", "nan"), ("2", "0.4", "7"),
                                                                  ("3", "nan", "6")]


def test_state_is_split_into_shards_and_checked(tmp_path):
    state = {"w": torch.randn(300_000), "step": 7, "nested": {"a": [torch.ones(3), 2.5]}}
    loop.save_state(tmp_path, state, shard_mb=0.5)
    shards = sorted((tmp_path / loop.STATE_DIR).glob("*.bin"))
    assert len(shards) == 3 and all(s.stat().st_size <= 0.5 * 2 ** 20 for s in shards)
    back = loop.load_state(tmp_path)
    assert torch.equal(back["w"], state["w"]) and back["step"] == 7 and back["nested"]["a"][1] == 2.5
    shards[1].write_bytes(shards[1].read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="incomplete or damaged"):
        loop.load_state(tmp_path)
    with pytest.raises(CheckpointError, match="no complete training state"):
        loop.load_state(tmp_path / "nowhere")


def test_gan_renders_depend_only_on_seed_and_step():
    a, b = GANTrainer(replace(TINY_GAN, render_block=4)), GANTrainer(replace(TINY_GAN, render_block=4))
    b.renders(2)  # b has another block cached when it is asked for step 9
    assert torch.equal(a.renders(9), b.renders(9)) and a.renders(9).shape == (TINY_GAN.batch, 3, 16, 16)
    assert not torch.equal(a.renders(8), a.renders(9))  # steps of one block get different images
    assert not torch.equal(a.renders(8), GANTrainer(replace(TINY_GAN, seed=1, render_block=4)).renders(8))


def test_ema_update_is_a_lerp_of_every_parameter():
    ema, model = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    want = [0.9 * e.detach() + 0.1 * m.detach() for e, m in zip(ema.parameters(), model.parameters())]
    loop.update_ema(ema, model, 0.9)
    assert all(torch.allclose(e, w) for e, w in zip(ema.parameters(), want))


def test_ema_half_life():
    beta = loop.ema_beta(batch=32, half_life_images=10_000)
    assert beta ** (10_000 / 32) == pytest.approx(0.5)


@pytest.mark.parametrize("steps,warmup", [(20, 0.05), (10, 0.1), (7, 0.05), (3000, 0.05)])
def test_one_cycle_schedule_runs_for_any_step_count(steps, warmup):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1.0)
    sched = loop.one_cycle(opt, 1e-3, steps, warmup=warmup)  # PyTorch's own divides by zero at 20 x 0.05
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert max(lrs) == pytest.approx(1e-3, rel=0.05) and lrs[-1] < lrs[0]


def test_gan_auto_settings_follow_the_batch():
    from semedit.training.gan import auto_settings
    assert auto_settings(32) == pytest.approx({"r1_gamma": GANConfig.r1_gamma, "ema_kimg": GANConfig.ema_kimg})
    assert auto_settings(64) == pytest.approx({"r1_gamma": 0.0128, "ema_kimg": 20.0})


def test_gan_export_loads_as_a_generator(tmp_path):
    from semedit.checkpoints import load_module
    t = GANTrainer(TINY_GAN)
    t.train_step()
    t.export(tmp_path / "g.safetensors", note="test")
    G = load_module(tmp_path / "g.safetensors", "stylegan2")
    assert G.config == TINY_GAN.generator
    assert G.w_avg.abs().sum() > 0
    z = torch.randn(2, 16)
    assert torch.allclose(G(z), t.G_ema.cpu()(z), atol=1e-6)


def test_gan_settings_differences_name_what_changed():
    import json
    from semedit.training.gan import QUARTER_GENERATOR, settings_differences
    recorded = json.loads(json.dumps(TINY_GAN.to_dict()))
    assert settings_differences(recorded, replace(TINY_GAN, notes={"any": "thing"})) == []
    changed = replace(TINY_GAN, r1_gamma=0.4, generator=QUARTER_GENERATOR)
    differences = settings_differences(recorded, changed)
    assert f"r1_gamma: {TINY_GAN.r1_gamma} -> 0.4" in differences
    assert any(d.startswith("generator.channels: ") for d in differences)
    assert not any(d.startswith(("batch", "discriminator")) for d in differences)


def test_linear_fit_residual_is_held_out_one_minus_r2():
    from semedit.training.gan import linear_fit_residual, linear_fit_update
    g = torch.Generator().manual_seed(0)
    w = torch.randn(600, 8, generator=g)
    linear = w @ torch.randn(8, 3, generator=g) + 1.0
    noise = torch.randn(600, 3, generator=g)
    stats = linear_fit_update(None, w[:500], linear[:500])
    assert (linear_fit_residual(stats, w[500:], linear[500:]) < 1e-3).all()
    half = linear + noise * linear.std(0)  # half the variance is linear in w
    r = linear_fit_residual(linear_fit_update(None, w[:500], half[:500]), w[500:], half[500:])
    assert ((r > 0.35) & (r < 0.7)).all()
    # the running fit forgets: after many updates on new data the old data no longer counts
    stats = linear_fit_update(None, w[:500], noise[:500])
    for i in range(50):
        stats = linear_fit_update(stats, w[i * 10:(i + 1) * 10], linear[i * 10:(i + 1) * 10], decay=0.8)
    assert (linear_fit_residual(stats, w[500:], linear[500:]) < 0.05).all()


def test_editability_term_trains_g_and_resumes_exactly(tmp_path):
    """With a reader of two image statistics the term runs, moves G, and its running fit is part of
    the state, so a resumed run is the run it continues."""
    reader = lambda img: torch.stack([img.mean((1, 2, 3)), (img[:, 0] - img[:, 2]).mean((1, 2))], 1)  # noqa: E731
    cfg = replace(TINY_GAN, linear_weight=1.0, linear_fields=("brightness", "redness"), linear_interval=2)
    with pytest.raises(ValueError, match="reader"):
        GANTrainer(cfg)
    straight = GANTrainer(cfg, reader=reader)
    loop.run(straight, work_dir=tmp_path / "a", total_steps=4, log_every=1, log=lambda s: None)
    rows = list(csv.DictReader(open(tmp_path / "a" / loop.CURVE_FILE)))
    assert [math.isfinite(float(r["linear_residual"])) for r in rows] == [True, False, True, False]
    assert straight.linear_stats["xtx"].shape == (TINY_GAN.generator.w_dim + 1,) * 2
    plain = GANTrainer(TINY_GAN)
    loop.run(plain, work_dir=tmp_path / "plain", total_steps=4, log_every=1, log=lambda s: None)
    assert any(not torch.equal(a, b) for a, b in zip(straight.G.parameters(), plain.G.parameters()))
    first = GANTrainer(cfg, reader=reader)
    loop.run(first, work_dir=tmp_path / "b", total_steps=3, log_every=1, log=lambda s: None)
    resumed = GANTrainer(cfg, reader=reader)
    loop.run(resumed, work_dir=tmp_path / "b", total_steps=4, log_every=1, resume=True, log=lambda s: None)
    for a, b in zip(straight.G.parameters(), resumed.G.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(straight.linear_stats["xty"], resumed.linear_stats["xty"])


def test_editability_emphasis_weighs_fields_and_is_checked(tmp_path):
    """--linear-emphasis becomes one weight per field (the rest 1), changes what G learns, and a
    field outside the term or a weight that is not positive is refused."""
    from semedit.training.gan import command_line, config_from_args, field_emphasis
    fields = ("smile", "hair_length", "yaw")
    assert field_emphasis("hair_length=3", fields) == {"hair_length": 3.0}
    assert field_emphasis("", fields) == {}
    for bad in ("beard=2", "hair_length=0", "hair_length=x", "hair_length"):
        with pytest.raises(ValueError, match="linear-emphasis"):
            field_emphasis(bad, fields)
    args = ["--work-dir", "run", "--linear-weight", "1", "--linear-fields", ",".join(fields)]
    cfg = config_from_args(command_line().parse_args(args + ["--linear-emphasis", "hair_length=3"]))
    assert cfg.linear_field_weights == (1.0, 3.0, 1.0)
    assert config_from_args(command_line().parse_args(args)).linear_field_weights == ()
    reader = lambda img: torch.stack([img.mean((1, 2, 3)), (img[:, 0] - img[:, 2]).mean((1, 2))], 1)  # noqa: E731
    cfg = replace(TINY_GAN, linear_weight=1.0, linear_fields=("brightness", "redness"), linear_interval=2)
    with pytest.raises(ValueError, match="one weight per field"):
        GANTrainer(replace(cfg, linear_field_weights=(1.0,)), reader=reader)
    runs = {}
    for weights in ((), (1.0, 1.0), (1.0, 20.0)):
        runs[weights] = GANTrainer(replace(cfg, linear_field_weights=weights), reader=reader)
        loop.run(runs[weights], work_dir=tmp_path / str(len(runs)), total_steps=3, log_every=1, log=lambda s: None)
    same, other = ((runs[()].G.parameters(), runs[w].G.parameters()) for w in ((1.0, 1.0), (1.0, 20.0)))
    assert all(torch.equal(a, b) for a, b in zip(*same))
    assert any(not torch.equal(a, b) for a, b in zip(*other))


def test_gan_settings_added_later_resume_runs_recorded_without_them():
    import json
    from semedit.training.gan import settings_differences
    recorded = json.loads(json.dumps(TINY_GAN.to_dict()))
    for key in ("linear_weight", "linear_fields", "linear_regressor", "linear_interval", "linear_half_life",
                "linear_field_weights"):
        del recorded[key]
    assert settings_differences(recorded, TINY_GAN) == []
    assert settings_differences(recorded, replace(TINY_GAN, linear_weight=1.0)) == ["linear_weight: 0.0 -> 1.0"]


def test_gan_mapping_depth_is_a_recorded_setting():
    import json
    from semedit.networks.stylegan2 import StyleGAN2Generator
    from semedit.training.gan import command_line, config_from_args, settings_differences
    base = ["--work-dir", "run", "--size", "quarter"]
    default, deep = (config_from_args(command_line().parse_args(base + extra))
                     for extra in ([], ["--mapping-layers", "8"]))
    assert default.generator.mapping_layers == 2 and deep.generator.mapping_layers == 8
    assert deep.generator.channels == default.generator.channels
    depth = {n: len(StyleGAN2Generator(c.generator).mapping.state_dict()) for n, c in (("2", default), ("8", deep))}
    assert depth["8"] == 4 * depth["2"]  # a weight and a bias per layer
    recorded = json.loads(json.dumps(default.to_dict()))
    assert settings_differences(recorded, deep) == ["generator.mapping_layers: 2 -> 8"]


@pytest.mark.slow
def test_gan_command_line_saves_exports_and_resumes(tmp_path):
    from semedit.checkpoints import load_module
    from semedit.training.gan import QUARTER_GENERATOR, main
    args = ["--work-dir", str(tmp_path / "run"), "--kimg", "0.008", "--batch", "4", "--device", "cpu",
            "--export-dir", str(tmp_path / "out"), "--log-every", "1", "--size", "quarter"]
    main(args)
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"embedded-portraits-64.safetensors", "curve.csv",
                                                              "samples.png"}
    G = load_module(tmp_path / "out" / "embedded-portraits-64.safetensors", "stylegan2")
    assert G.config == QUARTER_GENERATOR
    main(args[:3] + ["0.016"] + args[4:] + ["--resume"])
    rows = list(csv.DictReader(open(tmp_path / "run" / loop.CURVE_FILE)))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    with pytest.raises(SystemExit):  # a resume with other settings is refused before it trains
        main(args + ["--resume", "--gamma", "1"])
    assert len(list(csv.DictReader(open(tmp_path / "run" / loop.CURVE_FILE)))) == 4


@pytest.mark.slow
def test_gan_command_line_branches_a_run_with_the_editability_term(tmp_path):
    """--branch-from continues another run's state under new settings (here the editability term,
    read by the shipped regressor) in a fresh work dir, which then resumes with those settings."""
    import json
    from semedit.training.gan import SETTINGS_FILE, main
    base = ["--kimg", "0.008", "--batch", "4", "--device", "cpu", "--log-every", "1", "--size", "quarter"]
    main(["--work-dir", str(tmp_path / "run")] + base)
    branch = ["--work-dir", str(tmp_path / "branch"), "--linear-weight", "1", "--linear-fields", "smile,yaw"]
    with pytest.raises(SystemExit):  # there is nothing to branch from
        main(branch + base + ["--branch-from", str(tmp_path / "nowhere")])
    main(branch + ["--kimg", "0.024"] + base[2:] + ["--branch-from", str(tmp_path / "run")])
    rows = list(csv.DictReader(open(tmp_path / "branch" / loop.CURVE_FILE)))
    assert [int(r["step"]) for r in rows] == [3, 4, 5, 6]  # it went on from the state's step 2
    # the term runs every 4th step (step index 4, the 5th row's step): its column joins the curve then
    assert [math.isfinite(float(r["linear_residual"])) for r in rows] == [False, False, True, False]
    settings = json.loads((tmp_path / "branch" / SETTINGS_FILE).read_text())
    assert settings["linear_fields"] == ["smile", "yaw"] and settings["notes"]["branched_from"].endswith("run")
    with pytest.raises(SystemExit):  # a branch goes into a fresh work dir
        main(branch + base + ["--branch-from", str(tmp_path / "run")])
    main(branch + ["--kimg", "0.032"] + base[2:] + ["--resume"])
    assert int(list(csv.DictReader(open(tmp_path / "branch" / loop.CURVE_FILE)))[-1]["step"]) == 8
    assert json.loads((tmp_path / "branch" / SETTINGS_FILE).read_text())["notes"]["branched_from"].endswith("run")


def readme_carry_commands() -> list:
    """The README's commands that continue a CPU run carried in git (``--work-dir carry/...``)."""
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    return [line for line in text.splitlines() if "semedit.training.gan --work-dir carry/" in line]


def work_dir_of(command: str) -> str:
    return command.split("--work-dir ")[1].split()[0]


def test_the_readme_names_the_carried_cpu_run():
    assert {work_dir_of(line) for line in readme_carry_commands()} == {"carry/gan-map8"}


@pytest.mark.parametrize("line", readme_carry_commands(), ids=work_dir_of)
def test_carried_cpu_run_resumes_with_the_readme_command(line):
    """carry/ holds the CPU runs that sessions continue and commit: each README command parses to
    the settings its run recorded (so its resume is not refused) and the run's state loads into the
    trainer that command builds."""
    import json
    import shlex
    from pathlib import Path
    from semedit.training.gan import SETTINGS_FILE, command_line, config_from_args, settings_differences
    root = Path(__file__).resolve().parents[1]
    a = command_line().parse_args(shlex.split(line[line.index("--work-dir"):]))
    assert a.resume
    cfg = config_from_args(a)
    carried = root / a.work_dir
    assert settings_differences(json.loads((carried / SETTINGS_FILE).read_text()), cfg) == []
    from semedit.training.gan import attribute_reader
    reader = attribute_reader(cfg.linear_regressor, cfg.linear_fields, "cpu") if cfg.linear_weight > 0 else None
    trainer = GANTrainer(cfg, reader=reader)
    trainer.load_state_dict(loop.load_state(carried)["trainer"])
    rows = list(csv.DictReader(open(carried / loop.CURVE_FILE)))
    assert trainer.step * cfg.batch > 100_000 and 0 < int(rows[-1]["step"]) <= trainer.step


def test_built_in_directions_are_refined_on_fresh_samples():
    G = tiny_generator()
    read = lambda im: {"skin_tone": im.mean((1, 2, 3)), "hair_color": (im[:, 0] - im[:, 2]).mean((1, 2))}  # noqa: E731
    w = sample_w(G, 400, seed=0)
    labels = label_samples(G, w, read)
    fits = {a: replace(fit_linear(w, labels[a], a), attribute=a) for a in labels}
    chosen = refine(G, fits, read, select_n=64, seed=1, log=lambda s: None)
    learned = refine(G, fits, read, select_n=64, seed=1, log=lambda s: None, learn_on=w, learn_read=read,
                     learn_steps=30)
    assert set(chosen) == set(fits) == set(learned)
    for a, d in chosen.items():
        assert d.name == SUPERVISED[a] and d.attribute == a and d.space == "w"
        sel = d.metrics["selection"]
        ratio = {k: sel[k]["own"] / sel[k]["largest other"] for k in ("chosen", "plain fit")}
        assert ratio["chosen"] >= ratio["plain fit"] * 0.9  # the plain fit is one of the candidates
        assert sel["n"] == 64 and d.metrics["r2"] == fits[a].metrics["r2"]
        held = condition(fits[a], [f for b, f in fits.items() if b != a]) if "conditioned" in d.source else fits[a]
        assert 1 / 3 <= sel["unit scale"] <= 3 and d.unit == pytest.approx(held.unit * sel["unit scale"], rel=2e-3)
        # with learning, the learned vector competes with the variant chosen without it
        other = learned[a]
        assert other.name == d.name and other.space in ("w", "w+") and ("learned" in other.source) == (other.space == "w+")
        sel_l = other.metrics["selection"]
        assert sel_l["chosen"]["own"] / sel_l["chosen"]["largest other"] >= 0.9 * ratio["chosen"]
    assert any(d.space == "w+" for d in learned.values())


def test_refine_only_some_attributes_with_the_largest_leak_weighed_more():
    """Refitting one slider (``--only``): just that attribute comes back, its learned vector's
    source says how it was learned, and it differs from the one learned without the extra weight."""
    G = tiny_generator()
    read = lambda im: {"skin_tone": im.mean((1, 2, 3)), "hair_color": (im[:, 0] - im[:, 2]).mean((1, 2))}  # noqa: E731
    w = sample_w(G, 400, seed=0)
    labels = label_samples(G, w, read)
    fits = {a: replace(fit_linear(w, labels[a], a), attribute=a) for a in labels}
    kw = dict(select_n=64, seed=1, log=lambda s: None, learn_on=w, learn_read=read, learn_steps=20,
              attributes=["hair_color"])
    plain, weighed = refine(G, fits, read, **kw), refine(G, fits, read, largest_weight=2.0, learn_lr=0.05, **kw)
    assert set(plain) == set(weighed) == {"hair_color"}
    first, second = plain["hair_color"], weighed["hair_color"]
    assert first.space == second.space == "w+", "the learned vectors lost to their start: the test needs another case"
    assert "lr 0.02)" in first.source and "lr 0.05, the largest leak weighing 3x" in second.source
    assert not torch.equal(first.vector, second.vector)


def test_gan_step_profile_bench_writes_its_table(tmp_path):
    """bench/gan_step_profile.py runs on a GPU lent for minutes, so it must not fail there on
    something the CPU could have caught: a tiny run writes every row of its table."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "bench" / "gan_step_profile.py"
    spec = importlib.util.spec_from_file_location("gan_step_profile", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "profile.md"
    bench.main(["--size", "quarter", "--batch", "2", "--warmup", "1", "--steps", "1", "--profile-steps", "1",
                "--device", "cpu", "--out", str(out)])
    text = out.read_text()
    for row in ("step, renders drawn beforehand", "renders, per step", "operator calls per step", "Most host time"):
        assert row in text
    step_ms = float(text.split("| step, renders drawn beforehand | ")[1].split(" ms")[0])
    assert step_ms > 0


def test_readme_gpu_command_continues_the_carried_gpu_generator():
    """The README's next GPU call starts from ``carry/gan-gpu/generator.safetensors`` (``--init``):
    the command parses, keeps the carried generator's 8-layer mapping and the file loads into the
    trainer that command builds."""
    import shlex
    from pathlib import Path
    from semedit.checkpoints import load_module
    from semedit.training.gan import command_line, config_from_args
    root = Path(__file__).resolve().parents[1]
    lines = [line for line in (root / "README.md").read_text().splitlines() if "--init carry/gan-gpu/" in line]
    assert len(lines) == 1
    trainer_part = lines[0].split("semedit.training.gan ")[1].replace("$OUT", "out")
    a = command_line().parse_args(shlex.split(trainer_part))
    init = load_module(root / a.init, "stylegan2")
    cfg = config_from_args(a, init.config)
    assert cfg.batch == 128 and cfg.generator.mapping_layers == 8 and cfg.generator == init.config
    trainer = GANTrainer(cfg)
    trainer.G.load_state_dict(init.state_dict())
    z = torch.randn(2, cfg.generator.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(trainer.G.eval()(z, noise_mode="const"), init.eval()(z, noise_mode="const"))
