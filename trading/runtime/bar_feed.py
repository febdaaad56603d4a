"""Live bars drive the schedule: a strategy computes when its closed bar arrives, not when the
local clock guesses the close.

On a live exchange the closed kline (Binance's ``k.x == true``) is the fact a strategy waits for;
the local clock may run ahead of or behind the exchange's, and the stream may be late, reconnecting
or silent. The rules this module keeps (DESIGN.md rule 3, "bars follow the strategy's clock": here
the feed *is* that clock):

* Each watched ``(symbol, interval)`` series is kept contiguous: ``through`` is the close up to
  which every bar is known. A closed bar that arrives after a gap is kept, and the gap is fetched
  (REST) before ``through`` moves past it, so a strategy sees every bar once and in order, across
  reconnects. A bar that arrives twice (a resend, a reconnect replay, REST and stream both) is
  kept once.
* :meth:`BarFeed.wait_through` returns when the series is contiguous through the close. If the
  stream is silent past the close plus ``grace`` (on the base clock), the bar is fetched; a fetch
  that fails or comes back without it is retried with backoff in real time, never in a busy loop.
* After a reconnect every series is fetched up to now (:meth:`BarFeed.on_reconnect`): bars closed
  while the connection was down are filled, not skipped.
* Every price update, closed or not, refreshes the symbol's mark: PnL and risk read a cached
  price, not a REST call per order.
* :class:`FeedClock` is the strategy clock of a live runner: sleeping until a close waits for
  the bars of every watched series that closes then; ``now()`` never runs behind a close already
  delivered, so ``ctx.history`` includes the bar just computed for.
* The feed's own task (:meth:`BarFeed.run`) does all the fetching, so a waiting strategy can be
  cancelled (a ``pause``) at any time without cancelling a fetch another strategy waits on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from decimal import Decimal

import trio

from trading.core.bars import Bar, Interval
from trading.runtime.clock import Clock

__all__ = ["BarFeed", "FeedClock", "Fetch", "trio_deadline"]

log = logging.getLogger(__name__)

#: ``fetch(symbol, interval, start, end)``: the closed bars with ``open_time >= start`` and
#: ``close_time <= end``, oldest first (fewer, or none, if the exchange has not got them yet);
#: ``end`` may be ``math.inf``: every bar closed so far.
Fetch = Callable[[str, Interval, float, float], Awaitable[Sequence[Bar]]]


def trio_deadline(clock: Clock, when: float) -> float:
    """The trio clock reading at which ``clock`` shows epoch time ``when``."""
    convert = getattr(clock, "trio_deadline", None)
    if convert is not None:
        return float(convert(when))
    return trio.current_time() + (when - clock.now())


class _Series:
    __slots__ = ("bars", "changed", "interval", "symbol", "through", "wanted")

    def __init__(self, symbol: str, interval: Interval, through: float) -> None:
        self.symbol = symbol
        self.interval = interval
        self.bars: dict[float, Bar] = {}  # open time -> closed bar
        self.through = through  # every bar closing at or before this is known (or predates us)
        self.wanted = -math.inf  # fetch up to this close
        self.changed = trio.Event()

    def add(self, bar: Bar) -> bool:
        """Keep ``bar`` once; True if it was new."""
        if bar.open_time in self.bars:
            return False
        self.bars[bar.open_time] = bar
        step = self.interval.seconds
        while self.through in self.bars:  # the bar opening at `through` closes the next step
            self.through += step
        return True

    def trim(self, keep: int) -> None:
        # In batches (a quarter of ``keep`` over it), so a full series does not sort its bars
        # on every new one: amortised, a bar costs O(log n), not O(n log n).
        if len(self.bars) > keep + max(1, keep // 4):
            for open_time in sorted(self.bars)[: len(self.bars) - keep]:
                del self.bars[open_time]

    def notify(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


class BarFeed:
    """Closed bars of a live market, per watched series: in order, each once, gaps fetched.

    Feed it from a stream with :meth:`on_bar` and :meth:`on_reconnect`; start :meth:`run` in the
    market's nursery (it does the fetching). ``fetch`` is the REST fallback (see :data:`Fetch`).
    """

    def __init__(
        self,
        clock: Clock,
        fetch: Fetch,
        *,
        grace: float = 5.0,
        keep: int = 2000,  # closed bars kept per series (up to a quarter more between trims)
        subscribe: Callable[[str, Interval], None] | None = None,
        retry: float = 1.0,
        max_retry: float = 30.0,
    ) -> None:
        self.clock = clock
        self.grace = grace
        self.keep = keep
        self._fetch = fetch
        self._subscribe = subscribe
        self._retry = retry
        self._max_retry = max_retry
        self._series: dict[tuple[str, Interval], _Series] = {}
        # The latest price per symbol as it came (a float from the stream, or a Decimal from
        # elsewhere): made a Decimal when read (per order), not per message.
        self._marks: dict[str, float | Decimal] = {}
        self._work = trio.Event()
        self.duplicates = 0  # bars received more than once (kept once)
        self.fetched = 0  # bars that came from the fallback, not the stream

    # -- what the stream calls (never raises, never blocks) -------------------------------------

    def on_bar(self, bar: Bar, closed: bool) -> None:
        """A kline from the stream: refresh the mark; keep a closed bar of a watched series."""
        if not (math.isfinite(bar.close) and bar.close > 0):
            log.warning("%s: unusable close price %r dropped", bar.symbol, bar.close)
            return
        self._marks[bar.symbol] = bar.close
        if not closed:
            return
        series = self._series.get((bar.symbol, bar.interval))
        if series is None:
            return
        self._keep(series, bar)
        if bar.open_time > series.through:  # a gap before it: fetch the missing bars
            self._want(series, bar.open_time)

    def on_reconnect(self) -> None:
        """The stream was down: fetch whatever every series closed meanwhile. Not "up to now":
        the clock may not know how far the exchange moved while nothing came in."""
        for series in self._series.values():
            self._want(series, math.inf)

    # -- what the runtime calls --------------------------------------------------------------------

    def watch(self, symbol: str, interval: Interval) -> None:
        """Follow a series from the current bar on (bars before are history: see :meth:`bars`)."""
        key = (symbol, interval)
        if key not in self._series:
            self._series[key] = _Series(symbol, interval, interval.last_close(self.clock.now()))
            if self._subscribe is not None:
                self._subscribe(symbol, interval)

    def remember(self, bars: Iterable[Bar]) -> None:
        """Keep bars fetched for history, so the next ``ctx.history`` needs no fetch."""
        for bar in bars:
            series = self._series.get((bar.symbol, bar.interval))
            if series is not None:
                self._keep(series, bar)

    def watched(self) -> list[tuple[str, Interval]]:
        return list(self._series)

    def seed_mark(self, symbol: str, price: Decimal) -> None:
        """A price from elsewhere (REST) until the stream gives one; never overrides it."""
        self._marks.setdefault(symbol, price)

    def mark(self, symbol: str) -> Decimal | None:
        """The last price the stream gave for ``symbol`` (None before the first update)."""
        mark = self._marks.get(symbol)
        if mark is None or isinstance(mark, Decimal):
            return mark
        return Decimal(repr(mark))

    def through(self, symbol: str, interval: Interval) -> float:
        """The close up to which the series is known without gaps."""
        return self._series[(symbol, interval)].through

    def bars(self, symbol: str, interval: Interval, *, end: float, limit: int) -> list[Bar] | None:
        """The ``limit`` last closed bars with ``close_time <= end`` if the feed holds all of them
        without a gap, else None (the caller asks the exchange)."""
        series = self._series.get((symbol, interval))
        if series is None or limit <= 0:
            return None
        step = interval.seconds
        last_open = min(interval.last_close(end), series.through) - step
        wanted = [last_open - i * step for i in range(limit)]
        if not all(t in series.bars for t in wanted):
            return None
        return [series.bars[t] for t in reversed(wanted)]

    async def wait_through(self, symbol: str, interval: Interval, close: float) -> None:
        """Return once every bar of the series closing at or before ``close`` is known.

        Past ``close + grace`` on the clock the missing bars are fetched by :meth:`run`.
        Cancelling it is safe: it only waits; the fetch belongs to the feed.
        """
        series = self._series.get((symbol, interval))
        if series is None:
            raise LookupError(f"{symbol} {interval} is not watched")
        while series.through < close:
            with trio.move_on_at(trio_deadline(self.clock, close + self.grace)):
                await series.changed.wait()
                continue
            if series.wanted < close:
                log.warning(
                    "%s %s: the bar closing at %s did not arrive within %.1f s: fetching it",
                    symbol,
                    interval,
                    close,
                    self.grace,
                )
                self._want(series, close)
            await series.changed.wait()

    async def run(
        self, *, task_status: trio.TaskStatus[BarFeed] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Fetch what the series are missing, until cancelled."""
        task_status.started(self)
        delay = self._retry
        while True:
            pending = [s for s in self._series.values() if s.wanted > s.through]
            if not pending:
                await self._work.wait()
                self._work = trio.Event()
                delay = self._retry
                continue
            progress = False
            for series in pending:
                progress |= await self._fill(series)
            if not progress:
                await trio.sleep(delay)  # real time: the exchange lags, or is down
                delay = min(delay * 2, self._max_retry)
            else:
                delay = self._retry

    # -- internals ---------------------------------------------------------------------------------

    def _keep(self, series: _Series, bar: Bar) -> None:
        before = series.through
        if not series.add(bar):
            self.duplicates += 1
            return
        series.trim(self.keep)
        if series.through != before:
            series.notify()

    def _want(self, series: _Series, close: float) -> None:
        if close > series.wanted:
            series.wanted = close
            self._work.set()

    async def _fill(self, series: _Series) -> bool:
        """One fetch of the series' gap; True if it moved ``through``."""
        before = series.through
        try:
            bars: Iterable[Bar] = await self._fetch(
                series.symbol, series.interval, series.through, series.wanted
            )
        except Exception as exc:  # the fallback failing must not take the feed down
            log.warning(
                "%s %s: fetching bars failed (%s: %s); retrying",
                series.symbol,
                series.interval,
                type(exc).__name__,
                exc,
            )
            return False
        for bar in bars:
            if bar.symbol == series.symbol and bar.interval == series.interval:
                if bar.open_time not in series.bars:
                    self.fetched += 1
                self._keep(series, bar)
        if series.wanted == math.inf:
            series.wanted = series.through  # "whatever closed": this was all of it, for now
            return True
        return series.through != before


