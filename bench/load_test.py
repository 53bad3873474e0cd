"""Load test: simulated users on every tab of a local server, through gradio_client.

    python bench/load_test.py [--users 16] [--minutes 10] [--ttl-minutes 2] [--cache-minutes 5]
        [--out bench/results/load_test.md]

The app runs as its own process (``python app.py`` on a free port, offline, the embedded
default); each user is a gradio_client session looping over a visit of every tab (samples and
labels; load, segment and invert an example with W; a slider source, two slider frames and an
export; ChunkyGAN on an example, a chunk edit and an export; a hair transfer with the network,
the hair-amount slider and a download) until the time is up. Reported: calls, errors and
latency p50 / p95 per endpoint, the server's resident memory over time, and the disk used by
the sessions' folders and Gradio's cache (files live for the session TTL and Gradio's cached
files at least ``--cache-minutes``, both set short here so that a flat line can be seen within
the run; the cache's must exceed the longest wait in the queue, or uploads are lost).
Aim (issue 14): 16 users for 10 minutes, 0 errors, resident memory <= 2 GB, disk flat.
"""
from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from semedit.evaluation.reports import publish  # noqa: E402

MODEL = "embedded-portraits-64"
EXAMPLES = ROOT / "examples" / "embedded"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def folder_bytes(*folders: Path) -> int:
    total = 0
    for folder in folders:
        for dirpath, _, files in os.walk(folder):
            for f in files:
                try:
                    total += os.path.getsize(os.path.join(dirpath, f))
                except OSError:
                    pass
    return total


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def sliders(names, values, n=6):
    return list(names) + [None] * (n - len(names)) + list(values) + [0.0] * (n - len(values))


