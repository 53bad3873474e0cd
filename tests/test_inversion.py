"""Inversion methods on tiny models: losses go down, shapes, PTI leaves the shared G alone,
ChunkyGAN masks sum to one."""
from dataclasses import replace

import pytest
import torch

from semedit.editing.chunks import ChunkProject, render_chunks
from semedit.inversion import (ChunkyConfig, InversionCancelled, OptimizationConfig, PTIConfig, invert_chunky,
                               invert_optimization, invert_pti)
from semedit.inversion.chunky import band_masks, masks_from_labels
from semedit.inversion.common import ramped_lr
from semedit.latents import Latent, synthesize
from semedit.registry import load_catalogue, Registry
from semedit.settings import WEIGHTS_DIR, Settings
from semedit import segmentation as L
from tests.conftest import TINY, tiny_generator

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def perceptual():
    reg = Registry(load_catalogue(WEIGHTS_DIR / "catalogue.json"), Settings(device="cpu", hub_offline=True))
    return reg.get(reg.catalogue.default_perceptual)


@pytest.fixture(scope="module")
def target():
    G = tiny_generator(seed=3)
    with torch.no_grad():
        w = G.mapping(torch.randn(1, TINY.z_dim, generator=torch.Generator().manual_seed(11)))
        return G.synthesis(G.broadcast(w))


def test_lr_schedule():
    assert ramped_lr(0, 100, 0.1, 0.05, 0.25) == 0.0
    assert ramped_lr(50, 100, 0.1, 0.05, 0.25) == pytest.approx(0.1)
    assert ramped_lr(99, 100, 0.1, 0.05, 0.25) < 0.001


def test_the_loss_curve_leaves_out_the_noise_regulariser(perceptual, target):
    """The recorded losses are the fit's, not the noise maps' regulariser (weighted 1e5, it would
    dwarf them on a generator with noise); the regulariser still steers the noise."""
    G = tiny_generator()
    assert any(float(layer.noise_strength) != 0 for layer in G.synthesis.layers)
    runs = [invert_optimization(G, target, OptimizationConfig(steps=3, noise_weight=w), perceptual=perceptual,
                                device=CPU) for w in (0.0, 1e9)]
    assert runs[0].losses[0] == runs[1].losses[0] < 10  # the same codes and noise at step 0
    assert not torch.equal(runs[0].noise[0], runs[1].noise[0])


@pytest.mark.parametrize("space", ["w", "w+", "s"])
def test_optimisation_lowers_the_loss(space, perceptual, target):
    G = tiny_generator()
    r = invert_optimization(G, target, OptimizationConfig(space=space, steps=60), perceptual=perceptual, device=CPU)
    assert len(r.losses) == 60 and r.image.shape == (1, 3, 16, 16)
    assert min(r.losses[-5:]) < 0.7 * r.losses[0]
    expected = {"w": (1, TINY.w_dim), "w+": (1, G.num_ws, TINY.w_dim), "s": (1, sum(G.synthesis.style_dims))}
    assert tuple(r.latent.value.shape) == expected[space] and r.latent.space == space
    assert r.seconds > 0 and "optimisation" in r.method


def test_a_batch_of_targets_fits_one_code_each(perceptual, target):
    """Two targets at once (the hair transfer inverts both images so): each code, with its own
    noise maps, ends nearer its own target than the other's."""
    G = tiny_generator()
    other = torch.flip(target, dims=[-1]) * 0.5
    r = invert_optimization(G, torch.cat([target, other]), OptimizationConfig(space="w+", steps=60),
                            perceptual=perceptual, device=CPU)
    assert r.latent.value.shape == (2, G.num_ws, TINY.w_dim) and r.image.shape == (2, 3, 16, 16)
    assert [n.shape[0] for n in r.noise] == [2] * len(G.synthesis.layers)
    err = ((r.image[:, None] - torch.cat([target, other])[None]) ** 2).mean((2, 3, 4))  # [result, target]
    assert err[0, 0] < err[0, 1] and err[1, 1] < err[1, 0]
    assert min(r.losses[-5:]) < 0.7 * r.losses[0]


