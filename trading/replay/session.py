"""replay(): history through the same Strategy, Runner, mailbox, machine, engine and paper broker.

Nothing here is a second strategy loop. A replay is a :class:`~trading.runtime.runner.Runner`
built with three replay edges — :class:`~trading.replay.market.BarsMarket` (bars and prices),
:class:`~trading.replay.broker.ReplayBroker` (the paper broker fed by the bars) and
:class:`~trading.replay.clock.ReplayClock` (time that moves to the next close) — and a driver
task that moves time when every task is blocked. The rules this module keeps:

* The series is one symbol at one interval; the strategy runs on it (its class's ``interval``
  and ``symbols`` are overridden to the data's, never resampled). The first ``warmup`` bars are
  history only: the first compute is at the close of bar ``warmup`` (with ``warmup + 1`` bars
  of history), the last at the close of the last bar.
* Scheduled commands ``(when, text)`` — ``when`` an epoch time, or an ``int`` bar index meaning
  that bar's close — enter through ``Runner.send_soon``, the mailbox and the command machine,
  exactly as an operator's would, when the replay's time reaches them and *before* the compute
  of a close at that same time. So ``pause`` at bar ``i`` and ``resume`` at bar ``j`` leave bars
  ``i..j`` uncomputed (a resume goes back to the schedule: the next compute is bar ``j + 1``).
  A command after the last close is not delivered and is reported as such; one at or before
  the replay's start (the first compute, on start) is refused: it would race that compute.
* Deterministic: the same strategy, bars, parameters and commands give the same orders (client
  order ids included: the run id is ``replay``), bar for bar, run after run.
* A strategy failure is not restarted in a replay: it ends the replay, and the result says
  which error, where (``error``).
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

import trio
import trio.testing

from trading.core.bars import Bar, Interval
from trading.core.commands import CommandResult
from trading.core.events import Event, OrderEvent, PositionSnapshot, StrategyFailed
from trading.core.orders import Order
from trading.core.restart import RestartPolicy
from trading.exchanges.base import SymbolInfo
from trading.replay import setup
from trading.replay.broker import ReplayBroker
from trading.replay.clock import ReplayClock
from trading.replay.market import BarsMarket
from trading.replay.progress import Progress, default_progress, guarded
from trading.replay.result import ReplayResult
from trading.replay.setup import Commands, quote_of
from trading.runtime.runner import Runner
from trading.runtime.strategy import Strategy, inspect_strategy

__all__ = ["HasBars", "quote_of", "replay", "replay_async"]

_PER_ORDER = (OrderEvent, PositionSnapshot)


class HasBars(Protocol):
    """A loaded series (``trading.data.load_bars``'s BarSeries): anything with ``.bars``."""

    @property
    def bars(self) -> Sequence[Bar]: ...


def replay(
    strategy: Strategy | type[Strategy],
    bars: Sequence[Bar] | HasBars,
    *,
    params: Mapping[str, Any] | None = None,
    interval: Interval | str | None = None,
    commands: Commands = (),
    balances: Mapping[str, Decimal] | None = None,
    fee_rate: Decimal | str | float = Decimal("0.001"),
    slippage: Decimal | str | float = Decimal("0.0005"),
    warmup: int | None = None,
    symbols: Mapping[str, SymbolInfo] | None = None,
    progress: Progress | bool | None = None,
    checkpoint_every: int = 1000,
    name: str | None = None,
    keep_events: bool = False,
) -> ReplayResult:
    """Replay ``bars`` through ``strategy`` and return what happened (runs trio itself).

    ``strategy`` is a Strategy class or instance; ``params`` its parameters (typed values, or
    text as ``set`` takes it). ``commands``: ``[(bar_index_or_time, "pause sma_cross"), ...]``.
    ``balances`` default to 10,000 of the quote asset; ``name`` is the strategy's name in
    commands and events (default: its class's). ``progress``: a callable
    ``(bars_done, bars_total)``, ``False`` for none, ``None`` for a bar on standard error when
    it is a terminal (in a Jupyter kernel: a line in the cell's output), ``True`` for one
    even on a short replay. The result keeps every event but the per-order ones (its orders
    and fills say the same) unless ``keep_events``: holding four events per order would make
    a replay's cost grow faster than its trades (the collector rescans them).

    Raises ValueError for unusable input (naming it); an error in the strategy's ``next()``
    ends the replay and is in the result's ``error`` (one in its first ``on_start``
    propagates, as from ``Runner.add``). From a running trio or asyncio loop, use
    :func:`replay_async`.
    """
    return trio.run(
        lambda: replay_async(
            strategy,
            bars,
            params=params,
            interval=interval,
            commands=commands,
            balances=balances,
            fee_rate=fee_rate,
            slippage=slippage,
            warmup=warmup,
            symbols=symbols,
            progress=progress,
            checkpoint_every=checkpoint_every,
            name=name,
            keep_events=keep_events,
        )
    )


async def replay_async(
    strategy: Strategy | type[Strategy],
    bars: Sequence[Bar] | HasBars,
    *,
    params: Mapping[str, Any] | None = None,
    interval: Interval | str | None = None,
    commands: Commands = (),
    balances: Mapping[str, Decimal] | None = None,
    fee_rate: Decimal | str | float = Decimal("0.001"),
    slippage: Decimal | str | float = Decimal("0.0005"),
    warmup: int | None = None,
    symbols: Mapping[str, SymbolInfo] | None = None,
    progress: Progress | bool | None = None,
    checkpoint_every: int = 1000,
    name: str | None = None,
    keep_events: bool = False,
) -> ReplayResult:
    """:func:`replay` inside a running trio run (a notebook's guest run, a test).

    Cancelling it ends the replay's Runner through its ordinary wind-down (on_stop, open orders
    cancelled) and propagates the cancellation; nothing is left running.
    """
    series: Sequence[Bar] = bars if isinstance(bars, Sequence) else bars.bars
    market = BarsMarket(series)
    if interval is not None and Interval.parse(interval) != market.interval:
        raise ValueError(
            f"interval {Interval.parse(interval)} does not match the data's "
            f"{market.interval} bars (a replay does not resample)"
        )
    instance = setup.instance(strategy, params, market)
    name = name or inspect_strategy(type(instance)).name
    count = len(series)
    first = setup.first_bar(warmup, count)
    schedule = setup.schedule(commands, market)
    step = market.interval.seconds
    start = market.closes[first] if type(instance).compute_on_start else market.closes[first] - step
    early = [(t, text) for t, text in schedule if t <= start]
    if early:
        raise ValueError(
            f"command {early[0][1]!r} is due at or before the replay's start (the close of bar "
            f"{first}, its first compute), where it would race that compute: schedule it at "
            f"bar {first + 1} or later"
        )
    clock = ReplayClock(
        start,
        end=market.closes[-1],
        barriers=sorted({t for t, _ in schedule}),
        checkpoint_every=checkpoint_every,
    )
    info = dict(symbols) if symbols is not None else {}
    info.setdefault(market.symbol, setup.symbol_info(market))
    quote = info[market.symbol].quote
    opening = dict(balances) if balances is not None else {quote: Decimal(10_000)}
    broker = ReplayBroker(
        market,
        clock,
        balances=opening,
        fee_rate=setup.rate(fee_rate, "fee_rate"),
        slippage=setup.rate(slippage, "slippage"),
        symbols=info,
    )
    tape = _Tape(market, broker, first, _progress(progress, count - first))
    clock.on_advance = tape.advance
    tape.advance(start)
    events = _Events(keep_all=keep_events)
    orders: list[Order] = []
    replies: list[tuple[float, str, list[CommandResult]]] = []
    undelivered: list[tuple[float, str]] = []
    async with Runner(
        clock=clock,
        market=market,
        exchange=broker,
        publish=events,
        restart_policy=RestartPolicy(max_restarts=0),
        run_id="replay",
        recover=False,
    ) as runner:
        assert runner.engine is not None
        runner.engine.on_sent = orders.append
        sr = await runner.add(instance, name=name)
        undelivered = await _drive(
            runner, clock, lambda: sr.finished.is_set() or sr.given_up, schedule, replies
        )
    # After the wind-down: a strategy that flattens on stop ends flat.
    positions = dict(sr.account.book.positions) if sr.account is not None else {}
    computes = sr.computes
    tape.finish()
    failures = [e for e in events.kept if isinstance(e, StrategyFailed)]
    return ReplayResult(
        strategy=name,
        symbol=market.symbol,
        interval=market.interval,
        bars=series,
        first=first,
        computes=computes,
        orders=tuple(orders),
        fills=tuple(broker.fills),
        opening=opening,
        holdings=tuple(broker.holdings),
        balances=broker.balances_total(),
        positions=positions,
        replies=tuple(replies),
        undelivered=tuple(undelivered),
        events=tuple(events.kept),
        event_counts=dict(events.counts),
        error=f"{failures[-1].phase}: {failures[-1].error}" if failures else None,
        quote=quote,
        base=info[market.symbol].base,
    )


async def _drive(
    runner: Runner,
    clock: ReplayClock,
    finished: Callable[[], bool],
    schedule: list[tuple[float, str]],
    replies: list[tuple[float, str, list[CommandResult]]],
) -> list[tuple[float, str]]:
    """Move time whenever every other task is blocked: deliver the commands due, or wake the
    earliest sleeper; return once the strategy ended or nothing is due by the last close.
    Returns the commands that were not delivered (due after the last close)."""
    pending = list(schedule)
    while True:
        await trio.testing.wait_all_tasks_blocked()
        if finished():
            break
        due = clock.next_event()
        if due > clock.end:
            break
        if due >= clock.next_barrier:
            when = clock.next_barrier
            clock.advance_without_waking(when)
            while pending and pending[0][0] == when:
                text = pending.pop(0)[1]
                runner.send_soon(text, source="replay", on_reply=_keep(replies, when, text))
            clock.passed_barrier()
        else:
            clock.advance(due)
    return pending


def _keep(
    replies: list[tuple[float, str, list[CommandResult]]], when: float, text: str
) -> Callable[[list[CommandResult]], None]:
    def got(results: list[CommandResult]) -> None:
        replies.append((when, text, results))

    return got


class _Events:
    """The Runner's publish tap: counts every event by kind, keeps the ones a result needs."""

    __slots__ = ("counts", "keep_all", "kept")

    def __init__(self, *, keep_all: bool) -> None:
        self.keep_all = keep_all
        self.kept: list[Event] = []
        self.counts: collections.Counter[str] = collections.Counter()

    def __call__(self, event: Event) -> None:
        self.counts[type(event).__name__] += 1
        if self.keep_all or not isinstance(event, _PER_ORDER):
            self.kept.append(event)


class _Tape:
    """What moving the clock does: feed every bar closed by then to the broker (fills of
    resting orders), and tell the progress hook now and then."""

    __slots__ = ("_bars", "_broker", "_closes", "_every", "_first", "_next", "_progress", "_tick")

    def __init__(
        self, market: BarsMarket, broker: ReplayBroker, first: int, progress: Progress | None
    ) -> None:
        self._bars = market.bars
        self._closes = market.closes
        self._broker = broker
        self._first = first
        self._next = 0  # the first bar not yet fed
        self._progress = progress
        total = len(self._bars) - first
        self._every = max(1, total // 100)
        self._tick = first + self._every

    def advance(self, now: float) -> None:
        closes, index = self._closes, self._next
        if index < len(closes) and closes[index] <= now:
            on_bar = self._broker.on_bar
            while index < len(closes) and closes[index] <= now:
                if index >= self._first:
                    on_bar(self._bars[index])  # earlier bars predate every order
                index += 1
            self._next = index
            if self._progress is not None and index >= self._tick:
                self._tick = index + self._every
                self._progress(index - self._first, len(closes) - self._first)

    def finish(self) -> None:
        if self._progress is not None:
            done = max(0, self._next - self._first)
            self._progress(done, len(self._closes) - self._first)


def _progress(progress: Progress | bool | None, total: int) -> Progress | None:
    if progress is False:
        return None
    if progress is None or progress is True:
        return default_progress(sys.stderr, total, force=progress is True)
    return guarded(progress)
