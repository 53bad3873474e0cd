"""Running near the GPU's speed: compiled generators and TF32, for CUDA only.

On CUDA the shared generators' synthesis networks are compiled (``torch.compile``) when they
load, so every optimisation loop (W, W+, S, ChunkyGAN, PTI's pivot, the hair optimisation)
runs compiled; the first step of each new shape pays the warm-up (tens of seconds at 1024 px).
PTI's private copy runs eager (a deep copy drops the compiled call). Matmuls and convolutions
use TF32 on GPUs that have it. On the CPU nothing changes: the outputs stay bit-identical to the
parity fixtures and short CPU runs would not earn back the warm-up.

``SEMEDIT_COMPILE``: ``auto`` (CUDA only, the default), ``on`` (CPU too: needs a C++ compiler),
``off``. ``SEMEDIT_TF32``: ``1`` (default) or ``0`` (exact float32, e.g. for parity checks on a GPU).
"""
from __future__ import annotations

import torch


def compiles(mode: str, device: torch.device) -> bool:
    """Whether generators loaded on ``device`` are compiled under ``SEMEDIT_COMPILE=mode``."""
    if mode == "on":
        return True
    return mode == "auto" and device.type == "cuda"


def compile_generator(G: torch.nn.Module) -> torch.nn.Module:
    """Compile ``G.synthesis`` in place (its module stays the same object) and return G."""
    G.synthesis.compile()
    return G


def configure_tf32(enabled: bool) -> None:
    """TF32 for CUDA matmuls and cuDNN convolutions on (speed) or off (exact float32); the app
    calls this once at start-up. No effect on the CPU."""
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled
