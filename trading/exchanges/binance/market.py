"""Binance market data for strategies: closed bars from the kline stream, REST behind it.

The rules this module keeps:

* Bars come from the combined kline stream through a :class:`~trading.runtime.bar_feed.BarFeed`
  (each watched series contiguous, each bar once; gaps, reconnects and a silent stream are filled
  over REST). The market's :attr:`BinanceMarket.clock` is the strategy clock a live Runner uses,
  so the closed kline, not the local clock, starts a compute.
* ``history`` answers from the feed when it holds every bar asked for, else from REST (closed
  rows only: a row whose ``closeTime`` is not yet past on the exchange's clock is still open),
  and keeps what it fetched. The exchange's clock is read from the stream's event times (never
  ahead of the exchange, so an open row is never taken for a closed one), or the REST client's
  estimate before the first event.
* Marks come from the stream's updates (closed or not), cached; REST only before the first one.
* Cancelling any call is safe: everything here only reads.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from decimal import Decimal

import trio

from trading.core.bars import Bar, Interval
from trading.exchanges.base import SymbolInfo, UnknownSymbol
from trading.exchanges.binance.frames import KlineUpdate
from trading.exchanges.binance.rest import BinanceRest
from trading.exchanges.binance.stream import KlineStream
from trading.exchanges.links import Link
from trading.runtime.bar_feed import BarFeed, FeedClock
from trading.runtime.clock import Clock

__all__ = ["BinanceMarket", "ExchangeClock"]

log = logging.getLogger(__name__)

#: Binance serves at most this many klines per request.
MAX_KLINES = 1000
#: The stream kept open for marks on every symbol asked for (updates every 2 s).
_MARK_INTERVAL = Interval.parse("1m")


class ExchangeClock:
    """The exchange's time as best known: anchored on the latest server timestamp seen (REST
    ``/time``, stream event times), running at real speed in between, never backwards.

    The local wall clock can be seconds off, and an exchange simulator may run its market faster
    than real time; bar closes and the grace before a REST fallback are the exchange's times.
    """

    def __init__(self, server_ms: int) -> None:
        self._server = server_ms / 1000
        self._at = trio.current_time()

    def now(self) -> float:
        return self._server + (trio.current_time() - self._at)

    def observe(self, server_ms: int) -> None:
        """A server timestamp: move forward to it if it is ahead of the estimate."""
        seconds = server_ms / 1000
        if seconds > self.now():
            self._server, self._at = seconds, trio.current_time()

    def trio_deadline(self, when: float) -> float:
        return self._at + (when - self._server)

    async def sleep_until(self, when: float) -> None:
        await trio.sleep_until(max(self.trio_deadline(when), trio.current_time()))


class BinanceMarket:
    """MarketData over Binance's public streams and REST. Start :meth:`run` before use."""

    def __init__(
        self,
        rest: BinanceRest,
        stream: KlineStream,
        clock: Clock | None = None,
        *,
        symbols: Sequence[str] = (),
        grace: float = 5.0,
        connect_timeout: float = 30.0,
    ) -> None:
        self.rest = rest
        self.connect_timeout = connect_timeout
        self.stream = stream
        self._exchange_clock: ExchangeClock | None = None
        self._base: Clock = clock if clock is not None else _Deferred(self)
        self.feed = BarFeed(self._base, self._fetch, grace=grace, subscribe=stream.subscribe)
        self.clock = FeedClock(self._base, self.feed)
        self._wanted = tuple(symbols)
        self._symbols: tuple[str, ...] = ()
        self.info: dict[str, SymbolInfo] = {}
        self._server_ms = 0  # the latest event time the stream gave

    @property
    def symbols(self) -> Sequence[str]:
        return self._symbols

    def links(self) -> list[Link]:
        """The kline stream and the REST API, for health reports."""
        return [self.stream.link, self.rest.link]

    async def run(
        self, *, task_status: trio.TaskStatus[BinanceMarket] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Load the symbols, connect the stream, keep the feed whole; until cancelled.
        Signals readiness once the symbols are known and the stream is connected."""
        if not self.rest.synced:
            await self.rest.sync_time()
        self._exchange_clock = ExchangeClock(self.rest.server_now_ms())
        info = await self.rest.exchange_info(self._wanted or None)
        missing = [s for s in self._wanted if s not in info]
        if missing:
            raise UnknownSymbol(
                f"the exchange does not list {', '.join(missing)}; it lists e.g. "
                f"{', '.join(sorted(info)[:10])}"
            )
        self.info = info  # trading rules, for the exchange and the paper broker: read once
        self._symbols = tuple(sorted(info))
        async with trio.open_nursery() as nursery:
            await nursery.start(self.feed.run)
            for symbol in self._wanted:
                self.stream.subscribe(symbol, _MARK_INTERVAL)  # marks before any strategy watches
            try:
                with trio.fail_after(self.connect_timeout):
                    await nursery.start(self.stream.run, self._on_update, self.feed.on_reconnect)
            except trio.TooSlowError:
                raise ConnectionError(
                    f"no market stream connection within {self.connect_timeout:g} s "
                    f"({self.stream.url()}): check --ws-url"
                ) from None
            for symbol in self._wanted:  # a price for each before the first update
                rows = await self.rest.klines(symbol, _MARK_INTERVAL, limit=1)
                if rows:
                    bar = rows[-1][0]
                    self.feed.seed_mark(symbol, Decimal(repr(bar.close)))
                    # The open bar opened on the market's clock: a simulator running faster
                    # than real time is ahead of its serverTime, and series watched from now
                    # must start there, not back-fill what the wall clock missed.
                    if self._exchange_clock is not None:
                        self._exchange_clock.observe(round(bar.open_time * 1000))
            task_status.started(self)

    def _on_update(self, update: KlineUpdate) -> None:
        self._server_ms = max(self._server_ms, update.event_time_ms)
        if self._exchange_clock is not None:
            self._exchange_clock.observe(update.event_time_ms)
        self.feed.on_bar(update.bar, update.closed)

    def mark(self, symbol: str) -> Decimal | None:
        """The last price streamed for ``symbol`` (None before the first update)."""
        return self.feed.mark(symbol)

    async def last_price(self, symbol: str) -> Decimal:
        """The streamed mark; the close of the latest kline over REST before the first one."""
        cached = self.feed.mark(symbol)
        if cached is not None:
            return cached
        self._check(symbol)
        rows = await self.rest.klines(symbol, _MARK_INTERVAL, limit=1)
        if not rows:
            raise LookupError(f"no price for {symbol} yet")
        return Decimal(repr(rows[-1][0].close))

    async def history(
        self, symbol: str, interval: Interval, *, end: float, limit: int
    ) -> list[Bar]:
        self._check(symbol)
        cached = self.feed.bars(symbol, interval, end=end, limit=limit)
        if cached is not None:
            return cached
        bars: list[Bar] = []
        until = interval.last_close(end)
        while len(bars) < limit:
            want = min(MAX_KLINES, limit - len(bars))
            start = until - want * interval.seconds
            page = await self._fetch(symbol, interval, start, until)
            if not page:
                break
            bars[:0] = page
            until = page[0].open_time
        self.feed.remember(bars)
        return bars[-limit:] if limit > 0 else []

    async def _fetch(self, symbol: str, interval: Interval, start: float, end: float) -> list[Bar]:
        """Closed bars with ``start <= open_time`` and ``close_time <= end``, oldest first.

        A row is known closed when a later row follows it (the exchange opened the next bar), or
        when its close time is past on the exchange's clock; one row more than asked for is
        requested so the first rule usually decides, whatever the local clocks say.
        """
        now_ms = self._server_ms or self.rest.server_now_ms()
        step_ms = interval.seconds * 1000
        end_ms = None if end == math.inf else round(end * 1000) + step_ms - 1
        rows = await self.rest.klines(
            symbol, interval, start_ms=round(start * 1000), end_ms=end_ms, limit=MAX_KLINES
        )
        last = len(rows) - 1
        return [
            bar
            for i, (bar, close_ms) in enumerate(rows)
            if (i < last or close_ms < now_ms) and bar.open_time >= start and bar.close_time <= end
        ]

    def _check(self, symbol: str) -> None:
        if self._symbols and symbol not in self._symbols:
            raise UnknownSymbol(f"unknown symbol {symbol!r} on this exchange")


class _Deferred:
    """The market's exchange clock, which exists once ``run`` read the server time."""

    def __init__(self, market: BinanceMarket) -> None:
        self._market = market

    def _clock(self) -> ExchangeClock:
        clock = self._market._exchange_clock
        if clock is None:
            raise RuntimeError("the market's clock is read before BinanceMarket.run started")
        return clock

    def now(self) -> float:
        return self._clock().now()

    def trio_deadline(self, when: float) -> float:
        return self._clock().trio_deadline(when)

    async def sleep_until(self, when: float) -> None:
        await self._clock().sleep_until(when)
