"""Latent editing: directions (``directions``), how to find them (``fit``), the published file
layouts (``formats``) and the directions each catalogued generator has (``library``)."""
from .directions import Direction, apply_edits, edit_space

__all__ = ["Direction", "apply_edits", "edit_space"]
