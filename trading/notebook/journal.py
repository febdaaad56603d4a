"""What a notebook shows of a run: orders and fills, kept from the Runner's event tap.

The rules this module keeps:

* :class:`Journal` is the Runner's synchronous ``publish`` tap: it runs in the trio run's
  thread for every event, never blocks, never raises, and keeps plain rows only (dicts of
  str, Decimal, float), so a snapshot of it is a copy of plain data.
* It is bounded: the last ``limit`` orders (by first sight) and the last ``limit`` fills are
  kept; what fell off is counted in :attr:`Journal.dropped_orders` / ``dropped_fills``.
* An order's row follows its events in the order they were published; the latest event wins
  (the engine publishes an order's changes in the order it applies them).
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from typing import Any

from trading.core import events as ev

__all__ = ["FILL_COLUMNS", "ORDER_COLUMNS", "Journal"]

log = logging.getLogger(__name__)

ORDER_COLUMNS = (
    "time",
    "strategy",
    "client_order_id",
    "symbol",
    "side",
    "type",
    "quantity",
    "price",
    "state",
    "filled_quantity",
    "reason",
)
FILL_COLUMNS = (
    "time",
    "strategy",
    "client_order_id",
    "trade_id",
    "symbol",
    "side",
    "quantity",
    "price",
    "fee",
    "fee_asset",
)
_STATE = {
    ev.OrderSubmitted: "SUBMITTED",
    ev.OrderAccepted: "NEW",
    ev.OrderPartiallyFilled: "PARTIALLY_FILLED",
    ev.OrderFilled: "FILLED",
    ev.OrderCancelled: "CANCELED",
    ev.OrderRejected: "REJECTED",
    ev.OrderUnknown: "UNKNOWN",
}


class Journal:
    """Orders and fills of one run, as plain rows; a ``publish`` tap for the Runner."""

    def __init__(self, *, limit: int = 10_000) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, not {limit!r}")
        self.limit = limit
        self._orders: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._fills: deque[dict[str, Any]] = deque(maxlen=limit)
        self.dropped_orders = 0
        self.dropped_fills = 0

    def __call__(self, event: ev.Event) -> None:
        if not isinstance(event, ev.OrderEvent):
            return
        try:
            self._record(event)
        except Exception:  # a tap must never break publishing
            log.exception("notebook journal could not record %r", event)

    def _record(self, event: ev.OrderEvent) -> None:
        row = self._orders.get(event.client_order_id)
        if row is None:
            if len(self._orders) >= self.limit:
                self._orders.popitem(last=False)
                self.dropped_orders += 1
            row = {
                "time": event.time,
                "strategy": event.strategy,
                "client_order_id": event.client_order_id,
                "symbol": event.symbol,
                "side": event.side,
                "type": event.order_type,
                "quantity": event.quantity,
                "price": event.price,
                "state": "SUBMITTED",
                "filled_quantity": None,
                "reason": None,
            }
            self._orders[event.client_order_id] = row
        if isinstance(event, ev.OrderReconciled):
            row["state"] = event.state
        else:
            row["state"] = _STATE.get(type(event), row["state"])
        if isinstance(event, (ev.OrderPartiallyFilled, ev.OrderCancelled, ev.OrderReconciled)):
            row["filled_quantity"] = event.filled_quantity
        if isinstance(event, (ev.OrderRejected, ev.OrderUnknown, ev.OrderCancelled)):
            row["reason"] = event.reason or row["reason"]
        if isinstance(event, ev.OrderPartiallyFilled):
            if len(self._fills) == self.limit:
                self.dropped_fills += 1
            self._fills.append(
                {
                    "time": event.time,
                    "strategy": event.strategy,
                    "client_order_id": event.client_order_id,
                    "trade_id": event.trade_id,
                    "symbol": event.symbol,
                    "side": event.side,
                    "quantity": event.fill_quantity,
                    "price": event.fill_price,
                    "fee": event.fee,
                    "fee_asset": event.fee_asset,
                }
            )

    def orders(self) -> list[dict[str, Any]]:
        """A copy of the order rows, oldest first."""
        return [dict(row) for row in self._orders.values()]

    def fills(self) -> list[dict[str, Any]]:
        """A copy of the fill rows, oldest first."""
        return [dict(row) for row in self._fills]
