"""The evaluation harness: items dealt over shards, rows kept and resumed, settings guarded, the
presets' tables from the command line, and a 2-process torchrun run giving the 1-process table."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from semedit.evaluation.harness import SettingsMismatchError, evaluate, read_rows
from semedit.evaluation.sharding import Shard

ROOT = Path(__file__).resolve().parents[1]


class Counting:
    """A task of five items whose rows are known; it can be told to stop after some items."""

    name = "counting"
    columns = ("item", "value")

    def __init__(self, factor=1, stop_after=None):
        self.factor, self.stop_after, self.ran = factor, stop_after, []

    def settings(self):
        return {"factor": self.factor}

    def items(self):
        return [f"n{i}" for i in range(5)]

    def run(self, item):
        if self.stop_after is not None and len(self.ran) == self.stop_after:
            raise KeyboardInterrupt  # the run is cut off here
        self.ran.append(item)
        return [{"value": int(item[1:]) * self.factor}, {"value": -int(item[1:]) * self.factor}]

    def summary(self, rows):
        return f"total {sum(int(r['value']) for r in rows if int(r['value']) > 0)}\n"

    def plot(self, rows, path):
        path.write_bytes(b"plot")


def test_shards_deal_items_round_robin():
    items = list(range(7))
    parts = [Shard(r, 3).mine(items) for r in range(3)]
    assert parts == [[0, 3, 6], [1, 4], [2, 5]]
    assert sorted(sum(parts, [])) == items


def test_each_torchrun_process_takes_its_own_gpu(monkeypatch):
    """"auto" (and "cuda") under torchrun: cuda:LOCAL_RANK, not the current GPU for every process;
    an explicit index is kept. Two GPUs are faked (no process group: WORLD_SIZE 1)."""
    import torch
    from semedit.evaluation import sharding
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    for device in ("auto", "cuda"):
        assert [sharding.start(device, {"LOCAL_RANK": str(r)}).device for r in (0, 1, 2)] == \
            [torch.device("cuda", i) for i in (0, 1, 0)]
    assert sharding.start("cuda:1", {"LOCAL_RANK": "0"}).device == torch.device("cuda", 1)


def test_an_interrupted_run_resumes_with_the_items_left(tmp_path):
    first = Counting(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        evaluate(first, tmp_path, log=lambda s: None)
    assert sorted(read_rows(tmp_path)) == ["n0", "n1"]  # kept as they finished
    again = Counting()
    report = evaluate(again, tmp_path, log=lambda s: None)
    assert again.ran == ["n2", "n3", "n4"]
    assert report.summary.read_text() == "total 10\n" and report.n_rows == 10


def test_an_item_cut_off_mid_write_runs_again(tmp_path):
    """A crash (out of memory, a killed worker) in the middle of writing an item's rows: the
    item is not taken as done, the next run starts on a new line, and the table is whole."""
    evaluate(Counting(), tmp_path, log=lambda s: None)
    own = tmp_path / "rows.rank0.csv"
    lines = own.read_text().splitlines(keepends=True)
    n3 = [i for i, line in enumerate(lines) if line.startswith("n3,")]
    own.write_text("".join(lines[:n3[0] + 1]) + "n3,-")  # n3's first row, half its second, no #done
    (tmp_path / "rows.csv").unlink()
    assert sorted(read_rows(tmp_path)) == ["n0", "n1", "n2"]
    again = Counting()
    report = evaluate(again, tmp_path, log=lambda s: None)
    assert again.ran == ["n3", "n4"]
    assert report.summary.read_text() == "total 10\n" and report.n_rows == 10
    assert sorted(read_rows(tmp_path)) == [f"n{i}" for i in range(5)]
    with open(report.rows, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["item"] for r in rows] == [f"n{i}" for i in range(5) for _ in range(2)]  # item order, both rows
    done = Counting()
    evaluate(done, tmp_path, log=lambda s: None)
    assert done.ran == []  # nothing left: only the tables are made again


def test_results_of_other_settings_are_refused_not_mixed(tmp_path):
    evaluate(Counting(), tmp_path, log=lambda s: None)
    with pytest.raises(SettingsMismatchError, match="factor"):
        evaluate(Counting(factor=2), tmp_path, log=lambda s: None)
    fresh = Counting(factor=2)
    report = evaluate(fresh, tmp_path, restart=True, log=lambda s: None)
    assert len(fresh.ran) == 5 and report.summary.read_text() == "total 20\n"


def _evaluate_as_shard(rank, store, folders, outcomes):
    """One of two gloo processes; each has its own folder, as machines without a shared disk do."""
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        evaluate(Counting(), Path(folders[rank]), shard=Shard(rank, 2), log=lambda s: None)
        outcomes[rank] = "ran"
    except SettingsMismatchError as e:
        outcomes[rank] = str(e)
    finally:
        dist.destroy_process_group()


def test_other_settings_on_any_machines_disk_stop_every_shard(tmp_path):
    """The second machine's folder holds results of other settings, the first machine's none:
    both shards refuse, and neither writes a row."""
    import torch.multiprocessing as mp
    folders = [tmp_path / "machine0", tmp_path / "machine1"]
    evaluate(Counting(factor=2), folders[1], log=lambda s: None)
    rows_before = (folders[1] / "rows.csv").read_text()
    outcomes = mp.Manager().dict()
    mp.spawn(_evaluate_as_shard, args=(tmp_path / "store", [str(f) for f in folders], outcomes), nprocs=2)
    assert all("machine1 holds results made with other settings (factor)" in outcomes[r] for r in (0, 1)), dict(outcomes)
    assert not list(folders[0].glob("rows*.csv")) and (folders[1] / "rows.csv").read_text() == rows_before


def _eval(out: Path, *args: str, processes: int = 1) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    launcher = [sys.executable, "-m", "semedit"] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", "-m", "semedit"]
    return subprocess.run(launcher + ["eval", "--out", str(out), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def _rows(folder: Path):
    with open(folder / "rows.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_encoder_iterations_are_recorded_only_when_set():
    """Folders written before the knob existed resume (it is absent at its default), and a run
    with another iteration count is refused rather than mixed."""
    from semedit.evaluation.tables import preset
    assert "encoder_iterations" not in preset("table1").settings("m")
    assert preset("table1", encoder_iterations=5).settings("m")["encoder_iterations"] == 5
    committed = Path(__file__).resolve().parents[1] / "bench" / "results" / "table1" / "config.json"
    recorded = json.loads(committed.read_text())
    assert set(recorded.pop("model_files")) >= {"embedded-portraits-64", "embedded-regressor-64"}
    assert recorded == preset("table1").settings("embedded-portraits-64")


@pytest.mark.slow
def test_two_processes_under_torchrun_give_the_one_process_table(tmp_path):
    args = ("--preset", "table1-small", "--methods", "w,w+,chunky,pti")
    one = _eval(tmp_path / "one", *args)
    assert one.returncode == 0, one.stderr[-2000:]
    two = _eval(tmp_path / "two", *args, processes=2)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "[1/2]" in two.stdout + two.stderr and "[2/2]" in two.stdout + two.stderr  # both shards worked
    assert sorted((tmp_path / "two").glob("rows.rank*.csv")) == [tmp_path / "two" / "rows.rank0.csv",
                                                                 tmp_path / "two" / "rows.rank1.csv"]
    a, b = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert len(a) == len(b) == 3 * 4 and [r["item"] for r in a] == [r["item"] for r in b]
    for x, y in zip(a, b):
        for k in ("LPIPS", "identity", "L2", "PSNR"):
            assert float(x[k]) == pytest.approx(float(y[k]), rel=1e-4, abs=1e-6), (x["item"], k)

    def table(folder):  # the summary's table without its seconds column
        lines = (folder / "summary.md").read_text().splitlines()
        return [line.rsplit("|", 2)[0] for line in lines if line.startswith("| in-domain") or
                line.startswith("| out-of-domain")]
    assert table(tmp_path / "one") == table(tmp_path / "two") and len(table(tmp_path / "one")) == 8
    assert (tmp_path / "one" / "plot.png").stat().st_size > 1000


@pytest.mark.slow
def test_table2_and_hair_presets_from_the_command_line(tmp_path):
    t2 = _eval(tmp_path / "t2", "--preset", "table2-small", "--methods", "W+,ChunkyGAN W+ lambda=1")
    assert t2.returncode == 0, t2.stderr[-2000:]
    summary = (tmp_path / "t2" / "summary.md").read_text()
    assert "## Table 2" in summary and "| ChunkyGAN W+ lambda=1 |" in summary and "paper" in summary
    rows = _rows(tmp_path / "t2")
    assert {r["method"] for r in rows} == {"W+", "ChunkyGAN W+ lambda=1"}
    assert all(0 <= float(r["identity input vs edited"]) < 5 for r in rows)
    # the leakage of the hair edit is measured (on targets with hair): a global W+ edit changes pixels outside it
    leaks = [float(r["change outside"]) for r in rows
             if r["edit"] == "hair length" and r["method"] == "W+" and r["change outside"] != ""]
    assert leaks and all(x > 0 for x in leaks)
    hair = _eval(tmp_path / "hair", "--preset", "hair-small", "--gallery", "120", "--queries", "30", "--chunk", "40")
    assert hair.returncode == 0, hair.stderr[-2000:]
    summary = (tmp_path / "hair" / "summary.md").read_text()
    assert "| FG'21 network |" in summary and "98.3 %" in summary
    rows = _rows(tmp_path / "hair")
    assert sum(r["role"] == "gallery" for r in rows) == 120 and sum(r["role"] == "FG'21 network" for r in rows) == 30
    # the protocol with a perfect generator, against its own rendered gallery: the identity model's bound
    assert sum(r["role"] == "rendered gallery" for r in rows) == 120
    # every image is also read by the held-out identity reader, which ranks every row again
    assert all(len(r["judge embedding"].split()) == len(r["embedding"].split()) for r in rows)
    assert "top-1, held-out reader" in summary and "embedded-regressor-64-judge" in summary
    rendered = next(line for line in summary.splitlines() if line.startswith("| renderer: the true image"))
    assert float(rendered.split("|")[2].strip(" %")) > 80
    again = _eval(tmp_path / "hair", "--preset", "hair-small", "--gallery", "120", "--queries", "31", "--chunk", "40")
    assert again.returncode != 0 and "other settings" in again.stderr  # never mixed with the first run's rows
    # a generator not paired with the renderer: no exact ceiling; its e4e's reconstruction instead
    map8 = _eval(tmp_path / "hair-map8", "--preset", "hair-small", "--model", "embedded-portraits-64-gan-map8",
                 "--gallery", "60", "--queries", "20", "--chunk", "30")
    assert map8.returncode == 0, map8.stderr[-2000:]
    summary = (tmp_path / "hair-map8" / "summary.md").read_text()
    assert "| reference: the generator's encoder on the face image (no hair changed) |" in summary
    assert "ceiling" not in summary and "not paired with the renderer" in summary
