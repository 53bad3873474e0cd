"""Sampling panel: a grid of generator samples by seed and truncation."""
from __future__ import annotations

from typing import List, Tuple

import gradio as gr
import numpy as np

from ..imaging import tensor_to_uint8
from ..registry import Registry
from ..sampling import sample
from .common import MODEL_CONCURRENCY_ID, user_errors


def sample_fn(registry: Registry, max_samples: int):
    @user_errors
    def run(model: str, seed: float, count: float, truncation: float) -> List[Tuple[np.ndarray, str]]:
        if not model:
            raise gr.Error("Pick a generator first.")
        count = int(count)
        if not 1 <= count <= max_samples:
            raise gr.Error(f"The number of samples must be between 1 and {max_samples}.")
        if not 0.0 <= float(truncation) <= 1.5:
            raise gr.Error("Truncation must be between 0 and 1.5.")
        seed = int(seed)
        if not 0 <= seed < 2 ** 32:
            raise gr.Error("The seed must be between 0 and 4294967295.")
        G = registry.get(model)
        seeds = list(range(seed, seed + count))
        images = tensor_to_uint8(sample(G, seeds, truncation_psi=float(truncation)).images)
        return [(im, f"seed {s}") for im, s in zip(images, seeds)]
    return run


def create_sampling_panel(registry: Registry, picker: gr.Dropdown, max_samples: int) -> None:
    with gr.Row():
        with gr.Column(scale=1, min_width=240):
            seed = gr.Number(value=0, precision=0, minimum=0, label="First seed")
            count = gr.Slider(1, max_samples, value=min(8, max_samples), step=1, label="Samples")
            truncation = gr.Slider(0.0, 1.5, value=0.7, step=0.05, label="Truncation psi",
                                   info="1 = no truncation; smaller = closer to the average image")
            button = gr.Button("Sample", variant="primary")
        with gr.Column(scale=3):
            gallery = gr.Gallery(label="Samples", columns=4, object_fit="contain", height="auto", format="png")
    gr.Examples([[0, 8, 0.7], [100, 4, 1.0], [7, 8, 0.5]], inputs=[seed, count, truncation])
    button.click(sample_fn(registry, max_samples), inputs=[picker, seed, count, truncation], outputs=gallery,
                 api_name="sample", concurrency_id=MODEL_CONCURRENCY_ID, concurrency_limit=1)
