"""The simulated order book: synthetic levels around the price path, rebuilt every step.

Rules this module keeps (the shape of the market the account trades against):

* Time moves in steps of :data:`STEP_MS` (one second; resting orders are matched at the last
  millisecond of each second, see ``engine.py``). At time ``t`` the path price ``p`` (in
  ``trading.simulator.market``) is the **best ask**; the best bid is one tick below it (a
  one-tick spread, as on BTCUSDT).
* Each side has ``shape.levels`` levels (20 by default). Level ``i`` (0-based) is ``i * gap``
  away from the best price, ``gap = max(tick, p * gap_bps / 10000)`` rounded to the tick.
* A level's quantity is deterministic per (seed, symbol, step, side, level): on average
  ``min_notional * notional_multiple / p`` (about 25,000 USDT for BTCUSDT; ``p`` the price at the
  step's start), growing 10 % per level away from the top, between 0.5x and 1.5x of that at
  random, never below the minimum quantity.
* The book is the market, not a queue: a taker order walks it from the best level and does not
  deplete it (the account is small next to the market). What rests is the account's own orders:
  a resting buy trades when the best ask is at or below its price, a resting sell when the best
  bid is at or above it, at the order's own price (maker), at most :meth:`Book.resting_depth` per
  step for each side of a symbol, shared by price then time priority. So a large order fills over
  several steps. (A limit order larger than every level it may take rests, for the rest, at its
  own price like any other, and fills there over the next steps.)
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import attrs

from trading.simulator.market import PricePath, unit

__all__ = ["STEP_MS", "Book", "BookShape", "Level", "walk"]

STEP_MS = 1000

Level = tuple[Decimal, Decimal]  # (price, quantity)


@attrs.frozen(slots=True)
class BookShape:
    """How deep the synthetic book is (see the module docstring)."""

    levels: int = 20
    gap_bps: Decimal = Decimal("0.5")
    notional_multiple: int = 5000
    resting_share: Decimal = Decimal("0.25")  # of a top level, traded per step at a resting price


class Book:
    """Levels on demand; recent steps are cached (a result never depends on the cache)."""

    def __init__(self, prices: PricePath, shape: BookShape | None = None) -> None:
        self.prices = prices
        self.shape = shape or BookShape()
        self._cache: dict[tuple[str, int], tuple[tuple[Level, ...], tuple[Level, ...]]] = {}
        self._sizes: dict[tuple[str, int], tuple[tuple[Decimal, ...], tuple[Decimal, ...]]] = {}

    def _size(self, symbol: str, step: int, side: int, level: int) -> Decimal:
        """Level ``level``'s quantity on ``side`` (0 bids, 1 asks) during ``step``."""
        rules = self.prices.rules(symbol)
        price = self.prices.ticks(symbol, step * STEP_MS) * rules.tick_size
        mean = rules.min_notional * self.shape.notional_multiple / price / rules.step_size
        seed = (self.prices.symbol_seed(symbol) ^ 0x5EED) + step * 2 + side
        factor = (1.5 + unit(seed, level) / 2) * (1 + level / 10)
        qty = (mean * Decimal(repr(factor))).to_integral_value(ROUND_DOWN) * rules.step_size
        return min(max(qty, rules.min_qty), rules.max_qty)

    def _sizes_at(self, symbol: str, step: int) -> tuple[tuple[Decimal, ...], tuple[Decimal, ...]]:
        """Level quantities ``(bids, asks)`` for one step, sized at the step's opening price."""
        key = (symbol, step)
        hit = self._sizes.get(key)
        if hit is None:
            levels = range(self.shape.levels)
            hit = (
                tuple(self._size(symbol, step, 0, i) for i in levels),
                tuple(self._size(symbol, step, 1, i) for i in levels),
            )
            if len(self._sizes) > 256:
                self._sizes.clear()
            self._sizes[key] = hit
        return hit

    def levels(self, symbol: str, t_ms: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """``(bids, asks)`` at ``t_ms``, best first."""
        key = (symbol, t_ms)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        rules = self.prices.rules(symbol)
        tick = rules.tick_size
        ask_ticks = self.prices.ticks(symbol, t_ms)
        gap = max(1, round(ask_ticks * float(self.shape.gap_bps) / 10_000))
        bid_sizes, ask_sizes = self._sizes_at(symbol, t_ms // STEP_MS)
        asks = tuple(((ask_ticks + i * gap) * tick, q) for i, q in enumerate(ask_sizes))
        bids = tuple(
            ((ask_ticks - 1 - i * gap) * tick, q)
            for i, q in enumerate(bid_sizes)
            if ask_ticks - 1 - i * gap > 0
        )
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = (bids, asks)
        return bids, asks

    def resting_depth(self, symbol: str, t_ms: int) -> Decimal:
        """What trades per step at a resting order's price (shared by that side's orders)."""
        rules = self.prices.rules(symbol)
        step = t_ms // STEP_MS
        hit = self._sizes.get((symbol, step))
        top = hit[1][0] if hit is not None else self._size(symbol, step, 1, 0)
        raw = top * self.shape.resting_share
        qty = (raw / rules.step_size).to_integral_value(ROUND_DOWN) * rules.step_size
        return max(qty, rules.min_qty)


def walk(
    levels: tuple[Level, ...],
    *,
    buy: bool,
    step: Decimal,
    quantity: Decimal | None = None,
    quote: Decimal | None = None,
    limit: Decimal | None = None,
) -> list[Level]:
    """The fills of a taker order walking ``levels`` (best first); pure, nothing is consumed.

    By ``quantity`` or by a ``quote`` budget (a ``quoteOrderQty``: whole steps whose cost stays
    within the budget); a ``limit`` price stops the walk at the first level beyond it.
    """
    fills: list[Level] = []
    left_qty = quantity
    left_quote = quote
    for price, available in levels:
        if limit is not None and (price > limit if buy else price < limit):
            break
        if left_qty is not None:
            take = min(available, left_qty)
            left_qty -= take
        else:
            assert left_quote is not None
            afford = (left_quote / price / step).to_integral_value(ROUND_DOWN) * step
            while afford > 0 and afford * price > left_quote:  # division rounds at 28 digits
                afford -= step
            take = min(available, afford)
            if take <= 0:
                break
            left_quote -= take * price
        fills.append((price, take))
        if left_qty is not None and left_qty <= 0:
            break
    return fills
