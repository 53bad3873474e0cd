"""The evaluation harness: a task's work items, run on any number of shards, rows kept, tables made.

    python -m semedit eval --preset table1 --out eval-out/table1
    torchrun --nproc_per_node 2 -m semedit eval --preset table1 --out eval-out/table1

A task (``semedit.evaluation.tables``) lists its work items by key and turns one item into
rows (dicts of the task's columns); it makes its markdown summary and its plot from all rows.
The harness deals the items that have no rows yet over the shards, appends each shard's rows
to ``rows.rank{R}.csv`` in the output folder as soon as an item is done, in one write ending
with a ``#done`` line for the item (so an interrupted run resumes where it stopped, with any
number of shards; an item cut off mid-write runs again, after a ``#resumed`` line), then gathers
every shard's rows to the first one, which writes ``rows.csv`` (every row, in item order),
``summary.md`` and ``plot.png``. ``config.json`` records the settings in every shard's folder;
a folder holding rows of other settings, on any machine's disk, is refused by every shard rather
than mixed.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Protocol, Sequence

from ..errors import SemeditError
from . import sharding
from .sharding import Shard

CONFIG_FILE, ROWS_FILE, SUMMARY_FILE, PLOT_FILE = "config.json", "rows.csv", "summary.md", "plot.png"
#: the item column of the row that closes an item's rows in a shard's file
DONE_MARK = "#done "
#: the item column of the row a resumed run starts its appending with
RESUMED_MARK = "#resumed"


class Task(Protocol):
    name: str
    columns: Sequence[str]  # the first is "item"

    def settings(self) -> dict: ...

    def items(self) -> List[str]: ...

    def run(self, item: str) -> List[Dict[str, object]]: ...

    def summary(self, rows: List[Dict[str, str]]) -> str: ...

    def plot(self, rows: List[Dict[str, str]], path: Path) -> None: ...


class SettingsMismatchError(SemeditError):
    """The output folder holds results made with other settings."""


@dataclass(frozen=True)
class Report:
    """What the first shard wrote (None on the others): the folder, rows, summary and plot."""

    folder: Path
    rows: Path
    summary: Path
    plot: Optional[Path]
    n_rows: int


def read_rows(folder: Path) -> Dict[str, List[Dict[str, str]]]:
    """{item: its rows} of the finished items in every rows file in ``folder`` this process can
    see (merged and per shard; an item's rows are taken from one file, never mixed). In a shard's
    file an item counts only once its ``#done`` line follows its rows: one cut off by a crash, or
    still being written by another shard, does not."""
    found: Dict[str, List[Dict[str, str]]] = {}
    for path in [folder / ROWS_FILE] + sorted(folder.glob("rows.rank*.csv")):
        if not path.is_file():
            continue
        whole = path.name == ROWS_FILE  # written whole, then renamed into place
        per_file: Dict[str, List[Dict[str, str]]] = {}
        block: List[Dict[str, str]] = []  # the rows since the last mark
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                item = row.get("item") or ""
                if item.startswith(DONE_MARK):
                    name = item[len(DONE_MARK):]
                    per_file[name] = [r for r in block if r["item"] == name]
                if item.startswith("#"):  # #done, or #resumed after a cut-off write: a new block starts
                    block = []
                elif whole:
                    per_file.setdefault(item, []).append(row)
                elif item:
                    block.append(row)
        for item, rows in per_file.items():
            found.setdefault(item, rows)
    return found


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1)


def _append_item(f, columns: Sequence[str], item: str, rows) -> None:
    """``item``'s rows and its ``#done`` line, in one write, flushed to the disk."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="raise")
    for row in rows:
        writer.writerow({**row, "item": item})
    writer.writerow({"item": DONE_MARK + item})
    f.write(buffer.getvalue())
    f.flush()
    os.fsync(f.fileno())


def _settings_problem(folder: Path, settings: dict) -> Optional[str]:
    """Why ``folder`` cannot take rows of ``settings`` (it holds results of others), or None."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        return None
    before = json.loads(path.read_text())
    if before == settings:
        return None
    changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
    return (f"{folder} holds results made with other settings ({', '.join(changed)}); "
            "choose another --out, or --restart to discard them")


def _record_settings(folder: Path, settings: dict, rank: int) -> None:
    """Write ``settings`` into ``folder`` whole (shards sharing a disk write the same file)."""
    tmp = folder / f"{CONFIG_FILE}.rank{rank}.tmp"
    tmp.write_text(json.dumps(settings, indent=1, sort_keys=True))
    tmp.replace(folder / CONFIG_FILE)


def _print(line: str) -> None:
    print(line, flush=True)


def evaluate(task: Task, folder: Path, *, shard: Shard = Shard(), restart: bool = False,
             log: Callable[[str], None] = _print) -> Optional[Report]:
    """Run ``task``'s items that have no rows in ``folder`` yet, this shard's share of them, and
    on the first shard merge every shard's rows and write the summary and plot."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if restart:  # every shard: on other machines the rows files are their own
        for old in [folder / ROWS_FILE, *folder.glob("rows.rank*.csv")]:
            old.unlink(missing_ok=True)
    # every shard reads its own disk (machines need not share one); any shard's refusal stops all
    settings = task.settings()
    problems = sharding.all_gather(shard, None if restart else _settings_problem(folder, settings))
    problem = next((p for p in problems if p), None)
    if problem:
        raise SettingsMismatchError(problem)
    _record_settings(folder, settings, shard.rank)
    items = task.items()
    done = set()
    for seen in sharding.all_gather(shard, sorted(read_rows(folder))):
        done.update(seen)
    pending = [i for i in items if i not in done]
    mine = shard.mine(pending)
    log(f"[{shard.rank + 1}/{shard.world}] {len(items)} items, {len(items) - len(pending)} done before, "
        f"{len(mine)} of the {len(pending)} left run here")
    own = folder / f"rows.rank{shard.rank}.csv"
    new_file = not own.is_file() or own.stat().st_size == 0
    cut_off = not new_file and _last_byte(own) != b"\n"  # a crash mid-line: start a new one
    t0 = time.time()
    with open(own, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(task.columns))
        if new_file:
            writer.writeheader()
        else:  # rows an earlier run left unfinished are not part of the next item's block
            if cut_off:
                f.write("\r\n")
            writer.writerow({"item": RESUMED_MARK})
        for n, item in enumerate(mine, 1):
            _append_item(f, task.columns, item, task.run(item))
            log(f"[{shard.rank + 1}/{shard.world}] {n}/{len(mine)} {item} ({time.time() - t0:.0f} s)")
    everything = sharding.gather_to_first(shard, read_rows(folder))
    if not shard.first:
        return None
    merged: Dict[str, List[Dict[str, str]]] = {}
    for part in everything:
        for item, rows in part.items():
            merged.setdefault(item, rows)
    rows = [row for item in items for row in merged.get(item, [])]
    missing = [i for i in items if i not in merged]
    if missing:
        log(f"{len(missing)} items have no rows (first: {missing[0]}); the tables leave them out")
    rows_path = folder / ROWS_FILE
    tmp = rows_path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(task.columns))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(rows_path)
    summary = folder / SUMMARY_FILE
    summary.write_text(task.summary(rows))
    plot: Optional[Path] = folder / PLOT_FILE
    try:
        task.plot(rows, plot)
    except ImportError as e:  # matplotlib is optional: the tables do not need it
        log(f"no plot ({e})")
        plot = None
    log(f"wrote {rows_path} ({len(rows)} rows), {summary}" + (f", {plot}" if plot else ""))
    return Report(folder, rows_path, summary, plot, len(rows))
