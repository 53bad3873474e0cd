"""What every tab shares: the model-bound concurrency group and error translation."""
from __future__ import annotations

import functools
from typing import Callable

import gradio as gr

from ..errors import SemeditError

#: Events that run a model share one queue slot, so two heavy jobs never fight for 2 cores.
MODEL_CONCURRENCY_ID = "model"


def user_errors(fn: Callable) -> Callable:
    """Turn library errors into ``gr.Error`` (shown to the user; the app keeps serving)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SemeditError as e:
            raise gr.Error(str(e)) from e
    return wrapper
