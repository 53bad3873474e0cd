"""Hairstyle transfer tab: the hair of one face image on the person of another.

Endpoints: ``/hair_transfer`` (face and hair from files or samples, a method; the result with
its masks, measures and paste-back), ``/hair_amount`` (the interpolation strip: hair amount 0 ->
1), ``/hair_edit`` (hair colour and length sliders on the result), ``/hair_export`` (files).
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional

import gradio as gr
import numpy as np
import pandas as pd
import torch

from .. import pipeline
from ..editing.directions import apply_edits
from ..editing.library import directions_for
from ..hair.transfer import HairOptimisation, interpolate, reblend
from ..imaging import tensor_to_pil, tensor_to_uint8
from ..latents import Latent, synthesize
from ..registry import Registry
from ..sampling import sample, z_from_seeds
from ..settings import PROJECT_ROOT
from ..synth.examples import HAIR_PAIRS, portraits_of_example
from ..synth.ground_truth import hair_transfer_truth
from ..synth.params import params_from_latent
from ..targets import CROP_SIZE, Target
from .common import user_errors
from .sessions import Sessions, step_callback

EXAMPLES_DIR = PROJECT_ROOT / "examples" / "embedded"
SOURCES = [("an image", "image"), ("a sample", "sample")]
#: the hair sliders: (label, the built-in direction's attribute)
HAIR_SLIDERS = (("hair colour", "hair_color"), ("grey hair", "hair_gray"), ("hair length", "hair_length"))
SHOW = 256


def _big(img: torch.Tensor) -> np.ndarray:
    return tensor_to_uint8(torch.nn.functional.interpolate(img.float(), size=(SHOW, SHOW), mode="nearest"))[0]


def _mask_view(mask: Optional[torch.Tensor]) -> Optional[np.ndarray]:
    if mask is None:
        return None
    return _big(mask[None, None].expand(1, 3, -1, -1) * 2 - 1)


def source_target(registry: Registry, model: str, kind: str, image, seed, role: str) -> Target:
    """The face or hair Target: an uploaded/example file (its truth when it is an embedded
    example) or a sample (its renderer parameters when the generator is paired with the renderer)."""
    spec = registry.catalogue.get(model)
    if kind == "sample":
        G = registry.get(model)
        s = sample(G, [int(seed or 0)])
        truth = params_from_latent(z_from_seeds([int(seed or 0)], G.config.z_dim)) if spec.paired_with_renderer \
            else None
        return Target.from_image(s.images, name=f"sample {int(seed or 0)}", truth=truth)
    if not image:
        raise gr.Error(f"Upload the {role} image, pick an example, or choose a sample.")
    target = pipeline.load_target(registry, model, image)
    if spec.embedded:
        target = replace(target, truth=portraits_of_example(target.photo, EXAMPLES_DIR))
    return target


def true_result(face: Target, hair: Target) -> Optional[torch.Tensor]:
    """The true transfer [1, 3, CROP_SIZE, CROP_SIZE] when both targets are renders, else None."""
    if face.truth is None or hair.truth is None:
        return None
    return hair_transfer_truth(face.truth, hair.truth, CROP_SIZE)


def measures_table(measures: dict) -> pd.DataFrame:
    return pd.DataFrame([[k, "n/a" if isinstance(v, float) and math.isnan(v) else round(float(v), 4)]
                         for k, v in measures.items()], columns=["measure", "value"])


def make_transfer(registry: Registry, sessions: Sessions):
    @user_errors
    def run(model, face_kind, face_image, face_seed, hair_kind, hair_image, hair_seed, method, steps,
            progress=gr.Progress(), request: gr.Request = None):
        if not model:
            raise gr.Error("Pick a generator first.")
        face = source_target(registry, model, face_kind, face_image, face_seed, "face")
        hair = source_target(registry, model, hair_kind, hair_image, hair_seed, "hair")
        truth = true_result(face, hair)
        cfg = HairOptimisation(invert_steps=int(steps), steps=int(steps) + 50)
        with sessions.long_job(request) as job:
            outcome = pipeline.transfer_hair(registry, model, face, hair, method, truth=truth, cfg=cfg,
                                             progress=step_callback(job, progress, "hair transfer"))
        r = outcome.result
        gallery = [(_big(face.image), "face image"), (_big(hair.image), "hair image")]
        if method.startswith("optimisation"):
            gallery.append((_big(r.hair_source), "hair image as used (its code turned to the face's pose)"))
        gallery.append((_big(r.image), f"result: {r.method}"))
        if truth is not None:
            gallery.append((_big(truth), "true image (renderer)"))
        for mask, caption in ((r.face_region, "where the face image was kept"),
                              (r.hair_region, "where the hair went")):
            if mask is not None:
                gallery.append((_mask_view(mask), caption))
        note = f"{r.method}: {r.seconds:.2f} s."
        return outcome, gallery, measures_table(outcome.measures), outcome.pasted, note, _image_at(registry, model,
                                                                                                   outcome, 1.0)
    return run


def _image_at(registry: Registry, model: str, outcome, amount: float) -> np.ndarray:
    """The transfer at hair ``amount``; for a blended result, each frame blended as it was."""
    plain = outcome.plain or outcome.result
    if plain.latent is None or plain.start is None:
        return _big(outcome.result.image)
    frame = interpolate(registry.get(model), plain, amount)
    if outcome.result is not plain:
        frame = reblend(frame, outcome.result, outcome.face.image)
    return _big(frame)


def make_amount(registry: Registry):
    @user_errors
    def amount(model, outcome, value):
        """The transfer at hair amount ``value``, by the generator that made it (``model``, the
        menu's current choice, may have changed since)."""
        if outcome is None:
            raise gr.Error("Run a transfer first.")
        return _image_at(registry, outcome.generator, outcome, float(value or 0))
    return amount


def make_hair_edit(registry: Registry):
    @user_errors
    def edit(model, outcome, *values):
        """The transfer's code moved along its generator's hair colour, grey-hair and hair-length
        directions (the generator that made it, whatever the menu shows now)."""
        if outcome is None:
            raise gr.Error("Run a transfer first.")
        plain = outcome.plain or outcome.result
        if plain.latent is None:
            raise gr.Error("This result has no code to edit.")
        edits = hair_edits(registry, outcome.generator, [v or 0 for v in values])
        G = registry.get(outcome.generator)
        with torch.no_grad():
            moved = apply_edits(G, Latent("w+", plain.latent.value.to(G.w_avg.device)), edits)
            image = synthesize(G, moved).clamp(-1, 1).cpu()
        return _big(image)
    return edit


def hair_edits(registry: Registry, model: str, values) -> list:
    """(direction, units) for each hair slider whose built-in direction the generator has."""
    known = {d.attribute: d for d in reversed(directions_for(registry, model)) if d.space in ("w", "w+", "s")}
    return [(known[attr], float(v)) for (_, attr), v in zip(HAIR_SLIDERS, values) if attr in known and float(v)]


def make_export(sessions: Sessions):
    @user_errors
    def export(outcome, request: gr.Request = None):
        if outcome is None:
            raise gr.Error("Run a transfer first.")
        folder = sessions.folder(request, "hair-")
        r = outcome.result
        files = [folder / "hair-transfer.png", folder / "hair-transfer_photo.png"]
        tensor_to_pil(r.image).save(files[0])
        outcome.pasted.save(files[1])
        plain = outcome.plain or r
        if plain.latent is not None:
            torch.save({"method": plain.method, "space": "w+", "latent": plain.latent.value.cpu(),
                        "face_latent": None if plain.start is None else plain.start.value.cpu()},
                       folder / "hair-transfer.pt")
            files.append(folder / "hair-transfer.pt")
        return [str(f) for f in files]
    return export


def default_method(registry: Registry, model: Optional[str]) -> str:
    """Where ``model`` has a trained hair model: on the embedded generators (whose regressor is an
    identity model) the network's transfer with identity steps read on the blend, alpha-blended into
    the face image (on the default generator closer to the true image than the plain blend and
    nearer the face's person by the held-out reader: bench/results/hair_transfer_gan_linear.md),
    elsewhere the plain blend (closer to the true image than the network alone on every embedded
    generator); else optimisation."""
    if not model or not pipeline.hair_model_for(registry, model):
        return "optimisation"
    spec = registry.catalogue.get(model)
    return "model+identity+blend" if spec.embedded and spec.config.get("regressor") else "model+blend"


def create_tab(registry: Registry, picker: gr.Dropdown, sessions: Sessions) -> None:
    outcome_state = gr.State(None, time_to_live=sessions.ttl_s)
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            face_kind = gr.Radio(SOURCES, value="image", label="Face (the person)")
            face_image = gr.File(label="Face image", file_types=["image"], type="filepath", height=100)
            face_seed = gr.Number(0, precision=0, minimum=0, label="Face sample seed")
            hair_kind = gr.Radio(SOURCES, value="image", label="Hair (the hairstyle)")
            hair_image = gr.File(label="Hair image", file_types=["image"], type="filepath", height=100)
            hair_seed = gr.Number(1, precision=0, minimum=0, label="Hair sample seed")
            method = gr.Radio([(label, key) for key, label in pipeline.HAIR_METHODS.items()],
                              value=default_method(registry, picker.value),
                              label="Method (the network needs a trained model for the generator)")
            steps = gr.Slider(50, 500, value=150, step=50, label="Optimisation: steps per inversion")
            with gr.Row():
                run_button = gr.Button("Transfer the hair", variant="primary")
                cancel_button = gr.Button("Cancel", variant="stop")
            status = gr.Markdown()
        with gr.Column(scale=2):
            gallery = gr.Gallery(label="Inputs, result, true image and masks", columns=4, height="auto",
                                 format="png", object_fit="contain")
            measures = gr.Dataframe(headers=["measure", "value"], label="Measures", interactive=False)
            with gr.Row():
                amount_image = gr.Image(label="Hair amount", type="numpy", height=SHOW, interactive=False)
                edited_image = gr.Image(label="Hair colour and length", type="numpy", height=SHOW, interactive=False)
            amount = gr.Slider(0, 1, value=1, step=0.05, label="Hair amount: 0 = the face's own hair, 1 = the transfer")
            sliders = [gr.Slider(-3, 3, value=0, step=0.1, label=f"{label} (units)") for label, _ in HAIR_SLIDERS]
            pasted = gr.Image(label="Pasted back into the face's photo", type="pil", interactive=False)
            export_button = gr.Button("Download")
            files = gr.File(label="Result, result in the photo, W+ codes", file_count="multiple")
    pairs = [[str(EXAMPLES_DIR / f"{a}.png"), str(EXAMPLES_DIR / f"{b}.png")] for a, b in HAIR_PAIRS
             if (EXAMPLES_DIR / f"{a}.png").is_file() and (EXAMPLES_DIR / f"{b}.png").is_file()]
    if pairs:
        gr.Examples(pairs, inputs=[face_image, hair_image], label="Embedded-domain pairs (different poses; "
                                                                   "the true image is known)")
    # the method follows the generator: the network where it has one, else optimisation
    picker.change(lambda model: gr.update(value=default_method(registry, model)), inputs=picker, outputs=method,
                  api_name=False, queue=False)
    # a long job: photos are aligned and segmented, and the optimisation method runs for seconds
    sessions.long(run_button.click, make_transfer(registry, sessions),
                  inputs=[picker, face_kind, face_image, face_seed, hair_kind, hair_image, hair_seed, method, steps],
                  outputs=[outcome_state, gallery, measures, pasted, status, amount_image], api_name="hair_transfer")
    sessions.cancel_button(cancel_button)  # stops an optimisation between two steps; the last result stays
    sessions.short(amount.change, make_amount(registry), inputs=[picker, outcome_state, amount], outputs=amount_image,
                   api_name="hair_amount", trigger_mode="always_last", show_progress="minimal")
    sessions.short(lambda fn, **event: gr.on([s.change for s in sliders], fn, **event), make_hair_edit(registry),
                   inputs=[picker, outcome_state] + sliders, outputs=edited_image, api_name="hair_edit",
                   trigger_mode="always_last", show_progress="minimal")
    export_button.click(make_export(sessions), inputs=outcome_state, outputs=files, api_name="hair_export")
