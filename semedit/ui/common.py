"""What every tab shares: error translation (scheduling and sessions: ``sessions.py``)."""
from __future__ import annotations

import functools
import inspect
from typing import Callable

import gradio as gr

from ..errors import SemeditError

def user_errors(fn: Callable) -> Callable:
    """Turn library errors into ``gr.Error`` (shown to the user; the app keeps serving), for
    functions and for generator functions (streaming events) alike."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except SemeditError as e:
                raise gr.Error(str(e)) from e
        return stream

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SemeditError as e:
            raise gr.Error(str(e)) from e
    return wrapper
