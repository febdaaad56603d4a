"""The TradeHistory port: what crash recovery reads of a strategy's earlier runs.

Plain records and a Protocol, so the runtime depends on no database: the recorder's side
(``trading.observers.queries.read_recorded``, ``Recorder.recorded``) implements it, and
``trading.runtime.recovery`` uses it (DESIGN.md layering: edges depend on the runtime).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol, runtime_checkable

import attrs

from trading.core.records import Fill, OrderState, OrderType, Side

__all__ = ["Recorded", "RecordedOrder", "TradeHistory"]


@attrs.frozen(slots=True, kw_only=True)
class RecordedOrder:
    """An order as the database last recorded it (its latest row across runs)."""

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    state: OrderState
    filled_quantity: Decimal
    created_at: float  # when it was first recorded (runner clock)


@attrs.frozen(slots=True, kw_only=True)
class Recorded:
    """What the database holds of one strategy, across all runs."""

    fills: tuple[Fill, ...] = ()  # in the order they were booked
    orders: tuple[RecordedOrder, ...] = ()  # one per client order id
    last_time: float | None = None  # the strategy's last recorded event


@runtime_checkable
class TradeHistory(Protocol):
    """The port to the run's durable record (the Recorder implements it)."""

    async def recorded(self, strategy: str) -> Recorded:
        """Everything recorded for ``strategy``, as committed. Read-only; cancelling is safe."""
        ...
