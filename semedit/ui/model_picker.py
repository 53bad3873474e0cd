"""Generator picker: every catalogued generator, marked local or needing a download."""
from __future__ import annotations

from typing import List, Tuple

import gradio as gr

from ..registry import Registry, hub_reachable


def generator_choices(registry: Registry) -> List[Tuple[str, str]]:
    """(label, name) pairs; the label says whether the weights are on this machine, and if not
    whether they can be downloaded now (the Hub is probed once). The default generator comes
    first, the others in catalogue order."""
    out = []
    reachable = None
    first = default_generator(registry)
    for name in sorted(registry.catalogue.names("generator"), key=lambda n: n != first):
        if registry.is_local(name):
            where = "local"
        elif registry.settings.hub_offline:
            where = "not downloaded; offline"
        else:
            if reachable is None:
                reachable = hub_reachable(registry.settings.hub_endpoint)
            where = "downloads on first use" if reachable else "not downloaded; the Hub cannot be reached"
        out.append((f"{name} ({where})", name))
    return out


def default_generator(registry: Registry) -> str:
    settings, cat = registry.settings, registry.catalogue
    if settings.default_generator:
        cat.get(settings.default_generator)  # fail early on a typo
        return settings.default_generator
    if cat.default_generator:
        return cat.default_generator
    local = [n for n in cat.names("generator") if registry.is_local(n)]
    return (local or list(cat.names("generator")))[0]


def create_model_picker(registry: Registry) -> gr.Dropdown:
    return gr.Dropdown(choices=generator_choices(registry), value=default_generator(registry), label="Generator",
                       info="Shared by every tab. Models marked 'downloads on first use' come from the "
                            "Hugging Face Hub.")
