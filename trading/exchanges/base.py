"""What the runtime needs from a market: bar history now, order routing in the TradeEngine later.

Protocols only, so the simulated market, replay and live exchanges are interchangeable behind them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from trading.bars import Bar, Interval

__all__ = ["MarketData", "UnknownSymbol"]


class UnknownSymbol(LookupError):
    """A symbol the market does not list; the message names the ones it does."""


class MarketData(Protocol):
    @property
    def symbols(self) -> Sequence[str]: ...

    async def history(
        self, symbol: str, interval: Interval, *, end: float, limit: int
    ) -> list[Bar]:
        """The ``limit`` most recent bars that closed at or before ``end``, oldest first.

        Cancellable: implementations that do network IO must not swallow ``trio.Cancelled``.
        """
        ...
