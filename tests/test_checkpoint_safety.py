"""No checkpoint can run code: payloads are refused before anything executes."""
import io
import os
import pickle
import sys
import types
from collections import OrderedDict

import pytest
import torch

from semedit.checkpoints import read_nvlabs_pickle, read_rosinality
from semedit.errors import CheckpointError, UnsafeCheckpointError
from tests.conftest import FIXTURES


class Payload:
    """Unpickling this object would create the marker file (via os.system)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_payload_is_live(tmp_path):
    # the payload really runs under a plain unpickler, so the refusal tests below mean something
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


def test_network_pickle_with_code_payload_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Payload(marker)}))
    with pytest.raises(UnsafeCheckpointError, match="posix.system|os.system|nt.system"):
        read_nvlabs_pickle(path)
    assert not marker.exists()


def test_pt_with_code_payload_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": {"x": torch.zeros(1)}, "latent_avg": Payload(marker)}, path)
    with pytest.raises(UnsafeCheckpointError):
        read_rosinality(path)
    assert not marker.exists()


def _persistent_pickle(module_src: str, state: dict) -> bytes:
    """A pickle in NVIDIA's persistence layout, made with a stand-in torch_utils module."""
    fake = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - never called at dump time
        raise AssertionError

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    fake._reconstruct_persistent_obj = _reconstruct_persistent_obj

    class Net:
        def __reduce__(self):
            meta = dict(type="class", version=6, module_src=module_src, class_name="Generator", state=state)
            return (_reconstruct_persistent_obj, (meta,))

    saved = {k: sys.modules.get(k) for k in ("torch_utils", "torch_utils.persistence")}
    sys.modules["torch_utils"] = types.ModuleType("torch_utils")
    sys.modules["torch_utils.persistence"] = fake
    try:
        return pickle.dumps({"G_ema": Net()})
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def test_embedded_source_code_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    src = f"open({str(marker)!r}, 'w').write('ran')\n"
    path = tmp_path / "net.pkl"
    path.write_bytes(_persistent_pickle(src, {"_init_kwargs": {"img_resolution": 8}, "_parameters": OrderedDict()}))
    with pytest.raises(CheckpointError):  # read as data; incomplete, so refused as a checkpoint
        read_nvlabs_pickle(path)
    assert not marker.exists()


def test_real_network_pickle_loads_without_its_code():
    # the recorded NVlabs pickle embeds dnnlib/torch_utils source; none of it is importable here
    assert "dnnlib" not in sys.modules and "torch_utils" not in sys.modules
    config, state = read_nvlabs_pickle(FIXTURES / "reference" / "nvlabs_32.pkl")
    assert config.resolution == 32 and len(state) > 0
    assert "dnnlib" not in sys.modules and "torch_utils" not in sys.modules


@pytest.mark.parametrize("reader,name", [(read_nvlabs_pickle, "nvlabs_32.pkl"), (read_rosinality, "rosinality_32.pt")])
def test_truncated_checkpoints_raise_checkpoint_error(tmp_path, reader, name):
    data = (FIXTURES / "reference" / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        reader(path)


def test_non_checkpoint_file_is_refused(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_bytes(io.BytesIO(b"hello, this is not a checkpoint").getvalue())
    with pytest.raises(CheckpointError):
        read_rosinality(path)
