"""Attribute sliders tab: a sample, an inversion result or an upload, moved along latent directions.

Every event has an ``api_name``: ``/edit_source`` (load the source), ``/edit`` (apply the
sliders), ``/strip`` (the seed's strip z - 2kn ... z + 2kn with the measured curves),
``/fit_direction`` (fit a new direction) and ``/export_edit`` (files).
"""
from __future__ import annotations

from dataclasses import replace
from typing import List, Sequence

import gradio as gr
import numpy as np
import pandas as pd
import torch

from .. import pipeline
from ..editing.directions import Direction, weakness
from ..editing.fit import condition, fit_linear, label_samples, pca_directions, sample_w
from ..editing.formats import save_directions
from ..editing.library import directions_for
from ..faces.pose import LABELS
from ..imaging import tensor_to_pil, tensor_to_uint8
from ..inversion.suite import identity_for
from ..registry import Registry
from ..training.directions import SUPERVISED
from .common import user_errors
from .sessions import Sessions, step_callback

N_SLIDERS = 6
SOURCES = [("a sample", "sample"), ("an inversion result (inversion tab)", "result"), ("an image, inverted now", "image")]
#: how an uploaded image is inverted (``pipeline.SOURCE_INVERSIONS``); the encoder falls back to W+
#: optimisation for generators without one
IMAGE_INVERSIONS = [("the generator's encoder (instant; e4e where there is one)", "encoder"),
                    ("W+ optimisation (slower, closer)", "w+")]
EFFECT_COLUMNS = ["measure", "before", "after", "change"]
#: the strip's largest k: it reaches 2k units, beyond which a code leaves the generator's range
MAX_STRIP_K = 5.0
#: what "Fit your own" can fit an attribute of: the built-in sliders' (the embedded domain's regressor
#: reads them), then mediapipe's on faces
FIT_ATTRIBUTES = list(dict.fromkeys([*SUPERVISED, *LABELS]))
#: "Fit your own"'s methods (the learned one and the guided one need the embedded domain's regressor)
FIT_METHODS = {"supervised": "supervised (linear, in W)", "learned": "learned W+ slider (as the built-in ones)",
               "pca": "PCA of W (GANSpace)", "guided": "guided: attribute-model gradient at this source"}
#: the most batches a learned slider may take (150, as the built-in ones, take about 1.5 minutes on 2 cores)
MAX_LEARN_STEPS = 500


def available_directions(registry: Registry, model: str, custom: Sequence[Direction]) -> List[Direction]:
    """The generator's catalogued directions, then this session's own (fitted here) for it."""
    return directions_for(registry, model) + [d for d in custom or [] if d.metrics.get("generator") == model]


def direction_menu(directions: Sequence[Direction]) -> List[tuple]:
    """(label, name) choices for the direction menus: the directions that move their attribute
    first, then the weak ones (``weakness``), labelled with what was measured, so a slider's name
    never promises an edit its generator does not make."""
    measured = [(d.name, weakness(d)) for d in directions]
    return ([(name, name) for name, why in measured if not why]
            + [(f"{name} (weak here: {why})", name) for name, why in measured if why])


def _by_name(directions: Sequence[Direction]) -> dict:
    return {d.name: d for d in directions}


def _image(t: torch.Tensor) -> np.ndarray:
    return tensor_to_uint8(torch.nn.functional.interpolate(t, size=(256, 256), mode="nearest"))[0]


def _edits(registry: Registry, source, custom, names, values) -> list:
    """(direction, units) for every slider that is not at zero; a slider that names no direction
    this source can take is refused (a ``gr.Error``), never silently left out."""
    every = _by_name(available_directions(registry, source.generator, custom))
    usable = _by_name(pipeline.usable_directions(source, every.values()))
    edits = []
    for n, v in zip(names, values):
        units = float(v or 0)
        if units == 0:
            continue
        if not n:
            raise gr.Error("A slider is set but names no direction: pick one, or set it to 0.")
        if n not in usable:
            raise gr.Error(f"{n!r} moves a Z code, which only a sample has; this source is a "
                           f"{source.latent.space.upper()} code: pick a W direction." if n in every else
                           f"{n!r} is not a direction of {source.generator}: pick one of the list.")
        edits.append((usable[n], units))
    return edits