def test_pti_tunes_a_copy_and_never_the_shared_generator(make_registry, tiny_file, perceptual, target, tmp_path):
    reg = make_registry({"tiny": {"kind": "generator", "format": "safetensors", "file": "tiny.safetensors"}})
    G = reg.get("tiny")
    before = {k: v.clone() for k, v in G.state_dict().items()}
    cfg = PTIConfig(pivot=OptimizationConfig(space="w", steps=30, optimize_noise=False), tune_steps=40, tune_lr=3e-3)
    r = invert_pti(G, target, cfg, perceptual=perceptual, device=CPU)
    for k, v in G.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(not p.requires_grad for p in G.parameters())
    assert len(r.losses) == 70
    tuned_err = (r.image - target).square().mean()
    pivot_err = (r.pivot_image - target).square().mean()
    assert tuned_err < pivot_err
    assert set(r.weight_delta) <= {k for k in before if k.startswith("synthesis.")} and r.weight_delta
    tuned = r.generator_for(G)  # the shared G plus the stored difference reproduces the result
    torch.testing.assert_close(synthesize(tuned, Latent("w", r.latent.value)), r.image, atol=1e-5, rtol=0)
    assert r.generator_for(G) is not G and all(torch.equal(v, before[k]) for k, v in G.state_dict().items())
    # the editing tabs take the result with its tuned weights, and the saved latents keep them
    from semedit import pipeline
    from semedit.inversion.common import with_weight_delta
    r = replace(r, generator="tiny")
    source = pipeline.source_from_result(r)
    torch.testing.assert_close(pipeline.render_source(reg, source), r.image.clamp(-1, 1), atol=1e-5, rtol=0)
    untuned = synthesize(G, Latent("w", r.latent.value)).clamp(-1, 1)
    assert (pipeline.render_source(reg, source) - untuned).abs().max() > 1e-3
    saved = torch.load(pipeline.save_latents([r], tmp_path / "latents.pt"), weights_only=True)[r.method]
    again = synthesize(with_weight_delta(G, saved["weight_delta"]), Latent(saved["space"], saved["latent"]))
    torch.testing.assert_close(again, r.image, atol=1e-5, rtol=0)


@pytest.mark.parametrize("lambda_reg, space", [(0.0, "w+"), (1.0, "w+"), (1.0, "w"), (1.0, "s")])
def test_chunky_masks_sum_to_one_and_loss_drops(perceptual, target, lambda_reg, space):
    G = tiny_generator()
    labels = torch.zeros(16, 16, dtype=torch.long)
    labels[4:12, 4:12] = L.SKIN
    labels[:4] = L.HAIR
    cfg = ChunkyConfig(n_chunks=3, steps=50, lambda_reg=lambda_reg, mask_resolution=8, space=space)
    r = invert_chunky(G, target, cfg, perceptual=perceptual, device=CPU, labels=labels)
    masks, chunks = r.chunk_masks, r.chunk_images
    assert masks.shape == (3, 16, 16) and chunks.shape == (3, 3, 16, 16)
    torch.testing.assert_close(masks.sum(0), torch.ones(16, 16))
    assert (masks >= 0).all()
    torch.testing.assert_close(r.image, (chunks * masks[:, None]).sum(0, keepdim=True))
    per_chunk = {"w": (TINY.w_dim,), "w+": (G.num_ws, TINY.w_dim), "s": (sum(G.synthesis.style_dims),)}[space]
    assert r.latent.space == space and r.latent.value.shape == (3, *per_chunk)
    project = ChunkProject.from_result(replace(r, generator="tiny"))  # the segment editor starts where it ended
    torch.testing.assert_close(render_chunks(G, project), chunks.clamp(-1, 1), atol=1e-4, rtol=0)
    assert min(r.losses[-5:]) < 0.8 * r.losses[0]


def test_chunky_regulariser_keeps_codes_near_the_mean(perceptual, target):
    G = tiny_generator()
    dist = {}
    for lam in (0.0, 10.0):
        r = invert_chunky(G, target, ChunkyConfig(n_chunks=2, steps=40, lambda_reg=lam, mask_init="bands"),
                          perceptual=perceptual, device=CPU)
        dist[lam] = (r.latent.value - G.w_avg).square().sum(-1).mean()
    assert dist[10.0] < dist[0.0]


def test_chunky_mask_inits():
    labels = torch.full((8, 8), L.BACKGROUND)
    labels[2:6, 2:6] = L.SKIN
    labels[0, :] = L.HAIR
    for n in range(1, 9):
        m = masks_from_labels(labels, n)
        assert m.shape == (n, 8, 8) and torch.equal(m.sum(0), torch.ones(8, 8))
    b = band_masks(4, 16)
    assert torch.equal(b.sum(0), torch.ones(16, 16)) and b[0, 0, 0] == 1 and b[3, 15, 0] == 1


def test_chunky_bad_config_and_missing_masks(perceptual, target):
    with pytest.raises(ValueError):
        ChunkyConfig(n_chunks=0)
    with pytest.raises(ValueError):
        ChunkyConfig(lambda_reg=-1)
    with pytest.raises(ValueError, match="needs 2 masks"):
        invert_chunky(tiny_generator(), target, ChunkyConfig(n_chunks=2, mask_init="given", steps=1),
                      perceptual=perceptual, device=CPU, masks=torch.ones(3, 16, 16))


