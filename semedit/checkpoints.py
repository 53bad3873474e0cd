"""Checkpoint readers: every format becomes (StyleGAN2Config, state dict in our key names).

No reader ever executes code stored in a file: ``.pt`` files go through
``torch.load(weights_only=True)``, NVIDIA network pickles through a restricted unpickler
that maps the handful of globals such a pickle needs to inert stand-ins and refuses all
others, and our own format is safetensors with the config in its metadata.

Key mapping, theirs -> ours (``L`` = ``synthesis.layers``, ``R`` = ``synthesis.to_rgbs``):

rosinality/stylegan2-pytorch (``ckpt["g_ema"]``, ``ckpt["latent_avg"]``):

====================================  ==============================================
``style.{i}.weight|bias`` (i >= 1)     ``mapping.layers.{i-1}.weight|bias``
``input.input`` [1, C, 4, 4]           ``synthesis.const`` [C, 4, 4]
``conv1.*``                            ``L.0.*``
``convs.{j}.*``                        ``L.{j+1}.*``
  ``.conv.weight`` [1, O, I, k, k]       ``.weight`` [O, I, k, k]
  ``.conv.modulation.weight|bias``       ``.affine.weight|bias``
  ``.noise.weight`` [1]                  ``.noise_strength`` []
  ``.activate.bias``                     ``.bias``
``noises.noise_{j}`` [1, 1, R, R]      ``L.{j}.noise_const`` [R, R]
``to_rgb1.*`` / ``to_rgbs.{k}.*``      ``R.0.*`` / ``R.{k+1}.*``
  ``.conv.weight`` [1, 3, I, 1, 1]       ``.weight`` [3, I, 1, 1]
  ``.conv.modulation.weight|bias``       ``.affine.weight|bias``
  ``.bias`` [1, 3, 1, 1]                 ``.bias`` [3]
``latent_avg`` [1, C] or [C]           ``w_avg`` [C]
``*.blur.kernel``, ``*.upsample.kernel``  dropped (fixed [1, 3, 3, 1] filter)
====================================  ==============================================

NVlabs/stylegan2-ada-pytorch (``pkl["G_ema"]``; hyper-parameters from its ``init_kwargs``):

====================================  ==============================================
``mapping.fc{i}.weight|bias``          ``mapping.layers.{i}.weight|bias``
``mapping.w_avg``                      ``w_avg``
``synthesis.b4.const``                 ``synthesis.const``
``synthesis.b4.conv1.*``               ``L.0.*``
``synthesis.b{2^(b+2)}.conv0|conv1.*`` ``L.{2b-1}.*`` / ``L.{2b}.*``
``synthesis.b{r}.torgb.*``             ``R.{log2(r)-2}.*``
  ``affine.*, weight, bias, noise_strength, noise_const``  same names
``*.resample_filter``                  dropped
====================================  ==============================================
"""
from __future__ import annotations

import io
import json
import math
import pickle
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file as _st_load_file
from safetensors.torch import save_file as _st_save_file

from .errors import CheckpointError, UnsafeCheckpointError
from .networks.encoders import EncoderConfig, HairCodeMixer, HairMixerConfig, HairTransferConfig, HairTransferNet
from .networks.face_descriptor import FaceDescriptorConfig, FaceDescriptorNet
from .networks.hyperstyle import HyperStyleConfig, HyperStyleModel
from .networks.identity import trunk_layout
from .networks.psp import EncoderModel, EncoderModelConfig, StyleEncoderConfig
from .networks.resnet import resnet_layout
from .networks.regressor import ParameterRegressor, RegressorConfig
from .networks.segmenter import SegmenterConfig, UNetSegmenter
from .networks.stylegan2 import StyleGAN2Config, StyleGAN2Generator

StateDict = Dict[str, torch.Tensor]
FORMATS = ("safetensors", "rosinality", "nvlabs", "fg21-decoder", "psp-decoder", "hyperstyle-decoder")


# ---------------------------------------------------------------------------------------
# rosinality .pt
# ---------------------------------------------------------------------------------------

def read_rosinality(path: Path) -> Tuple[StyleGAN2Config, StateDict]:
    """A rosinality ``.pt`` (dict with ``g_ema`` and ``latent_avg``) -> (config, our state)."""
    ckpt = _torch_load_weights_only(path)
    if not isinstance(ckpt, dict) or "g_ema" not in ckpt:
        raise CheckpointError(f"{path.name}: not a rosinality checkpoint (no 'g_ema' entry)")
    try:
        return rosinality_to_ours(ckpt["g_ema"], ckpt.get("latent_avg"))
    except (KeyError, IndexError, AttributeError) as e:
        raise CheckpointError(f"{path.name}: g_ema lacks the expected entry {e}") from e


