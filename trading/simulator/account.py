"""The account's side of the engine: its working orders, balances and trade history.

Rules this module keeps:

* :class:`Balances` is the only place a balance changes, through three moves: ``lock`` (a limit
  order reserves ``price * qty`` of quote for a buy, ``qty`` of base for a sell), ``settle`` (one
  execution: exactly ``price * qty`` of quote against ``qty`` of base, the commission taken from
  what is received) and ``release`` (a closing order hands back what it still reserved). So
  ``locked`` is always the sum of what open orders reserve, and conservation holds by
  construction: every asset's free + locked moves only by trades and commissions.
* :class:`TradeLog` is append-only, ids increasing, times non-decreasing, so ``myTrades``
  queries are binary searches.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from decimal import Decimal

from trading.simulator.orders import OrderRecord, TradeRecord
from trading.simulator.validation import Plan

__all__ = ["Balances", "TradeLog", "WorkingOrder"]

_ZERO = Decimal(0)


class WorkingOrder:
    """An order's mutable state inside the engine; callers only ever see its snapshots."""

    __slots__ = (
        "client_order_id",
        "cum_quote",
        "executed",
        "order_id",
        "orig_qty",
        "orig_quote",
        "price",
        "price_ticks",
        "rules",
        "side",
        "status",
        "tif",
        "time",
        "type",
        "update_time",
    )

    def __init__(
        self, plan: Plan, order_id: int, client_order_id: str, orig_qty: Decimal, now_ms: int
    ) -> None:
        self.rules = plan.rules
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.side = plan.side
        self.type = plan.type
        self.tif = plan.time_in_force
        self.price = plan.price if plan.price is not None else _ZERO
        self.price_ticks = int(self.price / plan.rules.tick_size)
        self.orig_qty = orig_qty
        self.orig_quote = plan.quote_order_qty if plan.quote_order_qty is not None else _ZERO
        self.executed = _ZERO
        self.cum_quote = _ZERO
        self.status = "NEW"
        self.time = now_ms
        self.update_time = now_ms

    def record(self, fills: tuple[TradeRecord, ...] = ()) -> OrderRecord:
        return OrderRecord(
            symbol=self.rules.symbol,
            order_id=self.order_id,
            client_order_id=self.client_order_id,
            side=self.side,
            type=self.type,
            time_in_force=self.tif,
            price=self.price,
            orig_qty=self.orig_qty,
            executed_qty=self.executed,
            cummulative_quote_qty=self.cum_quote,
            orig_quote_order_qty=self.orig_quote,
            status=self.status,
            time=self.time,
            update_time=self.update_time,
            working_time=self.time,
            fills=fills,
            base_precision=self.rules.base_precision,
            quote_precision=self.rules.quote_precision,
        )

    @property
    def rests(self) -> bool:
        """Does this order hold a reserve (a limit order, until it closes)?"""
        return self.type != "MARKET"


class Balances:
    """Free and locked amounts per asset, exact Decimals."""

    def __init__(self, funds: Mapping[str, Decimal], assets: list[str]) -> None:
        self.free: dict[str, Decimal] = {a: Decimal(v) for a, v in funds.items()}
        for asset in assets:
            self.free.setdefault(asset, _ZERO)
        self.locked: dict[str, Decimal] = dict.fromkeys(self.free, _ZERO)

    def snapshot(
        self, assets: list[str] | tuple[str, ...] | None = None
    ) -> dict[str, tuple[Decimal, Decimal]]:
        names = sorted(self.free) if assets is None else assets
        return {a: (self.free[a], self.locked[a]) for a in names}

    def lock(self, order: WorkingOrder, qty: Decimal) -> None:
        """Reserve what ``qty`` more of ``order`` needs (a negative ``qty`` releases)."""
        rules = order.rules
        if order.side == "BUY":
            amount, asset = order.price * qty, rules.quote
        else:
            amount, asset = qty, rules.base
        self.free[asset] -= amount
        self.locked[asset] += amount

    def release(self, order: WorkingOrder) -> None:
        """Hand back what a closing limit order still reserves."""
        left = order.orig_qty - order.executed
        if order.rests and left > 0:
            self.lock(order, -left)

    def settle(
        self, order: WorkingOrder, price: Decimal, qty: Decimal, commission: Decimal
    ) -> None:
        """One execution of ``order``: ``qty`` of base against ``price * qty`` of quote."""
        rules = order.rules
        quote_qty = price * qty
        if order.side == "BUY":
            if order.rests:
                reserved = order.price * qty
                self.locked[rules.quote] -= reserved
                self.free[rules.quote] += reserved - quote_qty
            else:
                self.free[rules.quote] -= quote_qty
            self.free[rules.base] += qty - commission
        else:
            if order.rests:
                self.locked[rules.base] -= qty
            else:
                self.free[rules.base] -= qty
            self.free[rules.quote] += quote_qty - commission


class TradeLog:
    """One symbol's executions, oldest first."""

    def __init__(self) -> None:
        self.rows: list[TradeRecord] = []
        self._ids: list[int] = []
        self._times: list[int] = []

    def append(self, trade: TradeRecord) -> None:
        self.rows.append(trade)
        self._ids.append(trade.id)
        self._times.append(trade.time)

    def query(
        self, *, start_ms: int | None, end_ms: int | None, from_id: int | None, limit: int
    ) -> list[TradeRecord]:
        """``myTrades`` selection; see ``MatchingEngine.trades``."""
        rows = self.rows
        if from_id is not None:
            first = bisect.bisect_left(self._ids, from_id)
            return rows[first : first + limit]
        lo = 0 if start_ms is None else bisect.bisect_left(self._times, start_ms)
        hi = len(rows) if end_ms is None else bisect.bisect_right(self._times, end_ms)
        if start_ms is not None:
            return rows[lo : min(hi, lo + limit)]
        return rows[max(lo, hi - limit) : hi]
