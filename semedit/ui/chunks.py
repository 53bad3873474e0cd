"""ChunkyGAN segment editor tab: edit one chunk of a ChunkyGAN inversion, compare with the same
edit done globally, undo and redo, save and load the project.

Endpoints: ``/chunk_source`` (a ChunkyGAN result of the inversion tab, or a new run on an image),
``/chunk_pick`` (which chunk), ``/chunk_edit`` (a direction on the chunk's code),
``/chunk_towards`` (the chunk's code moved towards a sample's), ``/chunk_mask`` (grow, shrink,
feather), ``/chunk_undo``, ``/chunk_redo``, ``/chunk_compare`` (the same edit on a W+ inversion),
``/chunk_save``, ``/chunk_load``, ``/chunk_export``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Tuple

import gradio as gr
import numpy as np
import torch

from .. import pipeline
from .. import segmentation as L
from ..editing.chunks import (ChunkProject, composite, leakage, load_project, render_chunks, reshape_mask,
                              save_project, towards_code, update_chunk)
from ..editing.directions import apply_edits
from ..imaging import tensor_to_pil, tensor_to_uint8
from ..inversion.chunky import chunk_classes
from ..inversion.suite import Knobs
from ..latents import Latent
from ..registry import Registry
from ..sampling import MAX_SEED, sample
from ..targets import Target
from .common import user_errors
from .sessions import Sessions, step_callback
from .sliders import available_directions

SHOW = 256  # display size of every image


@dataclass(frozen=True, eq=False)  # identity equality and hash: it holds tensors and images
class EditorState:
    """One session's editor: the project history (undo/redo), the cached chunk images of the
    current project, the target (for paste-back), a W+ inversion of it (for comparison) and the
    selected chunk."""

    history: Tuple[ChunkProject, ...]
    position: int
    chunks: torch.Tensor
    target: Optional[Target] = None
    wplus: Optional[pipeline.EditSource] = None
    selected: int = 0  # the chunk the user picked

    @property
    def project(self) -> ChunkProject:
        return self.history[self.position]

    def push(self, project: ChunkProject, chunks: torch.Tensor) -> "EditorState":
        """A new current project; the redo branch is dropped."""
        return replace(self, history=self.history[:self.position + 1] + (project,), position=self.position + 1,
                       chunks=chunks)


def _big(img: torch.Tensor) -> np.ndarray:
    return tensor_to_uint8(torch.nn.functional.interpolate(img, size=(SHOW, SHOW), mode="nearest"))[0]


def chunk_name(n: int, i: int) -> str:
    """'chunk 2 (hair)': its number and the classes its mask started from (ChunkyGAN starts from
    a segmentation; the last chunk takes every class the others do not name)."""
    classes = chunk_classes(n)[i]
    named = "rest" if i == n - 1 and n > 1 else "+".join(L.CLASS_NAMES[c].replace("_", " ") for c in classes)
    return f"chunk {i + 1} ({named})" if n > 1 else "chunk 1"


def _views(state: EditorState, selected: int):
    """(composite, gallery of each chunk shown through its mask) for the current project."""
    p = state.project
    gallery = []
    for i, (chunk, mask) in enumerate(zip(state.chunks, p.masks)):
        shown = chunk * mask[None] + (1 - mask[None]) * 0.2
        mark = " (selected)" if i == selected else ""
        gallery.append((_big(shown[None]), f"{chunk_name(p.n_chunks, i)}{mark}: {float(mask.mean()) * 100:.0f} % "
                                           "of the image"))
    edits = "; ".join(f"chunk {e.chunk + 1}: {e.direction} {e.value:+g}" for e in p.edits) or "no edits yet"
    note = f"{p.n_chunks} chunks, {p.codes.space.upper()} codes, generator {p.generator}. Edits: {edits}."
    return _big(composite(state.chunks, p.masks)), gallery, note


def _start(registry: Registry, project: ChunkProject, target: Optional[Target]) -> EditorState:
    G = registry.get(project.generator)
    return EditorState((project,), 0, render_chunks(G, project), target)


def _outputs(state: EditorState, selected: int, directions=None):
    """The editor's view outputs, with chunk ``selected`` picked; ``directions`` (names) refresh
    the direction list when given."""
    state = replace(state, selected=selected)
    image, gallery, note = _views(state, selected)
    choices = [(chunk_name(state.project.n_chunks, i), i) for i in range(state.project.n_chunks)]
    return (state, image, gallery, note, gr.update(choices=choices, value=selected),
            gr.update() if directions is None else gr.update(choices=directions, value=directions[0] if directions else None))


def _chunk_direction_names(registry: Registry, model: str, custom) -> list:
    """The directions that can move a chunk of ``model``: its own and the session's fitted ones, no Z."""
    return [d.name for d in available_directions(registry, model, custom) if d.space != "z"]


