"""``trading.sweep``: one replay per combination of parameters, on this machine or a cluster.

The rules it keeps:

* Every combination is a full replay through the same code as ``trio-trade backtest`` (the
  strategy class, Runner, engine, paper broker; :mod:`trading.replay`), so a sweep's row equals
  the replay of that combination run on its own.
* Where: ``executor="processes"`` (the default: one worker process per core), ``"inline"``
  (here, one after the other), or a Dask ``distributed`` cluster — ``scheduler="tcp://host:8786"``
  or ``client=`` an existing ``distributed.Client`` (a ``LocalCluster``'s included).
* Parameter names the strategy does not have are refused before anything runs
  (:class:`~trading.sweep.grid.GridError`); a combination its own checks refuse, or whose replay
  fails, is a row with its error while the others complete.
* The bars are loaded once, here, and shipped once per worker.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from trading.core.bars import Bar
from trading.runtime.strategy import Strategy
from trading.sweep.executors import run_dask, run_inline, run_processes
from trading.sweep.grid import GridError, combinations, parse_params
from trading.sweep.job import COLUMNS, Row, SweepJob

__all__ = ["SweepResult", "sweep"]

Progress = Callable[[int, int], None]


@attrs.frozen
class SweepResult:
    """One row per combination, in grid order (the first parameter varying slowest)."""

    params: tuple[str, ...]
    rows: tuple[Row, ...]
    executor: str

    @property
    def failed(self) -> list[Row]:
        return [row for row in self.rows if row.error is not None]

    def records(self) -> list[dict[str, Any]]:
        """Plain dicts: the parameters (as given), the statistics, the error, CPU seconds."""
        out = []
        for row in self.rows:
            record: dict[str, Any] = dict(row.params)
            stats = row.stats or {}
            record.update({name: stats.get(name) for name in COLUMNS})
            record["error"] = row.error
            record["cpu_seconds"] = round(row.cpu_seconds, 3)
            out.append(record)
        return out

    def frame(self) -> Any:
        """The table as a pandas DataFrame (needs the ``notebook`` extra)."""
        try:
            pandas = importlib.import_module("pandas")  # by name: no stubs needed
        except ImportError:
            raise ImportError(
                "DataFrames need pandas: pip install 'trio-trade[notebook]'"
            ) from None
        return pandas.DataFrame.from_records(self.records())

    def best(self, metric: str = "sharpe") -> Row | None:
        """The row with the highest ``metric`` among those that have one."""
        scored = [r for r in self.rows if r.stats and r.stats.get(metric) is not None]
        return max(scored, key=lambda r: r.stats[metric]) if scored else None  # type: ignore[index]

    def text(self, metric: str | None = None) -> str:
        """A fixed-width table (sorted by ``metric``, best first, when given)."""
        records = self.records()
        if metric is not None:
            records.sort(key=lambda r: (r.get(metric) is None, -(r.get(metric) or 0.0)))
        columns = [*self.params, *COLUMNS, "error"]
        cells = [[_cell(record.get(c)) for c in columns] for record in records]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
        for row in cells:
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        return "\n".join(lines)

    def heatmap(self, x: str, y: str, metric: str = "sharpe") -> Any:
        """A matplotlib Figure of ``metric`` over two parameters (needs the notebook extra).
        Made without pyplot, so it works in scripts, tests and notebooks alike."""
        from trading.sweep.heatmap import heatmap

        return heatmap(self.records(), x, y, metric)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def sweep(
    strategy: str | type[Strategy],
    data: str | Path | Sequence[Bar] | Any,
    params: Mapping[str, Iterable[Any]] | Iterable[str],
    *,
    strategies_dir: str | Path = "strategies",
    executor: str = "processes",
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    progress: Progress | bool | None = None,
    **replay_options: Any,
) -> SweepResult:
    """Replay every combination of ``params`` (``{"fast": [5, 8], "slow": [20, 30]}`` or
    ``["fast=5,8", "slow=20,30"]``) over ``data`` (a file ``trading.data.load_bars`` reads, a
    loaded series, or a list of bars). ``replay_options`` go to :func:`trading.replay`
    (``balances``, ``fee_rate``, ``slippage``, ``commands``...). ``progress``: a callable
    ``(done, total)``, False for none, None for a line on standard error when it is a terminal.
    """
    grid = _grid(params)
    cls = _strategy_class(strategy, Path(strategies_dir))
    known = [a.name for a in attrs.fields(cls) if a.init] if attrs.has(cls) else []
    combos = combinations(grid, known=known)
    bars = _bars(data)
    job = SweepJob(
        strategy if isinstance(strategy, str) else cls,
        str(strategies_dir),
        replay_options.pop("interval", None),
        dict(replay_options),
    )
    on_done = _progress(progress)
    if client is not None or scheduler is not None:
        rows = run_dask(job, combos, bars, on_done, scheduler=scheduler, client=client)
        used = "dask"
    elif executor == "inline":
        rows, used = run_inline(job, combos, bars, on_done), "inline"
    elif executor == "processes":
        rows = run_processes(job, combos, bars, on_done, workers=workers)
        used = "processes"
    else:
        raise ValueError(f"executor {executor!r}: expected 'processes' or 'inline'")
    return SweepResult(tuple(grid), tuple(rows), used)


def _grid(params: Mapping[str, Iterable[Any]] | Iterable[str]) -> dict[str, tuple[str, ...]]:
    if isinstance(params, Mapping):
        grid = {}
        for name, values in params.items():
            texts = tuple(dict.fromkeys(str(v) for v in values))
            if not texts:
                raise GridError(f"{name}: no values")
            grid[str(name)] = texts
        return grid
    return parse_params(params)


def _strategy_class(strategy: str | type[Strategy], directory: Path) -> type[Strategy]:
    if isinstance(strategy, type):
        return strategy
    from trading.loader import load

    return load(strategy, directory).cls


def _bars(data: Any) -> Sequence[Bar]:
    if isinstance(data, (str, Path)):
        from trading.data import load_bars

        return list(load_bars(data).bars)
    if hasattr(data, "bars"):
        return list(data.bars)
    return data if isinstance(data, Sequence) else list(data)


def _progress(progress: Progress | bool | None) -> Callable[[int, int], None]:
    if callable(progress):
        return progress
    if progress is False or (progress is None and not sys.stderr.isatty()):
        return lambda done, total: None

    def show(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\rsweep: {done}/{total} combinations", end=end, file=sys.stderr, flush=True)

    return show
