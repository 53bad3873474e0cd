"""ChunkyGAN projects: chunk-local editing, mask reshaping, save and load."""
import pytest
import torch

from semedit.editing.chunks import (ChunkProject, composite, leakage, load_project, render_chunks, reshape_mask,
                                    save_project, share, towards_code, update_chunk)
from semedit.editing.directions import Direction
from semedit.errors import CheckpointError, SemeditError
from semedit.latents import Latent, convert
from tests.conftest import TINY, tiny_generator


def project_of(G, n=3, space="w+"):
    g = torch.Generator().manual_seed(0)
    w = G.mapping(torch.randn(n, TINY.z_dim, generator=g))
    codes = Latent("w", w) if space == "w" else convert(G, Latent("w+", G.broadcast(w)), space)
    masks = torch.zeros(n, 16, 16)
    masks[0, :, :5], masks[1, :, 5:11], masks[2, :, 11:] = 1, 1, 1  # vertical bands, hard
    return ChunkProject("tiny", codes, masks)


def test_a_chunk_edit_changes_pixels_only_inside_its_mask():
    G = tiny_generator()
    p = project_of(G)
    before_chunks = render_chunks(G, p)
    before = composite(before_chunks, p.masks)
    d = Direction("up", "w", torch.randn(TINY.w_dim), unit=2.0)
    edited = p.with_edit(1, d, 1.5)
    chunks = update_chunk(G, edited, before_chunks, 1)
    assert torch.equal(chunks[0], before_chunks[0]) and torch.equal(chunks[2], before_chunks[2])
    after = composite(chunks, edited.masks)
    torch.testing.assert_close(after, composite(render_chunks(G, edited), edited.masks))  # cache == full render
    inside, outside = leakage(before, after, p.masks[1] > 0.5)
    assert inside > 0.01 and outside == 0.0
    # soft masks: the change outside is bounded by the chunk's mask there
    soft = reshape_mask(p.masks, 1, "feather", 2)
    b2, a2 = composite(before_chunks, soft), composite(chunks, soft)
    diff = (a2 - b2).abs().amax(1)[0]
    bound = soft[1] * (chunks[1] - before_chunks[1]).abs().amax(0)
    assert (diff <= bound + 1e-5).all()