def _need(state: Optional[EditorState]) -> EditorState:
    if state is None:
        raise gr.Error("Load a ChunkyGAN result, run one on an image, or load a project first.")
    return state


def _directions(registry: Registry, state: EditorState, custom) -> dict:
    """Directions that can move a chunk's code (no Z: chunk codes have no z)."""
    return {d.name: d for d in available_directions(registry, state.project.generator, custom) if d.space != "z"}


def make_source(registry: Registry, sessions: Sessions):
    @user_errors
    def load(model, kind, results, image, n_chunks, lambda_reg, space, steps, custom, progress=gr.Progress(),
             request: gr.Request = None):
        if not model:
            raise gr.Error("Pick a generator first.")
        if kind == "result":
            chunky = [r for r in (results or {}).values() if r.chunk_masks is not None]
            if not chunky:
                raise gr.Error("No ChunkyGAN result in this session: tick ChunkyGAN in the inversion tab, or run it here.")
            result = chunky[-1]
            if result.generator != model:
                raise gr.Error(f"That result was made with {result.generator}; pick that generator to edit it.")
        else:
            if not image:
                raise gr.Error("Upload an image or pick an example first.")
            knobs = Knobs(steps=int(steps), n_chunks=int(n_chunks), lambda_reg=lambda_reg, chunky_space=space)
            target = pipeline.load_target(registry, model, image)
            with sessions.long_job(request) as job:
                (o,) = pipeline.invert(registry, model, target, ["chunky"], knobs,
                                       progress_for=lambda key: step_callback(job, progress, "ChunkyGAN"))
            result = o.result
        state = _start(registry, ChunkProject.from_result(result), result.target)
        return _outputs(state, 0, _chunk_direction_names(registry, model, custom))
    return load


def pick(state, chunk):
    return _outputs(_need(state), int(chunk or 0))


