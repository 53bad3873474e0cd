import threading

import pytest
import torch

from semedit.errors import (CatalogueError, CheckpointError, ChecksumMismatchError, ModelNotAvailableError,
                            UnknownModelError)
from semedit.registry import load_catalogue, sha256_of
from tests.conftest import FIXTURES
from tests.hub_standin import HubStandIn, prefill_cache

COMMIT = "0123456789abcdef0123456789abcdef01234567"
NV_PKL = FIXTURES / "reference" / "nvlabs_32.pkl"


@pytest.fixture
def hub():
    standin = HubStandIn().start()
    yield standin
    standin.stop()


def hub_entry(fmt="nvlabs", filename="ffhq.pkl", sha256=None, repo="someone/stylegan2"):
    return {"kind": "generator", "format": fmt, "sha256": sha256,
            "hub": {"repo_id": repo, "filename": filename, "revision": COMMIT}}


# ---- catalogue ------------------------------------------------------------------------

def test_shipped_catalogue_is_valid():
    from semedit.settings import WEIGHTS_DIR
    cat = load_catalogue(WEIGHTS_DIR / "catalogue.json")
    assert cat.default_generator in cat.names("generator")
    for spec in cat.models:
        assert spec.file is not None or (spec.hub is not None and len(spec.hub.revision) == 40)


def test_every_shipped_local_model_loads(tmp_path):
    """The embedded models in weights/ load through the registry (directions through their reader)."""
    from semedit.editing.library import directions_for
    from semedit.registry import Registry
    from semedit.settings import WEIGHTS_DIR, Settings
    reg = Registry(load_catalogue(WEIGHTS_DIR / "catalogue.json"),
                   Settings(device="cpu", cache_dir=tmp_path, hub_offline=True, hub_cache_dir=tmp_path / "hub"))
    for spec in reg.catalogue.models:
        if spec.file is not None and spec.package is None:
            assert spec.file.is_file(), spec.name
            if spec.kind == "directions":  # each direction fits its generator (the file records no sizes)
                G = reg.get(spec.config["generator"])
                directions = directions_for(reg, spec.config["generator"])
                assert directions, spec.name
                size = {"z": G.config.z_dim, "w": G.config.w_dim, "w+": G.config.w_dim,
                        "s": sum(G.synthesis.style_dims)}
                assert all(d.vector.shape[-1] == size[d.space] for d in directions), spec.name
            else:
                assert reg.get(spec.name) is not None


@pytest.mark.parametrize("text,match", [
    ("{not json", "not valid JSON"),
    ('{"models": {"a": {"kind": "generator"}}}', "needs 'kind' and 'format'"),
    ('{"models": {"a": {"kind": "toaster", "format": "x", "file": "a"}}}', "unknown kind"),
    ('{"models": {"a": {"kind": "generator", "format": "x"}}}', "needs a 'file' or a 'hub'"),
    ('{"default_generator": "b", "models": {}}', "no model named 'b'"),
])
def test_bad_catalogue_gives_clear_error(tmp_path, text, match):
    path = tmp_path / "catalogue.json"
    path.write_text(text)
    with pytest.raises((CatalogueError, UnknownModelError), match=match):
        load_catalogue(path)


def test_unknown_model_name(make_registry, tiny_file):
    reg = make_registry({"tiny": {"kind": "generator", "format": "safetensors", "file": "tiny.safetensors"}})
    with pytest.raises(UnknownModelError, match="tiny"):
        reg.get("tiny2")


def test_model_files_name_what_results_of_a_generator_depend_on(make_registry, tiny_file):
    folder = tiny_file.parent
    for name in ("reader.safetensors", "dirs.safetensors", "other.safetensors", "judge.pth"):
        (folder / name).write_bytes(name.encode())
    reg = make_registry({
        "tiny": {"kind": "generator", "format": "safetensors", "file": "tiny.safetensors",
                 "config": {"regressor": "reader"}},
        "reader": {"kind": "regressor", "format": "safetensors", "file": "reader.safetensors"},
        "dirs": {"kind": "directions", "format": "semedit", "file": "dirs.safetensors", "config": {"generator": "tiny"}},
        "other": {"kind": "directions", "format": "semedit", "file": "other.safetensors", "config": {"generator": "x"}},
        "absent": {"kind": "directions", "format": "semedit", "file": "absent.safetensors", "config": {"generator": "tiny"}},
        "judge": {"kind": "perceptual", "format": "lpips", "file": "judge.pth"},  # the loss or the scorer
    })
    files = reg.model_files("tiny")
    assert set(files) == {"tiny", "reader", "dirs", "judge"}  # not another generator's, not one that is not here
    assert files["reader"] == sha256_of(folder / "reader.safetensors")[:12]
    (folder / "reader.safetensors").write_bytes(b"retrained")
    assert reg.model_files("tiny")["reader"] != files["reader"]


