"""StyleGAN2 generator in pure PyTorch (no custom CUDA ops).

Tensor contract (as in the NVlabs implementation):

- ``G.mapping(z [N, z_dim]) -> w [N, w_dim]``
- ``G.synthesis(ws [N, num_ws, w_dim]) -> img [N, 3, H, W]``, roughly in [-1, 1]
- StyleSpace: ``G.synthesis.styles(ws) -> list of s [N, C_in]``, one per modulated
  convolution (``num_styles`` of them, ordered block by block: convolutions, then toRGB),
  and ``G.synthesis.from_styles(styles) -> img``.

Layer ``j`` of ``synthesis.layers`` reads ``ws[:, j]``; toRGB ``k`` reads ``ws[:, 2k + 1]``,
which is the layout shared by rosinality and NVlabs checkpoints (see
``semedit/checkpoints.py`` for the key mapping of both formats).

Two numerically equivalent execution paths exist for modulated convolutions:
``fused=True`` builds per-sample weights and runs one grouped convolution (fast for
inference at batch 1); ``fused=False`` modulates activations and shares the convolution
weights across the batch (faster to train on CPU at larger batches).
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

NoiseMode = Literal["const", "random", "none"]

#: FIR low-pass filter used for every 2x upsampling (separable [1, 3, 3, 1]); ``blur`` hard-codes it.
BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


@dataclass(frozen=True)
class StyleGAN2Config:
    """Hyper-parameters of a StyleGAN2 generator (config-f defaults: 1024 px FFHQ).

    ``channels`` lists the feature width of every block from 4 px up to ``resolution``
    and, when given, overrides ``channel_base``/``channel_max``
    (width at resolution r = min(channel_base // r, channel_max)).
    """

    resolution: int = 1024
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    channel_base: int = 32768
    channel_max: int = 512
    channels: Optional[tuple] = None
    mapping_lr_mul: float = 0.01
    conv_clamp: Optional[float] = None
    img_channels: int = 3

    def __post_init__(self) -> None:
        r = self.resolution
        if r < 4 or r > 1024 or r & (r - 1):
            raise ValueError(f"resolution must be a power of two in [4, 1024], got {r}")
        if self.channels is not None:
            object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
            if len(self.channels) != self.num_blocks:
                raise ValueError(f"channels needs {self.num_blocks} widths (4..{r} px), got {len(self.channels)}")

    @property
    def num_blocks(self) -> int:
        return int(math.log2(self.resolution)) - 1

    @property
    def block_resolutions(self) -> tuple:
        return tuple(2 ** i for i in range(2, int(math.log2(self.resolution)) + 1))

    @property
    def block_channels(self) -> tuple:
        if self.channels is not None:
            return self.channels
        return tuple(min(self.channel_base // r, self.channel_max) for r in self.block_resolutions)

    @property
    def num_ws(self) -> int:
        """Number of W+ entries: one per synthesis layer, plus the final toRGB."""
        return 2 * self.num_blocks

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.channels is not None:
            d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "StyleGAN2Config":
        d = dict(d)
        if d.get("channels") is not None:
            d["channels"] = tuple(d["channels"])
        return cls(**d)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class EqualizedLinear(nn.Module):
    """Linear layer with equalised learning rate: stored weight * lr_mul / sqrt(in)."""

    def __init__(self, in_features: int, out_features: int, *, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        if self.activation:
            x = F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN
        return x


class MappingNetwork(nn.Module):
    """z [N, z_dim] -> w [N, w_dim]: 2nd-moment normalisation, then an MLP."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_mul: float):
        super().__init__()
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            EqualizedLinear(dims[i], dims[i + 1], lr_mul=lr_mul, activation=True) for i in range(num_layers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = normalize_2nd_moment(z)
        for layer in self.layers:
            x = layer(x)
        return x


def _shifted_adds_1d(x: torch.Tensor, dim: int) -> torch.Tensor:
    """The [1, 3, 3, 1] / 8 filter along ``dim`` (valid part: the size shrinks by 3).

    (1 + z)^3 = 1 + 3z + 3z^2 + z^3, so three 2-tap box sums make the filter: shifted adds, the
    fastest form on a CPU at batch 1."""
    for _ in range(3):
        x = x.narrow(dim, 0, x.shape[dim] - 1) + x.narrow(dim, 1, x.shape[dim] - 1)
    return x * 0.125


class _Fir1d(torch.autograd.Function):
    """``_shifted_adds_1d`` with its adjoint as backward: the same symmetric filter over the gradient
    padded by 3 on both sides. Autograd's own backward of the six slices builds a zero tensor per
    slice, which cost about a fifth of an adversarial training step on the CPU. The backward is
    itself differentiable (R1 and the path-length penalty differentiate through it twice)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, dim: int) -> torch.Tensor:
        ctx.dim = dim
        return _shifted_adds_1d(x, dim)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        pad = [0] * (2 * (grad.ndim - ctx.dim))
        pad[-2:] = [3, 3]  # F.pad lists the last dimension first
        return _Fir1d.apply(F.pad(grad, pad), ctx.dim), None


def _fir_1d(x: torch.Tensor, dim: int) -> torch.Tensor:
    """The [1, 3, 3, 1] / 8 filter along ``dim`` (valid part: the size shrinks by 3); ``dim`` >= 0."""
    return _Fir1d.apply(x, dim) if torch.is_grad_enabled() and x.requires_grad else _shifted_adds_1d(x, dim)


@functools.lru_cache(maxsize=64)
def _fir_kernel(channels: int, gain: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The 2-D [1, 3, 3, 1] / 8 filter times ``gain`` as depthwise weights [channels, 1, 4, 4] (made
    once per shape, gain, device and type; an ordinary tensor even when first asked for in
    inference mode)."""
    with torch.inference_mode(False):
        taps = torch.tensor(BLUR_TAPS, dtype=torch.float64)
        k = torch.outer(taps, taps) / taps.sum() ** 2 * gain
        return k.expand(channels, 1, 4, 4).contiguous().to(device=device, dtype=dtype)


def blur(x: torch.Tensor, pad: tuple, gain: float = 1.0, *, depthwise: Optional[bool] = None) -> torch.Tensor:
    """[1, 3, 3, 1] FIR filter (separable, normalised, times ``gain``) of x [N, C, H, W] with
    padding (before, after) on both axes: [N, C, H + before + after - 3, ...]. ``depthwise``
    (default: on CUDA) runs it as one depthwise convolution, one kernel on a GPU, where the
    shifted adds that are fastest on a CPU would be twenty."""
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    if x.is_cuda if depthwise is None else depthwise:
        return F.conv2d(x, _fir_kernel(x.shape[1], float(gain), x.device, x.dtype), groups=x.shape[1])
    return _fir_1d(_fir_1d(x, 3), 2) * gain


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Zero-insertion 2x upsampling followed by the FIR filter (gain 4): [N,C,H,W] -> [N,C,2H,2W]."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, h, 2, w, 2)
    up[:, :, :, 0, :, 0] = x
    return blur(up.reshape(n, c, 2 * h, 2 * w), (2, 1), gain=4.0)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *,
                     demodulate: bool, upsample: bool, fused: bool) -> torch.Tensor:
    """StyleGAN2 modulated convolution.

    x [N, I, H, W], weight [O, I, k, k] (gain already applied) or one per sample [N, O, I, k, k]
    (always the fused path), styles [N, I] -> [N, O, H', W'] with H' = 2H when ``upsample``
    (transposed conv + FIR blur), else H.
    """
    n, in_ch, h, w_ = x.shape
    out_ch, _, k, _ = weight.shape[-4:]
    per_sample = weight.ndim == 5
    dcoefs = None
    if demodulate and per_sample:
        dcoefs = ((weight.square().sum(dim=[3, 4]) * styles.square()[:, None, :]).sum(2) + 1e-8).rsqrt()  # [N, O]
    elif demodulate:  # 1 / ||w * s|| per output channel, without building per-sample weights
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]

    if fused or per_sample:
        wmod = (weight if per_sample else weight[None]) * styles[:, None, :, None, None]  # [N, O, I, k, k]
        if dcoefs is not None:
            wmod = wmod * dcoefs[:, :, None, None, None]
        x = x.reshape(1, n * in_ch, h, w_)
        if upsample:
            wt = wmod.transpose(1, 2).reshape(n * in_ch, out_ch, k, k)
            x = F.conv_transpose2d(x, wt, stride=2, groups=n)
        else:
            x = F.conv2d(x, wmod.reshape(n * out_ch, in_ch, k, k), padding=k // 2, groups=n)
        x = x.reshape(n, out_ch, *x.shape[2:])
    else:
        x = x * styles[:, :, None, None]
        if upsample:
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        else:
            x = F.conv2d(x, weight, padding=k // 2)
        if dcoefs is not None:
            x = x * dcoefs[:, :, None, None]

    if upsample:
        p = (len(BLUR_TAPS) - 2) - (k - 1)
        x = blur(x, ((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)
    return x


def _with_delta(weight: torch.Tensor, delta: Optional[torch.Tensor]) -> torch.Tensor:
    """weight [O, I, k, k], or per sample weight * (1 + delta [N, O, I, k, k])."""
    return weight if delta is None else weight[None] * (1 + delta)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally 2x upsampling), noise, bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *,
                 upsample: bool, conv_clamp: Optional[float] = None):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.weight_gain = 1.0 / math.sqrt(in_channels * 9)
        self.upsample = upsample
        self.resolution = resolution
        self.conv_clamp = conv_clamp

    def forward(self, x: torch.Tensor, style: torch.Tensor, *, noise_mode: NoiseMode = "const",
                fused: bool = True, generator: Optional[torch.Generator] = None,
                noise: Optional[torch.Tensor] = None, weight_delta: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``noise`` [N or 1, 1, R, R], when given, replaces the noise that ``noise_mode`` picks;
        ``weight_delta`` [N, O, I, 3, 3] scales the weight per sample by (1 + delta) (HyperStyle)."""
        x = modulated_conv2d(x, _with_delta(self.weight * self.weight_gain, weight_delta), style, demodulate=True,
                             upsample=self.upsample, fused=fused)
        if noise is not None:
            x = x + noise * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        elif noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device,
                                dtype=x.dtype, generator=generator)
            x = x + noise * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(f"noise_mode must be const, random or none, got {noise_mode!r}")
        x = F.leaky_relu(x + self.bias[None, :, None, None], LRELU_SLOPE) * LRELU_GAIN
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return x


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to RGB, without demodulation."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int, *, conv_clamp: Optional[float] = None):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)
        self.conv_clamp = conv_clamp

    def forward(self, x: torch.Tensor, style: torch.Tensor, *, fused: bool = True,
                weight_delta: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = modulated_conv2d(x, _with_delta(self.weight * self.weight_gain, weight_delta), style, demodulate=False,
                             upsample=False, fused=fused)
        x = x + self.bias[None, :, None, None]
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return x


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> img [N, img_channels, R, R] ('skip' architecture)."""

    def __init__(self, config: StyleGAN2Config):
        super().__init__()
        chans = config.block_channels
        res = config.block_resolutions
        self.num_ws = config.num_ws
        self.w_dim = config.w_dim
        self.const = nn.Parameter(torch.randn(chans[0], 4, 4))
        layers = [SynthesisLayer(chans[0], chans[0], config.w_dim, 4, upsample=False, conv_clamp=config.conv_clamp)]
        to_rgbs = [ToRGBLayer(chans[0], config.img_channels, config.w_dim, conv_clamp=config.conv_clamp)]
        for i in range(1, len(res)):
            layers.append(SynthesisLayer(chans[i - 1], chans[i], config.w_dim, res[i], upsample=True,
                                         conv_clamp=config.conv_clamp))
            layers.append(SynthesisLayer(chans[i], chans[i], config.w_dim, res[i], upsample=False,
                                         conv_clamp=config.conv_clamp))
            to_rgbs.append(ToRGBLayer(chans[i], config.img_channels, config.w_dim, conv_clamp=config.conv_clamp))
        self.layers = nn.ModuleList(layers)
        self.to_rgbs = nn.ModuleList(to_rgbs)

    # ---- StyleSpace ---------------------------------------------------------------------
    def _modulated(self) -> list:
        """(module, ws index) for every modulated convolution in StyleSpace order."""
        order = [(self.layers[0], 0), (self.to_rgbs[0], 1)]
        for b in range(1, len(self.to_rgbs)):
            order += [(self.layers[2 * b - 1], 2 * b - 1), (self.layers[2 * b], 2 * b), (self.to_rgbs[b], 2 * b + 1)]
        return order

    @property
    def num_styles(self) -> int:
        return len(self.layers) + len(self.to_rgbs)

    @property
    def style_dims(self) -> tuple:
        """Width of every StyleSpace vector, in StyleSpace order."""
        return tuple(m.affine.weight.shape[0] for m, _ in self._modulated())

    def styles(self, ws: torch.Tensor) -> list:
        """ws [N, num_ws, w_dim] -> StyleSpace: list of s [N, C_in] (affine outputs)."""
        self._check_ws(ws)
        return [m.affine(ws[:, i]) for m, i in self._modulated()]

    @property
    def kernel_shapes(self) -> tuple:
        """(kernel size, in channels, out channels) of every modulated convolution, in
        StyleSpace order (HyperStyle's layer indices)."""
        return tuple((m.weight.shape[-1], m.weight.shape[1], m.weight.shape[0]) for m, _ in self._modulated())

    def weight_keys(self) -> tuple:
        """The state-dict key (below ``synthesis.``) of every modulated convolution's weight, in
        StyleSpace order."""
        names = {id(m): n for n, m in self.named_modules()}
        return tuple(f"{names[id(m)]}.weight" for m, _ in self._modulated())

    def from_styles(self, styles: Sequence[torch.Tensor], *, noise_mode: NoiseMode = "const",
                    fused: bool = True, generator: Optional[torch.Generator] = None,
                    noise: Optional[Sequence[torch.Tensor]] = None,
                    weight_deltas: Optional[Sequence[Optional[torch.Tensor]]] = None) -> torch.Tensor:
        """StyleSpace vectors (see ``styles``) -> img [N, C, R, R]. ``noise``: optional explicit
        maps, one [N or 1, 1, R_j, R_j] per synthesis layer (see ``noise_shapes``).
        ``weight_deltas``: one per modulated convolution in StyleSpace order, None or [N, O, I, k, k]
        (each weight times 1 + delta for its sample; HyperStyle)."""
        if len(styles) != self.num_styles:
            raise ValueError(f"expected {self.num_styles} style vectors, got {len(styles)}")
        if noise is not None and len(noise) != len(self.layers):
            raise ValueError(f"expected {len(self.layers)} noise maps, got {len(noise)}")
        if weight_deltas is not None and len(weight_deltas) != self.num_styles:
            raise ValueError(f"expected {self.num_styles} weight deltas (None where untouched), "
                             f"got {len(weight_deltas)}")
        s = iter(styles)
        d = iter(weight_deltas if weight_deltas is not None else [None] * self.num_styles)
        kw = dict(noise_mode=noise_mode, fused=fused, generator=generator)

        def layer(j, x):
            return self.layers[j](x, next(s), noise=None if noise is None else noise[j], weight_delta=next(d), **kw)

        def to_rgb(b, x):
            return self.to_rgbs[b](x, next(s), fused=fused, weight_delta=next(d))

        x = layer(0, self.const[None].expand(styles[0].shape[0], -1, -1, -1))
        img = to_rgb(0, x)
        for b in range(1, len(self.to_rgbs)):
            x = layer(2 * b, layer(2 * b - 1, x))
            img = upsample2x(img) + to_rgb(b, x)
        return img

    def noise_shapes(self) -> list:
        """Shape [1, 1, R, R] of the noise map of every synthesis layer."""
        return [(1, 1, m.resolution, m.resolution) for m in self.layers]

    def forward(self, ws: torch.Tensor, *, noise_mode: NoiseMode = "const", fused: bool = True,
                generator: Optional[torch.Generator] = None, noise: Optional[Sequence[torch.Tensor]] = None,
                weight_deltas: Optional[Sequence[Optional[torch.Tensor]]] = None) -> torch.Tensor:
        return self.from_styles(self.styles(ws), noise_mode=noise_mode, fused=fused, generator=generator,
                                noise=noise, weight_deltas=weight_deltas)

    def _check_ws(self, ws: torch.Tensor) -> None:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")


class StyleGAN2Generator(nn.Module):
    """Mapping + synthesis, with ``w_avg`` [w_dim] for truncation."""

    def __init__(self, config: StyleGAN2Config):
        super().__init__()
        self.config = config
        self.mapping = MappingNetwork(config.z_dim, config.w_dim, config.mapping_layers, config.mapping_lr_mul)
        self.synthesis = SynthesisNetwork(config)
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    @property
    def num_ws(self) -> int:
        return self.config.num_ws

    @property
    def resolution(self) -> int:
        return self.config.resolution

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """w [N, C] or ws [N, L, C] pulled towards ``w_avg``: w_avg + psi * (w - w_avg)."""
        return self.w_avg.lerp(w, psi) if psi != 1 else w

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """w [N, C] -> ws [N, num_ws, C] (the same code for every layer)."""
        return w[:, None].expand(-1, self.num_ws, -1)

    def forward(self, z: torch.Tensor, *, truncation_psi: float = 1.0, noise_mode: NoiseMode = "const",
                fused: bool = True, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """z [N, z_dim] -> img [N, C, R, R]."""
        ws = self.broadcast(self.truncate(self.mapping(z), truncation_psi))
        return self.synthesis(ws, noise_mode=noise_mode, fused=fused, generator=generator)

    @torch.no_grad()
    def estimate_w_avg(self, n: int = 10000, *, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Mean of mapping(z) over n samples of z ~ N(0, I): [w_dim]."""
        z = torch.randn(n, self.config.z_dim, generator=generator, device=self.w_avg.device)
        return self.mapping(z).mean(0)
