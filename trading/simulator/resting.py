"""The account's resting orders, and which of them trade, and how much, at each step.

Rules this module keeps (the engine books what is decided here):

* Steps fall on the last millisecond of each second (``k * 1000 + 999``): the path's move into
  a step happens inside that second, hence inside every kline holding a fill made at it.
* A resting order trades when the path price (the market's last price, what the klines show)
  reaches it: a buy when it is at or below the buy's price, a sell when at or above the sell's.
  So a first fill always lies inside the klines that hold it (a property test checks it); the
  bid one tick under the path is for orders that take liquidity, not for resting ones.
* Each side of a symbol shares the book's resting depth for the step, by price then time
  priority; each order gets at most what it lacks.
* Symbols are matched in lockstep, step by step, so fills (and their trade ids) follow time.
* The path is a straight line within a minute, so a minute's lowest and highest price lie on its
  first and last step: a minute in which no order can trade is skipped whole. Pure decisions:
  nothing here changes an order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal

from trading.simulator.account import WorkingOrder
from trading.simulator.book import STEP_MS, Book

__all__ = ["RestingOrders"]

_MINUTE_MS = 60_000
_LAST_MS = STEP_MS - 1  # a step's offset within its second


class RestingOrders:
    """Open limit orders per symbol, oldest first."""

    def __init__(self, book: Book, symbols: Iterable[str]) -> None:
        self.book = book
        self.by_symbol: dict[str, dict[int, WorkingOrder]] = {s: {} for s in symbols}

    def add(self, order: WorkingOrder) -> None:
        self.by_symbol[order.rules.symbol][order.order_id] = order

    def remove(self, order: WorkingOrder) -> None:
        self.by_symbol[order.rules.symbol].pop(order.order_id, None)

    def steps(self, start_ms: int, end_ms: int) -> Iterator[tuple[int, str]]:
        """``(step, symbol)`` pairs in ``(start_ms, end_ms]`` where an order may trade, in time
        order; lazily, so orders filled or removed meanwhile are taken into account."""
        t = ((start_ms - _LAST_MS) // STEP_MS + 1) * STEP_MS + _LAST_MS
        last = (end_ms - _LAST_MS) // STEP_MS * STEP_MS + _LAST_MS
        while t <= last and any(self.by_symbol.values()):
            minute_end = min(last, t // _MINUTE_MS * _MINUTE_MS + _MINUTE_MS - 1)
            active = [
                s
                for s, book in self.by_symbol.items()
                if book and self._may_trade(s, t, minute_end)
            ]
            for step in range(t, minute_end + 1, STEP_MS) if active else ():
                for symbol in active:
                    if self.by_symbol[symbol]:
                        yield step, symbol
            t = minute_end + STEP_MS

    def _may_trade(self, symbol: str, first: int, last: int) -> bool:
        orders = self.by_symbol[symbol].values()
        best_buy = max((o.price_ticks for o in orders if o.side == "BUY"), default=-1)
        best_sell = min((o.price_ticks for o in orders if o.side == "SELL"), default=-1)
        ticks = self.book.prices.ticks
        a, b = ticks(symbol, first), ticks(symbol, last)
        return min(a, b) <= best_buy or (best_sell >= 0 and max(a, b) >= best_sell)

    def allocate(self, symbol: str, step: int) -> list[tuple[WorkingOrder, Decimal]]:
        """The orders of ``symbol`` that trade at ``step`` and how much each, buys first."""
        orders = self.by_symbol[symbol].values()
        ask = self.book.prices.ticks(symbol, step)
        buys = sorted(
            (o for o in orders if o.side == "BUY" and o.price_ticks >= ask),
            key=lambda o: (-o.price_ticks, o.order_id),
        )
        sells = sorted(
            (o for o in orders if o.side == "SELL" and o.price_ticks <= ask),
            key=lambda o: (o.price_ticks, o.order_id),
        )
        if not buys and not sells:
            return []
        depth = self.book.resting_depth(symbol, step)
        fills: list[tuple[WorkingOrder, Decimal]] = []
        for side in (buys, sells):
            budget = depth
            for order in side:
                if budget <= 0:
                    break
                qty = min(order.orig_qty - order.executed, budget)
                budget -= qty
                fills.append((order, qty))
        return fills
