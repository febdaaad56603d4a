"""A run's records as pandas DataFrames, for notebooks.

The rules this module keeps:

* pandas is imported inside each function, so the runner never needs it; without it, an
  ImportError says ``pip install 'trio-trade[notebook]'``.
* Pure: records in, a new DataFrame out; nothing is read from a live runner here.
* Times are timezone-aware UTC datetime columns (``time`` the index of the equity table). Prices,
  quantities and money are floats by default, ready to plot and aggregate; ``exact=True``
  keeps them as the records' Decimals (object columns), for accounting to the last digit.
* Every table has its columns even when empty, so code written against a busy run works on a
  quiet one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import attrs

from trading.core.bars import Bar
from trading.core.orders import Order
from trading.core.positions import Position, position_after
from trading.core.records import Fill
from trading.results.stats import EquityPoint, drawdowns, returns
from trading.results.trips import round_trips, split_symbol

__all__ = [
    "bars_frame",
    "equity_frame",
    "fills_frame",
    "import_pandas",
    "orders_frame",
    "positions_frame",
    "trades_frame",
]

NOTEBOOK_EXTRA: Final = "pip install 'trio-trade[notebook]'"

ORDER_COLUMNS: Final = (
    "client_order_id", "strategy", "symbol", "side", "type", "quantity", "price",
    "time_in_force", "state", "filled_quantity", "average_fill_price", "fees",
    "created_at", "updated_at", "reject_reason",
)  # fmt: skip
FILL_COLUMNS: Final = (
    "time", "symbol", "side", "quantity", "price", "notional", "fee", "fee_asset",
    "client_order_id", "trade_id",
)  # fmt: skip
POSITION_COLUMNS: Final = (
    "symbol", "quantity", "average_price", "cost_basis", "realised_pnl", "fees", "mark_price",
    "unrealised_pnl", "net_pnl",
)  # fmt: skip
TRADE_COLUMNS: Final = (
    "symbol", "side", "opened_at", "closed_at", "quantity", "entry_price", "exit_price",
    "fills", "gross_pnl", "fees", "pnl",
)  # fmt: skip
EQUITY_COLUMNS: Final = ("equity", "returns", "peak", "drawdown", "drawdown_amount")
BAR_COLUMNS: Final = ("open", "high", "low", "close", "volume")


def import_pandas() -> Any:
    """pandas, or an ImportError that says how to install it."""
    try:
        import pandas  # type: ignore[import-untyped,unused-ignore]
    except ImportError as error:
        raise ImportError(f"results as tables need pandas: {NOTEBOOK_EXTRA}") from error
    return pandas


def _money(value: Decimal | None, exact: bool) -> Decimal | float | None:
    if value is None:
        return None
    return value if exact else float(value)


def _frame(rows: list[dict[str, Any]], columns: Sequence[str], times: Sequence[str]) -> Any:
    pd = import_pandas()
    frame = pd.DataFrame(rows, columns=list(columns))
    for name in times:
        frame[name] = pd.to_datetime(frame[name], unit="s", utc=True)
    return frame


def orders_frame(orders: Iterable[Order], *, exact: bool = False) -> Any:
    """One row per order, in the order given."""
    rows = [
        {
            "client_order_id": o.client_order_id,
            "strategy": o.strategy,
            "symbol": o.symbol,
            "side": o.side.value,
            "type": o.type.value,
            "quantity": _money(o.quantity, exact),
            "price": _money(o.price, exact),
            "time_in_force": o.time_in_force.value,
            "state": o.state.value,
            "filled_quantity": _money(o.filled_quantity, exact),
            "average_fill_price": _money(o.average_fill_price, exact),
            "fees": _money(o.fees, exact),
            "created_at": o.created_at,
            "updated_at": o.updated_at,
            "reject_reason": o.reject_reason,
        }
        for o in orders
    ]
    return _frame(rows, ORDER_COLUMNS, ("created_at", "updated_at"))


def fills_frame(fills: Iterable[Fill], *, exact: bool = False) -> Any:
    """One row per fill, in time order; ``notional`` is quantity x price."""
    rows = [
        {
            "time": f.time,
            "symbol": f.symbol,
            "side": f.side.value,
            "quantity": _money(f.quantity, exact),
            "price": _money(f.price, exact),
            "notional": _money(f.quantity * f.price, exact),
            "fee": _money(f.fee, exact),
            "fee_asset": f.fee_asset,
            "client_order_id": f.client_order_id,
            "trade_id": f.trade_id,
        }
        for f in sorted(fills, key=lambda fill: fill.time)
    ]
    return _frame(rows, FILL_COLUMNS, ("time",))


def positions_frame(
    source: Iterable[Fill] | Iterable[Position] | Mapping[str, Position],
    marks: Mapping[str, Decimal] | None = None,
    *,
    quote: str = "USDT",
    exact: bool = False,
) -> Any:
    """One row per symbol: the positions given (a strategy's ``ctx.position(...)``, a
    portfolio's ``positions``), or the positions a list of fills leaves (the ledger's
    average-cost rules); valued at ``marks`` (e.g. the last close) when given."""
    items = list(source.values() if isinstance(source, Mapping) else source)
    positions: dict[str, Position] = {}
    for item in items:
        if isinstance(item, Position):
            positions[item.symbol] = attrs.evolve(item)  # a copy: the caller's is not touched
    fills = sorted((item for item in items if isinstance(item, Fill)), key=lambda f: f.time)
    for fill in fills:
        position = positions.setdefault(fill.symbol, Position(fill.symbol))
        base, _ = split_symbol(fill.symbol, quote)
        after = position_after(position, fill, base, quote if base else None)
        position.quantity, position.cost_basis, position.realised_pnl, position.fees = after
    rows = []
    for symbol in sorted(positions):
        p = positions[symbol]
        mark = (marks or {}).get(symbol)
        unrealised = p.unrealised_pnl(mark) if mark is not None else None
        net = p.net_realised_pnl + (unrealised or 0)
        rows.append(
            {
                "symbol": symbol,
                "quantity": _money(p.quantity, exact),
                "average_price": _money(p.average_price, exact),
                "cost_basis": _money(p.cost_basis, exact),
                "realised_pnl": _money(p.realised_pnl, exact),
                "fees": _money(p.fees, exact),
                "mark_price": _money(mark, exact),
                "unrealised_pnl": _money(unrealised, exact),
                "net_pnl": _money(net, exact),
            }
        )
    return _frame(rows, POSITION_COLUMNS, ())


def trades_frame(fills: Iterable[Fill], *, quote: str = "USDT", exact: bool = False) -> Any:
    """One row per round trip (flat to flat); open ones have no ``closed_at``."""
    rows = [
        {
            "symbol": t.symbol,
            "side": t.side,
            "opened_at": t.opened_at,
            "closed_at": t.closed_at,
            "quantity": _money(t.quantity, exact),
            "entry_price": _money(t.entry_price, exact),
            "exit_price": _money(t.exit_price, exact),
            "fills": t.fills,
            "gross_pnl": _money(t.gross_pnl, exact),
            "fees": _money(t.fees, exact),
            "pnl": _money(t.pnl, exact),
        }
        for t in round_trips(fills, quote=quote)
    ]
    return _frame(rows, TRADE_COLUMNS, ("opened_at", "closed_at"))


def equity_frame(
    equity: Sequence[EquityPoint], starting_equity: Decimal, *, exact: bool = False
) -> Any:
    """The equity curve indexed by time, with per-bar ``returns``, the running ``peak``, the
    ``drawdown`` (fraction, <= 0) and ``drawdown_amount`` (equity - peak)."""
    peaks: list[Decimal] = []
    peak = starting_equity
    for _, value in equity:
        peak = max(peak, value)
        peaks.append(peak)
    rows = [
        {
            "time": time,
            "equity": _money(value, exact),
            "returns": r,
            "peak": _money(top, exact),
            "drawdown": dd,
            "drawdown_amount": _money(value - top, exact),
        }
        for (time, value), top, r, dd in zip(
            equity,
            peaks,
            returns(equity, starting_equity),
            drawdowns(equity, starting_equity),
            strict=True,
        )
    ]
    return _frame(rows, ("time", *EQUITY_COLUMNS), ("time",)).set_index("time")


def bars_frame(bars: Iterable[Bar]) -> Any:
    """Bars (a ``BarSeries`` or any iterable of ``Bar``) indexed by open time, OHLCV floats."""
    rows = [
        {
            "open_time": b.open_time,
            "open": b.open,
            "high": b.high,
            "low": b.low,
            "close": b.close,
            "volume": b.volume,
        }
        for b in bars
    ]
    return _frame(rows, ("open_time", *BAR_COLUMNS), ("open_time",)).set_index("open_time")