@pytest.mark.parametrize("space", ["w", "w+", "s"])
def test_moving_a_chunk_towards_a_code(space):
    """+1 of ``towards_code`` gives the chunk that code, +0.5 lies between, other chunks keep
    theirs; after a StyleSpace edit of the chunk the move lies in S and still lands on the code."""
    G = tiny_generator()
    p = project_of(G, space=space)
    code = Latent("w", G.mapping(torch.randn(1, TINY.z_dim, generator=torch.Generator().manual_seed(9))))
    d = towards_code(G, p, 1, code, "towards")
    assert d.space == ("s" if space == "s" else "w+")
    as_moved = lambda q, i: convert(G, q.edited_codes(G, [i]), d.space).value  # noqa: E731
    want = convert(G, code, d.space).value
    torch.testing.assert_close(as_moved(p.with_edit(1, d, 1.0), 1), want, atol=1e-5, rtol=1e-5)
    half = as_moved(p.with_edit(1, d, 0.5), 1)
    torch.testing.assert_close(half, (as_moved(p, 1) + want) / 2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(as_moved(p.with_edit(1, d, 1.0), 0), as_moved(p, 0))
    s_dim = sum(G.synthesis.style_dims)
    styled = p.with_edit(1, Direction("channel", "s", torch.eye(s_dim)[3]), 2.0)
    d_s = towards_code(G, styled, 1, code, "towards after S")
    assert d_s.space == "s"
    torch.testing.assert_close(styled.with_edit(1, d_s, 1.0).edited_codes(G, [1]).value,
                               convert(G, code, "s").value, atol=1e-5, rtol=1e-5)


def test_mask_operations_keep_masks_summing_to_one():
    p = project_of(tiny_generator())
    for op in ("grow", "shrink", "feather"):
        m = reshape_mask(p.masks, 1, op, 2)
        torch.testing.assert_close(m.sum(0), torch.ones(16, 16))
        assert (m >= 0).all()
    assert reshape_mask(p.masks, 1, "grow", 2)[1].sum() > p.masks[1].sum()
    assert reshape_mask(p.masks, 1, "shrink", 2)[1].sum() < p.masks[1].sum()
    m = share(p.masks, 0, torch.zeros(16, 16))  # the freed pixels go to the others
    torch.testing.assert_close(m.sum(0), torch.ones(16, 16))
    with pytest.raises(ValueError):
        reshape_mask(p.masks, 0, "twist", 1)


def test_project_round_trip_and_refusals(tmp_path):
    G = tiny_generator()
    d = Direction("older", "w", torch.randn(TINY.w_dim), unit=0.7, attribute="age")
    s_dim = sum(G.synthesis.style_dims)
    ds = Direction("hair channel", "s", torch.nn.functional.one_hot(torch.tensor(4), s_dim).float())
    p = project_of(G).with_edit(2, d, 1.0).with_edit(0, ds, -2.0).with_edit(2, d, 0.5)
    path = save_project(tmp_path / "p.safetensors", p)
    back = load_project(path, G, "tiny")
    assert back.edits == p.edits and [x.name for x in back.directions] == ["older", "hair channel"]
    assert torch.equal(back.codes.value, p.codes.value) and torch.equal(back.masks, p.masks)
    torch.testing.assert_close(render_chunks(G, back), render_chunks(G, p))
    with pytest.raises(CheckpointError, match="made with tiny"):
        load_project(path, generator_name="other")
    (tmp_path / "junk.safetensors").write_bytes(b"not a project")
    with pytest.raises(CheckpointError):
        load_project(tmp_path / "junk.safetensors")
    from semedit.checkpoints import save_safetensors
    save_safetensors(tmp_path / "g.safetensors", G.config, G.state_dict())
    with pytest.raises(CheckpointError, match="not a semedit ChunkyGAN project"):
        load_project(tmp_path / "g.safetensors")
    big = tiny_generator(config=type(TINY)(resolution=32, z_dim=32, w_dim=32, mapping_layers=2,
                                           channels=(32, 32, 16, 16)))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_project(path, big)
    with pytest.raises(SemeditError):
        ChunkProject("tiny", p.codes, p.masks[:2])


def test_table2_and_leakage_on_a_tiny_model(make_registry, tiny_file):
    """The seed's Table 2 protocol end to end on a tiny generator (identity: pixel RMS here)."""
    from semedit.evaluation.editing import TABLE2_METHODS, identity_after_edits
    from semedit.inversion.suite import Context
    from semedit.losses import PerceptualModel
    from semedit.targets import Target
    from semedit import segmentation as L
    reg = make_registry({"tiny": {"kind": "generator", "format": "safetensors", "file": "tiny.safetensors"}})

    class RMS(torch.nn.Module):
        def forward(self, x, y):
            return (x - y).square().mean((1, 2, 3)).sqrt()

    class L1Net(torch.nn.Module):
        def forward(self, x, y):
            return (x - y).abs().mean((1, 2, 3))
    ctx = Context(perceptual=PerceptualModel(L1Net(), "L1"), device=torch.device("cpu"))
    labels = torch.zeros(16, 16, dtype=torch.long)
    labels[:5] = L.HAIR
    labels[5:] = L.SKIN
    targets = [Target.from_image(torch.rand(1, 3, 16, 16) * 2 - 1, labels=labels) for _ in range(2)]
    d = Direction("hair length", "w", torch.randn(TINY.w_dim), unit=0.5)
    table, leaks = identity_after_edits(reg, "tiny", targets, {"hair length": d, "age": d}, RMS(), ctx, steps=3)
    assert set(table) == {(m, e) for m, _, _ in TABLE2_METHODS for e in ("hair length", "age")}
    assert all(len(v) == 2 and all(a >= 0 and b >= 0 for a, b in v) for v in table.values())
    chunky = [x for x in leaks if x[0].startswith("ChunkyGAN")]
    assert len(chunky) == 4 and len([x for x in leaks if x[0] == "W+"]) == 2


def test_chunk_classes_name_every_class_once():
    from semedit import segmentation as L
    from semedit.inversion.chunky import chunk_classes, chunk_of_class
    for n in range(1, 9):
        groups = chunk_classes(n)
        assert len(groups) == n and sorted(c for g in groups for c in g) == list(range(L.NUM_CLASSES))
    assert chunk_of_class(4, L.HAIR) == 1 and chunk_of_class(4, L.EYES) == 3


def test_command_line_edits_the_hair_chunk_saves_and_reopens(tmp_path, monkeypatch):
    """python -m semedit chunk-edit: invert, edit the hair chunk only, save, reopen the project."""
    import numpy as np
    from PIL import Image
    from semedit.__main__ import main
    from semedit.settings import PROJECT_ROOT
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    example = PROJECT_ROOT / "examples" / "embedded" / "portrait_01.png"
    out, project = tmp_path / "edit.png", tmp_path / "p.safetensors"
    main(["chunk-edit", str(example), "--steps", "5", "--chunks", "3", "--out", str(tmp_path / "plain.png")])
    main(["chunk-edit", str(example), "--steps", "5", "--chunks", "3", "--edit", "hair:grey hair=3",
          "--mask", "hair:feather=1", "--save", str(project), "--out", str(out)])
    assert (tmp_path / "edit_photo.png").exists()
    back = load_project(project)
    assert [(e.chunk, e.direction, e.value) for e in back.edits] == [(1, "grey hair", 3.0)]
    plain, edited = (np.asarray(Image.open(p), dtype=float) for p in (tmp_path / "plain.png", out))
    assert np.abs(plain - edited).max() > 5  # the hair chunk changed (same seed, same inversion otherwise)
    main(["chunk-edit", "--project", str(project), "--edit", "1:grey hair=-1", "--out", str(tmp_path / "again.png")])
    assert (tmp_path / "again.png").exists()
    with pytest.raises(SystemExit, match="unknown direction"):
        main(["chunk-edit", "--project", str(project), "--edit", "hair:no such=1"])
    with pytest.raises(SystemExit, match="chunks 1 to 3"):
        main(["chunk-edit", "--project", str(project), "--edit", "7:grey hair=1"])
    with pytest.raises(SystemExit, match="not both"):
        main(["chunk-edit", str(example), "--project", str(project)])
    with pytest.raises(SystemExit, match="or --project with a saved project"):
        main(["chunk-edit"])
    with pytest.raises(SystemExit, match="--compare inverts the image"):
        main(["chunk-edit", "--project", str(project), "--compare"])
    with pytest.raises(SystemExit, match="give CHUNK:NAME=UNITS"):
        main(["chunk-edit", "--project", str(project), "--edit", "grey hair=1"])