def measure(registry: Registry, model: str, before: torch.Tensor, after: torch.Tensor) -> pd.DataFrame:
    """What an edit did to the attributes the domain can read, and to identity."""
    a, b = pipeline.read_attributes(registry, model, before), pipeline.read_attributes(registry, model, after)
    rows = [[k, round(float(a[k][0]), 3), round(float(b[k][0]), 3), round(float(b[k][0] - a[k][0]), 3)] for k in a]
    identity = identity_for(registry, model)
    if identity is not None:
        dev = registry.get(model).w_avg.device
        d = float(identity.to(dev)(before.to(dev), after.to(dev))[0])
        rows.append([f"identity distance ({identity.name})", 0.0, round(d, 4), round(d, 4)])
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def make_load_source(registry: Registry, sessions: Sessions):
    @user_errors
    def load(model, kind, seed, truncation, result_key, results, image, steps, inversion, custom,
             progress=gr.Progress(), request: gr.Request = None):
        if not model:
            raise gr.Error("Pick a generator first.")
        note = ""
        if kind == "sample":
            source = pipeline.source_from_sample(registry, model, int(seed or 0), float(truncation))
        elif kind == "result":
            if not results:
                raise gr.Error("No inversion results in this session yet: run the inversion tab first.")
            if result_key not in results:
                raise gr.Error(f"Pick one of the inversion results: {', '.join(results)}.")
            source = pipeline.source_from_result(results[result_key])
            if source.generator != model:
                raise gr.Error(f"That result was made with {source.generator}; pick that generator to edit it.")
        else:
            if not image:
                raise gr.Error("Upload an image or pick an example first.")
            target = pipeline.load_target(registry, model, image)
            if inversion == "encoder" and pipeline.encoder_of(registry, model) is None:
                inversion, note = "w+", f" {model} has no encoder, so the image was inverted by W+ optimisation."
            with sessions.long_job(request) as job:
                source = pipeline.source_from_target(registry, model, target, steps=int(steps), inversion=inversion,
                                                     progress=step_callback(job, progress, "inversion"))
        menu = direction_menu(pipeline.usable_directions(source, available_directions(registry, model, custom)))
        names = [name for _, name in menu]
        shown = _image(pipeline.render_source(registry, source))
        updates = [gr.update(choices=menu, value=names[i] if i < len(names) else None) for i in range(N_SLIDERS)]
        sliders = [gr.update(value=0.0)] * N_SLIDERS
        return [source, (shown, shown), f"Source: {source.label} ({source.latent.space.upper()} code).{note}",
                gr.update(choices=menu, value=names[0] if names else None)] + updates + sliders
    return load


def make_edit(registry: Registry):
    @user_errors
    def edit(source, custom, *names_values):
        if source is None:
            raise gr.Error("Load a source first.")
        names, values = names_values[:N_SLIDERS], names_values[N_SLIDERS:]
        edits = _edits(registry, source, custom, names, values)
        G = pipeline.source_generator(registry, source)
        before = pipeline.render_source(registry, source, generator=G)
        after = pipeline.render_source(registry, source, pipeline.edited_latent(registry, source, edits, G), G)
        return (_image(before), _image(after)), measure(registry, source.generator, before, after)
    return edit


def make_strip(registry: Registry):
    @user_errors
    def strip(source, custom, name, k):
        """The seed's strip: the code moved by -2k, -k, 0, k, 2k units; and the measured curves."""
        if source is None:
            raise gr.Error("Load a source first.")
        known = _by_name(pipeline.usable_directions(source, available_directions(registry, source.generator, custom)))
        if name not in known:
            raise gr.Error("Pick a direction for the strip.")
        if k is None or not 0 < float(k) <= MAX_STRIP_K:
            raise gr.Error(f"k must be above 0 and at most {MAX_STRIP_K:g} units (the strip reaches 2k).")
        G = pipeline.source_generator(registry, source)
        steps = [-2 * float(k), -float(k), 0.0, float(k), 2 * float(k)]
        images = torch.cat([pipeline.render_source(registry, source,
                                                   pipeline.edited_latent(registry, source, [(known[name], s)], G), G)
                            for s in steps])
        att = pipeline.read_attributes(registry, source.generator, images)
        rows = [{"value": s, "measure": m, "change": float(v[i] - v[2])} for m, v in att.items()
                for i, s in enumerate(steps)]
        identity = identity_for(registry, source.generator)
        if identity is not None:
            dev = G.w_avg.device
            d = identity.to(dev)(images[2:3].expand_as(images).to(dev), images.to(dev)).cpu()
            rows += [{"value": s, "measure": "identity distance", "change": float(d[i])} for i, s in enumerate(steps)]
        gallery = [(_image(images[i:i + 1]), f"{s:+g} units") for i, s in enumerate(steps)]
        return gallery, pd.DataFrame(rows)
    return strip