# ---- resolution order -------------------------------------------------------------------

def test_explicit_file(make_registry, tiny_file):
    reg = make_registry({"tiny": {"kind": "generator", "format": "safetensors", "file": str(tiny_file)}})
    G = reg.get("tiny")
    assert G.config.resolution == 16 and not G.training
    assert all(not p.requires_grad for p in G.parameters())


def test_file_placed_in_weights_folder_wins_over_hub(make_registry, tmp_path, hub):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "ffhq.pkl").write_bytes(NV_PKL.read_bytes())
    reg = make_registry({"g": hub_entry()}, hub_endpoint=hub.url)
    assert reg.local_path("g") == tmp_path / "weights" / "ffhq.pkl"
    assert reg.get("g").config.resolution == 32
    assert hub.requests == []


def test_hub_cache_used_offline(make_registry, tmp_path):
    prefill_cache(tmp_path / "hub", "someone/stylegan2", COMMIT, "ffhq.pkl", NV_PKL.read_bytes())
    reg = make_registry({"g": hub_entry()}, hub_offline=True)
    assert reg.is_local("g")
    assert reg.get("g").config.resolution == 32


def test_offline_without_cache_names_repo_file_and_folder(make_registry, tmp_path):
    reg = make_registry({"g": hub_entry()}, hub_offline=True)
    assert not reg.is_local("g")
    with pytest.raises(ModelNotAvailableError) as e:
        reg.get("g")
    msg = str(e.value)
    assert "someone/stylegan2" in msg and "ffhq.pkl" in msg and str(tmp_path / "weights" / "ffhq.pkl") in msg
    assert "HF_HUB_OFFLINE" in msg


def test_download_from_hub_endpoint(make_registry, hub, tmp_path):
    data = NV_PKL.read_bytes()
    hub.add("someone/stylegan2", "ffhq.pkl", data, COMMIT)
    reg = make_registry({"g": hub_entry(sha256=sha256_of(NV_PKL))}, hub_endpoint=hub.url)
    assert not reg.is_local("g")
    G = reg.get("g")
    assert G.config.resolution == 32
    assert any(m == "GET" for m, _ in hub.requests)
    assert reg.is_local("g")  # now in the Hub cache
    converted = list((tmp_path / "cache" / "converted").glob("g-*.safetensors"))
    assert len(converted) == 1  # later loads are pickle-free


def test_missing_file_on_hub(make_registry, hub):
    reg = make_registry({"g": hub_entry(filename="nope.pkl")}, hub_endpoint=hub.url)
    with pytest.raises(ModelNotAvailableError, match="nope.pkl"):
        reg.get("g")


def test_truncated_download_is_refused(make_registry, hub):
    data = NV_PKL.read_bytes()
    hub.add("someone/stylegan2", "ffhq.pkl", data, COMMIT, truncate_to=len(data) // 3)
    reg = make_registry({"g": hub_entry()}, hub_endpoint=hub.url)
    with pytest.raises((ModelNotAvailableError, CheckpointError)):
        reg.get("g")
    assert not reg.is_local("g")  # nothing half-written was left in the cache as the file


def test_checksum_mismatch(make_registry, hub):
    hub.add("someone/stylegan2", "ffhq.pkl", NV_PKL.read_bytes(), COMMIT)
    reg = make_registry({"g": hub_entry(sha256="0" * 64)}, hub_endpoint=hub.url)
    with pytest.raises(ChecksumMismatchError, match="sha256"):
        reg.get("g")


def test_corrupt_local_file_gives_checkpoint_error(make_registry, tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "broken.safetensors").write_bytes(b"\x00" * 100)
    reg = make_registry({"b": {"kind": "generator", "format": "safetensors", "file": "broken.safetensors"}})
    with pytest.raises(CheckpointError):
        reg.get("b")


def test_failures_are_remembered_until_forgotten(make_registry, tmp_path, tiny_file):
    reg = make_registry({"t": {"kind": "generator", "format": "safetensors", "file": "late.safetensors"}})
    with pytest.raises(ModelNotAvailableError):
        reg.get("t")
    (tmp_path / "weights" / "late.safetensors").write_bytes(tiny_file.read_bytes())
    with pytest.raises(ModelNotAvailableError):
        reg.get("t")  # remembered
    reg.forget_failures()
    assert reg.get("t").config.resolution == 16


def test_pickle_is_read_once_then_safetensors(make_registry, tmp_path, monkeypatch):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "ffhq.pkl").write_bytes(NV_PKL.read_bytes())
    reg = make_registry({"g": hub_entry()})
    reg.get("g")
    import semedit.checkpoints as ck
    monkeypatch.setattr(ck, "read_nvlabs_pickle", lambda *a: pytest.fail("unpickled again"))
    monkeypatch.setitem(ck.READERS, "nvlabs", lambda *a: pytest.fail("unpickled again"))
    reg2 = make_registry({"g": hub_entry()})  # a fresh process: new registry, same cache dir
    assert reg2.get("g").config.resolution == 32