def visit(client, rng: random.Random, call) -> None:
    """One user's visit of every tab; ``call(name, *args)`` times and records each request."""
    from gradio_client import handle_file
    example = handle_file(str(EXAMPLES / f"portrait_0{rng.randrange(8)}.png"))
    call("/sample", MODEL, rng.randrange(1000), 4, 0.7)
    call("/ground_truth", MODEL, rng.randrange(1000), 2)
    call("/load_image", example)
    call("/segment", MODEL, example, "auto")
    call("/invert", MODEL, example, ["w"], 20, 1.0, 2, "w+", "stlpips-alex", "auto")
    call("/edit_source", MODEL, "sample", rng.randrange(1000), 0.7, None, None, 50, "w+")
    for value in (1.0, 2.0):
        call("/edit", *sliders(["skin tone", "grey hair"], [value, -value]))
    call("/export_edit", *sliders(["skin tone"], [2.0]))
    call("/chunk_source", MODEL, "image", example, 3, 1.0, "w+", 50)
    call("/chunk_edit", 0, "PC0", 1.5)
    call("/chunk_export")
    face, hair = (handle_file(str(EXAMPLES / n)) for n in ("portrait_02.png", "portrait_01_turned.png"))
    call("/hair_transfer", MODEL, "image", face, 0, "image", hair, 1, "model", 50)
    call("/hair_amount", MODEL, rng.random())
    call("/hair_export")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=16)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--ttl-minutes", type=float, default=2, help="the server's session time-to-live")
    ap.add_argument("--cache-minutes", type=float, default=5, help="the least age of Gradio's cached files")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/load_test.md")
    a = ap.parse_args(argv)
    from gradio_client import Client

    work = Path(tempfile.mkdtemp(prefix="semedit-load-"))
    sessions_dir, gradio_dir = work / "sessions", work / "gradio"
    sessions_dir.mkdir()
    gradio_dir.mkdir()
    port = free_port()
    env = {**os.environ, "SEMEDIT_PORT": str(port), "SEMEDIT_TEMP_DIR": str(sessions_dir),
           "GRADIO_TEMP_DIR": str(gradio_dir), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "SEMEDIT_SESSION_TTL_MINUTES": str(a.ttl_minutes), "SEMEDIT_QUEUE_SIZE": str(max(16, 2 * a.users)),
           "SEMEDIT_CACHE_MIN_AGE_MINUTES": str(a.cache_minutes)}
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, cwd=ROOT,
                              stdout=open(work / "server.log", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    latencies, errors = defaultdict(list), defaultdict(list)
    lock = threading.Lock()
    samples = []  # (seconds, rss bytes, disk bytes)
    try:
        for _ in range(240):
            try:
                Client(url, verbose=False)
                break
            except Exception:  # not up yet
                time.sleep(0.5)
        start = time.time()
        deadline = start + a.minutes * 60
        done = threading.Event()

        def monitor():
            while not done.is_set():
                samples.append((time.time() - start, rss_bytes(server.pid), folder_bytes(sessions_dir, gradio_dir)))
                done.wait(5)

        def user(i):
            rng = random.Random(i)
            client = Client(url, verbose=False)

            def call(name, *args):
                if time.time() > deadline:
                    raise TimeoutError
                t = time.time()
                try:
                    client.predict(*args, api_name=name)
                except Exception as e:  # an error is a result of the test, counted per endpoint
                    with lock:
                        errors[name].append(f"{type(e).__name__}: {str(e)[:160]}")
                finally:
                    with lock:
                        latencies[name].append(time.time() - t)
            try:
                while time.time() < deadline:
                    visit(client, rng, call)
            except TimeoutError:
                pass

        watcher = threading.Thread(target=monitor, daemon=True)
        watcher.start()
        threads = [threading.Thread(target=user, args=(i,)) for i in range(a.users)]
        for t in threads:
            t.start()
            time.sleep(0.5)  # users arrive one after another
        for t in threads:
            t.join()
        done.set()
        watcher.join()
        samples.append((time.time() - start, rss_bytes(server.pid), folder_bytes(sessions_dir, gradio_dir)))
    finally:
        server.terminate()
        server.wait(30)

    total_calls = sum(len(v) for v in latencies.values())
    total_errors = sum(len(v) for v in errors.values())
    rows = ["| endpoint | calls | errors | p50 s | p95 s |", "|---|---|---|---|---|"]
    for name, v in latencies.items():
        rows.append(f"| `{name}` | {len(v)} | {len(errors[name])} | {np.percentile(v, 50):.2f} | "
                    f"{np.percentile(v, 95):.2f} |")
    t, rss, disk = (np.array(x) for x in zip(*samples))
    mb = 1024 ** 2
    half = t >= t[-1] / 2
    timeline = ["| minute (the sample nearest it) | resident memory MB | session folders + Gradio cache MB |",
                "|---|---|---|"]
    for minute in range(int(t[-1] // 60) + 1):
        at = np.argmin(np.abs(t - minute * 60))
        timeline.append(f"| {minute} | {rss[at] / mb:.0f} | {disk[at] / mb:.1f} |")
    aims = [f"errors: {total_errors} (aim 0)", f"peak resident memory: {rss.max() / mb:.0f} MB (aim <= 2048)",
            f"disk in the second half, over every sample: {disk[half].min() / mb:.1f} to {disk[half].max() / mb:.1f} "
            f"MB, at the last sample {disk[-1] / mb:.1f} MB (session files live for the {a.ttl_minutes:g}-minute session TTL, Gradio's "
            f"cached files {a.cache_minutes:g} minutes)"]
    examples = [f"- `{name}`: {msgs[0]}" for name, msgs in errors.items() if msgs]
    text = "\n".join([
        f"# Load test: {a.users} users for {a.minutes:g} minutes\n",
        f"`python bench/load_test.py {' '.join(sys.argv[1:] if argv is None else argv)}`: one server "
        f"process (2 CPU cores, the settings' defaults: one long and one short job at a time), {a.users} "
        "gradio_client users each visiting every tab in a loop (see the script). "
        f"{total_calls} requests.\n",
        *rows, "", "## Memory and disk over time\n", *timeline, "",
        "## Against the aims\n", *[f"- {x}" for x in aims], "",
        *(["## First error of each endpoint\n", *examples, ""] if examples else []),
    ]) + "\n"
    publish(text, a.out)


if __name__ == "__main__":
    main()