def make_fit(registry: Registry, sessions: Sessions):
    @user_errors
    def fit(model, method, attribute, conditions, n, learn_steps, custom, source, progress=gr.Progress(),
            request: gr.Request = None):
        with sessions.long_job(request) as job:
            def step(fraction, desc):
                job.check()
                progress(fraction, desc=desc)
            return fit_in_job(model, method, attribute, conditions, n, learn_steps, custom, source, step, request)

    def fit_in_job(model, method, attribute, conditions, n, learn_steps, custom, source, step, request):
        if not model:
            raise gr.Error("Pick a generator first.")
        G = registry.get(model)
        if method not in FIT_METHODS:
            raise gr.Error(f"Pick a method: {', '.join(FIT_METHODS)}.")
        if method != "pca" and not attribute:
            raise gr.Error("Pick the attribute to fit.")
        if not n or not 100 <= int(n) <= 20000:
            raise gr.Error("Samples must be between 100 and 20,000.")
        if method == "learned":
            if not learn_steps or not 10 <= int(learn_steps) <= MAX_LEARN_STEPS:
                raise gr.Error(f"Learning steps must be between 10 and {MAX_LEARN_STEPS}.")
            d = pipeline.learned_direction_for(registry, model, attribute, int(n), int(learn_steps), progress=step)
            chosen, plain = d.metrics["selection"]["chosen"], d.metrics["selection"]["plain fit"]
            note = (f"Learned **{d.name}** on {int(n)} samples ({int(learn_steps)} steps). Measured at +2 units on "
                    f"{d.metrics['selection']['n']} fresh samples: {attribute} {chosen['own']:+.2f} std, the "
                    f"largest other ({chosen['largest other attribute']}) {chosen['largest other']:.2f} std per "
                    f"sample; the linear fit it started from: {attribute} {plain['own']:+.2f}, "
                    f"{plain['largest other attribute']} {plain['largest other']:.2f}.")
            why = weakness(d)
            if why:
                note += f" **Weak** ({why}): this generator barely draws {attribute} as the regressor reads it."
            return _fitted(model, custom, [d], note, request, source)
        held = []
        if method == "supervised":
            readable = pipeline.attribute_names(registry, model)
            if attribute not in readable:
                raise gr.Error(f"{model}'s labeller measures {', '.join(readable)}; not {attribute!r}.")
            known = _by_name(available_directions(registry, model, custom))
            unknown = [c for c in conditions or [] if c not in known or known[c].space != "w"]
            if unknown:
                raise gr.Error(f"Only W directions of {model} can be held; not {', '.join(map(repr, unknown))}.")
            held = [known[c] for c in conditions or []]
        if method == "guided":
            if source is None:
                raise gr.Error("The guided direction is computed at the loaded source: load one first.")
            if source.generator != model:
                raise gr.Error(f"The guided direction is computed at the loaded source, which is a code of "
                               f"{source.generator}: pick that generator, or load a source of {model}.")
            d = pipeline.guided_direction_at(registry, source, attribute, int(n), progress=step)
            new = [d]
            std = d.metrics["std"]
            note = (f"Computed **{d.name}** at {source.label}: the gradient of the regressor's {attribute} with "
                    f"respect to the {d.space.upper()} code, with every other reading of the regressor held to "
                    f"first order; one unit: +{std:.3f} of {attribute} to first order, its standard deviation "
                    f"over {int(n)} samples. A local direction: it is exact near this code only.")
            return _fitted(model, custom, new, note, request, source)
        step(0.1, "sampling")
        w = sample_w(G, int(n), seed=12345)
        if method == "pca":
            new = [replace(d, name=f"{model} {d.name}", metrics={**d.metrics, "generator": model})
                   for d in pca_directions(w, 5)]
            note = "Added the top 5 principal components of W: " + ", ".join(
                f"{d.name} ({100 * d.metrics['explained variance']:.0f} %)" for d in new)
        else:
            step(0.3, "labelling samples")
            labels = label_samples(G, w, lambda imgs: pipeline.read_attributes(registry, model, imgs))
            d = fit_linear(w, labels[attribute], f"my {attribute}")
            if held:
                d = condition(d, held)
            d = replace(d, attribute=attribute, metrics={**d.metrics, "generator": model})
            new = [d]
            quality = ", ".join(f"{k} {v:.3f}" for k, v in d.metrics.items() if k in ("r2", "accuracy"))
            note = f"Fitted **{d.name}** on {int(n)} samples: held-out {quality}; " + d.source + "."
            why = weakness(d)
            if why:
                note += (f" **Weak fit** ({why}): {attribute} is barely linear in this generator's W as read "
                         "here, so this slider may move it little and other things more; more samples may help.")
        return _fitted(model, custom, new, note, request, source)

    def _fitted(model, custom, new, note, request, source):
        # a new fit replaces the same-named one of this generator; other generators' fits stay
        custom = [c for c in (custom or []) if c.metrics.get("generator") != model
                  or c.name not in {d.name for d in new}] + new
        path = save_directions(sessions.folder(request, "directions-") / "directions.safetensors",
                               [d for d in custom if d.metrics.get("generator") == model], generator=model)
        every = available_directions(registry, model, custom)
        held = [d.name for d in every if d.space == "w"]
        if source is not None and source.generator == model:  # the sliders and the strip move the loaded source
            menus = [gr.update(choices=direction_menu(pipeline.usable_directions(source, every)))] * (N_SLIDERS + 1)
        else:  # they keep the loaded source's directions until a source of this generator is loaded
            menus = [gr.update()] * (N_SLIDERS + 1)
        return [custom, note, str(path), gr.update(choices=held)] + menus
    return fit