# ---- caching -----------------------------------------------------------------------------

def test_concurrent_gets_load_once(make_registry, tiny_file):
    reg = make_registry({"tiny": {"kind": "generator", "format": "safetensors", "file": "tiny.safetensors"}})
    got, barrier = [], threading.Barrier(8)

    def worker():
        barrier.wait()
        got.append(reg.get("tiny"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert reg.loads == 1
    assert len(got) == 8 and all(g is got[0] for g in got)


def test_cache_key_includes_dtype(make_registry, tiny_file):
    reg = make_registry({"tiny": {"kind": "generator", "format": "safetensors", "file": "tiny.safetensors"}})
    a, b = reg.get("tiny"), reg.get("tiny", dtype=torch.float64)
    assert a is not b and b.w_avg.dtype == torch.float64 and reg.loads == 2
    assert reg.get("tiny") is a


def test_lru_eviction_under_budget(make_registry, tmp_path, tiny_file):
    models = {n: {"kind": "generator", "format": "safetensors", "file": "tiny.safetensors"} for n in "abc"}
    from semedit.registry import module_num_bytes
    reg = make_registry(models)
    size_mb = module_num_bytes(reg.get("a")) / 2 ** 20
    reg = make_registry(models, memory_budget_mb=2.5 * size_mb)  # room for two models
    reg.get("a"), reg.get("b")
    reg.get("a")          # a is now the most recently used
    reg.get("c")          # over budget: b goes
    names = [k[0] for k in reg.cached_keys()]
    assert names == ["a", "c"]


def test_copy_is_private_and_trainable(make_registry, tiny_file):
    reg = make_registry({"tiny": {"kind": "generator", "format": "safetensors", "file": "tiny.safetensors"}})
    shared = reg.get("tiny")
    before = {k: v.clone() for k, v in shared.state_dict().items()}
    mine = reg.copy("tiny")
    assert all(p.requires_grad for p in mine.parameters())
    with torch.no_grad():
        for p in mine.parameters():
            p.add_(1.0)
    for k, v in shared.state_dict().items():
        assert torch.equal(v, before[k])


def test_device_is_chosen_automatically(make_registry, tiny_file):
    reg = make_registry({"tiny": {"kind": "generator", "format": "safetensors", "file": "tiny.safetensors"}},
                        device="auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert reg.get("tiny").w_avg.device.type == expected


def test_one_gpu_has_one_name_so_models_load_once_per_gpu(monkeypatch):
    """"cuda" and a tensor's "cuda:0" are one cache key (else every model loads twice on a GPU)."""
    from semedit.settings import resolve_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert resolve_device("auto") == resolve_device("cuda") == resolve_device("cuda:0") == torch.device("cuda", 0)
    assert str(resolve_device("cuda")) == "cuda:0" and resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")


def test_unreachable_hub_fails_fast_with_what_to_do(make_registry, monkeypatch):
    """Not offline, but nothing listens at the endpoint: a clear message after one short probe,
    without a download attempt (and the Hub client's retries)."""
    import semedit.registry as registry
    downloads = []
    real = registry._hub_download
    monkeypatch.setattr(registry, "_hub_download", lambda hub, settings, *, local_files_only: (
        downloads.append(local_files_only), real(hub, settings, local_files_only=local_files_only))[1])
    reg = make_registry({"g": hub_entry()}, hub_endpoint="http://127.0.0.1:9")
    with pytest.raises(ModelNotAvailableError, match="cannot be reached.*HF_HUB_OFFLINE=1"):
        reg.get("g")
    assert False not in downloads  # the cache may be looked in; nothing is downloaded
    from semedit.ui.model_picker import generator_choices
    assert generator_choices(reg) == [("g (not downloaded; the Hub cannot be reached)", "g")]


def test_a_preferred_model_is_chosen_when_it_is_on_the_machine(make_registry, tmp_path):
    """``first_local``: the preferred model when its file is here, else the first local one of
    the kind in catalogue order, else None."""
    reg = make_registry({"face-api": {"kind": "identity", "format": "face-descriptor", "file": "face-api.safetensors"},
                         "arcface": {"kind": "identity", "format": "arcface-irse", "file": "arcface.pth"},
                         "other": {"kind": "identity", "format": "face-descriptor", "file": "other.safetensors"}})
    assert reg.first_local("identity", "arcface") is None
    (tmp_path / "weights" / "other.safetensors").write_bytes(b"x")
    assert reg.first_local("identity", "arcface") == "other"
    (tmp_path / "weights" / "face-api.safetensors").write_bytes(b"x")
    assert reg.first_local("identity", "arcface") == "face-api" and reg.first_local("identity") == "face-api"
    (tmp_path / "weights" / "arcface.pth").write_bytes(b"x")
    assert reg.first_local("identity", "arcface") == "arcface" and reg.first_local("identity") == "face-api"
    assert reg.first_local("generator") is None


def test_generators_are_compiled_only_where_asked(make_registry, tiny_file):
    from semedit.acceleration import compiles
    entry = {"tiny": {"kind": "generator", "format": "safetensors", "file": str(tiny_file)}}
    assert not compiles("auto", torch.device("cpu")) and compiles("auto", torch.device("cuda"))
    assert not compiles("off", torch.device("cuda")) and compiles("on", torch.device("cpu"))
    assert make_registry(entry).get("tiny").synthesis._compiled_call_impl is None  # CPU, auto: eager


@pytest.mark.slow
def test_a_compiled_generator_inverts_like_the_eager_one(make_registry, tiny_file):
    """SEMEDIT_COMPILE=on (what CUDA gets by default), on the CPU: the same W+ optimisation
    gives the same codes; PTI's private copy drops the compiled call and still tunes its own
    weights, not the shared ones."""
    import copy
    from semedit.inversion import OptimizationConfig, invert_optimization
    from semedit.losses import PerceptualModel
    entry = {"tiny": {"kind": "generator", "format": "safetensors", "file": str(tiny_file)}}
    eager, compiled = make_registry(entry).get("tiny"), make_registry(entry, compile="on").get("tiny")
    assert compiled.synthesis._compiled_call_impl is not None
    target = torch.rand(1, 3, 16, 16) * 2 - 1
    class L1(torch.nn.Module):
        def forward(self, x, y):
            return (x - y).abs().mean((1, 2, 3))
    l1 = PerceptualModel(L1(), "L1")
    cfg = OptimizationConfig(space="w+", steps=5, optimize_noise=False)
    a = invert_optimization(eager, target, cfg, perceptual=l1, device=torch.device("cpu"))
    b = invert_optimization(compiled, target, cfg, perceptual=l1, device=torch.device("cpu"))
    torch.testing.assert_close(b.latent.value, a.latent.value, rtol=1e-4, atol=1e-5)
    assert copy.deepcopy(compiled).synthesis._compiled_call_impl is None


def test_with_models_adds_candidates_to_a_new_registry_only(make_registry, tiny_file, tmp_path):
    """Benchmarks measure files before they are catalogued: ``with_models`` gives a registry whose
    catalogue also holds them, with the same settings; the original registry is unchanged."""
    from semedit.registry import ModelSpec
    reg = make_registry({"g": {"kind": "generator", "format": "safetensors", "file": tiny_file.name}})
    candidate = ModelSpec(name="candidate", kind="generator", format="safetensors", file=tiny_file)
    more = reg.with_models([candidate])
    assert more.catalogue.names("generator") == ("g", "candidate") and reg.catalogue.names("generator") == ("g",)
    assert more.settings is reg.settings and more.catalogue.default_generator == reg.catalogue.default_generator
    assert more.get("candidate").config == reg.get("g").config


def test_the_generator_menu_lists_the_default_first(make_registry, tmp_path):
    """The catalogue's default (or SEMEDIT_DEFAULT_GENERATOR) leads the menu; the rest keep
    catalogue order."""
    from semedit.ui.model_picker import generator_choices
    models = {n: {"kind": "generator", "format": "safetensors", "file": f"{n}.safetensors"} for n in "abc"}
    for name in "abc":
        (tmp_path / "weights").mkdir(exist_ok=True)
        (tmp_path / "weights" / f"{name}.safetensors").write_bytes(b"x")
    assert [n for _, n in generator_choices(make_registry(models, "c", hub_offline=True))] == ["c", "a", "b"]
    assert [n for _, n in generator_choices(make_registry(models, "c", hub_offline=True, default_generator="b"))] \
        == ["b", "a", "c"]
