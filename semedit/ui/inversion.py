"""Inversion comparison tab: one image, many methods side by side, with metrics and loss curves."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import gradio as gr
import numpy as np
import pandas as pd
import torch

from .. import pipeline
from ..errors import SemeditError
from ..faces.landmarks import detect_faces, draw_faces
from ..faces.segments import segments_in_crop
from ..imaging import ImageInputError, ImageLimits, load_image, tensor_to_pil, tensor_to_uint8
from ..inversion.common import InversionCancelled, InversionResult
from ..inversion.suite import DISPLAY_NAMES, Knobs, context_for
from ..registry import Registry
from ..targets import CROP_SIZE, Target
from ..settings import PROJECT_ROOT
from ..synth.examples import example_files
from .common import user_errors
from .sessions import LongJob, Sessions, step_callback
from .segments import BRUSH_COLOURS, LEGEND, apply_paint, editor_value, segmenter_segments

ALIGN_CHOICES = [("auto: align photos (any for face generators, non-square ones for the embedded domain), "
                  "centre-crop the embedded domain's square images", "auto"),
                 ("align the face (FFHQ crop)", "align"), ("centre crop", "centre")]
CHOICES = [(label, key) for key, label in DISPLAY_NAMES.items()]
#: a fixed colour per method for the loss curves (the plot's own legend stays empty in Gradio 6.31)
CURVE_COLOURS = dict(zip(DISPLAY_NAMES.values(), ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b"]))
METRIC_COLUMNS = ["method", "LPIPS", "L2 (MSE)", "PSNR dB", "identity distance", "seconds"]
EXAMPLES_DIR = PROJECT_ROOT / "examples" / "embedded"


def save_latents(results: Dict[str, InversionResult], folder: Path, sessions: Sessions) -> Path:
    """The results' latents in ``folder`` (made again if the session's pruning took it during a
    long run), whose time of use is renewed so the pruning keeps it."""
    sessions.touch(folder)
    return pipeline.save_latents(results.values(), folder / "latents.pt")


def identity_note(identity) -> str:
    """What the identity column measures, for the status line."""
    if identity is None:
        return "no identity model for this domain"
    same = f", same person below {identity.same_person_below}" if identity.same_person_below else ""
    return f"identity: {identity.name} ({identity.distance} distance{same})"


def load_target(registry: Registry, model: str, image, alignment: str, face_index=0) -> Target:
    """The uploaded file as a Target (aligned around its ``face_index``-th largest face when
    aligning), or gr.Error."""
    if not image:
        raise gr.Error("Upload an image or pick an example first.")
    try:
        return pipeline.load_target(registry, model, image, alignment=alignment, face_index=int(face_index or 0))
    except SemeditError as e:  # unreadable image, or no face to align
        raise gr.Error(str(e)) from e


@dataclass(frozen=True)
class TargetSegments:
    """The automatic label map (numpy [256, 256]) of one target; ``of``: ``target_key`` of it."""
    of: tuple
    labels: np.ndarray


def target_key(model, image, alignment, face_index) -> tuple:
    """What makes a target: generator, image file, alignment and face."""
    return (model, str(image), alignment, int(face_index or 0))


def make_segment(registry: Registry):
    def segment(model, image, alignment, face_index=0):
        """The target's automatic segments: (editor value, its TargetSegments for the session).
        Aligned photos are segmented with mediapipe; centre crops by the generator's segmenter, if any."""
        target = load_target(registry, model, image, alignment, face_index)
        spec = registry.catalogue.get(model)
        try:
            if spec.config.get("segmenter") and not target.aligned:
                G = registry.get(model)
                labels = segmenter_segments(registry.get(spec.config["segmenter"]), tensor_to_pil(target.image),
                                            G.config.resolution)
            else:
                labels = segments_in_crop(np.asarray(target.photo), target.alignment, target.face_index)
        except SemeditError as e:
            raise gr.Error(str(e)) from e
        return editor_value(labels), TargetSegments(target_key(model, image, alignment, face_index), labels)
    return segment


