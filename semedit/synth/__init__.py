"""The embedded domain: procedural portraits that know the truth about every pixel."""
from .params import ACCESSORIES, HAIR_STYLES, Portraits, params_from_latent, sample_portraits
from .render import Rendering, render

__all__ = ["ACCESSORIES", "HAIR_STYLES", "Portraits", "params_from_latent", "sample_portraits", "Rendering", "render"]
