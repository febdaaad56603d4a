"""Sweeps: the same rows wherever they run, data shipped once per worker, failures as rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trading.core.bars import Bar
from trading.data import load_bars, sample_path
from trading.replay import replay
from trading.sweep.grid import GridError
from trading.sweep.job import statistics_of
from trading.sweep.sweep import sweep

ROOT = Path(__file__).resolve().parents[2]
BARS = list(load_bars(sample_path()).bars[:900])

PICKY = """
import attrs
import trading


@attrs.define
class Picky(trading.Strategy):
    \"\"\"Buys on every third bar, sells on the next; n=3 breaks on its first compute.\"\"\"

    interval = "1m"
    symbols = ("BTCUSDT",)
    n: int = 1
    every: int = 3

    async def next(self, ctx: trading.Context) -> None:
        if self.n == 3:
            raise RuntimeError("n=3 breaks")
        held = ctx.position().quantity
        if ctx.computes % self.every == 0 and held <= 0:
            await ctx.buy("0.001")
        elif held > 0:
            await ctx.sell(held)
"""


class CountingBars(list[Bar]):
    """Bars that note, in a file, every time they are unpickled (and in which process)."""

    def __init__(self, bars: list[Bar], log: str) -> None:
        super().__init__(bars)
        self.log = log

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpickled, (list(self), self.log))


def _unpickled(bars: list[Bar], log: str) -> CountingBars:
    with open(log, "a") as handle:
        handle.write(f"{os.getpid()}\n")
    return CountingBars(bars, log)


@pytest.fixture(scope="module")
def picky(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the module: the loader keeps one module per strategy name."""
    folder = tmp_path_factory.mktemp("sweep") / "strategies"
    folder.mkdir()
    (folder / "picky.py").write_text(PICKY)
    return folder


GRID = {"n": [1, 2, 3], "every": [2, 3]}


def rows_of(result: Any) -> list[tuple[Any, ...]]:
    return [(tuple(r.params.items()), r.stats, r.error) for r in result.rows]


def test_each_row_equals_the_replay_run_on_its_own(picky: Path) -> None:
    result = sweep("picky", BARS, GRID, strategies_dir=picky, executor="inline", progress=False)
    assert [dict(r.params) for r in result.rows] == [
        {"n": n, "every": e} for n in ("1", "2", "3") for e in ("2", "3")
    ]
    from trading.loader import load

    cls = load("picky", picky).cls
    for row in result.rows:
        alone = replay(cls, BARS, params=dict(row.params), progress=False)
        assert row.stats == (statistics_of(alone) if alone.error is None else None)
        assert row.error == alone.error
    assert [dict(r.params)["n"] for r in result.failed] == ["3", "3"]
    assert all("n=3 breaks" in str(r.error) for r in result.failed)
    assert all(r.stats and r.stats["trades"] > 0 for r in result.rows if r.ok)


def test_local_processes_give_the_same_table_and_get_the_bars_once_each(
    picky: Path, tmp_path: Path
) -> None:
    log = tmp_path / "unpickled"
    inline = sweep("picky", BARS, GRID, strategies_dir=picky, executor="inline", progress=False)
    done: list[tuple[int, int]] = []
    result = sweep(
        "picky",
        CountingBars(BARS, str(log)),
        GRID,
        strategies_dir=picky,
        workers=2,
        progress=lambda d, t: done.append((d, t)),
    )
    assert result.executor == "processes"
    assert rows_of(result) == rows_of(inline)
    assert done[-1] == (6, 6) and len(done) == 6
    pids = log.read_text().split()
    assert len(pids) == len(set(pids)) <= 2  # once per worker, not once per combination


