"""What the server holds per browser session, and the two kinds of jobs it schedules.

Short jobs (samples, slider frames, chunk edits, segments) and long jobs (inversions, transfers
by optimisation, fitting) have separate queue slots, so a short request never waits behind an
optimisation; how many of each run at once comes from the settings. Each session (Gradio's
session hash; one per browser tab or gradio_client) gets one temporary folder, and its long
jobs are numbered in the order they were asked for: Cancel (any tab's button, or ``/cancel``)
stops the running one between two steps, and one still waiting in the queue at its start. When
the browser leaves (``demo.unload``) its jobs are cancelled and its folder removed; folders of
sessions whose end never came (a dropped connection, a crashed server) are removed once unused
for the session time-to-live.

On ZeroGPU hardware a job runs in a forked worker process whose memory is a copy taken at the
fork, so the numbering stays in the server's process, the job travels to the worker as a keyword
argument, and a Cancel reaches it through a small file (``<session>.cancelled``, the number
cancelled through) that the job reads between its steps.
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
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import gradio as gr

from ..inversion.common import InversionCancelled
from ..settings import Settings

SHORT_JOBS_ID = "short-jobs"
LONG_JOBS_ID = "long-jobs"
LOCAL_SESSION = "local"  # calls without a request (tests, scripts calling the handlers directly)
#: the keyword argument that carries a long job from the server's process to the handler (ZeroGPU:
#: into its worker process)
JOB_KEYWORD = "_semedit_long_job"
#: result folders a session keeps (its newest): Gradio serves copies from its own cache, so older
#: folders are only needed for a moment after their result was returned
FOLDERS_PER_SESSION = 8


@dataclass
class _Tickets:
    """One session's long jobs by number: ``asked`` were asked for (a button's quick handler
    counts a click at once, see ``Sessions.ask``; a job called through the API counts itself
    when it starts), ``started`` began, ``ended`` ended; those numbered up to
    ``cancelled_through`` are cancelled."""
    asked: int = 0
    started: int = 0
    ended: int = 0
    cancelled_through: int = 0
    running: List["LongJob"] = field(default_factory=list)


class LongJob:
    """One running long job of a session, with its number in the session's order. In the server's
    process it reads its session's tickets; a copy sent to another process (pickled: ZeroGPU's
    worker) has none and reads its session's cancel file instead."""

    def __init__(self, tickets: Optional[_Tickets], number: int, cancel_file: Optional[Path] = None) -> None:
        self.tickets, self.number, self.cancel_file = tickets, number, cancel_file

    def __reduce__(self):
        return LongJob, (None, self.number, self.cancel_file)

    @property
    def cancelled(self) -> bool:
        if self.tickets is not None:
            return self.tickets.cancelled_through >= self.number
        return self.cancel_file is not None and _cancelled_through(self.cancel_file) >= self.number

    def check(self) -> None:
        """Raise InversionCancelled if the job was cancelled (call between two steps)."""
        if self.cancelled:
            raise InversionCancelled("Cancelled; nothing was changed.")


