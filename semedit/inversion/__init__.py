"""Inversion methods: each is ``method(G, target, config, *, perceptual, device, progress) -> InversionResult``."""
from .chunky import ChunkyConfig, invert_chunky
from .common import InversionCancelled, InversionResult
from .optimization import OptimizationConfig, invert_optimization
from .pti import PTIConfig, invert_pti

__all__ = ["ChunkyConfig", "invert_chunky", "InversionCancelled", "InversionResult", "OptimizationConfig",
           "invert_optimization", "PTIConfig", "invert_pti"]
