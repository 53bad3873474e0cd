"""The embedded domain: procedural portraits that know the truth about every pixel."""
from .labels import CLASS_NAMES, NUM_CLASSES, PALETTE
from .params import (ACCESSORIES, HAIR_STYLES, Portraits, params_from_latent, sample_portraits)
from .render import Rendering, render

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "PALETTE", "ACCESSORIES", "HAIR_STYLES", "Portraits",
           "params_from_latent", "sample_portraits", "Rendering", "render"]