def test_given_masks_are_used(perceptual, target):
    masks = torch.zeros(2, 16, 16)
    masks[0, :, :8] = 1
    masks[1, :, 8:] = 1
    r = invert_chunky(tiny_generator(), target, ChunkyConfig(n_chunks=2, mask_init="given", steps=1, mask_lr=0.0,
                                                             mask_resolution=16),
                      perceptual=perceptual, device=CPU, masks=masks)
    assert (r.chunk_masks[0, :, :7] > 0.9).all() and (r.chunk_masks[1, :, 9:] > 0.9).all()


def test_progress_can_cancel(perceptual, target):
    seen = []

    def progress(step, total, loss):
        seen.append(step)
        if step == 5:
            raise InversionCancelled("stop")

    with pytest.raises(InversionCancelled):
        invert_optimization(tiny_generator(), target, OptimizationConfig(steps=50), perceptual=perceptual,
                            device=CPU, progress=progress)
    assert seen == [1, 2, 3, 4, 5]


def test_lpips_vgg_reads_a_timm_layout_backbone(tmp_path):
    """The Hub LPIPS entry: torchvision/timm ``features.N`` keys land in lpips' VGG slices."""
    import torchvision
    from safetensors.torch import save_file
    from semedit.losses import build_lpips_vgg
    torch.manual_seed(0)
    features = torchvision.models.vgg16(weights=None).features.state_dict()
    state = {f"features.{k}": v for k, v in features.items()}
    state["head.fc.weight"] = torch.zeros(2, 2)  # timm files carry more than the features
    save_file(state, str(tmp_path / "model.safetensors"))
    model = build_lpips_vgg(tmp_path / "model.safetensors")
    torch.testing.assert_close(model.net.net.slice5._modules["28"].weight, features["28.weight"])
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert model(x, x).abs().max() < 1e-6 and (model(x, x.flip(0)) > 0).all()


def test_command_line_inverts_a_folder(tmp_path, monkeypatch):
    import csv
    import shutil
    from semedit.__main__ import main
    from semedit.settings import PROJECT_ROOT
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(PROJECT_ROOT / "examples" / "embedded" / "portrait_02.png", src)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    main(["invert", str(src), "--methods", "w,chunky", "--steps", "5", "--chunks", "2", "--out", str(tmp_path / "out")])
    rows = list(csv.DictReader(open(tmp_path / "out" / "metrics.csv")))
    assert [r["method"] for r in rows] == ["W optimisation", "ChunkyGAN W+ (n=2, lambda=1)"]
    assert (tmp_path / "out" / "portrait_02_chunky.png").exists()
    saved = torch.load(tmp_path / "out" / "portrait_02_chunky.pt", weights_only=True)
    assert saved["chunky"]["latent"].shape[0] == 2 and saved["chunky"]["masks"].shape[0] == 2
    from semedit.registry import load_catalogue
    from semedit.settings import WEIGHTS_DIR
    assert saved["chunky"]["generator"] == load_catalogue(WEIGHTS_DIR / "catalogue.json").default_generator


def test_identity_model_loads_from_its_key_layout_and_measures(tmp_path, make_registry, perceptual):
    """ArcFace IR-SE in model_ir_se50.pth's key layout, reduced widths (the real file is 175 MB)."""
    from semedit.networks.identity import IRSE, IRSEConfig
    torch.manual_seed(0)
    net = IRSE(IRSEConfig(units=(1, 2, 1, 1), widths=(16, 32, 48, 64), embedding=32)).eval()
    state = net.state_dict()
    assert {"input_layer.0.weight", "body.0.res_layer.5.fc1.weight", "body.1.shortcut_layer.0.weight",
            "output_layer.3.weight", "output_layer.4.running_var"} <= set(state)
    (tmp_path / "weights").mkdir()
    torch.save(state, tmp_path / "weights" / "ir_se.pth")
    reg = make_registry({"id": {"kind": "identity", "format": "arcface-irse", "file": "ir_se.pth"}})
    model = reg.get("id")
    assert model.net.config.units == (1, 2, 1, 1) and model.net.config.widths == (16, 32, 48, 64)
    x = torch.rand(3, 3, 256, 256) * 2 - 1
    d = model(x, x.flip(0))
    assert model(x, x).abs().max() < 1e-5 and (d[[0, 2]] > 0).all() and torch.allclose(d[0], d[2])
    assert (d >= 0).all() and (d <= 2).all()
    from semedit.metrics import score
    s = score(x[:1], x[1:2], perceptual, 0.1, identity=model)
    assert s.identity is not None and s.as_row()["identity distance"] != "n/a"


