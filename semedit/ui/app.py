"""The Blocks app: header, shared generator picker, the tabs and the sampling panel."""
from __future__ import annotations

from typing import Optional

import gradio as gr

from ..registry import Registry
from ..settings import Settings
from . import chunks, hair, inversion, sliders
from .model_picker import create_model_picker
from .sampling import create_sampling_panel

INTRO = """# semedit
GAN-based semantic face editing on one shared StyleGAN2: inversion comparison, attribute sliders,
ChunkyGAN segment editing and hairstyle transfer. Device: **{device}**."""


def build_demo(registry: Optional[Registry] = None, settings: Optional[Settings] = None) -> gr.Blocks:
    settings = settings or (registry.settings if registry else Settings.from_env())
    registry = registry or Registry.from_settings(settings)
    with gr.Blocks(title="semedit") as demo:
        gr.Markdown(INTRO.format(device=settings.torch_device))
        picker = create_model_picker(registry)
        results = gr.State({})  # this session's inversion results, for the editing tabs
        directions = gr.State([])  # directions this session fitted, for the editing tabs
        with gr.Tab("Inversion comparison"):
            inversion.create_tab(registry, picker, results)
        with gr.Tab("Attribute sliders"):
            sliders.create_tab(registry, picker, results, directions)
        with gr.Tab("ChunkyGAN segment editor"):
            chunks.create_tab(registry, picker, results, directions)
        with gr.Tab("Hairstyle transfer"):
            hair.create_tab(registry, picker)
        with gr.Tab("Samples"):
            create_sampling_panel(registry, picker, settings.max_samples)
    demo.queue(max_size=settings.queue_size)
    return demo
