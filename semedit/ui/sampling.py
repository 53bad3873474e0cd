"""Sampling panel: a grid of generator samples by seed and truncation, and for the embedded
domain their labels: predicted (segmenter map, regressor attributes) for every generator, and
the renderer's ground truth of the same latents for generators paired with the renderer."""
from __future__ import annotations

from typing import List, Tuple

import gradio as gr
import numpy as np

from ..imaging import tensor_to_uint8
from ..registry import Registry
from ..sampling import MAX_SEED, sample
from ..synth.ground_truth import predict_portraits, sample_with_ground_truth
from ..segmentation import colorize
from ..synth.params import HAIR_STYLES
from .common import user_errors
from .sessions import Sessions

ATTRIBUTE_COLUMNS = ["seed", "source", "hair_style", "smile", "beard", "glasses", "age", "yaw", "light_angle"]


def _check(model: str, seed: float, count: float, max_samples: int) -> List[int]:
    if not model:
        raise gr.Error("Pick a generator first.")
    if seed is None or count is None:
        raise gr.Error("Give a seed and a number of samples.")
    count, seed = int(count), int(seed)
    if not 1 <= count <= max_samples:
        raise gr.Error(f"The number of samples must be between 1 and {max_samples}.")
    if not 0 <= seed <= MAX_SEED + 1 - count:  # every seed of the grid is a 32-bit seed
        raise gr.Error(f"The first seed must be between 0 and {MAX_SEED + 1 - count} for {count} samples.")
    return list(range(seed, seed + count))


def sample_fn(registry: Registry, max_samples: int):
    @user_errors
    def run(model: str, seed: float, count: float, truncation: float) -> List[Tuple[np.ndarray, str]]:
        seeds = _check(model, seed, count, max_samples)
        if not 0.0 <= float(truncation) <= 1.5:
            raise gr.Error("Truncation must be between 0 and 1.5.")
        images = tensor_to_uint8(sample(registry.get(model), seeds, truncation_psi=float(truncation)).images)
        return [(im, f"seed {s}") for im, s in zip(images, seeds)]
    return run


def attribute_rows(seeds, portraits, source: str) -> list:
    """One table row per seed: the attributes and pose of ``portraits``, marked by ``source``."""
    att, pose = portraits.attributes(), portraits.pose()
    return [[s, source, HAIR_STYLES[int(att["hair_style"][i])], round(float(att["smile"][i]), 2),
             bool(att["beard"][i]), bool(att["glasses"][i]), round(float(att["age"][i]), 2),
             round(float(pose["yaw"][i]), 2), round(float(pose["light_angle"][i]), 2)]
            for i, s in enumerate(seeds)]


def ground_truth_fn(registry: Registry, max_samples: int):
    @user_errors
    def run(model: str, seed: float, count: float):
        seeds = _check(model, seed, count, max_samples)
        spec = registry.catalogue.get(model)
        if not spec.embedded:
            raise gr.Error("Labels exist only for generators of the embedded portrait domain.")
        G = registry.get(model)
        images = sample(G, seeds).images  # truncation 1: the renderer's pairing holds only there
        gallery, rows = [], []
        truth = sample_with_ground_truth(G, seeds) if spec.paired_with_renderer else None
        segmenter, regressor = spec.config.get("segmenter"), spec.config.get("regressor")
        predicted = colorize(registry.get(segmenter).predict(images.to(G.w_avg.device)).cpu().numpy()) \
            if segmenter else [None] * len(seeds)
        for i, s in enumerate(seeds):
            if truth is not None:
                gallery += [(tensor_to_uint8(truth.target[i]), f"seed {s}: renderer"),
                            (colorize(truth.labels[i].numpy()), f"seed {s}: labels")]
            if predicted[i] is not None:
                gallery.append((predicted[i], f"seed {s}: predicted labels"))
        if truth is not None:
            rows += attribute_rows(seeds, truth.portraits, "renderer")
        if regressor:
            rows += attribute_rows(seeds, predict_portraits(registry.get(regressor), images), "predicted")
        return gallery, rows
    return run


def create_sampling_panel(registry: Registry, picker: gr.Dropdown, max_samples: int, sessions: Sessions) -> None:
    with gr.Row():
        with gr.Column(scale=1, min_width=240):
            seed = gr.Number(value=0, precision=0, minimum=0, label="First seed")
            count = gr.Slider(1, max_samples, value=min(8, max_samples), step=1, label="Samples")
            truncation = gr.Slider(0.0, 1.5, value=0.7, step=0.05, label="Truncation psi",
                                   info="1 = no truncation; smaller = closer to the average image")
            button = gr.Button("Sample", variant="primary")
            truth_button = gr.Button("Labels", variant="secondary")
            gr.Markdown("*Labels* (embedded portrait domain, truncation 1): the segmenter's map and the "
                        "regressor's attributes of each sample, marked *predicted*; for a generator paired "
                        "with the renderer also the renderer's image, label map and attributes of the same "
                        "latents, which are exact.")
        with gr.Column(scale=3):
            gallery = gr.Gallery(label="Samples", columns=4, object_fit="contain", height="auto", format="png")
            truth = gr.Gallery(label="Labels: renderer ground truth (paired generators) and predicted label maps",
                               columns=6, object_fit="contain", height="auto", format="png")
            table = gr.Dataframe(headers=ATTRIBUTE_COLUMNS, label="Attributes (renderer: exact; predicted: regressor)",
                                 interactive=False)
    gr.Examples([[0, 8, 0.7], [100, 4, 1.0], [7, 8, 0.5]], inputs=[seed, count, truncation])
    sessions.short(button.click, sample_fn(registry, max_samples), inputs=[picker, seed, count, truncation],
                   outputs=gallery, api_name="sample")
    sessions.short(truth_button.click, ground_truth_fn(registry, max_samples), inputs=[picker, seed, count],
                   outputs=[truth, table], api_name="ground_truth")
