"""Keep mediapipe's native start-up notices (TensorFlow Lite, absl) out of the server's log.

They are written by C++ straight to file descriptor 2, so Python's logging and warnings
filters never see them, and they read like errors ("W0000 ... Disabling support for feedback
tensors"). While a mediapipe graph runs, descriptor 2 points at a temporary file; afterwards
every line of it that is not one of those notices is written back to the real stderr, so
nothing that another thread printed meanwhile is lost."""
from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator

#: the notices mediapipe 0.10.21 prints for every graph it starts
NOTICES = re.compile(r"^(INFO: Created TensorFlow Lite XNNPACK delegate"
                     r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
                     r"|[WI]\d{4} [\d:. ]+\d+ (inference_feedback_manager|landmark_projection_calculator|gl_context)"
                     r"\.cc:\d+\])")
_REDIRECT = threading.Lock()  # one redirection at a time: descriptor 2 is the process's


@contextmanager
def mediapipe_notices_filtered() -> Iterator[None]:
    """Run a block with mediapipe's native notices on stderr dropped (see the module)."""
    with _REDIRECT, tempfile.TemporaryFile(mode="w+b") as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not NOTICES.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
