"""What every tab shares: error translation (scheduling and sessions: ``sessions.py``)."""
from __future__ import annotations

import functools
from typing import Callable

import gradio as gr

from ..errors import SemeditError

def user_errors(fn: Callable) -> Callable:
    """Turn library errors into ``gr.Error`` (shown to the user; the app keeps serving)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SemeditError as e:
            raise gr.Error(str(e)) from e
    return wrapper
