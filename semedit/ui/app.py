"""The Blocks app: header, shared generator picker, the tabs and the sampling panel."""
from __future__ import annotations

from typing import Optional

import gradio as gr

from ..acceleration import configure_tf32
from ..registry import Registry
from ..settings import Settings
from . import chunks, hair, inversion, sliders
from .model_picker import create_model_picker
from .sampling import create_sampling_panel
from .sessions import Sessions

INTRO = """# semedit
GAN-based semantic face editing on one shared StyleGAN2: inversion comparison, attribute sliders,
ChunkyGAN segment editing and hairstyle transfer. Device: **{device}**."""


def build_demo(registry: Optional[Registry] = None, settings: Optional[Settings] = None) -> gr.Blocks:
    settings = settings or (registry.settings if registry else Settings.from_env())
    registry = registry or Registry.from_settings(settings)
    configure_tf32(settings.tf32)
    sessions = Sessions(settings)
    ttl = sessions.ttl_s
    # Gradio's own cache (uploads, served results): files older than the session TTL, and at least
    # SEMEDIT_CACHE_MIN_AGE_MINUTES old, are removed (an upload must outlive its request's wait in
    # the queue: a load test with a 2-minute age lost uploads that had waited longer than that)
    age = max(int(settings.cache_min_age_minutes * 60), int(ttl))
    # analytics off: the app sends nothing about its use anywhere
    with gr.Blocks(title="semedit", delete_cache=(max(60, int(min(ttl, age) // 4)), age),
                   analytics_enabled=False) as demo:
        gr.Markdown(INTRO.format(device=settings.torch_device))
        picker = create_model_picker(registry)
        # this session's inversion results and fitted directions, for the editing tabs; freed when
        # the browser leaves (Gradio) or after the TTL (sessions that never leave, e.g. API clients)
        results = gr.State({}, time_to_live=ttl)
        directions = gr.State([], time_to_live=ttl)
        with gr.Tab("Inversion comparison"):
            inversion.create_tab(registry, picker, results, sessions)
        with gr.Tab("Attribute sliders"):
            sliders.create_tab(registry, picker, results, directions, sessions)
        with gr.Tab("ChunkyGAN segment editor"):
            chunks.create_tab(registry, picker, results, directions, sessions)
        with gr.Tab("Hairstyle transfer"):
            hair.create_tab(registry, picker, sessions)
        with gr.Tab("Samples"):
            create_sampling_panel(registry, picker, settings.max_samples, sessions)
        demo.unload(sessions.end)  # the browser left: cancel its long jobs, remove its files
    demo.queue(max_size=settings.queue_size)
    demo.sessions = sessions  # app.py removes their folders at shut-down; tests look inside
    return demo
