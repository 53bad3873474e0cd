"""Convert face-api's face-recognition weights (npm ``@vladmandic/face-api``, MIT) to semedit safetensors.

    npm pack @vladmandic/face-api@1.7.15        # -> vladmandic-face-api-1.7.15.tgz
    python tools/convert_face_api.py vladmandic-face-api-1.7.15.tgz \\
        --out weights/face-api-recognition.safetensors

The source may be the npm tarball, the unpacked package or its ``model/`` folder. The
uint8-quantised weights are kept as uint8 codes with their scale and offset (dequantised
on load exactly as TensorFlow.js does), so the file is as small as the original (6.4 MB).
Only the two files of the recognition model are read from a tarball.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semedit.checkpoints import save_safetensors  # noqa: E402
from semedit.networks.face_descriptor import config_from_face_api, state_from_face_api  # noqa: E402
from semedit.tfjs import read_tfjs_weights  # noqa: E402

MANIFEST = "face_recognition_model-weights_manifest.json"
SHARD = "face_recognition_model.bin"


def find_manifest(source: Path, scratch: Path) -> Path:
    """The recognition model's manifest in a package folder, its model folder, or an npm tarball."""
    if source.is_file() and source.name.endswith((".tgz", ".tar.gz")):
        with tarfile.open(source) as tar:
            for member in tar.getmembers():
                if member.isfile() and Path(member.name).name in (MANIFEST, SHARD) and "/model/" in member.name:
                    (scratch / Path(member.name).name).write_bytes(tar.extractfile(member).read())
        source = scratch
    for candidate in (source / MANIFEST, source / "model" / MANIFEST):
        if candidate.is_file():
            return candidate
    sys.exit(f"error: {MANIFEST} not found in {source}")


def convert(manifest: Path, out: Path) -> None:
    weights = read_tfjs_weights(manifest)
    config = config_from_face_api({name: w.values.shape for name, w in weights.items()})
    state = state_from_face_api({name: w.values for name, w in weights.items()})
    ours = dict(zip(weights, state))  # state_from_face_api keeps the order
    quantization = {ours[name]: w.affine for name, w in weights.items() if w.affine is not None}
    shard = manifest.parent / SHARD
    digest = hashlib.sha256(shard.read_bytes()).hexdigest() if shard.is_file() else "unknown"
    save_safetensors(out, config, state, quantization=quantization,
                     source=f"@vladmandic/face-api {MANIFEST} ({SHARD} sha256 {digest})", license="MIT")
    print(f"wrote {out}: {len(state)} tensors, {sum(v.size for v in (w.values for w in weights.values()))} "
          f"weights ({len(quantization)} uint8-quantised), layout {config}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="npm tarball, package folder or its model/ folder")
    ap.add_argument("--out", type=Path, default=ROOT / "weights" / "face-api-recognition.safetensors")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        convert(find_manifest(a.source, Path(scratch)), a.out)


if __name__ == "__main__":
    main()
