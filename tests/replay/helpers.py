"""Bars and small strategies for the replay tests."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import ClassVar

import attrs

import trading
from trading.core.bars import Bar, Interval

T0 = 1_735_689_600.0  # 2025-01-01 00:00 UTC
M1 = Interval.parse("1m")


def walk(n: int, *, seed: int = 1, price: float = 60_000.0, symbol: str = "BTCUSDT") -> list[Bar]:
    """A seeded random walk of one-minute bars."""
    rng = random.Random(seed)
    bars = []
    for i in range(n):
        open_ = price
        price *= math.exp(rng.gauss(0.0, 0.002))
        high, low = max(open_, price) * 1.0005, min(open_, price) * 0.9995
        bars.append(Bar(symbol, M1, T0 + 60 * i, open_, high, low, price, 1.0))
    return bars


def flat(closes: list[float], *, lows: dict[int, float] | None = None) -> list[Bar]:
    """Bars with the given closes (open = close); ``lows`` overrides some bars' low."""
    lows = lows or {}
    return [
        Bar("BTCUSDT", M1, T0 + 60 * i, c, c, lows.get(i, c), c, 1.0) for i, c in enumerate(closes)
    ]


class Closes(trading.Strategy):
    """Remembers the bar close of every compute (on the class: a replay builds its own)."""

    interval = "1m"
    seen: ClassVar[list[float]] = []  # reset by each test

    async def next(self, ctx: trading.Context) -> None:
        assert ctx.bar_close is not None or ctx.computes == 0
        type(self).seen.append(ctx.now)


@attrs.define
class Flipper(trading.Strategy):
    """Buys ``quantity`` when flat, sells everything when long: one order per compute."""

    interval = "1m"
    quantity: Decimal = attrs.field(default=Decimal("0.01"), converter=Decimal)

    async def next(self, ctx: trading.Context) -> None:
        held = ctx.position().quantity
        if held > 0:
            await ctx.sell(held)
        else:
            await ctx.buy(self.quantity)


def order_rows(orders: tuple[trading.Order, ...]) -> list[tuple[object, ...]]:
    """What an order is, without its run-specific client id."""
    return [
        (
            o.side,
            o.type,
            o.quantity,
            o.price,
            o.state,
            o.filled_quantity,
            o.average_fill_price,
            o.created_at,
        )
        for o in orders
    ]
