"""What the server holds per browser session, and the two kinds of jobs it schedules.

Short jobs (samples, slider frames, chunk edits, segments) and long jobs (inversions, transfers
by optimisation, fitting) have separate queue slots, so a short request never waits behind an
optimisation; how many of each run at once comes from the settings. Each session (Gradio's
session hash; one per browser tab or gradio_client) gets one temporary folder, and its running
long jobs are listed with their cancel flags: when the browser leaves (``demo.unload``) the jobs
are cancelled and the folder removed; folders of sessions whose end never came (a dropped
connection, a crashed server) are removed once unused for the session time-to-live.
"""
from __future__ import annotations

import ctypes
import functools
import inspect
import os
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import gradio as gr

from ..inversion.common import InversionCancelled
from ..settings import Settings

SHORT_JOBS_ID = "short-jobs"
LONG_JOBS_ID = "long-jobs"
LOCAL_SESSION = "local"  # calls without a request (tests, scripts calling the handlers directly)
#: result folders a session keeps (its newest): Gradio serves copies from its own cache, so older
#: folders are only needed for a moment after their result was returned
FOLDERS_PER_SESSION = 8


class CancelFlag:
    """A cancel signal for one session's long job. Gradio copies a State's initial value into
    each new session; the copy is a fresh flag, while events of one session share the same one.
    ``busy`` is set while the job is queued or running (a button may set it at once, the job
    itself when called through the API); a cancel counts only then, so a stray press never
    cancels the next run, and a run cancelled while queued ends at its start."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.busy = threading.Event()

    def __deepcopy__(self, memo) -> "CancelFlag":
        return CancelFlag()

    def request(self) -> None:
        if self.busy.is_set():
            self.event.set()

    def check(self) -> None:
        """Raise InversionCancelled if a cancel was requested (call between two steps)."""
        if self.event.is_set():
            raise InversionCancelled("cancelled")

    def done(self) -> None:
        self.busy.clear()
        self.event.clear()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _last_use(folder: Path) -> int:
    """The folder's modification time in ns; 0 when another thread removed it meanwhile."""
    try:
        return folder.stat().st_mtime_ns
    except OSError:
        return 0


def session_key(request: Optional[gr.Request]) -> str:
    key = getattr(request, "session_hash", None) if request is not None else None
    return "".join(c for c in str(key) if c.isalnum() or c in "-_")[:64] if key else LOCAL_SESSION


