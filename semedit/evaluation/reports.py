"""What every benchmark script shares: timings measured side by side, and writing its table."""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable, List, Sequence

import torch


@torch.no_grad()
def alternating_medians(fns: Sequence[Callable[[], object]], repeats: int = 30, warmup: int = 3) -> List[float]:
    """Median seconds of each function, run in turn ``repeats`` times after ``warmup`` rounds, so
    that load on a shared machine falls on all of them alike (quote their ratios)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: List[List[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def publish(text: str, out: Path) -> None:
    """Write a benchmark's markdown to ``out`` (folders made) and print it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