def _cancelled_through(cancel_file: Path) -> int:
    """The number a session's Cancel wrote into its cancel file; 0 without one."""
    try:
        return int(cancel_file.read_text())
    except (OSError, ValueError):
        return 0


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
        self._tickets: Dict[str, _Tickets] = {}
        self._numbered_jobs: Dict[int, LongJob] = {}  # by id() of the running handler's request
        self._last_stamp_ns = 0

    def short(self, listener, fn, **event):
        """Register ``fn`` on ``listener`` (``button.click``, ``slider.change`` ...) as a short job."""
        return listener(on_gpu(releasing(fn, SHORT_RELEASE_S), SHORT_GPU_SECONDS), concurrency_id=SHORT_JOBS_ID,
                        concurrency_limit=self.settings.short_jobs, **event)

    def long(self, listener, fn, **event):
        """Register ``fn`` on ``listener`` as a long job (call ``long_job`` inside it). A quick
        handler counts the job as asked for first and the job is queued after it, so a Cancel
        pressed while it waits in the queue stops it at its start; ``fn`` takes its number when it
        starts (its ``request: gr.Request`` argument tells the session)."""
        asked = listener(self.ask, inputs=None, outputs=None, queue=False, api_name=False, show_progress="hidden")
        return asked.then(self.long_handler(fn), concurrency_id=LONG_JOBS_ID,
                          concurrency_limit=self.settings.long_jobs, **event)

    def long_handler(self, fn):
        """``fn`` as ``long`` registers it: it holds its session's next job number while it runs,
        whether or not it gets as far as ``long_job`` (it may fail on its input first). The number
        is taken here, in the server's process; ``fn`` runs where ``on_gpu`` sends it, with the
        job handed over (``JOB_KEYWORD``) for ``long_job`` to find."""
        def numbering(args, kwargs):
            return self._numbering(_request_in(args, kwargs), kwargs)
        return around(on_gpu(around(releasing(fn, 0.0), self._handed_over), LONG_GPU_SECONDS), numbering)

    @contextmanager
    def _numbering(self, request: Optional[gr.Request], kwargs: dict) -> Iterator[None]:
        """The call's job numbered and put into its keyword arguments (``kwargs``, changed in place)."""
        with self._job_of(request) as job:
            kwargs[JOB_KEYWORD] = job
            yield

    @contextmanager
    def _handed_over(self, args: tuple, kwargs: dict) -> Iterator[None]:
        """The job handed over in ``kwargs`` (taken out of it, in place), kept for ``long_job``
        under the call's request while the call lasts, in whichever process it runs."""
        job, request = kwargs.pop(JOB_KEYWORD, None), _request_in(args, kwargs)
        if job is None or request is None:
            yield
            return
        with self._lock:
            self._numbered_jobs[id(request)] = job
        try:
            yield
        finally:
            with self._lock:
                self._numbered_jobs.pop(id(request), None)

    def _cancel_file(self, key: str) -> Path:
        return self.root / f"{key}.cancelled"

    @contextmanager
    def _job_of(self, request: Optional[gr.Request]) -> Iterator[LongJob]:
        """Number one job of the session for as long as it lasts: refused (gr.Error) when the
        session already runs ``long_jobs_per_session``."""
        key = session_key(request)
        limit = self.settings.long_jobs_per_session
        with self._lock:
            tickets = self._tickets.setdefault(key, _Tickets())
            tickets.started += 1
            tickets.asked = max(tickets.asked, tickets.started)  # called through the API: not counted before
            job = LongJob(tickets, tickets.started, self._cancel_file(key))
            running = tickets.running
            n, refused = len(running), len(running) >= limit
            if not refused:
                running.append(job)
        try:
            if refused:
                raise gr.Error(f"This session already runs {n} long job{'s' if n > 1 else ''} "
                               f"(the limit is {limit}): wait for it to finish, or cancel it.")
            yield job
        finally:
            with self._lock:
                if not refused:
                    running.remove(job)
                tickets.ended += 1
                if tickets.ended >= tickets.asked and self._tickets.get(key) is tickets:
                    del self._tickets[key]  # nothing queued or running: the next job starts afresh
                    self._cancel_file(key).unlink(missing_ok=True)

    def cancel_button(self, button: gr.Button, api_name=False):
        """Wire ``button`` to cancel the session's long jobs (not queued: it answers at once)."""
        button.click(self.cancel, inputs=None, outputs=None, queue=False, api_name=api_name)

    def ask(self, request: gr.Request) -> None:
        """A long job of the session was asked for (a click); it starts when the queue lets it.
        Counted only while none of the session's jobs has started: the browser drops a second click of a
        pending button, and a job of another tab asked for meanwhile starts after the running
        one, not cancelled by a Cancel meant for that one. Asking again before it starts counts once."""
        with self._lock:
            tickets = self._tickets.setdefault(session_key(request), _Tickets())
            if tickets.started == tickets.ended:
                tickets.asked = tickets.started + 1

    def cancel(self, request: gr.Request) -> None:
        """Cancel the session's long jobs asked for so far: the running one stops between two
        steps, queued ones at their start. With none asked for it does nothing, so a stray press
        never cancels a later job."""
        key = session_key(request)
        with self._lock:
            tickets = self._tickets.get(key)
            if tickets is not None and tickets.asked > tickets.ended:
                tickets.cancelled_through = tickets.asked
                cancel_file = self._cancel_file(key)
                cancel_file.parent.mkdir(parents=True, exist_ok=True)
                written = cancel_file.with_suffix(".writing")
                written.write_text(str(tickets.cancelled_through))
                os.replace(written, cancel_file)  # a job in another process reads it whole or not at all

    @contextmanager
    def long_job(self, request: Optional[gr.Request]) -> Iterator[LongJob]:
        """Run one long job of the session: refused (gr.Error) when the session already runs
        ``long_jobs_per_session``; the job it yields is cancelled by ``cancel`` and ``end``.
        Inside a handler registered by ``long`` it is that handler's job (numbered, and checked
        against the limit, when the handler started); elsewhere (a direct call) it takes a
        number of its own."""
        with self._lock:
            job = self._numbered_jobs.get(id(request)) if request is not None else None
        with (nullcontext(job) if job is not None else self._job_of(request)) as job:
            yield job

    def running(self, request: Optional[gr.Request]) -> int:
        with self._lock:
            tickets = self._tickets.get(session_key(request))
            return len(tickets.running) if tickets else 0

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

    def end(self, request: gr.Request) -> None:
        """The session's browser left: cancel its long jobs and remove its files."""
        self.cancel(request)  # those still queued end at their start
        shutil.rmtree(self.root / session_key(request), ignore_errors=True)

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
            busy = {key for key, tickets in self._tickets.items() if tickets.running}
        for entry in self.root.iterdir():  # session folders, and cancel files left by a crash
            try:
                if entry.name.split(".")[0] in busy or now - entry.stat().st_mtime <= self.ttl_s:
                    continue
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink()
            except FileNotFoundError:  # removed meanwhile
                pass

    def close(self) -> None:
        """Remove every session's folder (the server is shutting down)."""
        shutil.rmtree(self.root, ignore_errors=True)


def step_callback(job: LongJob, progress, desc: str):
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

    @contextmanager
    def then_release(args, kwargs):
        try:
            yield
        finally:
            release()
    return around(fn, then_release)


def _request_in(args: tuple, kwargs: dict) -> Optional[gr.Request]:
    """A handler call's ``gr.Request`` argument, None without one."""
    return next((a for a in (*args, *kwargs.values()) if isinstance(a, gr.Request)), None)


def around(fn, context):
    """``fn`` (a function or a generator function, as Gradio calls it) run inside
    ``context(args, kwargs)``, a context manager entered at the call and left when ``fn`` ends."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            with context(args, kwargs):
                yield from fn(*args, **kwargs)
        return stream

    @functools.wraps(fn)
    def call(*args, **kwargs):
        with context(args, kwargs):
            return fn(*args, **kwargs)
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