def make_run(registry: Registry, sessions: Sessions):
    @user_errors
    def run(model, image, methods, steps, lambda_reg, n_chunks, chunky_space, perceptual_name, alignment,
            identity_weight=0.0, painted=None, auto_labels=None, face_index=0,
            progress=gr.Progress(), request: gr.Request = None):
        with sessions.long_job(request) as job:  # refused while this session runs its limit of long jobs
            yield from invert_all(model, image, methods, steps, lambda_reg, n_chunks, chunky_space,
                                  perceptual_name, alignment, job, identity_weight, painted, auto_labels,
                                  face_index, progress, request)

    def invert_all(model, image, methods, steps, lambda_reg, n_chunks, chunky_space, perceptual_name, alignment,
                   job: LongJob, identity_weight, painted, auto_labels, face_index, progress, request):
        if not methods:
            raise gr.Error("Tick at least one method.")
        foreign = [m for m in methods if m not in pipeline.method_keys(registry, model)]
        if foreign:
            raise gr.Error(f"{', '.join(pipeline.method_name(m) for m in foreign)}: not a method for {model} "
                           "(an encoder works only with the generator it was trained for).")
        knobs = Knobs(steps=int(steps), lambda_reg=lambda_reg, n_chunks=int(n_chunks), chunky_space=chunky_space,
                      pti_tune_steps=int(steps), identity_weight=identity_weight or 0)
        if job.cancelled:  # cancelled while it waited in the queue
            yield (gr.skip(),) * 6 + ("Cancelled before it started; earlier results are kept.",)
            return
        registry.get(model)  # load (or fail) before reading the image
        ctx = context_for(registry, model, perceptual_name)
        if identity_weight and ctx.identity is None:
            raise gr.Error("The identity loss needs an identity model; this generator's domain has none "
                           "(set its weight to 0).")
        target = load_target(registry, model, image, alignment, face_index)
        # the user looked at (and maybe painted) this target's segments; those of another target
        # (an API client that segmented one image and inverts another) are not used
        if auto_labels is not None and auto_labels.of == target_key(model, image, alignment, face_index):
            target = target.with_labels(torch.from_numpy(apply_paint(auto_labels.labels, painted)))
        results: Dict[str, InversionResult] = {}
        gallery = [(tensor_to_uint8(target.image)[0], "target (aligned)" if target.aligned else "target")]
        pasted = []
        rows, curves, status = [], [], ""
        out_dir = sessions.folder(request, "inversion-")
        outcomes = pipeline.invert(registry, model, target, methods, knobs, ctx=ctx,
                                   progress_for=lambda key: step_callback(job, progress, pipeline.method_name(key)))
        while True:
            key = methods[len(results)] if len(results) < len(methods) else None
            try:
                o = next(outcomes)
            except StopIteration:
                break
            except InversionCancelled:
                status = f"Cancelled during {pipeline.method_name(key)}; finished methods are kept."
                break
            except (SemeditError, ValueError) as e:
                raise gr.Error(f"{pipeline.method_name(key)}: {e}") from e
            r, s = o.result, o.scores
            results[key] = r
            rows.append({"method": r.method, **s.as_row()})
            curves += [{"step": i + 1, "loss": v, "method": pipeline.method_name(key)} for i, v in enumerate(r.losses)]
            big = torch.nn.functional.interpolate(r.image, size=(256, 256), mode="nearest")
            gallery.append((tensor_to_uint8(big)[0], r.method))
            if r.chunk_images is not None:
                gallery += chunk_views(r)
            pasted.append((o.pasted, r.method))
            table, saved, note = pd.DataFrame(rows, columns=METRIC_COLUMNS), str(save_latents(results, out_dir, sessions)), \
                f"{len(results)} of {len(methods)} done"
            # Gradio's plot keeps drawing only the series of the value it was first given: clear it, then refill
            yield gallery, pasted, table, None, saved, results, note
            yield gallery, pasted, table, pd.DataFrame(curves), saved, results, note
        if not results:  # cancelled before any method finished: the session's earlier results stay
            yield (gr.skip(),) * 6 + (f"Cancelled during {pipeline.method_name(key)}, before any method finished; "
                                      "earlier results are kept.",)
            return
        yield (gallery, pasted, pd.DataFrame(rows, columns=METRIC_COLUMNS), pd.DataFrame(curves),
               saved, results,
               status or f"Done: {len(results)} methods, perceptual loss {ctx.perceptual.name}, LPIPS column "
               f"scored by {ctx.scorer.name}, "
               f"{identity_note(ctx.identity)}.")
    return run


