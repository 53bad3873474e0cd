"""Model catalogue and the shared in-process model registry.

The catalogue (``weights/catalogue.json``, or the file ``SEMEDIT_CATALOGUE`` names) lists
every model. A model's file is found in this order:

1. ``file``: an explicit path (absolute, or relative to the catalogue's folder);
2. ``weights/<hub filename>``: a file the user placed beside the catalogue;
3. the Hugging Face Hub cache (``hf_hub_download(..., local_files_only=True)``);
4. a Hub download at the pinned ``revision`` (skipped when ``HF_HUB_OFFLINE=1``).

Its sha256 is checked when the catalogue has one. Pickle-based checkpoints are converted
once to safetensors in ``<cache_dir>/converted/`` so later loads never unpickle anything.

Two cache levels, both thread-safe: the resolved pickle-free source per model name
(failures included, so a missing model is not searched for again on every click), and
ready-to-run modules per (name, device, dtype), evicted least-recently-used when their
total size exceeds the memory budget.
"""
from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from . import checkpoints
from .errors import CatalogueError, ChecksumMismatchError, ModelNotAvailableError, SemeditError, UnknownModelError
from .acceleration import compile_generator, compiles
from .settings import Settings, resolve_device

EMBEDDED_DOMAIN = "embedded-portraits"  # catalogue config "domain" of the embedded models
KINDS = ("generator", "encoder", "identity", "perceptual", "directions", "segmenter", "regressor", "hair")


@dataclass(frozen=True)
class HubLocation:
    repo_id: str
    filename: str
    revision: str = "main"


@dataclass(frozen=True)
class ModelSpec:
    """One catalogue entry. ``config`` holds what the file does not say about itself."""

    name: str
    kind: str
    format: str
    file: Optional[Path] = None
    hub: Optional[HubLocation] = None
    sha256: Optional[str] = None
    verified: bool = False
    description: str = ""
    license: str = ""
    config: dict = field(default_factory=dict)
    package: Optional[str] = None  # ``file`` lies inside this installed Python package

    @property
    def embedded(self) -> bool:
        """A model of the embedded portrait domain (cartoons with ground truth, not photographs)."""
        return self.config.get("domain") == EMBEDDED_DOMAIN

    @property
    def paired_with_renderer(self) -> bool:
        """A generator distilled from the renderer: its image of z is the renderer's image of the
        same z, so every sample has exact ground truth (adversarially trained ones do not)."""
        return bool(self.config.get("paired_with_renderer", False))

    @property
    def local_filename(self) -> Optional[str]:
        """The file name a user would put into ``weights/`` for this model."""
        if self.file is not None:
            return self.file.name
        return Path(self.hub.filename).name if self.hub else None


@dataclass(frozen=True)
class Catalogue:
    path: Path
    models: Tuple[ModelSpec, ...]
    default_generator: Optional[str] = None
    default_perceptual: Optional[str] = None
    default_identity: Optional[str] = None

    @property
    def folder(self) -> Path:
        return self.path.parent

    def get(self, name: str) -> ModelSpec:
        for spec in self.models:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.models) or "none"
        raise UnknownModelError(f"no model named {name!r} in {self.path} (known: {known})")

    def names(self, kind: Optional[str] = None) -> Tuple[str, ...]:
        return tuple(s.name for s in self.models if kind is None or s.kind == kind)