def rosinality_to_ours(g: StateDict, latent_avg: torch.Tensor | None) -> Tuple[StyleGAN2Config, StateDict]:
    try:
        n_mlp = max(int(m.group(1)) for k in g if (m := re.fullmatch(r"style\.(\d+)\.weight", k)))
        n_convs = 1 + sum(1 for k in g if re.fullmatch(r"convs\.\d+\.conv\.weight", k))
        z_dim = g["style.1.weight"].shape[1]
        w_dim = g["conv1.conv.modulation.weight"].shape[1]
        resolution = 2 ** ((n_convs - 1) // 2 + 2)
        channels = [g["input.input"].shape[1]] + [g[f"convs.{2 * i}.conv.weight"].shape[1]
                                                  for i in range((n_convs - 1) // 2)]
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"rosinality checkpoint lacks expected keys ({e})") from e
    config = StyleGAN2Config(resolution=resolution, z_dim=z_dim, w_dim=w_dim, mapping_layers=n_mlp,
                             channels=tuple(int(c) for c in channels))
    out: StateDict = {}
    for i in range(1, n_mlp + 1):
        out[f"mapping.layers.{i - 1}.weight"] = g[f"style.{i}.weight"]
        out[f"mapping.layers.{i - 1}.bias"] = g[f"style.{i}.bias"]
    out["synthesis.const"] = g["input.input"][0]
    for j in range(n_convs):
        src = "conv1" if j == 0 else f"convs.{j - 1}"
        dst = f"synthesis.layers.{j}"
        out[f"{dst}.weight"] = g[f"{src}.conv.weight"][0]
        out[f"{dst}.affine.weight"] = g[f"{src}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = g[f"{src}.conv.modulation.bias"]
        out[f"{dst}.noise_strength"] = g[f"{src}.noise.weight"].reshape([])
        out[f"{dst}.bias"] = g[f"{src}.activate.bias"]
        out[f"{dst}.noise_const"] = g[f"noises.noise_{j}"][0, 0]
    for k in range(config.num_blocks):
        src = "to_rgb1" if k == 0 else f"to_rgbs.{k - 1}"
        dst = f"synthesis.to_rgbs.{k}"
        out[f"{dst}.weight"] = g[f"{src}.conv.weight"][0]
        out[f"{dst}.affine.weight"] = g[f"{src}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = g[f"{src}.conv.modulation.bias"]
        out[f"{dst}.bias"] = g[f"{src}.bias"].reshape(-1)
    out["w_avg"] = latent_avg.reshape(-1) if latent_avg is not None else torch.zeros(w_dim)
    return config, out


def _torch_load_weights_only(path: Path) -> Any:
    name = Path(path).name
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first_line = (str(e).splitlines() or [""])[0]
        if "global" in str(e).lower():  # weights_only refused a global: never retry unsafely
            raise UnsafeCheckpointError(f"{name}: refused to load, the file asks to run code ({first_line})") from e
        raise CheckpointError(f"{name}: unreadable or truncated checkpoint ({first_line})") from e
    except Exception as e:  # noqa: BLE001 - garbage input fails in many ways inside torch.load
        raise CheckpointError(f"{name}: unreadable or truncated checkpoint ({type(e).__name__}: {e})") from e


# ---------------------------------------------------------------------------------------
# NVIDIA network pickles (stylegan2-ada-pytorch)
# ---------------------------------------------------------------------------------------

class PersistentStub:
    """What a ``torch_utils.persistence`` object becomes: its class name, its constructor
    keyword arguments and its tensors. The embedded source code is kept as text, never run."""

    def __init__(self, meta: dict):
        state = meta.get("state") or {}
        self.class_name: str = meta.get("class_name", "?")
        self.init_kwargs: dict = dict(state.get("_init_kwargs") or {})
        self.parameters: dict = dict(state.get("_parameters") or {})
        self.buffers: dict = dict(state.get("_buffers") or {})
        self.children: dict = dict(state.get("_modules") or {})

    def state_dict(self, prefix: str = "") -> StateDict:
        out = {prefix + k: v for k, v in {**self.parameters, **self.buffers}.items() if v is not None}
        for name, child in self.children.items():
            if isinstance(child, PersistentStub):
                out.update(child.state_dict(f"{prefix}{name}."))
        return out


class _EasyDict(dict):
    """Inert stand-in for ``dnnlib.util.EasyDict``."""


def _storage_from_bytes(b: bytes) -> Any:
    return torch.load(io.BytesIO(b), map_location="cpu", weights_only=True)


def _rebuild_from_type_v2(func: Callable, new_type: type, args: tuple, state: Any) -> Any:
    ret = func(*args)
    return torch.nn.Parameter(ret, requires_grad=False) if new_type is torch.nn.Parameter else ret


def _numpy_scalar(dtype: Any, data: bytes = b"") -> Any:
    import numpy as np
    return np.frombuffer(data, dtype=dtype)[0] if data else dtype.type(0)


def _numpy_dtype(name: str, align: bool = False, copy: bool = True) -> Any:
    import numpy as np
    return np.dtype(name)


def _numpy_attr(name: str) -> Any:
    import numpy as np
    return getattr(np, name)


def _numpy_reconstruct(cls: Any, shape: Any, dtype: Any) -> Any:
    import numpy as np
    if cls is not np.ndarray:
        raise UnsafeCheckpointError("refused to load: the pickle rebuilds an array of an unexpected class")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


#: The only globals an NVIDIA network pickle may name; everything else is refused.
_ALLOWED_GLOBALS: Dict[Tuple[str, str], Callable[[], Any]] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): lambda: PersistentStub,
    ("dnnlib.util", "EasyDict"): lambda: _EasyDict,
    ("collections", "OrderedDict"): lambda: OrderedDict,
    ("builtins", "set"): lambda: set,
    ("builtins", "frozenset"): lambda: frozenset,
    ("torch._utils", "_rebuild_tensor_v2"): lambda: torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): lambda: torch._utils._rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): lambda: _rebuild_from_type_v2,
    ("torch.nn.parameter", "Parameter"): lambda: torch.nn.Parameter,
    ("torch.storage", "_load_from_bytes"): lambda: _storage_from_bytes,
    ("numpy.core.multiarray", "scalar"): lambda: _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): lambda: _numpy_scalar,
    ("numpy", "dtype"): lambda: _numpy_dtype,
    ("numpy", "ndarray"): lambda: _numpy_attr("ndarray"),
    ("numpy.core.multiarray", "_reconstruct"): lambda: _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): lambda: _numpy_reconstruct,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only ``_ALLOWED_GLOBALS``; any other global raises
    ``UnsafeCheckpointError`` before anything is imported or called."""

    def find_class(self, module: str, name: str) -> Any:
        factory = _ALLOWED_GLOBALS.get((module, name))
        if factory is None:
            raise UnsafeCheckpointError(
                f"refused to load: the pickle names {module}.{name}, which could run code")
        return factory()

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeCheckpointError("refused to load: the pickle uses persistent ids (not a network pickle)")


def read_nvlabs_pickle(path: Path) -> Tuple[StyleGAN2Config, StateDict]:
    """An NVlabs stylegan2-ada-pytorch network pickle -> (config, our state), from G_ema."""
    try:
        with open(path, "rb") as f:
            data = RestrictedUnpickler(f).load()
    except UnsafeCheckpointError as e:
        raise UnsafeCheckpointError(f"{Path(path).name}: {e}") from None
    except Exception as e:  # noqa: BLE001 - garbage input fails in many ways inside pickle
        raise CheckpointError(f"{Path(path).name}: unreadable or truncated network pickle "
                              f"({type(e).__name__}: {e})") from e
    g = data.get("G_ema") if isinstance(data, dict) else None
    if not isinstance(g, PersistentStub):
        raise CheckpointError(f"{Path(path).name}: no G_ema network in this pickle")
    try:
        return nvlabs_to_ours(g.init_kwargs, g.state_dict())
    except KeyError as e:
        raise CheckpointError(f"{Path(path).name}: G_ema lacks the expected entry {e}") from e


def nvlabs_to_ours(kw: dict, g: StateDict) -> Tuple[StyleGAN2Config, StateDict]:
    mk, sk = dict(kw.get("mapping_kwargs") or {}), dict(kw.get("synthesis_kwargs") or {})
    if kw.get("c_dim", 0):
        raise CheckpointError("conditional generators (c_dim > 0) are not supported")
    if sk.get("architecture", "skip") != "skip" or "synthesis.b4.const" not in g:
        raise CheckpointError("only StyleGAN2 'skip' generators are supported (StyleGAN3 is not)")
    res = int(kw["img_resolution"])
    config = StyleGAN2Config(
        resolution=res, z_dim=int(kw["z_dim"]), w_dim=int(kw["w_dim"]),
        mapping_layers=int(mk.get("num_layers", 8)), channel_base=int(sk.get("channel_base", 32768)),
        channel_max=int(sk.get("channel_max", 512)), mapping_lr_mul=float(mk.get("lr_multiplier", 0.01)),
        conv_clamp=None if sk.get("conv_clamp") is None else float(sk["conv_clamp"]),
        img_channels=int(kw.get("img_channels", 3)))
    out: StateDict = {}
    for i in range(config.mapping_layers):
        out[f"mapping.layers.{i}.weight"] = g[f"mapping.fc{i}.weight"]
        out[f"mapping.layers.{i}.bias"] = g[f"mapping.fc{i}.bias"]
    out["w_avg"] = g["mapping.w_avg"]
    out["synthesis.const"] = g["synthesis.b4.const"]
    layer_names = ("affine.weight", "affine.bias", "weight", "bias", "noise_strength", "noise_const")
    for b, r in enumerate(config.block_resolutions):
        convs = [("conv1", 0)] if b == 0 else [("conv0", 2 * b - 1), ("conv1", 2 * b)]
        for src, j in convs:
            for n in layer_names:
                out[f"synthesis.layers.{j}.{n}"] = g[f"synthesis.b{r}.{src}.{n}"]
        for n in ("affine.weight", "affine.bias", "weight", "bias"):
            out[f"synthesis.to_rgbs.{b}.{n}"] = g[f"synthesis.b{r}.torgb.{n}"]
    return config, out


# ---------------------------------------------------------------------------------------
# Our own format: safetensors + config in the metadata
# ---------------------------------------------------------------------------------------

#: safetensors "arch" metadata -> (config class, module class)
# ---------------------------------------------------------------------------------------
# The FG'21 hairstyle-transfer checkpoint (Subrtova, Cech, Franc: a pSp-style .pt)
# ---------------------------------------------------------------------------------------

def _fg21_state(path: Path) -> StateDict:
    ckpt = _torch_load_weights_only(path)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not any(k.startswith("encoder.encoder_face.") for k in state):
        raise CheckpointError(f"{Path(path).name}: not an FG'21 hair transfer checkpoint "
                              "(no 'encoder.encoder_face.*' weights)")
    return state


def read_fg21_hair(path: Path) -> Tuple[HairTransferConfig, StateDict]:
    """The hair network of an FG'21 checkpoint (``state_dict`` with ``encoder.encoder_face.*``,
    ``encoder.encoder_hair.*``, ``encoder.map.0.*``; ``decoder.*`` is the generator, see
    ``read_fg21_decoder``) -> (config, our state: the same keys without ``encoder.``). The layout
    is read off the keys: the IR-SE trunk, the pooled size, the W+ shape (w_dim from the
    decoder when it is there, else 512 as in the official FFHQ model)."""
    state = _fg21_state(path)
    enc = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    try:
        units, widths = trunk_layout(enc, "encoder_face.")
        fc = enc["encoder_face.output_layer_2.3.weight"]  # [hidden, widths[-1] * pool^2]
        total = enc["encoder_face.linear.weight"].shape[0]  # num_ws * w_dim
        mod = state.get("decoder.conv1.conv.modulation.weight")
        w_dim = mod.shape[1] if mod is not None else 512
        pool = round((fc.shape[1] / widths[-1]) ** 0.5)
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{Path(path).name}: the hair encoders lack expected weights ({e})") from e
    if total % w_dim:
        raise CheckpointError(f"{Path(path).name}: encoder output {total} is no whole number of {w_dim}-wide codes")
    config = HairTransferConfig(EncoderConfig(num_ws=total // w_dim, w_dim=w_dim, units=units, widths=widths,
                                              input_size=256, pool=pool, hidden=fc.shape[0]))
    return config, enc


def read_fg21_decoder(path: Path) -> Tuple[StyleGAN2Config, StateDict]:
    """The StyleGAN2 (``decoder.*``, rosinality's layout) inside an FG'21 checkpoint; w_avg is
    estimated from the mapping network when the file has no ``latent_avg``."""
    return _decoder_of(path, _fg21_state(path))


def _decoder_of(path: Path, state: StateDict, latent_avg: Optional[torch.Tensor] = None
                ) -> Tuple[StyleGAN2Config, StateDict]:
    g = {k[len("decoder."):]: v for k, v in state.items() if k.startswith("decoder.")}
    if not g:
        raise CheckpointError(f"{Path(path).name}: the checkpoint holds no generator ('decoder.*')")
    latent_avg = state.get("latent_avg") if latent_avg is None else latent_avg
    if latent_avg is not None and latent_avg.ndim == 2:  # pSp keeps it per style: [n_styles, 512]
        latent_avg = latent_avg[0]
    config, ours = rosinality_to_ours(g, latent_avg)
    if latent_avg is None:
        G = build_generator(config, ours)
        ours["w_avg"] = G.estimate_w_avg(10000, generator=torch.Generator().manual_seed(0))
    return config, ours


# ---------------------------------------------------------------------------------------
# pSp-family encoders (pSp, e4e, ReStyle): {"state_dict": encoder.* + decoder.*, "opts", "latent_avg"}
# ---------------------------------------------------------------------------------------
PSP_ENCODER_TYPES = {"GradualStyleEncoder": ("gradual", "pSp"), "Encoder4Editing": ("e4e", "e4e"),
                     "BackboneEncoder": ("backbone", "ReStyle-pSp"),
                     "ProgressiveBackboneEncoder": ("progressive-backbone", "ReStyle-e4e"),
                     "ResNetBackboneEncoder": ("backbone", "ReStyle-pSp"),
                     "ResNetProgressiveBackboneEncoder": ("progressive-backbone", "ReStyle-e4e"),
                     "WEncoder": ("w", "W encoder")}


def _psp_checkpoint(path: Path) -> dict:
    ckpt = _torch_load_weights_only(path)
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not any(k.startswith("encoder.") for k in state):
        raise CheckpointError(f"{Path(path).name}: not a pSp, e4e or ReStyle checkpoint "
                              "(no 'state_dict' with 'encoder.*' weights)")
    return ckpt


def _n_styles(opts: dict, latent_avg) -> int:
    """W+ codes of the generator a checkpoint was made for: from ``opts['output_size']``, else
    the rows of its ``latent_avg``."""
    if opts.get("output_size"):
        return 2 * int(math.log2(int(opts["output_size"]))) - 2
    if latent_avg is not None and latent_avg.ndim == 2:
        return latent_avg.shape[0]
    raise KeyError("opts['output_size'] or a latent_avg with one row per style")


def read_psp(path: Path) -> Tuple[EncoderModelConfig, StateDict]:
    """A pSp, e4e or ReStyle checkpoint's encoder -> (config, state with ``encoder.*`` and
    ``latent_avg``). The kind comes from ``opts['encoder_type']`` (pSp's GradualStyleEncoder and
    WEncoder, Encoder4Editing, ReStyle's BackboneEncoder, ProgressiveBackboneEncoder and their
    ResNet-34 versions), the layout from the keys, ReStyle's iterations from
    ``opts['n_iters_per_batch']`` (default 5)."""
    name = Path(path).name
    ckpt = _psp_checkpoint(path)
    opts = ckpt.get("opts") if isinstance(ckpt.get("opts"), dict) else {}
    enc = {k[len("encoder."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")}
    trunk = "resnet" if "conv1.weight" in enc else "ir-se"
    try:
        if trunk == "resnet":
            units, widths, input_nc = resnet_layout(enc)
        else:
            input_nc = enc["input_layer.0.weight"].shape[1]
            units, widths = trunk_layout(enc)
        if "linear.weight" in enc:  # a WEncoder: one code for every style
            n_styles, w_dim = _n_styles(opts, ckpt.get("latent_avg")), enc["linear.weight"].shape[0]
        else:
            n_styles = 1 + max(int(k.split(".")[1]) for k in enc
                               if k.startswith("styles.") and k.endswith("linear.weight"))
            w_dim = enc["styles.0.linear.weight"].shape[0]
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{name}: the encoder lacks expected weights ({e})") from e
    default_type = ("WEncoder" if "linear.weight" in enc else ("ResNet" if trunk == "resnet" else "")
                    + ("BackboneEncoder" if input_nc == 6 else "GradualStyleEncoder"))
    encoder_type = opts.get("encoder_type", default_type)
    if encoder_type not in PSP_ENCODER_TYPES:
        raise CheckpointError(f"{name}: encoder type {encoder_type!r} is not supported "
                              f"(supported: {', '.join(PSP_ENCODER_TYPES)})")
    kind, label = PSP_ENCODER_TYPES[encoder_type]
    if (trunk == "resnet") != encoder_type.startswith("ResNet"):
        raise CheckpointError(f"{name}: encoder type {encoder_type!r} does not match its weights' trunk ({trunk})")
    iterative = input_nc == 6
    latent_avg = ckpt.get("latent_avg")
    start = bool(opts.get("start_from_latent_avg", latent_avg is not None)) or iterative
    if latent_avg is None:
        if start:
            raise CheckpointError(f"{name}: the codes start from the average latent, but the file has no 'latent_avg'")
        latent_avg = torch.zeros(w_dim)
    config = EncoderModelConfig(
        StyleEncoderConfig(kind=kind, n_styles=n_styles, w_dim=w_dim, input_nc=input_nc, units=units, widths=widths,
                           trunk=trunk),
        start_from_latent_avg=start, iterations=int(opts.get("n_iters_per_batch", 5)) if iterative else 1,
        name=label)
    with torch.device("meta"):  # key names only: no weights allocated
        wanted = EncoderModel(config).state_dict().keys()
    state = {f"encoder.{k}": v for k, v in enc.items() if f"encoder.{k}" in wanted}  # ReStyle loads non-strictly
    missing = [k for k in wanted if k not in state and k != "latent_avg"]
    if missing:
        raise CheckpointError(f"{name}: the {label} encoder lacks {len(missing)} weights, e.g. {missing[0]}")
    state["latent_avg"] = latent_avg.float().reshape(-1, w_dim).expand(n_styles, w_dim).clone()
    return config, state


def read_psp_decoder(path: Path) -> Tuple[StyleGAN2Config, StateDict]:
    """The StyleGAN2 (``decoder.*``) inside a pSp, e4e or ReStyle checkpoint."""
    ckpt = _psp_checkpoint(path)
    return _decoder_of(path, ckpt["state_dict"], ckpt.get("latent_avg"))


# ---------------------------------------------------------------------------------------
# HyperStyle: {"state_dict": hypernet.* + decoder.*, "opts", "latent_avg"}
# ---------------------------------------------------------------------------------------
def _hyperstyle_checkpoint(path: Path) -> dict:
    ckpt = _torch_load_weights_only(path)
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not any(k.startswith("hypernet.") for k in state):
        raise CheckpointError(f"{Path(path).name}: not a HyperStyle checkpoint (no 'state_dict' with 'hypernet.*')")
    return ckpt


def _rosinality_kernel_shapes(g: StateDict) -> tuple:
    """(kernel, in, out) of a rosinality generator's modulated convolutions in StyleSpace order:
    conv1, to_rgb1, then per resolution convs.{2i}, convs.{2i+1}, to_rgbs.{i}."""
    def shape(key):
        w = g[key]  # [1, out, in, k, k]
        return (w.shape[-1], w.shape[2], w.shape[1])
    out = [shape("conv1.conv.weight"), shape("to_rgb1.conv.weight")]
    for i in range(len([k for k in g if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])):
        out += [shape(f"convs.{2 * i}.conv.weight"), shape(f"convs.{2 * i + 1}.conv.weight"),
                shape(f"to_rgbs.{i}.conv.weight")]
    return tuple(out)


def read_hyperstyle(path: Path) -> Tuple[HyperStyleConfig, StateDict]:
    """A HyperStyle checkpoint's hypernetwork -> (config, state with ``hypernet.*`` and
    ``latent_avg``). The tuned and shared layers are read off the keys (the official file's
    ``opts['layers_to_tune']`` varies between releases), the generator's layer shapes off its
    ``decoder.*``, the iterations from ``opts['n_iters_per_batch']`` (default 5). Its W encoder
    (``faces_w_encoder.pt``) is a pSp checkpoint of its own (format ``psp``)."""
    name = Path(path).name
    ckpt = _hyperstyle_checkpoint(path)
    opts = ckpt.get("opts") if isinstance(ckpt.get("opts"), dict) else {}
    kind = opts.get("encoder_type", "SharedWeightsHyperNetResNet")
    if kind != "SharedWeightsHyperNetResNet":
        raise CheckpointError(f"{name}: HyperStyle encoder type {kind!r} is not supported "
                              "(supported: SharedWeightsHyperNetResNet)")
    state = ckpt["state_dict"]
    hyp = {k[len("hypernet."):]: v for k, v in state.items() if k.startswith("hypernet.")}
    dec = {k[len("decoder."):]: v for k, v in state.items() if k.startswith("decoder.")}
    def block(j: int, key: str) -> torch.Tensor:
        return hyp[f"refinement_blocks.{j}.{key}"]
    try:
        units, widths, input_nc = resnet_layout(hyp)
        layers = _rosinality_kernel_shapes(dec)
        tuned = sorted({int(m.group(1)) for k in hyp
                        if (m := re.fullmatch(r"refinement_blocks\.(\d+)\.convs\.0\.weight", k))})
        shared = [j for j in tuned if f"refinement_blocks.{j}.linear.weight" in hyp]  # HyperRefinementBlocks
        other = [j for j in tuned if j not in shared]
        code = block(shared[0], "linear.weight").shape[0] if shared else block(other[0], "output.1.weight").shape[1]
        side, shared_inner = 16, 128  # the official defaults, when no block is shared
        if shared:  # a shared block's stride-1 conv and its stride-2 convs down to 1 x 1: log2(side) + 1 convs
            pattern = rf"refinement_blocks\.{shared[0]}\.convs\.\d+\.weight"
            side = 2 ** (len([k for k in hyp if re.fullmatch(pattern, k)]) - 1)
            shared_inner = block(shared[0], "convs.0.weight").shape[0]
        inner = block(other[0], "convs.0.weight").shape[0] if other else 256
        w_dim = dec["conv1.conv.modulation.weight"].shape[1]
    except (KeyError, ValueError, IndexError) as e:
        raise CheckpointError(f"{name}: the hypernetwork lacks expected weights ({e})") from e
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is None:
        raise CheckpointError(f"{name}: the file has no 'latent_avg', which the W encoder's codes start from")
    num_ws = len([k for k in dec if re.fullmatch(r"convs\.\d+\.conv\.weight", k)]) + 2
    try:
        config = HyperStyleConfig(layers=layers, layers_to_tune=tuple(tuned), shared_layers=tuple(shared), units=units,
                                  widths=widths, input_nc=input_nc, input_size=16 * side, code=code,
                                  shared_inner=shared_inner, inner=inner, num_ws=num_ws, w_dim=w_dim,
                                  iterations=int(opts.get("n_iters_per_batch", 5)))
    except ValueError as e:
        raise CheckpointError(f"{name}: {e}") from e
    for k in [k for k in hyp if re.fullmatch(r"refinement_blocks\.\d+\.hypernet\.\w+", k)]:
        copy = hyp.pop(k)  # the shared hypernetwork, repeated under every block that uses it
        if not torch.equal(copy, hyp.get("shared_weight_hypernet." + k.rsplit(".", 1)[1], torch.empty(0))):
            raise CheckpointError(f"{name}: {k} differs from the shared hypernetwork it should repeat")
    out = {f"hypernet.{k}": v for k, v in hyp.items()}
    out["latent_avg"] = latent_avg.float().reshape(-1, w_dim).expand(num_ws, w_dim).clone()
    return config, out


def read_hyperstyle_decoder(path: Path) -> Tuple[StyleGAN2Config, StateDict]:
    """The StyleGAN2 (``decoder.*``) inside a HyperStyle checkpoint."""
    ckpt = _hyperstyle_checkpoint(path)
    return _decoder_of(path, ckpt["state_dict"], ckpt.get("latent_avg"))


ARCHITECTURES = {
    "stylegan2": (StyleGAN2Config, StyleGAN2Generator),
    "unet-segmenter": (SegmenterConfig, UNetSegmenter),
    "face-descriptor": (FaceDescriptorConfig, FaceDescriptorNet),
    "parameter-regressor": (RegressorConfig, ParameterRegressor),
    "hair-transfer": (HairTransferConfig, HairTransferNet),
    "hair-mixer": (HairMixerConfig, HairCodeMixer),
    "style-encoder": (EncoderModelConfig, EncoderModel),
    "hyperstyle": (HyperStyleConfig, HyperStyleModel),
}
#: what a catalogue model of kind "encoder" may be (its file says which)
ENCODER_ARCHITECTURES = ("style-encoder", "hyperstyle")


def save_safetensors(path: Path, config: Any, state: StateDict,
                     quantization: Optional[Dict[str, Tuple[float, float]]] = None,
                     storage: torch.dtype = torch.float32, **extra_meta: str) -> None:
    """Write a state dict with ``{"arch": name, "config": json}`` metadata (arch from the config type).
    Tensors named in ``quantization`` are integer codes ``q`` that mean ``q * scale + min``
    (kept as they are, e.g. uint8 as TensorFlow.js ships them); other floating-point tensors are
    stored as ``storage`` (float16 halves a shipped file; they load as float32), integers as they are."""
    quantization = quantization or {}
    arch = next(name for name, (cfg, _) in ARCHITECTURES.items() if isinstance(config, cfg))
    meta = {"arch": arch, "config": json.dumps(config.to_dict()), **extra_meta}
    if quantization:
        meta["quantization"] = json.dumps({k: list(v) for k, v in quantization.items()})
    tensors = {k: (v.detach().to("cpu") if k in quantization or not v.is_floating_point()
                   else v.detach().to("cpu", storage)).contiguous() for k, v in state.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    _st_save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def read_safetensors(path: Path, arch: str = "stylegan2") -> Tuple[Any, StateDict]:
    """(config, float32 state) of a file written by ``save_safetensors`` for architecture ``arch``."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = _st_load_file(str(path))
        quantization = json.loads(meta.get("quantization", "{}"))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{Path(path).name}: unreadable or truncated safetensors file ({e})") from e
    if meta.get("arch") != arch or "config" not in meta:
        raise CheckpointError(f"{Path(path).name}: not a semedit {arch} file (arch {meta.get('arch')!r})")
    for key, (scale, minimum) in quantization.items():
        if key in state:
            state[key] = (state[key].double() * scale + minimum).float()
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}  # float16 storage loads as float32
    return ARCHITECTURES[arch][0].from_dict(json.loads(meta["config"])), state