def method_choices(registry: Registry, model: Optional[str]) -> List[Tuple[str, str]]:
    """(label, key) of every inversion method for generator ``model``: the suite's, then the
    encoders made for it."""
    names = [k[len(pipeline.ENCODER_PREFIX):] for k in (pipeline.method_keys(registry, model) if model else [])
             if k.startswith(pipeline.ENCODER_PREFIX)]
    return CHOICES + [(f"{registry.catalogue.get(n).config.get('method', 'encoder')} ({n})",
                       f"{pipeline.ENCODER_PREFIX}{n}") for n in names]


def every_method_choice(registry: Registry) -> List[Tuple[str, str]]:
    """``method_choices`` of every catalogued generator together (each key once)."""
    seen = {}
    for model in registry.catalogue.names("generator"):
        for label, key in method_choices(registry, model):
            seen.setdefault(key, label)
    return [(label, key) for key, label in seen.items()]


def make_preview(limits: ImageLimits):
    def preview(path):
        """The uploaded file as the methods will see it (upright, RGB, reduced to the size limit),
        with every face found boxed and numbered for *Face to align*, or a clear error."""
        if not path:
            return None
        try:
            photo = load_image(path, limits)
        except ImageInputError as e:
            raise gr.Error(str(e)) from e
        faces = detect_faces(np.asarray(photo))
        return draw_faces(photo, faces) if faces else photo
    return preview


def chunk_views(r: InversionResult) -> List:
    """Each ChunkyGAN chunk image with its mask as alpha over gray, for the gallery."""
    views = []
    for i, (chunk, mask) in enumerate(zip(r.chunk_images, r.chunk_masks)):
        shown = chunk * mask[None] + (1 - mask[None]) * 0.2
        big = torch.nn.functional.interpolate(shown[None], size=(256, 256), mode="nearest")
        views.append((tensor_to_uint8(big)[0], f"chunk {i + 1}"))
    return views