class FeedClock:
    """The strategy clock of a live runner: a close is reached when its bars have arrived.

    ``base`` is the local clock (the wall clock, or a virtual one in tests); it measures the
    grace, and it is what ``now()`` shows between closes.
    """

    def __init__(self, base: Clock, feed: BarFeed) -> None:
        self.base = base
        self.feed = feed
        self._reached = -math.inf

    def now(self) -> float:
        return max(self.base.now(), self._reached)

    def trio_deadline(self, when: float) -> float:
        return trio_deadline(self.base, when)

    def watch(self, symbol: str, interval: Interval) -> None:
        """A strategy on this series was added: its closes are now waited for."""
        self.feed.watch(symbol, interval)

    def _closing(self, when: float) -> list[tuple[str, Interval]]:
        return [
            (symbol, interval)
            for symbol, interval in self.feed.watched()
            if interval.last_close(when) == when
        ]

    def reached(self, when: float) -> bool:
        """Has the close ``when`` come: the bars of every series closing then arrived (the local
        clock's say-so is not enough), or, when none closes then, the local clock passed it."""
        closing = self._closing(when)
        if not closing:
            return when <= self.now()
        return all(self.feed.through(s, i) >= when for s, i in closing)

    async def sleep_until(self, when: float) -> None:
        """Wait until every watched series that closes at ``when`` is known through it; at a
        time no watched series closes, sleep on the base clock. Cancellable."""
        closing = self._closing(when)
        if not closing:
            await self.base.sleep_until(when)
        for symbol, interval in closing:
            await self.feed.wait_through(symbol, interval, when)
        self._reached = max(self._reached, when)