def test_a_dask_local_cluster_gives_the_same_table(picky: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    log = tmp_path / "unpickled"
    inline = sweep("picky", BARS, GRID, strategies_dir=picky, executor="inline", progress=False)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        result = sweep(
            "picky",
            CountingBars(BARS, str(log)),
            GRID,
            strategies_dir=picky,
            client=client,
            progress=False,
        )
        again = sweep("picky", BARS, {"n": [1], "every": [2]}, strategies_dir=picky, client=client)
    assert result.executor == "dask"
    assert rows_of(result) == rows_of(inline)
    assert len(result.failed) == 2 and all("n=3 breaks" in str(r.error) for r in result.failed)
    pids = log.read_text().split()
    assert len(pids) <= 2  # scattered to each worker once, not shipped with every task
    assert rows_of(again) == rows_of(inline)[:1]  # a second sweep on the client: fresh keys


def test_unknown_parameters_are_refused_before_anything_runs(picky: Path) -> None:
    with pytest.raises(GridError, match=r"unknown parameter\(s\) fast; the strategy has every, n"):
        sweep("picky", BARS, ["fast=1,2"], strategies_dir=picky, executor="inline")
    with pytest.raises(GridError, match="no values"):
        sweep("picky", BARS, {"n": []}, strategies_dir=picky, executor="inline")


def test_the_heatmap_has_a_cell_per_combination_and_says_n_a_for_failures(picky: Path) -> None:
    result = sweep("picky", BARS, GRID, strategies_dir=picky, executor="inline", progress=False)
    figure = result.heatmap("every", "n", "total_return")
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert len(texts) == 6 and texts.count("n/a") == 2
    frame = result.frame()
    assert list(frame.columns[:2]) == ["n", "every"] and len(frame) == 6


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trading", "sweep", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_the_cli_prints_the_table_writes_csv_and_heatmap(picky: Path, tmp_path: Path) -> None:
    data = tmp_path / "BTCUSDT-1m-part.csv"
    data.write_text("".join(sample_path().read_text().splitlines(keepends=True)[:600]))
    out = cli(
        "picky", "--data", str(data), "--param", "n=1,3", "--param", "every=2,3",
        "--strategies-dir", str(picky), "--inline", "--sort", "total_return",
        "--csv", str(tmp_path / "t.csv"), "--heatmap", str(tmp_path / "h.png"),
    )  # fmt: skip
    assert out.returncode == 1, out  # two combinations failed, the others ran
    lines = out.stdout.splitlines()
    assert lines[0] == "picky: 4 combinations on inline"
    assert lines[1].split()[:3] == ["n", "every", "total_return"]
    assert "failed: {'n': '3', 'every': '2'}: next: RuntimeError: n=3 breaks" in out.stderr
    assert len((tmp_path / "t.csv").read_text().splitlines()) == 5
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--param", "n"], "expected NAME=V1"),
        (["--param", "bogus=1"], "unknown parameter(s) bogus"),
        (["--param", "n=1", "--heatmap", "x.png"], "--heatmap needs exactly two"),
        (["--param", "n=1", "--sort", "luck"], "--sort 'luck'"),
    ],
)
def test_cli_usage_errors_are_exit_2_naming_the_problem(
    picky: Path, args: list[str], says: str
) -> None:
    out = cli("picky", "--data", str(sample_path()), "--strategies-dir", str(picky), *args)
    assert out.returncode == 2 and says in out.stderr, out


def test_the_scheduler_can_come_from_the_config(picky: Path, tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    data = tmp_path / "BTCUSDT-1m-part.csv"
    data.write_text("".join(sample_path().read_text().splitlines(keepends=True)[:400]))
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        config = tmp_path / "trio-trade.toml"
        config.write_text(f'[sweep]\nscheduler = "{cluster.scheduler_address}"\n')
        args = ["picky", "--data", str(data), "--param", "n=1,2", "--strategies-dir", str(picky)]
        out = cli(*args, "--config", str(config))
        assert out.returncode == 0, out
        assert out.stdout.splitlines()[0] == "picky: 2 combinations on dask"
        local = cli(*args, "--config", str(config), "--inline")  # a flag wins over the file
        assert local.stdout.splitlines()[0] == "picky: 2 combinations on inline"


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ('scheduler = "http://x:8786"', "sweep.scheduler"),
        ("workers = 0", "sweep.workers"),
        ("workres = 2", "did you mean 'workers'"),
    ],
)
def test_a_bad_sweep_section_is_exit_2_naming_the_key(
    picky: Path, tmp_path: Path, section: str, says: str
) -> None:
    config = tmp_path / "trio-trade.toml"
    config.write_text(f"[sweep]\n{section}\n")
    out = cli("picky", "--data", str(sample_path()), "--param", "n=1", "--config", str(config))
    assert out.returncode == 2 and says in out.stderr, out