def create_tab(registry: Registry, picker: gr.Dropdown, results_state: gr.State, sessions: Sessions) -> None:
    perceptual_choices = list(registry.catalogue.names("perceptual"))
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            image = gr.File(label="Target image (PNG, JPEG, WebP, ...)", file_types=["image"], type="filepath",
                            height=120)
            shown = gr.Image(label="Target as loaded", interactive=False, height=256)
            alignment = gr.Radio(ALIGN_CHOICES, value="auto", label="Face alignment")
            face_index = gr.Number(0, minimum=0, maximum=7, precision=0, label="Face to align (0 = the largest; numbered on the image)")
            # every generator's encoders are valid values (API clients pick any generator); a browser
            # session is shown only those of the chosen generator (on load, and on each change)
            methods = gr.CheckboxGroup(every_method_choice(registry), value=["w", "w+", "chunky"],
                                       label="Methods (encoders: a forward pass or a few, for the generator they were "
                                             "made for)")
            steps = gr.Slider(10, 1000, value=300, step=10, label="Steps per method")
            with gr.Accordion("ChunkyGAN, perceptual and identity", open=False):
                n_chunks = gr.Slider(1, 8, value=4, step=1, label="Number of chunks (n)")
                lambda_reg = gr.Number(value=1.0, minimum=0, label="lambda_reg (0 = no latent regulariser)")
                chunky_space = gr.Radio([("W", "w"), ("W+", "w+"), ("S", "s")], value="w+", label="Chunk code space")
                perceptual = gr.Dropdown(perceptual_choices, value=registry.catalogue.default_perceptual,
                                         label="Perceptual model (loss and LPIPS metric)")
                identity_weight = gr.Slider(0, 2, value=0, step=0.05, label="Identity loss weight (face generators: "
                                            "ArcFace if present, else the offline face-api descriptor; the embedded domain: its parameter regressor)")
            with gr.Row():
                run_button = gr.Button("Invert", variant="primary")
                cancel_button = gr.Button("Cancel", variant="stop")
            status = gr.Markdown()
        with gr.Column(scale=3):
            with gr.Accordion("Segments: ChunkyGAN's starting masks (paint to correct)", open=False):
                gr.Markdown("**Segment the target**, then paint over mistakes in the class colours: " + LEGEND)
                segment_button = gr.Button("Segment the target")
                editor = gr.ImageEditor(label="Segments", type="numpy", image_mode="RGBA", sources=(),
                                        transforms=(), layers=False, canvas_size=(CROP_SIZE, CROP_SIZE),
                                        fixed_canvas=True, height=CROP_SIZE + 120, format="png",
                                        brush=gr.Brush(colors=BRUSH_COLOURS, color_mode="fixed", default_size=6))
            gallery = gr.Gallery(label="Target and reconstructions", columns=4, height="auto", format="png",
                                 object_fit="contain")
            pasted = gr.Gallery(label="Pasted back into the photo (original resolution)", columns=3,
                                height="auto", format="png", object_fit="contain")
            metrics = gr.Dataframe(headers=METRIC_COLUMNS, label="Metrics (lower is better, but PSNR)",
                                   interactive=False)
            curves = gr.LinePlot(x="step", y="loss", color="method", label="Loss per step", height=260,
                                 color_map=CURVE_COLOURS)
            gr.Markdown(" ".join(f"<span style='color:{c}'>&#9644; {name}</span>" for name, c in CURVE_COLOURS.items()))
            latents = gr.File(label="Latents (torch.load(..., weights_only=True))")
    segments = gr.State(None)  # TargetSegments of the current target
    files = example_files(EXAMPLES_DIR)
    if files:
        gr.Examples(files, inputs=image, label="Embedded-domain examples (held out; some with accessories)")
    sessions.short(image.change, make_preview(registry.settings.image_limits), inputs=image, outputs=shown,
                   api_name="load_image")
    # the encoders on offer are those made for the chosen generator
    def offer_methods(model, ticked):
        choices = method_choices(registry, model)
        keys = {key for _, key in choices}
        return gr.update(choices=choices, value=[m for m in ticked or [] if m in keys])
    picker.change(offer_methods, inputs=[picker, methods], outputs=methods, api_name=False, queue=False)
    gr.on(triggers=None, fn=lambda: gr.update(choices=method_choices(registry, picker.value)), inputs=None,
          outputs=methods, api_name=False, queue=False)  # no inputs: on load only
    for control in (image, alignment, picker, face_index):  # segments of another target or crop are stale
        control.change(lambda: (None, None), outputs=[editor, segments], api_name=False, queue=False)
    sessions.short(segment_button.click, make_segment(registry), inputs=[picker, image, alignment, face_index],
                   outputs=[editor, segments], api_name="segment")
    sessions.long(run_button.click, make_run(registry, sessions),
                  inputs=[picker, image, methods, steps, lambda_reg, n_chunks, chunky_space, perceptual, alignment,
                          identity_weight, editor, segments, face_index],
                  outputs=[gallery, pasted, metrics, curves, latents, results_state, status], api_name="invert")
    # no `cancels=[event]`: killing the event would wipe the methods that had finished; the
    # session's cancel stops the run between two steps and the run returns what it has
    sessions.cancel_button(cancel_button, api_name="cancel")  # every tab's Cancel stops the session's long jobs