def make_export(registry: Registry, sessions: Sessions):
    @user_errors
    def export(source, custom, request: gr.Request, *names_values):  # Gradio fills in request
        if source is None:
            raise gr.Error("Load a source first.")
        names, values = names_values[:N_SLIDERS], names_values[N_SLIDERS:]
        edits = _edits(registry, source, custom, names, values)
        G = pipeline.source_generator(registry, source)
        latent = pipeline.edited_latent(registry, source, edits, G)
        image = pipeline.render_source(registry, source, latent, G)
        folder = sessions.folder(request, "edit-")
        files = [folder / "edited.png"]
        tensor_to_pil(image).save(files[0])
        torch.save({"generator": source.generator, "space": latent.space, "latent": latent.value.cpu(),
                    "edits": {d.name: v for d, v in edits}}, folder / "latent.pt")
        files.append(folder / "latent.pt")
        if edits:
            files.append(save_directions(folder / "directions.safetensors", [d for d, _ in edits],
                                         generator=source.generator))
        if source.target is not None:
            pipeline.paste(source.target, image).save(folder / "edited_photo.png")
            files.append(folder / "edited_photo.png")
        return [str(f) for f in files]
    return export


def create_tab(registry: Registry, picker: gr.Dropdown, results_state: gr.State, custom_state: gr.State,
               sessions: Sessions) -> None:
    """``custom_state``: the directions this session fitted (shared with the segment editor)."""
    source_state = gr.State(None, time_to_live=sessions.ttl_s)   # EditSource of this session
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            kind = gr.Radio(SOURCES, value="sample", label="Edit")
            seed = gr.Number(0, precision=0, minimum=0, label="Sample seed")
            truncation = gr.Slider(0.0, 1.5, value=0.7, step=0.05, label="Truncation psi")
            result_key = gr.Dropdown([], label="Inversion result (run the inversion tab first)", allow_custom_value=True)
            image = gr.File(label="Image to invert", file_types=["image"], type="filepath", height=100)
            inversion = gr.Radio(IMAGE_INVERSIONS, value="encoder", label="Invert the image with")
            steps = gr.Slider(50, 1000, value=300, step=50, label="W+ optimisation steps")
            with gr.Row():
                load_button = gr.Button("Load source", variant="primary")
                cancel_button = gr.Button("Cancel", variant="stop")
            status = gr.Markdown()
        with gr.Column(scale=2):
            compare = gr.ImageSlider(label="Before / after", type="numpy", format="png", height=300, max_height=300)
            names, values = [], []
            for i in range(N_SLIDERS):
                with gr.Row():
                    names.append(gr.Dropdown([], label=f"Direction {i + 1}", scale=1, allow_custom_value=True))
                    values.append(gr.Slider(-3, 3, value=0, step=0.1, scale=2,
                                            label="Units (standard deviations of the attribute)"))
            reset = gr.Button("Reset sliders")
            effects = gr.Dataframe(headers=EFFECT_COLUMNS, label="What the edit did (measured on the images)",
                                   interactive=False)
            with gr.Accordion("Strip: z - 2kn, z - kn, z, z + kn, z + 2kn", open=False):
                with gr.Row():
                    strip_name = gr.Dropdown([], label="Direction", allow_custom_value=True)
                    strip_k = gr.Number(1.0, minimum=0.1, maximum=MAX_STRIP_K, label="k (units)")
                    strip_button = gr.Button("Make the strip")
                strip_gallery = gr.Gallery(columns=5, height="auto", format="png", label="Strip")
                strip_plot = gr.LinePlot(x="value", y="change", color="measure", height=260,
                                         label="Measured change against slider value")
            with gr.Accordion("Fit your own direction", open=False):
                with gr.Row():
                    method = gr.Radio([(label, key) for key, label in FIT_METHODS.items()],
                                      value="supervised", label="Method",
                                      info="Learned (embedded domain): a linear fit, then one W+ vector trained "
                                           "to move the attribute and hold the regressor's other readings, as "
                                           "the built-in sliders are (150 steps: about 1.5 minutes on 2 cores). Guided "
                                           "(embedded domain) moves the attribute at the loaded source while "
                                           "the other readings stay put: it edits what no linear direction "
                                           "does, e.g. smile on the 8-layer GAN.")
                    attribute = gr.Dropdown(FIT_ATTRIBUTES, value="smile", allow_custom_value=True,
                                            label="Attribute (embedded: regressor; photos: mediapipe yaw/pitch/roll/smile)")
                    conditions = gr.Dropdown([], multiselect=True, label="Hold these directions' attributes",
                                             allow_custom_value=True)
                    samples = gr.Slider(100, 5000, value=1000, step=100, label="Samples")
                    learn_steps = gr.Slider(10, MAX_LEARN_STEPS, value=150, step=10, label="Learning steps",
                                            info="learned method only")
                fit_button = gr.Button("Fit")
                fit_status = gr.Markdown()
                fit_file = gr.File(label="This session's directions (safetensors)")
            with gr.Accordion("Export", open=False):
                export_button = gr.Button("Export the edit")
                export_files = gr.File(label="Edited image, latent, directions, photo with the edit pasted back",
                                       file_count="multiple")
    results_state.change(lambda r: gr.update(choices=list(r or {}), value=next(iter(r), None) if r else None),
                         inputs=results_state, outputs=result_key, api_name=False, queue=False)
    sessions.long(load_button.click, make_load_source(registry, sessions),  # long: an image may be inverted
                  inputs=[picker, kind, seed, truncation, result_key, results_state, image, steps, inversion, custom_state],
                  outputs=[source_state, compare, status, strip_name] + names + values, api_name="edit_source")
    sessions.cancel_button(cancel_button)  # stops an inversion or a fit; the loaded source stays
    sessions.short(lambda fn, **event: gr.on([c.change for c in names + values], fn, **event), make_edit(registry),
                   inputs=[source_state, custom_state] + names + values, outputs=[compare, effects], api_name="edit",
                   trigger_mode="always_last", show_progress="minimal")
    reset.click(lambda: [0.0] * N_SLIDERS, outputs=values, api_name=False, queue=False)
    sessions.short(strip_button.click, make_strip(registry), inputs=[source_state, custom_state, strip_name, strip_k],
                   outputs=[strip_gallery, strip_plot], api_name="strip")
    sessions.long(fit_button.click, make_fit(registry, sessions),
                  inputs=[picker, method, attribute, conditions, samples, learn_steps, custom_state, source_state],
                  outputs=[custom_state, fit_status, fit_file, conditions, strip_name] + names,
                  api_name="fit_direction")
    sessions.short(export_button.click, make_export(registry, sessions),
                   inputs=[source_state, custom_state] + names + values, outputs=export_files, api_name="export_edit")
