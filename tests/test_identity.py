"""Identity models: the face-api descriptor port (parity, conversion, real faces) and the
identity distance as a metric and a loss."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import FIXTURES, tiny_generator
from semedit.checkpoints import load_module
from semedit.errors import CheckpointError
from semedit.inversion.optimization import OptimizationConfig, invert_optimization
from semedit.latents import mean_latent, synthesize
from semedit.losses import PerceptualModel
from semedit.networks.face_descriptor import FaceDescriptorConfig, FaceDescriptorNet
from semedit.networks.identity import FFHQ_FACE_CHIP_BOX, IdentityModel, face_chip_box, load_face_descriptor
from semedit.settings import PROJECT_ROOT
from semedit.tfjs import read_tfjs_weights

WEIGHTS = PROJECT_ROOT / "weights" / "face-api-recognition.safetensors"
PARITY = FIXTURES / "face_api"


def parity_inputs():
    names = json.loads((PARITY / "names.json").read_text())
    raw = np.fromfile(PARITY / "inputs.u8", dtype=np.uint8).reshape(len(names), 150, 150, 3)
    return names, torch.from_numpy(raw.copy()).permute(0, 3, 1, 2).float() / 127.5 - 1


@pytest.mark.parametrize("backend", ["cpu", "wasm"])
def test_port_matches_face_api(backend):
    """Descriptors of face-api's own TensorFlow.js net, recorded outside the project by
    tools/record_face_api_descriptors.cjs, for aligned real faces, the astronaut and noise."""
    recorded = json.loads((PARITY / "descriptors.json").read_text())["descriptors"][backend]
    names, x = parity_inputs()
    net = load_module(WEIGHTS, "face-descriptor")
    with torch.no_grad():
        ours = net(x)
    theirs = torch.tensor([recorded[n] for n in names])
    assert ours.shape == (len(names), 128)
    assert (ours - theirs).abs().max() < 2e-6  # TensorFlow.js's cpu and wasm backends differ by 2.5e-7
    assert theirs.norm(dim=1).min() > 0.3      # real descriptors, not zeros


def test_recorded_descriptors_tell_people_apart():
    """Sanity of the fixture itself: in the original's own descriptors, two photos of Obama are
    closer than Obama and Biden (so the parity test compares meaningful outputs)."""
    recorded = json.loads((PARITY / "descriptors.json").read_text())["descriptors"]["cpu"]
    d = {name: torch.tensor(v) for name, v in recorded.items()}
    dist = lambda a, b: float((d[a] - d[b]).norm())  # noqa: E731
    assert dist("obama", "two_people_1") < 0.6 < dist("obama", "biden")
    assert dist("biden", "two_people_0") < 0.6 < dist("two_people_0", "two_people_1")


def _write_tfjs(folder: Path, net: FaceDescriptorNet) -> None:
    """Export ``net`` in face-api's layout: HWIO filters, fc [in, out], conv filters of the
    first layer as float32, all else uint8-quantised (as the real model mixes them)."""
    specs, blobs = [], []
    for key, value in net.state_dict().items():
        if key == "fc.weight":
            name, array = "fc", value.t().numpy()
        else:
            name = key.removeprefix("layers.").replace(".", "/").replace("conv/weight", "conv/filters") \
                      .replace("scale/weight", "scale/weights").replace("scale/bias", "scale/biases")
            array = value.permute(2, 3, 1, 0).numpy() if value.dim() == 4 else value.numpy()
        spec = {"name": name, "shape": list(array.shape), "dtype": "float32"}
        if name.endswith("down/conv/filters") and len(specs) == 0:
            blobs.append(array.astype(np.float32).tobytes())
        else:
            lo, hi = float(array.min()), float(array.max())
            scale = (hi - lo) / 255 or 1.0
            blobs.append(np.round((array - lo) / scale).astype(np.uint8).tobytes())
            spec["quantization"] = {"dtype": "uint8", "scale": scale, "min": lo}
        specs.append(spec)
    (folder / "face_recognition_model.bin").write_bytes(b"".join(blobs))
    manifest = [{"paths": ["face_recognition_model.bin"], "weights": specs}]
    (folder / "face_recognition_model-weights_manifest.json").write_text(json.dumps(manifest))


def test_conversion_script_round_trip(tmp_path):
    """tools/convert_face_api.py on a reduced net in face-api's format: every weight lands in
    its place, quantised ones dequantised exactly as TensorFlow.js does."""
    torch.manual_seed(0)
    config = FaceDescriptorConfig(widths=(4, 8, 16), residual_blocks=(1, 2, 1), embedding=12)
    net = FaceDescriptorNet(config).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    _write_tfjs(tmp_path, net)
    out = tmp_path / "converted.safetensors"
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "tools" / "convert_face_api.py"), str(tmp_path),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    converted = load_module(out, "face-descriptor")
    assert converted.config == config
    weights = read_tfjs_weights(tmp_path / "face_recognition_model-weights_manifest.json")
    expected = torch.from_numpy(weights["conv8_down/conv1/conv/filters"].dequantized()).permute(3, 2, 0, 1)
    assert torch.equal(converted.state_dict()["layers.conv8_down.conv1.conv.weight"], expected)
    x = torch.rand(2, 3, 150, 150) * 2 - 1
    with torch.no_grad():
        # quantisation to 8 bits moves the outputs a little, never a lot
        assert (converted(x) - net(x)).abs().max() < 0.05 * net(x).abs().max()
        assert not torch.equal(converted(x), net(x))


def test_tfjs_reader_refuses_damaged_files(tmp_path):
    torch.manual_seed(0)
    _write_tfjs(tmp_path, FaceDescriptorNet(FaceDescriptorConfig(widths=(4, 8), residual_blocks=(1, 1))))
    manifest = tmp_path / "face_recognition_model-weights_manifest.json"
    shard = tmp_path / "face_recognition_model.bin"
    data = shard.read_bytes()
    shard.write_bytes(data[:-10])
    with pytest.raises(CheckpointError, match="truncated"):
        read_tfjs_weights(manifest)
    shard.write_bytes(data + b"\0" * 8)
    with pytest.raises(CheckpointError, match="not described"):
        read_tfjs_weights(manifest)
    shard.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        read_tfjs_weights(manifest)
    manifest.write_text("{not json")
    with pytest.raises(CheckpointError, match="manifest"):
        read_tfjs_weights(manifest)


def test_ffhq_face_chip_matches_face_apis_rule():
    box = face_chip_box(((0.375, 0.475), (0.625, 0.475)), (0.5, 0.735))
    assert np.allclose(box, FFHQ_FACE_CHIP_BOX, atol=1e-3)
    assert box[2] - box[0] == pytest.approx(box[3] - box[1])  # square


def test_identity_distances_euclidean_and_cosine():
    net = FaceDescriptorNet(FaceDescriptorConfig(widths=(4, 8), residual_blocks=(1, 1), embedding=6))
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    euclid = IdentityModel(net, "e", box=FFHQ_FACE_CHIP_BOX, input_size=150, resample="bilinear",
                           distance="euclidean")
    cosine = IdentityModel(net, "c", box=FFHQ_FACE_CHIP_BOX, input_size=150, resample="bilinear")
    assert torch.allclose(euclid(x, x), torch.zeros(2), atol=1e-6)
    assert torch.allclose(euclid(x, y), (euclid.embed(x) - euclid.embed(y)).norm(dim=1))
    a, b = cosine.embed(x), cosine.embed(y)
    assert torch.allclose(cosine(x, y), 1 - (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)), atol=1e-6)
    with pytest.raises(ValueError):
        IdentityModel(net, "bad", distance="manhattan")


class _Nothing(torch.nn.Module):
    """A perceptual distance that is always 0, so only the identity term drives the loss."""

    def forward(self, a, b):
        return (a - b).sum((1, 2, 3)) * 0


def test_identity_loss_pulls_the_identity_closer():
    """With only the identity term (no perceptual, no pixel loss), optimisation lowers the
    identity distance between the reconstruction and the target."""
    G = tiny_generator(seed=3)
    with torch.no_grad():
        w = G.mapping(torch.randn(1, G.config.z_dim, generator=torch.Generator().manual_seed(5)))
        target = G.synthesis(G.broadcast(w))
        start = synthesize(G, mean_latent(G, "w+"))
    identity = load_face_descriptor(WEIGHTS)
    nothing = PerceptualModel(_Nothing(), "none")
    cfg = OptimizationConfig(space="w+", steps=40, pixel_weight=0.0, identity_weight=1.0, initial_noise_factor=0.0)
    r = invert_optimization(G, target, cfg, perceptual=nothing, device=torch.device("cpu"), identity=identity)
    with torch.no_grad():
        before, after = float(identity(start, target)), float(identity(r.image, target))
    assert after < 0.8 * before
    with pytest.raises(ValueError, match="identity model"):
        invert_optimization(G, target, cfg, perceptual=nothing, device=torch.device("cpu"))


def test_context_picks_the_offline_identity_model_when_arcface_is_absent(tmp_path, make_registry, tiny_file):
    """A face generator gets ArcFace when it is on the machine, else the face-api descriptor;
    the embedded domain gets none."""
    import shutil
    from semedit.inversion.suite import context_for
    shutil.copy(WEIGHTS, tmp_path / "weights" / WEIGHTS.name)
    reg = make_registry({
        "faces": {"kind": "generator", "format": "safetensors", "file": tiny_file.name},
        "cartoons": {"kind": "generator", "format": "safetensors", "file": tiny_file.name,
                     "config": {"domain": "embedded-portraits"}},
        "stlpips-alex": {"kind": "perceptual", "format": "stlpips", "package": "stlpips_pytorch",
                         "file": "weights/vST0.0/alex_shift_tolerant.pth"},
        "arcface": {"kind": "identity", "format": "arcface-irse", "file": "missing.pth"},
        "face-api": {"kind": "identity", "format": "face-descriptor", "file": WEIGHTS.name},
    }, default="faces", defaults={"default_perceptual": "stlpips-alex", "default_identity": "arcface"},
        hub_offline=True)
    ctx = context_for(reg, "faces")
    assert ctx.identity is not None and ctx.identity.distance == "euclidean" and ctx.identity.same_person_below == 0.6
    assert context_for(reg, "cartoons").identity is None