def click(state, evt: gr.SelectData):
    """A click on the composite picks the chunk that owns that pixel."""
    state = _need(state)
    x, y = evt.index[:2]
    r = state.project.masks.shape[-1]
    chunk = int(state.project.masks[:, min(int(y) * r // SHOW, r - 1), min(int(x) * r // SHOW, r - 1)].argmax())
    return _outputs(state, chunk)


def make_edit(registry: Registry):
    @user_errors
    def edit(state, chunk, name, value, custom):
        state = _need(state)
        known = _directions(registry, state, custom)
        if name not in known:
            raise gr.Error("Pick a direction (Z directions cannot move a chunk: its code has no z).")
        if value is None or float(value) == 0:
            raise gr.Error("Set a value other than 0.")
        chunk = int(chunk or 0)
        project = state.project.with_edit(chunk, known[name], float(value))
        G = registry.get(project.generator)
        return _outputs(state.push(project, update_chunk(G, project, state.chunks, chunk)), chunk)
    return edit


def make_towards(registry: Registry):
    @user_errors
    def towards(state, chunk, seed, amount):
        """The chunk's code moved ``amount`` of the way towards sample ``seed``'s code."""
        state = _need(state)
        if seed is None or not 0 <= int(seed) <= MAX_SEED:
            raise gr.Error(f"The sample seed must be between 0 and {MAX_SEED}.")
        chunk, p = int(chunk or 0), state.project
        G = registry.get(p.generator)
        seed_code = Latent("w+", sample(G, [int(seed)]).ws.to(G.w_avg.device))
        d = towards_code(G, p, chunk, seed_code, f"towards seed {int(seed)} (chunk {chunk + 1})")
        project = p.with_edit(chunk, d, float(amount))
        return _outputs(state.push(project, update_chunk(G, project, state.chunks, chunk)), chunk)
    return towards


def make_mask(registry: Registry):
    @user_errors
    def mask(state, chunk, op, pixels):
        state = _need(state)
        chunk = int(chunk or 0)
        project = replace(state.project, masks=reshape_mask(state.project.masks, chunk, op, float(pixels)))
        return _outputs(state.push(project, state.chunks), chunk)
    return mask


def make_undo(registry: Registry, step: int):
    """Undo (step -1) or redo (+1): move through the history and draw that project again."""
    @user_errors
    def move(state):
        state = _need(state)
        position = min(max(state.position + step, 0), len(state.history) - 1)
        if position != state.position:
            state = replace(state, position=position)
            state = replace(state, chunks=render_chunks(registry.get(state.project.generator), state.project))
        return _outputs(state, min(state.selected, state.project.n_chunks - 1))
    return move


def make_compare(registry: Registry, sessions: Sessions):
    @user_errors
    def compare(state, results, steps, progress=gr.Progress(), request: gr.Request = None):
        """The current project's edits done globally on a single-code W+ inversion of the same target."""
        state = _need(state)
        p = state.project
        if not p.edits:
            raise gr.Error("Make a chunk edit first.")
        if state.wplus is None:
            plain = [r for r in (results or {}).values() if r.key == "w+" and r.target is state.target
                     and r.generator == p.generator]
            if plain:
                wplus = pipeline.source_from_result(plain[-1])
            elif state.target is not None:
                with sessions.long_job(request) as job:
                    wplus = pipeline.source_from_target(registry, p.generator, state.target, steps=int(steps),
                                                        progress=step_callback(job, progress, "W+ inversion"))
            else:
                raise gr.Error("A loaded project has no target to invert with W+.")
            state = replace(state, wplus=wplus)
        G = registry.get(p.generator)
        by_name = {d.name: d for d in p.directions}
        edits = [(by_name[e.direction], e.value) for e in p.edits]
        base = state.wplus
        global_after = pipeline.render_source(registry, base, apply_edits(G, base.latent, edits))
        global_before = pipeline.render_source(registry, base)
        chunk_before = composite(render_chunks(G, replace(p, edits=())), p.masks)
        chunk_after = composite(state.chunks, p.masks)
        region = torch.zeros(p.masks.shape[1:], dtype=torch.bool)
        for e in p.edits:
            region |= p.masks[e.chunk] > 0.5

        def diff(a, b):
            d = (a - b).abs().mean(1, keepdim=True).clamp(max=0.5) * 4 - 1
            return _big(d.expand(-1, 3, -1, -1))
        ci, co = leakage(chunk_before, chunk_after, region)
        gi, go = leakage(global_before, global_after, region)
        gallery = [(_big(chunk_before), "ChunkyGAN reconstruction"), (_big(chunk_after), "chunk edit"),
                   (diff(chunk_after, chunk_before), "chunk edit: change"),
                   (_big(global_before), "W+ reconstruction"), (_big(global_after), "the same edit, global (W+)"),
                   (diff(global_after, global_before), "global edit: change")]
        note = (f"Mean change inside the edited chunks / outside them: chunk edit {ci:.4f} / {co:.4f}; "
                f"global edit {gi:.4f} / {go:.4f} (pixel values in [-1, 1]).")
        return state, gallery, note
    return compare


def make_save(sessions: Sessions):
    @user_errors
    def save(state, request: gr.Request = None):
        state = _need(state)
        folder = sessions.folder(request, "chunks-")
        return str(save_project(folder / "chunky-project.safetensors", state.project))
    return save


def make_load(registry: Registry):
    @user_errors
    def load(model, file, custom):
        if not file:
            raise gr.Error("Choose a project file (.safetensors) first.")
        if not model:
            raise gr.Error("Pick a generator first.")
        project = load_project(Path(file), registry.get(model), model)
        return _outputs(_start(registry, project, None), 0, _chunk_direction_names(registry, model, custom))
    return load


def make_export(sessions: Sessions):
    @user_errors
    def export(state, request: gr.Request = None):
        state = _need(state)
        image = composite(state.chunks, state.project.masks)
        folder = sessions.folder(request, "chunks-")
        files = [folder / "chunk-edit.png"]
        tensor_to_pil(image.clamp(-1, 1)).save(files[0])
        if state.target is not None:
            files.append(folder / "chunk-edit_photo.png")
            pipeline.paste(state.target, image.clamp(-1, 1)).save(files[-1])
        return [str(f) for f in files]
    return export


def create_tab(registry: Registry, picker: gr.Dropdown, results_state: gr.State, custom_state: gr.State,
               sessions: Sessions) -> None:
    state = gr.State(None, time_to_live=sessions.ttl_s)
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            kind = gr.Radio([("the inversion tab's ChunkyGAN result", "result"), ("an image: run ChunkyGAN here", "image")],
                            value="result", label="Edit")
            image = gr.File(label="Image", file_types=["image"], type="filepath", height=100)
            with gr.Accordion("ChunkyGAN settings (for an image)", open=False):
                n_chunks = gr.Slider(1, 8, value=4, step=1, label="Chunks (n)")
                lambda_reg = gr.Number(1.0, minimum=0, label="lambda_reg")
                space = gr.Radio([("W", "w"), ("W+", "w+"), ("S", "s")], value="w+", label="Code space")
                steps = gr.Slider(50, 1000, value=300, step=50, label="Steps (also for the W+ comparison)")
            with gr.Row():
                load_button = gr.Button("Load", variant="primary")
                cancel_button = gr.Button("Cancel", variant="stop")
            project_file = gr.File(label="Project file (.safetensors)", file_types=[".safetensors"], type="filepath",
                                   height=100)
            with gr.Row():
                open_button = gr.Button("Open project")
                save_button = gr.Button("Save project")
            saved = gr.File(label="Saved project")
            status = gr.Markdown()
        with gr.Column(scale=2):
            with gr.Row():
                shown = gr.Image(label="Composite (click a chunk to pick it)", type="numpy", height=SHOW,
                                 interactive=False)
                chunk = gr.Dropdown([], label="Chunk", type="value")
            chunks_gallery = gr.Gallery(label="Chunks: each G(z_i) through its mask", columns=4, height="auto",
                                        format="png")
            with gr.Row():
                direction = gr.Dropdown([], label="Direction", allow_custom_value=True)
                value = gr.Slider(-3, 3, value=1.0, step=0.1, label="Units")
                edit_button = gr.Button("Apply to the chunk", variant="primary")
            with gr.Row():
                seed = gr.Number(0, precision=0, minimum=0, label="Towards sample seed")
                amount = gr.Slider(0, 1, value=0.5, step=0.05, label="Amount")
                towards_button = gr.Button("Move the chunk's code")
            with gr.Row():
                op = gr.Radio(["grow", "shrink", "feather"], value="grow", label="Mask")
                pixels = gr.Slider(1, 8, value=2, step=1, label="Pixels")
                mask_button = gr.Button("Change the mask")
            with gr.Row():
                undo = gr.Button("Undo")
                redo = gr.Button("Redo")
                compare_button = gr.Button("Compare with the global edit")
                export_button = gr.Button("Export")
            compare_gallery = gr.Gallery(label="Chunk edit against the same edit on a W+ inversion", columns=3,
                                         height="auto", format="png")
            compare_note = gr.Markdown()
            exported = gr.File(label="Edited image, and pasted into the photo", file_count="multiple")
    view = [state, shown, chunks_gallery, status, chunk, direction]
    # every edit synthesises one chunk again (short); loading may run ChunkyGAN, comparing W+ (long)
    sessions.long(load_button.click, make_source(registry, sessions), outputs=view, api_name="chunk_source",
                  inputs=[picker, kind, results_state, image, n_chunks, lambda_reg, space, steps, custom_state])
    sessions.cancel_button(cancel_button)  # stops ChunkyGAN or the W+ comparison; the project stays
    chunk.input(pick, inputs=[state, chunk], outputs=view, api_name="chunk_pick")
    shown.select(click, inputs=state, outputs=view, api_name=False)
    sessions.short(edit_button.click, make_edit(registry), inputs=[state, chunk, direction, value, custom_state],
                   outputs=view, api_name="chunk_edit")
    sessions.short(towards_button.click, make_towards(registry), inputs=[state, chunk, seed, amount], outputs=view,
                   api_name="chunk_towards")
    sessions.short(mask_button.click, make_mask(registry), inputs=[state, chunk, op, pixels], outputs=view,
                   api_name="chunk_mask")
    for button, step, name in ((undo, -1, "chunk_undo"), (redo, 1, "chunk_redo")):
        sessions.short(button.click, make_undo(registry, step), inputs=state, outputs=view, api_name=name)
    sessions.long(compare_button.click, make_compare(registry, sessions), inputs=[state, results_state, steps],
                  outputs=[state, compare_gallery, compare_note], api_name="chunk_compare")
    save_button.click(make_save(sessions), inputs=state, outputs=saved, api_name="chunk_save")
    sessions.short(open_button.click, make_load(registry), inputs=[picker, project_file, custom_state], outputs=view,
                   api_name="chunk_load")
    # a direction fitted in the sliders tab can move a chunk at once
    def offer_directions(st, custom):
        return gr.update() if st is None else gr.update(choices=_chunk_direction_names(registry, st.project.generator,
                                                                                        custom))
    custom_state.change(offer_directions, inputs=[state, custom_state], outputs=direction, api_name=False, queue=False)
    export_button.click(make_export(sessions), inputs=state, outputs=exported, api_name="chunk_export")
