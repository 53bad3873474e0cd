"""The procedural portrait renderer: determinism, ground truth that matches the pixels, re-rendering."""
import pytest
import torch
import torch.nn.functional as F

from semedit.synth import ACCESSORIES, HAIR_STYLES, render, sample_portraits
from semedit import segmentation as L
from semedit.synth.params import FIELDS, IDENTITY_FIELDS, params_from_latent, sample_latents


def test_deterministic_per_seed():
    a, b, c = (render(sample_portraits(6, seed=s), 64) for s in (3, 3, 4))
    assert torch.equal(a.image, b.image) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.image, c.image)


def test_shapes_ranges_and_sizes():
    p = sample_portraits(3, seed=0)
    for size in (64, 256):
        r = render(p, size)
        assert r.image.shape == (3, 3, size, size) and r.labels.shape == (3, size, size)
        assert r.image.min() >= -1 and r.image.max() <= 1 and r.labels.dtype == torch.long
    with pytest.raises(ValueError):
        render(p, 8)


def test_latent_map_is_uniform_and_covers_every_style():
    p = params_from_latent(sample_latents(4000, seed=0))
    assert p.values.shape == (4000, len(FIELDS))
    assert abs(p.values.mean().item() - 0.5) < 0.02 and p.values.min() >= 0 and p.values.max() <= 1
    counts = torch.bincount(p.hair_style, minlength=len(HAIR_STYLES))
    assert (counts > 4000 / len(HAIR_STYLES) * 0.7).all()


def _boundary(labels: torch.Tensor) -> torch.Tensor:
    """Pixels within one pixel of a label change (anti-aliased edges)."""
    lab = labels[:, None].float()
    mx = F.max_pool2d(lab, 3, 1, 1)
    mn = -F.max_pool2d(-lab, 3, 1, 1)
    return (mx != mn)[:, 0]


@pytest.mark.parametrize("field,classes,all_change", [
    ("bg_hue", {L.BACKGROUND}, True),
    ("hair_color", {L.HAIR, L.BROWS, L.BEARD}, True),
    ("clothes_hue", {L.NECK_CLOTHES}, False),  # the neck shares the class, not the colour
    ("iris_hue", {L.EYES}, False),  # the eye whites do not change with the iris
])
def test_label_map_matches_drawn_pixels(field, classes, all_change):
    """Changing one layer's colour changes exactly the pixels labelled with that layer."""
    p = sample_portraits(24, seed=1)
    a = render(p, 96)
    b = render(p.with_fields(**{field: (p[field] + 0.37) % 1.0}), 96)
    assert torch.equal(a.labels, b.labels)  # colour changes never move labels
    changed = (a.image - b.image).abs().amax(1) > 1e-4
    inside = torch.zeros_like(changed)
    for c in classes:
        inside |= a.labels == c
    interior = ~_boundary(a.labels)
    # a thin stroke covering under half of a pixel leaves it to the layer below: allow 1 in 10^4
    outside = (changed & ~inside & interior).float().mean()
    assert outside < 1e-4, f"{field} changed {outside:.2e} of the pixels outside {classes}"
    if all_change:
        assert (changed | ~inside | ~interior).float().mean() > 0.999


def test_every_class_appears():
    p = sample_portraits(64, seed=2)
    p = p.with_fields(beard=torch.where(torch.arange(64) % 2 == 0, 0.9, 0.1),
                      glasses=torch.where(torch.arange(64) % 3 == 0, 0.9, 0.1))
    r = render(p, 64)
    present = set(r.labels.unique().tolist())
    assert set(range(L.NUM_CLASSES - 1)) <= present  # every class except the accessory
    assert L.ACCESSORY not in present


def test_same_person_turned():
    p = sample_portraits(8, seed=5).with_fields(glasses=0.0, beard=0.0)
    left, right = render(p.with_yaw(-0.5), 96), render(p.with_yaw(0.5), 96)
    assert torch.equal(p.with_yaw(-0.5).identity(), p.with_yaw(0.5).identity())
    xs = torch.arange(96).float()
    def eye_x(r):
        m = (r.labels == L.EYES).float()
        return (m.sum(1) * xs).sum(1) / m.sum((1, 2))
    assert (eye_x(right) > eye_x(left) + 3).all()  # the eyes follow the head's turn
    face_l, face_r = (left.labels == L.SKIN).sum((1, 2)), (right.labels == L.SKIN).sum((1, 2))
    assert ((face_l - face_r).abs().float() / face_l < 0.25).all()  # same head, other view


def test_same_person_with_another_persons_hair():
    a, b = sample_portraits(6, seed=7), sample_portraits(6, seed=8)
    ab = a.with_hair_of(b)
    assert torch.equal(ab.identity(), a.identity())
    assert torch.equal(ab.hair_style, b.hair_style)
    for f in ("hair_color", "hair_length", "hair_volume"):
        assert torch.equal(ab[f], b[f])
    for f in FIELDS:
        if f not in ("hair_color", "hair_gray", "hair_length", "hair_volume", "hair_parting", "hair_curl_phase"):
            assert torch.equal(ab[f], a[f])
    r = render(ab, 64)
    assert r.labels.shape == (6, 64, 64)


@pytest.mark.parametrize("name", ACCESSORIES[1:])
def test_out_of_domain_accessories(name):
    p = sample_portraits(4, seed=9).with_fields(yaw=0.5)
    r = render(p.with_accessory(name), 64)
    assert ((r.labels == L.ACCESSORY).sum((1, 2)) > 0).all()
    plain = render(p, 64)
    assert not torch.equal(plain.image, r.image)
    with pytest.raises(ValueError):
        p.with_accessory("monocle")


def test_identity_vector_names():
    p = sample_portraits(2, seed=0)
    assert p.identity().shape == (2, len(IDENTITY_FIELDS))
    att = p.attributes()
    assert set(att) >= {"smile", "beard", "glasses", "age", "hair_style"}
    assert set(p.pose()) == {"yaw", "light_angle"}


def test_segmenter_batches_can_mix_in_generator_samples():
    """With a generator, the first share of a batch is its image of the same latents (labels
    from the renderer, no accessory); the rest is the renderer's batch unchanged."""
    from semedit.networks.stylegan2 import StyleGAN2Config
    from semedit.synth.params import LATENT_DIM
    from semedit.training.segmenter import SegmenterTraining, training_batch
    from tests.conftest import tiny_generator
    G = tiny_generator(config=StyleGAN2Config(resolution=16, z_dim=LATENT_DIM, w_dim=32, mapping_layers=2,
                                              channels=(16, 16, 8)))
    cfg = SegmenterTraining(batch=4, size=16, accessory_share=1.0, generator_share=0.5)
    plain_img, plain_lab = training_batch(3, cfg)
    mixed_img, mixed_lab = training_batch(3, cfg, G)
    assert mixed_img.shape == (4, 3, 16, 16) and mixed_lab.shape == (4, 16, 16)
    assert torch.equal(mixed_img[2:], plain_img[2:]) and torch.equal(mixed_lab[2:], plain_lab[2:])
    assert not torch.allclose(mixed_img[:2], plain_img[:2], atol=0.05)
    assert not (mixed_lab[:2] == L.ACCESSORY).any() and (plain_lab == L.ACCESSORY).any()