def architecture_of(path: Path) -> str:
    """The architecture a ``save_safetensors`` file holds (its metadata's ``arch``)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("arch", "")
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{Path(path).name}: unreadable or truncated safetensors file ({e})") from e


def load_module(path: Path, arch) -> torch.nn.Module:
    """Any architecture saved by ``save_safetensors``, in eval mode without gradients; ``arch``
    is its name, or a tuple of the names it may be (the file's metadata says which)."""
    if isinstance(arch, tuple):
        found = architecture_of(path)
        if found not in arch:
            raise CheckpointError(f"{Path(path).name}: holds {found or 'no semedit network'}, "
                                  f"not one of {', '.join(arch)}")
        arch = found
    config, state = read_safetensors(path, arch)
    return build_module(arch, config, state, source=Path(path).name)


def build_module(arch: str, config: Any, state: StateDict, source: str = "checkpoint") -> torch.nn.Module:
    """Instantiate ``arch`` from its config and fill it; every key and shape must match."""
    module = ARCHITECTURES[arch][1](config)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{source} does not match its config: {str(e).splitlines()[0]}") from e
    return module.eval().requires_grad_(False)


READERS: Dict[str, Callable[[Path], Tuple[StyleGAN2Config, StateDict]]] = {
    "safetensors": read_safetensors,
    "rosinality": read_rosinality,
    "nvlabs": read_nvlabs_pickle,
    "fg21-decoder": read_fg21_decoder,
    "psp-decoder": read_psp_decoder,
    "hyperstyle-decoder": read_hyperstyle_decoder,
}
#: readers of files that hold other networks (format -> (config, state)); converted like generators
OTHER_READERS: Dict[str, Callable[[Path], Tuple[Any, StateDict]]] = {
    "fg21": read_fg21_hair,
    "psp": read_psp,
    "hyperstyle": read_hyperstyle,
}


def read_generator_checkpoint(path: Path, fmt: str) -> Tuple[StyleGAN2Config, StateDict]:
    """Dispatch on ``fmt`` (one of ``FORMATS``)."""
    if fmt not in READERS:
        raise CheckpointError(f"unknown checkpoint format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return READERS[fmt](Path(path))


def build_generator(config: StyleGAN2Config, state: StateDict) -> StyleGAN2Generator:
    """Instantiate and fill a generator; every key must match (shapes included)."""
    return build_module("stylegan2", config, state)


def load_generator(path: Path, fmt: str) -> StyleGAN2Generator:
    return build_generator(*read_generator_checkpoint(path, fmt))


def convert_to_safetensors(src: Path, fmt: str, dst: Path) -> Path:
    """Convert any supported checkpoint (a generator's, or one of ``OTHER_READERS``) to our
    pickle-free format."""
    config, state = OTHER_READERS[fmt](Path(src)) if fmt in OTHER_READERS else read_generator_checkpoint(src, fmt)
    arch = next(name for name, (cfg, _) in ARCHITECTURES.items() if isinstance(config, cfg))
    build_module(arch, config, state, source=Path(src).name)  # validate before writing
    save_safetensors(dst, config, state, source_format=fmt)
    return Path(dst)


def state_num_bytes(state: StateDict) -> int:
    return sum(v.numel() * v.element_size() for v in state.values())


__all__ = ["FORMATS", "read_generator_checkpoint", "build_generator", "load_generator", "save_safetensors",
           "read_safetensors", "load_module", "read_rosinality", "read_nvlabs_pickle", "convert_to_safetensors",
           "RestrictedUnpickler", "PersistentStub", "state_num_bytes"]