class Sessions:
    """Per-session temporary folders and long jobs, for one app (made by ``build_demo``)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.temp_dir) / f"semedit-sessions-{os.getpid()}"
        self.ttl_s = settings.session_ttl_minutes * 60
        self._lock = threading.Lock()
        self._jobs: Dict[str, List[CancelFlag]] = {}
        self._last_stamp_ns = 0

    def short(self, listener, fn, **event):
        """Register ``fn`` on ``listener`` (``button.click``, ``slider.change`` ...) as a short job."""
        return listener(on_gpu(releasing(fn, SHORT_RELEASE_S), SHORT_GPU_SECONDS), concurrency_id=SHORT_JOBS_ID,
                        concurrency_limit=self.settings.short_jobs, **event)

    def long(self, listener, fn, **event):
        """Register ``fn`` on ``listener`` as a long job (call ``long_job`` inside it)."""
        return listener(on_gpu(releasing(fn, 0.0), LONG_GPU_SECONDS), concurrency_id=LONG_JOBS_ID,
                        concurrency_limit=self.settings.long_jobs, **event)

    def folder(self, request: Optional[gr.Request], prefix: str) -> Path:
        """A new folder for one result's files, inside the session's folder (which keeps its
        newest ``FOLDERS_PER_SESSION``)."""
        self.sweep()
        base = self.root / session_key(request)
        base.mkdir(parents=True, exist_ok=True)
        os.utime(base)  # last use, for the sweep
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
        self.touch(folder)
        older = sorted((f for f in base.iterdir() if f != folder), key=_last_use, reverse=True)
        for stale in older[FOLDERS_PER_SESSION - 1:]:
            shutil.rmtree(stale, ignore_errors=True)
        return folder

    def touch(self, folder: Path) -> None:
        """Mark ``folder`` as just used (made again if the pruning took it): its modification
        time becomes later than every earlier touch, even where the file system's clock is too
        coarse to tell two folders made in a row apart, so the pruning keeps the newest."""
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._last_stamp_ns = max(time.time_ns(), self._last_stamp_ns + 1)
            stamp = self._last_stamp_ns
        os.utime(folder, ns=(stamp, stamp))

    @contextmanager
    def long_job(self, request: Optional[gr.Request], flag: Optional[CancelFlag] = None) -> Iterator[CancelFlag]:
        """Run one long job of the session: refused (gr.Error) when the session already runs
        ``long_jobs_per_session``; the flag it yields is raised if the session ends meanwhile."""
        key, flag = session_key(request), flag or CancelFlag()
        limit = self.settings.long_jobs_per_session
        with self._lock:
            running = self._jobs.setdefault(key, [])
            if len(running) >= limit:
                raise gr.Error(f"This session already runs {len(running)} long job{'s' if len(running) > 1 else ''} "
                               f"(the limit is {limit}): wait for it to finish, or cancel it.")
            running.append(flag)
        flag.busy.set()
        try:
            yield flag
        finally:
            with self._lock:
                running = self._jobs.get(key, [])
                if flag in running:
                    running.remove(flag)
                if not running:
                    self._jobs.pop(key, None)

    def running(self, request: Optional[gr.Request]) -> int:
        with self._lock:
            return len(self._jobs.get(session_key(request), []))

    def end(self, request: gr.Request) -> None:
        """The session's browser left: cancel its long jobs and remove its files."""
        key = session_key(request)
        with self._lock:
            flags = list(self._jobs.get(key, []))
        for flag in flags:
            flag.request()
        shutil.rmtree(self.root / key, ignore_errors=True)

    def sweep(self) -> None:
        """Remove the folders of sessions without a running job, unused for the time-to-live, and
        those of servers that are gone (a crash leaves its sessions' folders behind)."""
        for other in self.root.parent.glob("semedit-sessions-*"):
            pid = other.name.rsplit("-", 1)[-1]
            if other != self.root and pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(other, ignore_errors=True)
        if not self.root.is_dir():
            return
        now = time.time()
        with self._lock:
            busy = set(self._jobs)
        for folder in self.root.iterdir():
            try:
                if folder.name not in busy and now - folder.stat().st_mtime > self.ttl_s:
                    shutil.rmtree(folder, ignore_errors=True)
            except FileNotFoundError:  # removed meanwhile
                pass

    def close(self) -> None:
        """Remove every session's folder (the server is shutting down)."""
        shutil.rmtree(self.root, ignore_errors=True)


def step_callback(job: CancelFlag, progress, desc: str):
    """An optimisation's progress callback (step, total, loss): it shows the progress and stops
    the optimisation (InversionCancelled) once ``job`` is cancelled."""
    def tick(step, total, loss):
        job.check()
        progress((step, total), desc=desc)
    return tick


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows, musl): nothing to give back this way
        return None


def release_memory() -> bool:
    """Give the heap memory that freed tensors left in glibc's malloc arenas back to the system
    (``malloc_trim``). Handlers run on many threads, each allocating from its own arena, and the
    arenas keep what is freed: measured on 16 threads running inversions, resident memory stays
    at 1.1-1.2 GB with a trim after each job against 2.1-2.3 GB (and climbing) without, at about
    the same speed. False where there is no glibc."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))


def releasing(fn, every_s: float):
    """``fn`` (a function or a generator function, as Gradio calls it) followed by
    ``release_memory`` when it ends, at most once every ``every_s`` seconds (0: always)."""
    last = [-float("inf")]  # when it last released

    def release():
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            release_memory()

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            finally:
                release()
        return stream

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            release()
    return call


def on_gpu(fn, seconds: int):
    """``fn`` as a Hugging Face ZeroGPU task when the ``spaces`` package is installed (a GPU is
    attached to the process while it runs, for at most ``seconds``); ``fn`` itself otherwise."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=seconds)(fn)


#: ZeroGPU time a short and a long job may hold the GPU
SHORT_GPU_SECONDS, LONG_GPU_SECONDS = 20, 120
#: short jobs come in bursts (a slider dragged): memory is given back at most this often after them
SHORT_RELEASE_S = 10.0
