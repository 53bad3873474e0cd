"""Directions: fitting (supervised, conditional, PCA, StyleSpace, guided), applying, file formats."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from semedit.editing.directions import Direction, apply_edits, edit_space, weakness
from semedit.editing.fit import (calibration, condition, edit_changes, edit_region, fit_linear, guided_direction,
                                 label_samples, learn_direction, most_selective, pca_directions, sample_w,
                                 selectivity, stylespace_channels, variants)
from semedit.editing.formats import read_directions, save_directions
from semedit.errors import CheckpointError, EditingError
from semedit.latents import Latent, concat_styles, synthesize
from tests.conftest import TINY, tiny_generator


def planted(n=3000, dim=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, dim, generator=g) * torch.linspace(0.5, 2.0, dim)  # anisotropic, as W is
    normal = torch.randn(dim, generator=g)
    normal = normal / normal.norm()
    return w, normal, g


def test_supervised_direction_recovers_a_planted_graded_attribute():
    w, normal, g = planted()
    y = w @ normal * 3.0 + 0.2 * torch.randn(len(w), generator=g)
    d = fit_linear(w, y, "planted")
    assert float(d.normal @ normal) >= 0.95 and d.metrics["r2"] > 0.95
    # the edit follows the codes' covariance: Sigma @ normal, not the bare normal
    ascent = torch.cov(w.T) @ normal
    assert float(d.vector @ ascent / ascent.norm()) >= 0.95 and float(d.vector @ normal) < 0.95
    # one unit along the direction moves the attribute by one standard deviation of it
    assert float(d.unit * 3.0 * (d.vector @ normal)) == pytest.approx(float(y.std()), rel=0.05)


def test_supervised_direction_recovers_a_planted_binary_attribute():
    w, normal, g = planted(seed=1)
    y = ((w @ normal + 0.1 * torch.randn(len(w), generator=g)) > 0.3).float()
    d = fit_linear(w, y, "planted")
    assert d.source.startswith("supervised logistic") and d.metrics["accuracy"] > 0.9
    assert float(d.normal @ normal) >= 0.95


def test_conditional_direction_holds_the_conditioned_attribute():
    w, n1, g = planted(seed=2)
    n2 = torch.randn(32, generator=g)
    n2 = n2 - (n2 @ n1) * n1 + 0.6 * n1  # correlated with the first attribute
    n2 = n2 / n2.norm()
    a = fit_linear(w, w @ n1, "a")
    b = fit_linear(w, w @ n2, "b")
    a_given_b = condition(a, [b])
    assert abs(float(a_given_b.vector @ b.normal)) < 1e-5
    moved = w[:10] + 2 * a_given_b.unit * a_given_b.vector
    assert torch.allclose(moved @ n2, w[:10] @ n2, atol=0.05)       # b held
    assert ((moved @ n1) - (w[:10] @ n1)).abs().min() > 0.1            # a moved
    with pytest.raises(ValueError):
        condition(a, [a])


def test_variants_cover_conditions_and_layer_ranges():
    w, n1, g = planted(seed=4)
    n2 = torch.randn(32, generator=g)
    a, b = fit_linear(w, w @ n1, "a"), fit_linear(w, w @ n2, "b")
    found = variants(a, [b], num_ws=10, parts=5)
    ranges = [d.layers for d in found]
    # the plain fit and the conditioned one, each on every layer and on the 14 proper ranges of a 5-step grid
    assert len(found) == 2 * 15 and ranges[:15] == ranges[15:] and ranges[0] is None
    assert {(0, 2), (2, 8), (8, 10), (0, 8)} <= set(ranges) and (0, 10) not in ranges
    assert all(torch.equal(d.vector, a.vector) for d in found[:15])
    assert all(abs(float(d.vector @ b.normal)) < 1e-5 for d in found[15:])
    assert len(variants(a, [], num_ws=10)) == 15  # nothing to hold: the plain fit only
    with pytest.raises(ValueError):
        variants(Direction("s", "s", torch.ones(4)), [], num_ws=10)


def test_most_selective_prefers_the_aim_then_the_cleanest_edit():
    t = torch.tensor
    assert selectivity({"a": t([2.0, 2.0]), "b": t([0.25, -0.25])}, "a") == pytest.approx(2.0)  # aim met: own
    assert selectivity({"a": t([2.0, 2.0]), "b": t([1.0, 1.0])}, "a") == pytest.approx(0.5)     # own / (4 x other)
    # another attribute moved up in one image and down in the other leaks although its mean is 0
    assert selectivity({"a": t([2.0, 2.0]), "b": t([1.0, -1.0])}, "a") == pytest.approx(0.5)
    assert selectivity({"a": t([-1.0, -1.0]), "b": t([0.0, 0.0])}, "a") < 0                      # the wrong way
    cands = [Direction(name, "w", torch.ones(4)) for name in ("leaky", "weak", "clean")]
    effects = {"leaky": {"a": t([3.0]), "b": t([1.5])}, "weak": {"a": t([0.5]), "b": t([0.0])},
               "clean": {"a": t([1.4]), "b": t([-0.2])}}
    best, change, scale = most_selective(cands, "a", lambda d: effects[d.name])
    assert best.name == "clean" and change is effects["clean"] and scale == 1.0
    with pytest.raises(ValueError):
        most_selective([], "a", lambda d: {})


def test_weak_directions_are_named_by_what_was_measured_and_listed_last():
    """A slider whose attribute barely moved when it was chosen, or whose fit explains little of
    it, is labelled weak with the measure and comes after the others in the menus."""
    from semedit.ui.sliders import direction_menu
    v = torch.ones(4)
    moved = lambda own: {"selection": {"chosen": {"own": own}}, "r2": 0.02}  # noqa: E731 (the change decides)
    smile = Direction("smile", "w", v, attribute="smile", metrics=moved(-0.07))
    age = Direction("age", "w", v, attribute="age", metrics=moved(1.76))
    plain = Direction("smile (w, plain)", "w", v, attribute="smile", metrics={"r2": 0.02})
    glasses = Direction("glasses (w, plain)", "w", v, attribute="glasses", metrics={"accuracy": 0.55})
    pc = Direction("PC0", "w", v, metrics={"explained variance": 0.3})
    assert weakness(smile) == "+2 units moved smile by -0.07 std" and weakness(age) == ""
    assert "R^2 0.02" in weakness(plain) and "accuracy 0.55" in weakness(glasses) and weakness(pc) == ""
    menu = direction_menu([smile, age, plain, glasses, pc])
    assert [name for _, name in menu] == ["age", "PC0", "smile", "smile (w, plain)", "glasses (w, plain)"]
    assert menu[0] == ("age", "age") and menu[2][0] == "smile (weak here: +2 units moved smile by -0.07 std)"


def test_shipped_directions_say_which_sliders_are_weak(tmp_path, monkeypatch, capsys):
    """The 8-layer GAN's smile is not linear in its w (R^2 0.02): its smile slider is marked weak,
    its age slider (the sliders' aim met) is not; the command line warns of the weak one."""
    from semedit.__main__ import main
    from semedit.registry import Registry, load_catalogue
    from semedit.editing.library import directions_for
    from semedit.settings import WEIGHTS_DIR, Settings
    reg = Registry(load_catalogue(WEIGHTS_DIR / "catalogue.json"), Settings(device="cpu", hub_offline=True))
    found = {d.name: d for d in directions_for(reg, "embedded-portraits-64-gan-map8")}
    assert weakness(found["smile"]) and not weakness(found["age"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("smile", "age"):
        main(["edit", "--model", "embedded-portraits-64-gan-map8", "--seed", "1", "--direction", f"{name}=2",
              "--out", str(tmp_path / f"{name}.png")])
        assert ("warning: 'smile' is weak" in capsys.readouterr().err) == (name == "smile")


def test_calibrated_units_let_a_small_clean_edit_beat_a_big_leaky_one():
    t = torch.tensor
    assert calibration({"a": t([1.0])}, "a") == pytest.approx(2.0)   # +2 units moved it 1 std: twice the step
    assert calibration({"a": t([4.0])}, "a") == pytest.approx(0.5)
    assert calibration({"a": t([0.1])}, "a") == pytest.approx(3.0)   # clamped: no far extrapolation
    assert calibration({"a": t([-1.0])}, "a") == 1.0                 # moves the wrong way: left alone
    cands = [Direction(name, "w", torch.ones(4)) for name in ("big leaky", "small clean")]
    effects = {"big leaky": {"a": t([2.0]), "b": t([0.4])}, "small clean": {"a": t([0.8]), "b": t([0.05])}}
    assert most_selective(cands, "a", lambda d: effects[d.name])[0].name == "big leaky"
    best, _, scale = most_selective(cands, "a", lambda d: effects[d.name], calibrate=True)
    assert best.name == "small clean" and scale == pytest.approx(2.5)


def test_edit_changes_measure_what_a_reader_reads():
    G = tiny_generator()
    w = sample_w(G, 64, seed=0)
    read = lambda images: {"brightness": images.mean((1, 2, 3)), "red": images[:, 0].mean((1, 2))}  # noqa: E731
    before = label_samples(G, w, read)
    d = fit_linear(w, before["brightness"], "brightness", ridge=0.1)
    stds = {k: float(v.std()) for k, v in before.items()}
    up, down = (edit_changes(G, w, d, read, before, stds, units=u) for u in (2.0, -2.0))
    assert set(up) == {"brightness", "red"} and up["brightness"].shape == (64,)  # per code, in stds
    assert float(up["brightness"].mean()) > 0.5 and float(down["brightness"].mean()) < -0.5
    assert edit_changes(G, w, d, read, before, stds, units=0.0)["brightness"].abs().max() < 1e-5


def test_pca_directions_are_orthonormal_and_ordered():
    w, _, _ = planted(seed=3)
    pcs = pca_directions(w, 5)
    v = torch.stack([d.vector for d in pcs])
    assert torch.allclose(v @ v.T, torch.eye(5), atol=1e-5)
    assert [d.unit for d in pcs] == sorted([d.unit for d in pcs], reverse=True)
    assert pcs[0].unit == pytest.approx(2.0, rel=0.1)  # the widest axis has std 2


def test_applying_edits_in_each_space():
    G = tiny_generator()
    w = sample_w(G, 3, seed=1)
    d_all = Direction("all", "w", torch.randn(TINY.w_dim), unit=0.5)
    d_coarse = Direction("coarse", "w", torch.randn(TINY.w_dim), layers=(0, 2))
    s_dim = sum(G.synthesis.style_dims)
    d_s = Direction("s", "s", torch.nn.functional.one_hot(torch.tensor(5), s_dim).float(), unit=2.0)

    out = apply_edits(G, Latent("w", w), [(d_all, 2.0)])
    assert out.space == "w" and torch.allclose(out.value, w + 1.0 * d_all.vector)
    out = apply_edits(G, Latent("w", w), [(d_coarse, 1.0)])
    assert out.space == "w+" and edit_space(Latent("w", w), [d_coarse]) == "w+"
    changed = (out.value - G.broadcast(w)).abs().sum((0, 2)) > 0
    assert changed.tolist() == [True, True] + [False] * (G.num_ws - 2)
    # a W edit expressed in S gives the same image as the W edit itself
    in_s = apply_edits(G, Latent("w", w), [(d_all, 1.0), (d_s, 0.0)])
    direct = apply_edits(G, Latent("w", w), [(d_all, 1.0)])
    mixed = apply_edits(G, Latent("w", w), [(d_all, 1.0), (d_s, 1e-9)])
    assert in_s.space == "w" and mixed.space == "s"
    assert torch.allclose(synthesize(G, mixed), synthesize(G, direct), atol=1e-4)
    only_s = apply_edits(G, Latent("w", w), [(d_s, 1.0)])
    base = concat_styles(G.synthesis.styles(G.broadcast(w)))
    diff = only_s.value - base
    assert torch.allclose(diff[:, 5], torch.full((3,), 2.0)) and diff[:, :5].abs().max() < 1e-6


def test_stylespace_channels_rank_local_channels():
    G = tiny_generator()
    w = sample_w(G, 2, seed=4)
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[:, :, :8] = 1  # "class 1": the left half
    found = stylespace_channels(G, w, labels, class_id=1, top=3, batch=64)
    assert len(found) == 3 and all(d.space == "s" and d.vector.sum() == 1 for d in found)
    localities = [d.metrics["locality"] for d in found]
    assert localities == sorted(localities, reverse=True) and 0 < localities[0] <= 1
    with pytest.raises(ValueError):
        stylespace_channels(G, w, labels, class_id=7)


def test_guided_direction_increases_the_attribute():
    G = tiny_generator()
    latent = Latent("w+", G.broadcast(sample_w(G, 1, seed=5)))

    def brightness(img):
        return img.mean((1, 2, 3))
    d = guided_direction(G, latent, brightness, "brightness")
    before = float(brightness(synthesize(G, latent)))
    after = float(brightness(synthesize(G, apply_edits(G, latent, [(d, 3.0)]))))
    assert after > before


def test_guided_direction_holds_other_readings_and_counts_in_the_given_std():
    """With held readings, the guided step moves its attribute by about ``std`` a unit (first order)
    while the held readings move far less than along the plain gradient; a held copy of the
    attribute itself leaves nothing to move and is refused."""
    G = tiny_generator()
    latent = Latent("w+", G.broadcast(sample_w(G, 1, seed=5)))
    red = lambda img: img[:, 0].mean((1, 2))  # noqa: E731
    others = lambda img: img[:, 1:].mean((2, 3))  # noqa: E731  green and blue [N, 2]
    held = guided_direction(G, latent, red, "red", hold=others, std=0.01)
    plain = guided_direction(G, latent, red, "red", std=0.01)
    assert "held" in held.source and "held" not in plain.source

    def moved(d):
        before, after = synthesize(G, latent), synthesize(G, apply_edits(G, latent, [(d, 1.0)]))
        return float(red(after) - red(before)), float((others(after) - others(before)).abs().max())
    own_held, leak_held = moved(held)
    own_plain, leak_plain = moved(plain)
    assert 0.005 < own_held < 0.02 and 0.005 < own_plain < 0.02
    assert leak_held < 0.3 * leak_plain, (leak_held, leak_plain)
    with pytest.raises(EditingError, match="held"):
        guided_direction(G, latent, red, "red", hold=lambda img: red(img)[:, None])


def red_and_green():
    """(tiny G, a reader of mean red and green [B], 600 codes, the readings' stds, the W fit of red)."""
    G = tiny_generator()
    read = lambda im: {"red": im[:, 0].mean((1, 2)), "green": im[:, 1].mean((1, 2))}  # noqa: E731
    w = sample_w(G, 600, seed=0)
    labels = label_samples(G, w, read)
    stds = {k: float(v.std()) for k, v in labels.items()}
    start = replace(fit_linear(w, labels["red"], "red"), attribute="red")
    return G, read, w, stds, start


def test_learned_direction_moves_its_attribute_by_the_slider_amount_and_leaks_less():
    """One W+ vector learned from a plain W fit: on fresh codes +2 units move the attribute by
    about 2 of its standard deviations while the other reading moves less per unit of its own
    change than along the start; the same seed learns the same vector."""
    G, read, w, stds, start = red_and_green()
    learned = learn_direction(G, start, "red", read, stds, w, steps=60, batch=32, lr=0.05)
    assert learned.space == "w+" and learned.vector.shape == (G.num_ws, G.config.w_dim)
    assert float(learned.vector.norm()) == pytest.approx(1.0) and "learned" in learned.source
    fresh = sample_w(G, 200, seed=1)
    before = label_samples(G, fresh, read)
    moved = {d.name: edit_changes(G, fresh, d, read, before, stds) for d in (replace(start, name="start"), learned)}
    own = {k: float(v["red"].mean()) for k, v in moved.items()}
    leak = {k: float(v["green"].abs().mean()) for k, v in moved.items()}
    assert 1.5 < own["red"] < 2.5, own
    assert leak["red"] / own["red"] < 0.8 * leak["start"] / own["start"], (own, leak)
    again = learn_direction(G, start, "red", read, stds, w, steps=60, batch=32, lr=0.05)
    assert torch.equal(again.vector, learned.vector)
    with pytest.raises(EditingError):
        learn_direction(G, start, "blue", read, stds, w)


def test_edit_region_is_the_class_in_either_image_grown():
    before, after = torch.zeros(1, 8, 8, dtype=torch.long), torch.zeros(1, 8, 8, dtype=torch.long)
    before[0, 2, 2], after[0, 5, 5], after[0, 0, 7] = 5, 5, 3
    region = edit_region(before, after, 5, grow=1)
    assert region.shape == (1, 1, 8, 8)
    expected = torch.zeros(8, 8)
    expected[1:4, 1:4] = expected[4:7, 4:7] = 1
    assert torch.equal(region[0, 0], expected)


def test_learned_direction_with_a_region_is_read_inside_it():
    """A reader of the whole image's red, the attribute said to be drawn in the left half: with the
    outside term, the learned edit's red, pasted outside the left half only, reads much less than
    without it, while the whole edit still moves red."""
    G, read, w, stds, start = red_and_green()
    left = torch.zeros(1, 1, TINY.resolution, TINY.resolution)
    left[..., : TINY.resolution // 2] = 1
    region = lambda before, after: left.expand(len(before), -1, -1, -1)  # noqa: E731
    kw = dict(steps=80, batch=32, lr=0.05, region=region)
    plain, inside = (learn_direction(G, start, "red", read, stds, w, outside_weight=o, **kw) for o in (0.0, 5.0))
    assert "outside its region weighing 5" in inside.source and "outside" not in plain.source
    fresh = sample_w(G, 200, seed=1)
    before = synthesize(G, Latent("w", fresh)).clamp(-1, 1)

    def read_outside(d):
        after = synthesize(G, apply_edits(G, Latent("w", fresh), [(d, 2.0)])).clamp(-1, 1)
        whole = float((read(after)["red"] - read(before)["red"]).mean()) / stds["red"]
        out = float((read(after - left * (after - before))["red"] - read(before)["red"]).mean()) / stds["red"]
        return whole, out
    (whole_plain, out_plain), (whole_inside, out_inside) = read_outside(plain), read_outside(inside)
    assert whole_inside > 1.0 and whole_plain > 1.0, (whole_plain, whole_inside)
    assert out_inside / whole_inside < 0.7 * out_plain / whole_plain, (out_plain, whole_plain, out_inside, whole_inside)


def test_fit_learned_reports_progress_measures_itself_and_can_be_stopped(tmp_path):
    """"Fit your own"'s learned slider on a tiny generator read by an untrained regressor of its
    size: a W+ vector named for its attribute, its measures (learned and linear start) in the
    layout the sliders' weakness check reads, saved and read back; progress rises to the end, a
    progress callback that raises stops it, and attributes it cannot make are refused."""
    from semedit.networks.regressor import ParameterRegressor
    from semedit.training.directions import fit_learned
    from semedit.training.regressor import regressor_config
    G = tiny_generator()
    torch.manual_seed(0)
    regressor = ParameterRegressor(regressor_config(TINY.resolution)).eval().requires_grad_(False)
    seen = []
    d = fit_learned(G, regressor, "age", n=120, steps=6, fresh=40, progress=lambda f, what: seen.append((f, what)))
    assert d.name == "learned age" and d.space == "w+" and d.attribute == "age"
    assert d.vector.shape == (G.num_ws, TINY.w_dim) and d.unit > 0
    selection = d.metrics["selection"]
    assert set(selection["chosen"]) == {"own", "largest other", "largest other attribute"}
    assert selection["n"] == 40 and "r2" in d.metrics
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] > 0.9
    assert sum("step" in what for _, what in seen) == 6
    (back,) = read_directions(save_directions(tmp_path / "mine.safetensors", [d], generator="tiny"), "semedit")
    assert back.metrics["selection"] == selection and weakness(back) == weakness(d)

    def stop(fraction, what):
        if "step 3" in what:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        fit_learned(G, regressor, "age", n=120, steps=6, fresh=40, progress=stop)
    with pytest.raises(EditingError, match="learned sliders are made for"):
        fit_learned(G, regressor, "pitch", n=120, steps=6)


def test_published_formats_load(tmp_path):
    G = tiny_generator()
    C, L = TINY.w_dim, G.num_ws
    np.save(tmp_path / "smile_boundary.npy", np.random.randn(1, C).astype(np.float32))
    torch.save(torch.randn(1, C), tmp_path / "age.pt")
    torch.save(torch.randn(1, L, C), tmp_path / "pose.pt")
    np.savez(tmp_path / "ganspace.npz", lat_comp=np.random.randn(4, 1, C), lat_mean=np.zeros((1, C)),
             lat_stdev=np.array([3.0, 2.0, 1.0, 0.5]))
    torch.save({"comp": torch.randn(3, 1, C), "mean": torch.zeros(1, C), "std": torch.tensor([2.0, 1.0, 0.5])},
               tmp_path / "ffhq_pca.pt")
    (tmp_path / "channels.json").write_text(json.dumps({"smile": [[3, 5], [4, 1]], "hair": [[0, 2]]}))

    smile, = read_directions(tmp_path / "smile_boundary.npy", "interfacegan")
    assert smile.space == "w" and smile.vector.shape == (C,) and smile.name == "smile_boundary"
    age, = read_directions(tmp_path / "age.pt", "e4e")
    pose, = read_directions(tmp_path / "pose.pt", "e4e", num_ws=L)
    assert age.space == "w" and pose.space == "w+" and pose.vector.shape == (L, C)
    pcs = read_directions(tmp_path / "ganspace.npz", "ganspace")
    assert len(pcs) == 4 and pcs[0].unit == 3.0 and torch.isclose(pcs[0].vector.norm(), torch.tensor(1.0))
    assert len(read_directions(tmp_path / "ffhq_pca.pt", "ganspace")) == 3
    chans = read_directions(tmp_path / "channels.json", "stylespace", style_dims=G.synthesis.style_dims)
    assert [d.name for d in chans] == ["smile", "hair"] and chans[0].vector.sum() == 2
    offsets = np.cumsum([0] + list(G.synthesis.style_dims))
    assert chans[0].vector[offsets[3] + 5] == 1 and chans[1].vector[offsets[0] + 2] == 1

    w, _, g = planted(seed=9, dim=TINY.w_dim)
    fitted = fit_linear(w, w[:, 0] + 0.1 * torch.randn(len(w), generator=g), "fitted")
    coarse = replace(fitted, name="fitted, coarse", layers=(0, 2))  # shares the fit's tensors
    mine = [smile, pose, chans[0], fitted, coarse]
    save_directions(tmp_path / "mine.safetensors", mine, generator="tiny")
    back = read_directions(tmp_path / "mine.safetensors", "semedit")
    assert [d.name for d in back] == ["smile_boundary", "pose", "smile", "fitted", "fitted, coarse"]
    assert all(torch.equal(a.vector, b.vector) and a.space == b.space and a.layers == b.layers
               for a, b in zip(mine, back))
    assert back[0].normal is None and torch.equal(back[3].normal, fitted.normal)  # a fit keeps its normal


def test_bad_direction_files_are_refused(tmp_path):
    G = tiny_generator()
    np.save(tmp_path / "wrong.npy", np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(CheckpointError, match=r"\(1, C\)"):
        read_directions(tmp_path / "wrong.npy", "interfacegan")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match="not a loadable numpy"):
        read_directions(tmp_path / "objects.npy", "interfacegan")
    torch.save(torch.randn(1, 5, 32), tmp_path / "pose.pt")
    with pytest.raises(CheckpointError, match="generator has"):
        read_directions(tmp_path / "pose.pt", "e4e", num_ws=G.num_ws)
    (tmp_path / "far.json").write_text(json.dumps([[99, 0]]))
    with pytest.raises(CheckpointError, match="outside this generator"):
        read_directions(tmp_path / "far.json", "stylespace", style_dims=G.synthesis.style_dims)
    (tmp_path / "x.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        read_directions(tmp_path / "x.safetensors", "semedit")
    np.save(tmp_path / "wide.npy", np.zeros((1, TINY.w_dim * 2), dtype=np.float32))  # a boundary of another G
    with pytest.raises(CheckpointError, match="wide in W"):
        read_directions(tmp_path / "wide.npy", "interfacegan", w_dim=TINY.w_dim)
    np.savez(tmp_path / "pcs.npz", lat_comp=np.ones((2, 1, TINY.w_dim + 1)), lat_stdev=np.ones(2))
    with pytest.raises(CheckpointError, match="wide in W"):
        read_directions(tmp_path / "pcs.npz", "ganspace", w_dim=TINY.w_dim)
    with pytest.raises(CheckpointError, match="not an array of numbers"):
        read_directions(tmp_path / "pcs.npz", "interfacegan")                  # an archive where an array belongs


def test_catalogue_directions_load_through_the_registry(tmp_path, make_registry, tiny_file):
    from semedit.editing.library import directions_for
    G = tiny_generator()
    save_directions(tmp_path / "weights" / "tiny-directions.safetensors",
                    [Direction("up", "w", torch.randn(TINY.w_dim), unit=0.3)], generator="tiny")
    np.save(tmp_path / "weights" / "smile.npy", np.random.randn(1, TINY.w_dim).astype(np.float32))
    reg = make_registry({
        "tiny": {"kind": "generator", "format": "safetensors", "file": "tiny.safetensors"},
        "tiny-directions": {"kind": "directions", "format": "semedit", "file": "tiny-directions.safetensors",
                            "config": {"generator": "tiny"}},
        "tiny-smile": {"kind": "directions", "format": "interfacegan", "file": "smile.npy",
                       "config": {"generator": "tiny", "name": "smile"}},
        "missing": {"kind": "directions", "format": "interfacegan", "file": "nowhere.npy",
                    "config": {"generator": "tiny"}},
    })
    found = directions_for(reg, "tiny")
    assert [d.name for d in found] == ["up", "smile"] and found[0].unit == pytest.approx(0.3)
    assert G.num_ws == reg.get("tiny").num_ws


def test_z_directions_move_a_samples_z_and_need_one():
    from semedit.editing.directions import edit_code
    G = tiny_generator()
    z = torch.randn(1, TINY.z_dim, generator=torch.Generator().manual_seed(7))
    base = Latent("w+", G.broadcast(G.truncate(G.mapping(z), 0.7)))
    dz = Direction("up", "z", torch.nn.functional.one_hot(torch.tensor(3), TINY.z_dim).float(), unit=1.5)
    dw = Direction("w", "w", torch.randn(TINY.w_dim))
    moved = edit_code(G, base, [(dz, 2.0), (dw, 0.5)], z=z, truncation=0.7)
    z2 = z.clone()
    z2[0, 3] += 3.0
    expected = G.broadcast(G.truncate(G.mapping(z2), 0.7)) + 0.5 * dw.vector
    assert moved.space == "w+" and torch.allclose(moved.value, expected, atol=1e-5)
    assert torch.equal(edit_code(G, base, [(dz, 0.0)], z=z).value, base.value)  # nothing moves at zero
    with pytest.raises(ValueError, match="has none"):
        edit_code(G, base, [(dz, 1.0)])


def test_command_line_edits_a_sample_and_refuses_unknown_directions(tmp_path, monkeypatch):
    from PIL import Image
    from semedit.__main__ import main
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    main(["edit", "--seed", "3", "--out", str(tmp_path / "plain.png")])
    main(["edit", "--seed", "3", "--direction", "skin tone=2", "--direction", "grey hair=-1",
          "--out", str(tmp_path / "edit.png")])
    plain, edited = (np.asarray(Image.open(tmp_path / n), dtype=float) for n in ("plain.png", "edit.png"))
    assert plain.shape == edited.shape == (64, 64, 3) and np.abs(plain - edited).mean() > 2
    with pytest.raises(SystemExit, match="unknown direction"):
        main(["edit", "--direction", "no such=1"])
    with pytest.raises(SystemExit, match="must be a number"):
        main(["edit", "--direction", "smile=lots"])
    with pytest.raises(SystemExit, match="give NAME=UNITS"):
        main(["edit", "--direction", "smile"])
    with pytest.raises(SystemExit, match="at most 10 units"):
        main(["edit", "--direction", "smile=100"])
    with pytest.raises(SystemExit, match="not a generator"):
        main(["edit", "--model", "embedded-segmenter-64"])
    with pytest.raises(SystemExit):  # argparse: not a seed
        main(["edit", "--seed", "-1"])
    with pytest.raises(SystemExit, match="not a generator"):
        main(["sample", "--model", "embedded-segmenter-64"])
    with pytest.raises(SystemExit):  # argparse: at least one sample
        main(["sample", "-n", "0"])


def test_command_line_guided_edit_moves_its_attribute_at_the_sample(tmp_path, monkeypatch):
    """``--guided smile=U`` on the 8-layer GAN (where no linear direction moves smile): the
    regressor reads more smile at +2 than at -2 on the same sample; unknown attributes and
    generators without a differentiable reader are refused with a message."""
    from semedit import pipeline
    from semedit.__main__ import main
    from semedit.imaging import load_image, pil_to_tensor
    from semedit.registry import Registry
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = "embedded-portraits-64-gan-map8"
    for units in ("2", "-2"):
        main(["edit", "--model", model, "--seed", "1", "--guided", f"smile={units}", "--out", str(tmp_path / f"{units}.png")])
    images = torch.cat([pil_to_tensor(load_image(tmp_path / f"{u}.png")) for u in ("2", "-2")])
    smile = pipeline.read_attributes(Registry.from_settings(), model, images)["smile"]
    assert smile[0] > smile[1] + 0.2, smile
    with pytest.raises(SystemExit, match="unknown direction 'grin'"):
        main(["edit", "--model", model, "--guided", "grin=1"])


@pytest.mark.parametrize("argv", [["edit", "--out", "{tmp}/edit_no_suffix"], ["sample", "--out", "{tmp}/grid.txt"],
                                  ["edit", "--out", "{tmp}/a_file/edit.png"], ["edit", "--truncation", "50"],
                                  ["sample", "--truncation", "-3"]])
def test_command_line_refuses_bad_output_paths_and_truncation_before_any_work(tmp_path, argv, capsys):
    from semedit.__main__ import main
    (tmp_path / "a_file").write_text("a file, not a folder")
    with pytest.raises(SystemExit) as stop:
        main([a.format(tmp=tmp_path) for a in argv])
    assert stop.value.code == 2  # argparse's usage error, before the generator is even loaded
    err = capsys.readouterr().err
    assert "end it in one of" in err or "cannot write" in err or "outside 0 to 1.5" in err
