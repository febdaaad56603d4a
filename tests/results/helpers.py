"""Fills and curves for the results tests."""

from __future__ import annotations

import itertools
from decimal import Decimal

from trading.core.records import Fill, Side

D = Decimal
_ids = itertools.count(1)


def fill(
    side: str,
    quantity: str,
    price: str,
    time: float,
    *,
    fee: str = "0",
    fee_asset: str = "USDT",
    symbol: str = "BTCUSDT",
) -> Fill:
    number = next(_ids)
    return Fill(
        client_order_id=f"t-{number}",
        symbol=symbol,
        side=Side.BUY if side == "buy" else Side.SELL,
        quantity=D(quantity),
        price=D(price),
        fee=D(fee),
        fee_asset=fee_asset,
        time=time,
        trade_id=str(number),
    )


def curve(*values: str, start: float = 86_400.0, step: float = 86_400.0) -> list[tuple[float, D]]:
    return [(start + i * step, D(v)) for i, v in enumerate(values)]