def test_identity_loss_needs_a_model(perceptual, target):
    with pytest.raises(ValueError, match="identity model"):
        invert_optimization(tiny_generator(), target, OptimizationConfig(steps=2, identity_weight=1.0),
                            perceptual=perceptual, device=CPU)


def test_noise_maps_are_optimised_only_when_the_generator_uses_noise(perceptual, target):
    G = tiny_generator()
    quiet = copy_without_noise(G)
    with_noise = invert_optimization(G, target, OptimizationConfig(steps=3), perceptual=perceptual, device=CPU)
    without = invert_optimization(quiet, target, OptimizationConfig(steps=3), perceptual=perceptual, device=CPU)
    assert with_noise.noise is not None and without.noise is None


def copy_without_noise(G):
    import copy
    quiet = copy.deepcopy(G)
    with torch.no_grad():
        for layer in quiet.synthesis.layers:
            layer.noise_strength.zero_()
    return quiet


def test_perceptual_against_a_fixed_target_matches_the_pair_distance(perceptual):
    """The loops compute the target's features once; values and gradients must not change."""
    import lpips
    from semedit.losses import PerceptualModel
    torch.manual_seed(0)
    vgg = PerceptualModel(lpips.LPIPS(net="vgg", pnet_rand=True, pretrained=True, verbose=False), "lpips vgg")
    target = torch.rand(1, 3, 40, 40) * 2 - 1
    for model in (perceptual, vgg):
        x = (torch.rand(2, 3, 40, 40) * 2 - 1).requires_grad_(True)
        pair, fixed = model(x, target), model.against(target)(x)
        assert pair.shape == fixed.shape == (2,) and (pair > 0).all()
        assert torch.allclose(pair, fixed, rtol=1e-5, atol=1e-7)
        g_pair, = torch.autograd.grad(pair.sum(), x)
        g_fixed, = torch.autograd.grad(model.against(target)(x).sum(), x)
        assert torch.allclose(g_pair, g_fixed, rtol=1e-4, atol=1e-9)


def test_command_line_reads_every_image_format_and_fails_loudly(tmp_path, monkeypatch):
    """A folder scan takes TIFF and BMP too; methods in any case; unreadable inputs make the
    command exit with an error after the others are done, so a batch script can tell."""
    import csv
    from PIL import Image
    from semedit.__main__ import main
    from semedit.settings import PROJECT_ROOT
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = tmp_path / "in"
    src.mkdir()
    photo = Image.open(PROJECT_ROOT / "examples" / "embedded" / "portrait_02.png")
    photo.save(src / "a.tif")
    photo.save(src / "b.bmp")
    (src / "empty.png").write_bytes(b"")
    (src / "notes.jpg").write_text("not an image")
    with pytest.raises(SystemExit, match="2 of 4 inputs could not be inverted: empty.png, notes.jpg"):
        main(["invert", str(src), "--methods", "W+", "--steps", "3", "--out", str(tmp_path / "out")])
    rows = list(csv.DictReader(open(tmp_path / "out" / "metrics.csv")))
    assert [r["image"] for r in rows] == ["a.tif", "b.bmp"] and rows[0]["method"] == "W+ optimisation"
    with pytest.raises(SystemExit, match="unknown methods"):
        main(["invert", str(src), "--methods", "w++"])


@pytest.mark.parametrize("knob, value, message", [
    ("lambda_reg", None, "lambda_reg must be a number >= 0"), ("lambda_reg", -1.0, "lambda_reg must be"),
    ("lambda_reg", float("nan"), "lambda_reg must be"), ("identity_weight", -0.5, "identity_weight must be"),
    ("steps", 0, "steps must be a whole number >= 1"), ("n_chunks", 2.5, "n_chunks must be a whole number"),
    ("steps", True, "steps must be"), ("chunky_space", "z", "chunky_space must be one of w, w\\+, s")])
def test_knobs_refuse_settings_out_of_range(knob, value, message):
    """One check for the inversion tab, the segment editor and the command line: a bad knob is a
    SettingError (shown as a message), raised before any method runs."""
    from semedit.errors import SettingError
    from semedit.inversion.suite import Knobs
    with pytest.raises(SettingError, match=message):
        Knobs(**{knob: value})
    assert Knobs(steps=1, lambda_reg=0, n_chunks=1, pti_tune_steps=0).lambda_reg == 0  # the edges are allowed
