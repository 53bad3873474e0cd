"""Gradio front end: ``build_demo(registry, settings)``; one module per tab or panel."""
from .app import build_demo

__all__ = ["build_demo"]
