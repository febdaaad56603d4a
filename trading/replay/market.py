"""BarsMarket: historical bars as the runner's MarketData and the paper broker's price source.

The rules this module keeps:

* One series: one symbol, one interval, bars sorted by open time with no duplicates (checked
  here, with the offending position named; loading and repairing files is ``trading.data``'s
  job).
* ``history(end=...)`` returns only bars that closed at or before ``end``: a strategy can never
  see a bar before its close, so a replay has no look-ahead. Near the start it returns fewer
  than ``limit`` bars, as a young market would.
* ``price(symbol, t)`` is the close of the last bar closed at or before ``t`` (the open of the
  first bar before that): what the paper broker fills market orders against. On a bar close it
  is that bar's close, exactly as the simulated market's price at a close is its bar's close.
* Lookups are O(log n) (a bisect over the close times), whatever the length of the series.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from trading.core.bars import Bar, Interval
from trading.exchanges.base import UnknownSymbol

__all__ = ["BarsMarket", "check_bars"]


def check_bars(bars: Sequence[Bar]) -> None:
    """Raise ValueError naming the first bar (by index) that breaks the one-series rule."""
    if not bars:
        raise ValueError("no bars to replay")
    first = bars[0]
    previous = -float("inf")
    for index, bar in enumerate(bars):
        if not isinstance(bar, Bar):
            raise ValueError(f"bar {index} is not a trading.Bar: {type(bar).__name__}")
        if bar.symbol != first.symbol or bar.interval != first.interval:
            raise ValueError(
                f"bar {index} is {bar.symbol} {bar.interval}, but the series is "
                f"{first.symbol} {first.interval}: replay one series at a time"
            )
        if bar.open_time <= previous:
            kind = "a duplicate of" if bar.open_time == previous else "earlier than"
            raise ValueError(f"bar {index} (open time {bar.open_time}) is {kind} the bar before")
        previous = bar.open_time


class BarsMarket:
    """MarketData and PriceSource over one series of closed bars (see the module rules)."""

    def __init__(self, bars: Sequence[Bar]) -> None:
        check_bars(bars)
        self.bars = bars
        self.symbol = bars[0].symbol
        self.interval: Interval = bars[0].interval
        self.closes = [bar.close_time for bar in bars]

    @property
    def symbols(self) -> Sequence[str]:
        return (self.symbol,)

    def _check(self, symbol: str, interval: Interval | None = None) -> None:
        if symbol != self.symbol:
            raise UnknownSymbol(f"the replayed data has no symbol {symbol!r}; it has {self.symbol}")
        if interval is not None and interval != self.interval:
            raise UnknownSymbol(
                f"the replayed data has {self.symbol} {self.interval} bars, not {interval}"
            )

    def count_closed(self, t: float) -> int:
        """How many bars closed at or before ``t``."""
        return bisect.bisect_right(self.closes, t)

    async def history(
        self, symbol: str, interval: Interval, *, end: float, limit: int
    ) -> list[Bar]:
        """The ``limit`` last bars closed at or before ``end``; never yields (no IO)."""
        if symbol != self.symbol or (interval is not self.interval and interval != self.interval):
            self._check(symbol, interval)
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        stop = bisect.bisect_right(self.closes, end)
        return list(self.bars[max(0, stop - limit) : stop])

    def price(self, symbol: str, t: float) -> float:
        """The close of the last bar closed by ``t`` (before the first close: its open)."""
        if symbol != self.symbol:
            self._check(symbol)
        index = bisect.bisect_right(self.closes, t)
        return self.bars[index - 1].close if index else self.bars[0].open