def load_catalogue(path: Path) -> Catalogue:
    """Parse a catalogue JSON file:
    ``{"default_generator": name, "default_perceptual": name, "default_identity": name,
    "models": {name: entry}}``."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise CatalogueError(f"model catalogue not found: {path}") from e
    except json.JSONDecodeError as e:
        raise CatalogueError(f"model catalogue {path} is not valid JSON: {e}") from e
    models = []
    for name, entry in (raw.get("models") or {}).items():
        try:
            kind, fmt = entry["kind"], entry["format"]
        except (KeyError, TypeError) as e:
            raise CatalogueError(f"{path}: model {name!r} needs 'kind' and 'format'") from e
        if kind not in KINDS:
            raise CatalogueError(f"{path}: model {name!r} has unknown kind {kind!r} (one of {', '.join(KINDS)})")
        hub = entry.get("hub")
        if hub is not None and not ({"repo_id", "filename"} <= set(hub)):
            raise CatalogueError(f"{path}: model {name!r}: 'hub' needs repo_id and filename")
        file, package = entry.get("file"), entry.get("package")
        if file is None and hub is None:
            raise CatalogueError(f"{path}: model {name!r} needs a 'file' or a 'hub' location")
        models.append(ModelSpec(
            name=name, kind=kind, format=fmt,
            file=(Path(file) if package else path.parent / file) if file else None, package=package,
            hub=HubLocation(hub["repo_id"], hub["filename"], hub.get("revision", "main")) if hub else None,
            sha256=(entry.get("sha256") or None), verified=bool(entry.get("verified", False)),
            description=entry.get("description", ""), license=entry.get("license", ""),
            config=dict(entry.get("config") or {})))
    cat = Catalogue(path=path, models=tuple(models), default_generator=raw.get("default_generator"),
                    default_perceptual=raw.get("default_perceptual"), default_identity=raw.get("default_identity"))
    for default in (cat.default_generator, cat.default_perceptual, cat.default_identity):
        if default is not None:
            cat.get(default)
    return cat


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _hub_download(hub: HubLocation, settings: Settings, *, local_files_only: bool) -> Path:
    from huggingface_hub import hf_hub_download  # deferred: only needed on this path
    return Path(hf_hub_download(hub.repo_id, hub.filename, revision=hub.revision,
                                cache_dir=settings.hub_cache_dir, endpoint=settings.hub_endpoint,
                                local_files_only=local_files_only or settings.hub_offline))


DEFAULT_HUB_ENDPOINT = "https://huggingface.co"


def hub_reachable(endpoint: Optional[str], timeout: float = 1.5) -> bool:
    """Whether a TCP connection to the Hub's host opens within ``timeout`` seconds (a cheap
    probe before a download, so an offline machine fails at once instead of after retries)."""
    import socket
    from urllib.parse import urlsplit
    url = urlsplit(endpoint or DEFAULT_HUB_ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _package_file(package: str, file: Path) -> Optional[Path]:
    """``file`` inside the installed ``package`` (None when the package is not installed)."""
    import importlib.util
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(list(found.submodule_search_locations)[0]) / file
    return path if path.is_file() else None


def module_num_bytes(module: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))


#: kind -> function(pickle-free local path, spec) -> nn.Module (CPU, float32, eval)
Loader = Callable[[Path, ModelSpec], nn.Module]


LOADERS: Dict[str, Loader] = {
    "generator": lambda path, spec: checkpoints.load_module(path, "stylegan2"),
    "segmenter": lambda path, spec: checkpoints.load_module(path, "unet-segmenter"),
    "regressor": lambda path, spec: checkpoints.load_module(path, "parameter-regressor"),
    "hair": lambda path, spec: checkpoints.load_module(path, ("hair-transfer", "hair-mixer")),
    "encoder": lambda path, spec: checkpoints.load_module(path, checkpoints.ENCODER_ARCHITECTURES),
    "perceptual": lambda path, spec: _load_perceptual(path, spec),
    "identity": lambda path, spec: _load_identity(path, spec),
}


def _load_identity(path: Path, spec: ModelSpec) -> nn.Module:
    from .networks.identity import load_face_descriptor, load_irse
    label = spec.description.split(":")[0] or spec.name
    if spec.format == "arcface-irse":
        return load_irse(path, label)
    if spec.format == "face-descriptor":
        return load_face_descriptor(path, label)
    raise SemeditError(f"{spec.name}: unknown identity format {spec.format!r} (arcface-irse or face-descriptor)")


def _load_perceptual(path: Path, spec: ModelSpec) -> nn.Module:
    from . import losses
    if spec.format == "stlpips":
        return losses.build_stlpips(path, spec.config.get("net", "alex"))
    if spec.format == "lpips-vgg":
        return losses.build_lpips_vgg(path)
    raise SemeditError(f"{spec.name}: unknown perceptual format {spec.format!r} (stlpips or lpips-vgg)")
#: formats converted once to safetensors (pickled .pt/.pkl files; the FG'21 hair checkpoint holds a
#: hair network, format "fg21", and its generator, format "fg21-decoder", for two catalogue entries;
#: pSp, e4e and ReStyle checkpoints likewise an encoder, "psp", and a generator, "psp-decoder")
PICKLE_FORMATS = ("rosinality", "nvlabs", "fg21", "fg21-decoder", "psp", "psp-decoder", "hyperstyle",
                  "hyperstyle-decoder")


class Registry:
    """Resolves, loads and caches models by catalogue name. Safe to share between threads."""

    def __init__(self, catalogue: Catalogue, settings: Optional[Settings] = None,
                 loaders: Optional[Dict[str, Loader]] = None):
        self.catalogue = catalogue
        self.settings = settings or Settings()
        self._loaders = dict(LOADERS if loaders is None else loaders)
        self._lock = threading.Lock()
        self._key_locks: Dict[object, threading.Lock] = {}
        self._sources: Dict[str, Union[Path, SemeditError]] = {}
        self._models: "OrderedDict[Tuple[str, str, torch.dtype], nn.Module]" = OrderedDict()
        self.loads = 0  # number of checkpoint reads, for tests and diagnostics

    @classmethod
    def from_settings(cls, settings: Optional[Settings] = None) -> "Registry":
        settings = settings or Settings.from_env()
        return cls(load_catalogue(settings.catalogue_path), settings)

    def with_models(self, specs: Sequence[ModelSpec]) -> "Registry":
        """A new registry (same settings and loaders, nothing loaded) whose catalogue adds ``specs``,
        e.g. candidate files that benchmarks measure before they join the catalogue."""
        catalogue = replace(self.catalogue, models=self.catalogue.models + tuple(specs))
        return Registry(catalogue, self.settings, self._loaders)

    # ---- where a model lives ----------------------------------------------------------
    def local_path(self, name: str) -> Optional[Path]:
        """The model's file if it is on this machine (steps 1-3), without downloading."""
        spec = self.catalogue.get(name)
        if spec.package is not None:
            return _package_file(spec.package, spec.file)
        if spec.file is not None and spec.file.is_file():
            return spec.file
        if spec.local_filename and (self.catalogue.folder / spec.local_filename).is_file():
            return self.catalogue.folder / spec.local_filename
        if spec.hub is not None:
            try:
                return _hub_download(spec.hub, self.settings, local_files_only=True)
            except Exception:  # noqa: BLE001 - any cache miss means "not local"
                return None
        return None

    def is_local(self, name: str) -> bool:
        return self.local_path(name) is not None

    def model_files(self, model: str) -> Dict[str, str]:
        """{name: first 12 hex digits of its file's sha256} for the local files that results made
        with generator ``model`` depend on: its own, those its entry names (regressor, segmenter),
        those that name it as their generator (encoders, directions, hair networks), the identity
        models and the perceptual models (the loss and the one that scores). A results folder
        records them, so results of other files are not mixed."""
        spec = self.catalogue.get(model)
        names = [model] + [v for v in spec.config.values() if isinstance(v, str) and v in self.catalogue.names()]
        names += [m.name for m in self.catalogue.models
                  if m.config.get("generator") == model or m.kind in ("identity", "perceptual")]
        paths = {name: self.local_path(name) for name in dict.fromkeys(names)}
        return {name: sha256_of(path)[:12] for name, path in paths.items() if path is not None}

    def obtainable(self, name: str) -> bool:
        """On this machine, or on the Hub (it may still fail to download when offline)."""
        return self.catalogue.get(name).hub is not None or self.is_local(name)

    def first_local(self, kind: str, preferred: Optional[str] = None) -> Optional[str]:
        """``preferred`` when it is on this machine, else the first model of ``kind`` in the
        catalogue that is (None when none is): for models the app can do without."""
        names = ([preferred] if preferred else []) + [n for n in self.catalogue.names(kind) if n != preferred]
        return next((n for n in names if self.is_local(n)), None)

    def resolve(self, name: str) -> Path:
        """The model's checkpoint path, downloading it when allowed (step 4)."""
        spec = self.catalogue.get(name)
        path = self.local_path(name)
        if path is None and spec.hub is not None and not self.settings.hub_offline:
            if not hub_reachable(self.settings.hub_endpoint):
                host = self.settings.hub_endpoint or DEFAULT_HUB_ENDPOINT
                raise self._not_available(spec, f"the Hugging Face Hub ({host}) cannot be reached from this machine; "
                                                "set HF_HUB_OFFLINE=1 to stop trying")
            try:
                path = _hub_download(spec.hub, self.settings, local_files_only=False)
            except Exception as e:  # noqa: BLE001 - network, HTTP and cache errors all end here
                raise self._not_available(spec, f"the download failed: {type(e).__name__}: {e}") from e
        if path is None:
            why = "HF_HUB_OFFLINE=1 forbids downloads" if self.settings.hub_offline else "no local copy"
            raise self._not_available(spec, why)
        if spec.sha256:
            digest = sha256_of(path)
            if digest != spec.sha256.lower():
                raise ChecksumMismatchError(
                    f"{name}: {path} has sha256 {digest[:12]}..., the catalogue expects {spec.sha256[:12]}... "
                    "The file is corrupt or truncated: delete it and download it again.")
        return path

    def _not_available(self, spec: ModelSpec, why: str) -> ModelNotAvailableError:
        if spec.package:
            return ModelNotAvailableError(f"model {spec.name!r} ships inside the Python package {spec.package!r}, "
                                          f"which is not installed: pip install -r requirements.txt")
        where = (f"Hub repo {spec.hub.repo_id!r}, file {spec.hub.filename!r}, revision {spec.hub.revision!r}"
                 if spec.hub else f"file {spec.file}")
        return ModelNotAvailableError(
            f"model {spec.name!r} is not available ({why}). It lives at {where}. "
            f"Download it on a machine with network access and place it at "
            f"{self.catalogue.folder / (spec.local_filename or spec.name)}.")

    def source(self, name: str) -> Path:
        """A pickle-free local file for ``name`` (converted once, failures remembered)."""
        with self._key_lock(("source", name)):
            cached = self._sources.get(name)
            if isinstance(cached, SemeditError):
                raise cached
            if cached is not None:
                return cached
            try:
                result = self._make_source(self.catalogue.get(name))
            except SemeditError as e:
                self._sources[name] = e
                raise
            self._sources[name] = result
            return result

    def _make_source(self, spec: ModelSpec) -> Path:
        path = self.resolve(spec.name)
        if spec.format not in PICKLE_FORMATS:
            return path
        digest = spec.sha256 or sha256_of(path)
        converted = self.settings.cache_dir / "converted" / f"{spec.name}-{digest[:16]}.safetensors"
        if not converted.is_file():
            checkpoints.convert_to_safetensors(path, spec.format, converted)
        return converted

    def forget_failures(self) -> None:
        """Drop remembered failures (after the user placed a missing file, say)."""
        with self._lock:
            for k in [k for k, v in self._sources.items() if isinstance(v, SemeditError)]:
                del self._sources[k]

    # ---- ready-to-run modules ---------------------------------------------------------
    def get(self, name: str, device: Union[str, torch.device, None] = None,
            dtype: torch.dtype = torch.float32) -> nn.Module:
        """The shared module for ``name`` on ``device`` (default: the settings' device), in
        eval mode without gradients. Never modify it: use ``copy`` for tuning."""
        dev = resolve_device(str(device)) if device is not None else self.settings.torch_device
        key = (name, str(dev), dtype)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        with self._key_lock(key):
            with self._lock:
                if key in self._models:
                    return self._models[key]
            spec = self.catalogue.get(name)
            loader = self._loaders.get(spec.kind)
            if loader is None:
                raise SemeditError(f"models of kind {spec.kind!r} cannot be loaded yet ({name})")
            module = loader(self.source(name), spec)
            module = module.to(device=dev, dtype=dtype).eval().requires_grad_(False)
            if spec.kind == "generator" and compiles(self.settings.compile, dev):
                compile_generator(module)
            self.loads += 1
            with self._lock:
                self._models[key] = module
                self._evict_over_budget(keep=key)
            return module

    def copy(self, name: str, device: Union[str, torch.device, None] = None,
             dtype: torch.dtype = torch.float32) -> nn.Module:
        """A private, trainable deep copy (for methods that tune weights, e.g. PTI)."""
        return copy.deepcopy(self.get(name, device, dtype)).requires_grad_(True)

    def cached_keys(self) -> Tuple[Tuple[str, str, torch.dtype], ...]:
        with self._lock:
            return tuple(self._models)

    def _evict_over_budget(self, keep: object) -> None:
        budget = self.settings.memory_budget_mb * 2 ** 20
        while sum(module_num_bytes(m) for m in self._models.values()) > budget and len(self._models) > 1:
            oldest = next(k for k in self._models if k != keep)
            del self._models[oldest]

    def _key_lock(self, key: object) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())
