"""The events an order's changes publish: one event per change, built from the order's spec.

Split from the engine so the engine holds the calls and this holds the vocabulary. Publishing
order: acceptance, then each new fill, then the state change (a recorder that upserts by client
order id ends on the order's true state; a late fill of a finished order is followed by an
``OrderReconciled`` that restates it).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from trading.core import events as ev
from trading.core.ids import strategy_of
from trading.core.orders import Order, OrderState
from trading.core.updates import Applied, ExchangeOrder
from trading.runtime.clock import Clock

__all__ = ["OrderEvents"]

_S = OrderState


class OrderEvents:
    def __init__(self, publish: Callable[[ev.Event], None], clock: Clock) -> None:
        self._publish = publish
        self._clock = clock

    def order(self, kind: type[ev.OrderEvent], order: Order, **fields: object) -> None:
        self._publish(
            kind(
                time=self._clock.now(),
                strategy=order.strategy or strategy_of(order.client_order_id) or "",
                **order.spec.event_fields(),
                **fields,
            )
        )

    def applied(
        self, order: Order, report: ExchangeOrder, applied: Applied, *, reconciled: bool
    ) -> None:
        """Publish what ``applied`` changed; a reconciliation ends with ``OrderReconciled``."""
        if applied.accepted:
            self.order(ev.OrderAccepted, order, exchange_order_id=order.exchange_order_id)
        filled = order.filled_quantity - sum((f.quantity for f in applied.fills), Decimal(0))
        for i, fill in enumerate(applied.fills):
            filled += fill.quantity
            last = i == len(applied.fills) - 1
            kind = ev.OrderFilled if last and order.state is _S.FILLED else ev.OrderPartiallyFilled
            self.order(
                kind,
                order,
                trade_id=fill.trade_id,
                fill_quantity=fill.quantity,
                fill_price=fill.price,
                fee=fill.fee,
                fee_asset=fill.fee_asset,
                filled_quantity=min(filled, order.filled_quantity),
            )
        state = applied.state
        late_fill = bool(applied.fills) and state is None and order.state.is_final
        if reconciled or (late_fill and order.state is not _S.FILLED):
            self.order(
                ev.OrderReconciled,
                order,
                state=order.state.value,
                filled_quantity=order.filled_quantity,
            )
        elif state is _S.CANCELLED:
            self.order(ev.OrderCancelled, order, filled_quantity=order.filled_quantity)
        elif state is _S.EXPIRED:
            self.order(
                ev.OrderCancelled, order, filled_quantity=order.filled_quantity, reason="expired"
            )
        elif state is _S.REJECTED:
            reason = order.reject_reason or report.reason or "rejected"
            self.order(ev.OrderRejected, order, reason=reason, sent=True)
