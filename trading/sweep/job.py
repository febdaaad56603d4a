"""One combination of a sweep, run where it lands: only configuration crosses to a worker.

A :class:`SweepJob` is plain, picklable data — the strategy's *reference* (``sma_cross``,
``file:Class`` or ``module:Class``) and the folder it lives in, the replay's options — and
:func:`run_one` rebuilds everything inside the worker: it loads the strategy class, applies the
combination's parameters to a fresh instance exactly as ``set NAME k=v`` would, and replays the
bars through the same Runner, engine and paper broker as ``trio-trade backtest`` (DESIGN.md rule
9). The bars are the one large input; the executors ship them to each worker once, not once per
task, and hand them to every task there.

A combination that fails — parameters its type or its own checks refuse, a strategy that
raises — becomes a :class:`Row` carrying the error; it never stops the other combinations.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from trading.core.bars import Bar
from trading.runtime.strategy import Strategy

__all__ = ["COLUMNS", "Row", "SweepJob", "run_one", "statistics_of"]


@attrs.frozen
class SweepJob:
    """``strategy``: a reference the loader resolves in the worker, or a class importable there
    (a class pickles by its module and name; one defined in a notebook's ``__main__`` runs
    only inline)."""

    strategy: str | type[Strategy]
    strategies_dir: str = "strategies"
    interval: str | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict)  # replay() keyword arguments


@attrs.frozen
class Row:
    """One combination's outcome: its statistics, or the error that stopped it."""

    params: Mapping[str, str]
    stats: Mapping[str, Any] | None
    error: str | None = None
    cpu_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def run_one(job: SweepJob, params: Mapping[str, str], bars: Sequence[Bar]) -> Row:
    """Replay one combination; never raises for the combination's own failures."""
    from trading.loader import load  # in the worker: nothing but configuration came over
    from trading.replay import replay

    started = time.process_time()
    try:
        if isinstance(job.strategy, str):
            cls = load(job.strategy, Path(job.strategies_dir)).cls
        else:
            cls = job.strategy
        result = replay(
            cls, bars, params=dict(params), interval=job.interval, progress=False, **job.options
        )
    except Exception as exc:  # the combination's failure is its row, not the sweep's
        return Row(dict(params), None, _one_line(exc), time.process_time() - started)
    if result.error is not None:  # the strategy raised: its numbers are not a result
        return Row(dict(params), None, str(result.error), time.process_time() - started)
    return Row(dict(params), statistics_of(result), None, time.process_time() - started)


#: The columns a sweep's table shows for each combination, from trading.results' Summary.
COLUMNS = (
    "total_return",
    "max_drawdown",
    "sharpe",
    "sortino",
    "trades",
    "win_rate",
    "fees",
    "exposure",
    "net_pnl",
    "end_equity",
)


def statistics_of(result: Any) -> dict[str, Any]:
    """The replay's summary statistics as plain numbers (Decimals become floats: a table)."""
    from trading.results import summarise

    summary = summarise(
        result.equity,
        result.starting_equity,
        result.fills,
        interval=result.interval,
        quote=result.quote,
    )
    return {name: _plain(getattr(summary, name)) for name in COLUMNS}


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".rstrip(": ")
