"""Applying an exchange's report to an order when reports arrive in any order and more than once.

Sans-IO (DESIGN.md rule 4). On a real exchange a fill is pushed on the stream before the REST
answer of the submit, a REST snapshot is older than a partial fill already pushed, a report is
sent twice, a cancel's answer lands after the order filled. The rules this module keeps:

* An order only moves forward. What a report may change is ranked: the state (new/unknown <
  submitted < partially filled < final), the cumulative filled quantity, and the set of trade ids.
  Whatever would move any of them backwards is dropped and said so in ``Applied.dropped``.
* A fill is booked whatever the state a report left the order in, once per trade id: it happened.
  So any permutation, with duplicates, of a valid sequence of reports ends in the same state,
  fills and filled quantity as the sequence in order (a property test checks it).
* The order's state is derived from what is known, not copied from the last report: all of the
  quantity traded means filled; a cancel or expiry the exchange reported is final; otherwise
  trades mean partially filled, an answer means submitted.
* ``apply_update`` never raises for what a report says: contradictions are dropped and described.
  It raises only for programming errors (a report for another order is dropped too).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import attrs

from trading.core.orders import Order
from trading.core.records import (
    Fill,
    IllegalTransition,
    InvalidFill,
    OrderSpec,
    OrderState,
    OrderType,
    Side,
)

__all__ = ["Applied", "ExchangeOrder", "apply_update", "rank"]

_S = OrderState

#: How far along an order is; a report never moves an order to a lower rank.
_RANK: Final = {
    _S.NEW: 0,
    _S.UNKNOWN: 0,
    _S.SUBMITTED: 1,
    _S.PARTIALLY_FILLED: 2,
    _S.FILLED: 3,
    _S.CANCELLED: 3,
    _S.EXPIRED: 3,
    _S.REJECTED: 3,
}


def rank(state: OrderState) -> int:
    """0 (nothing known from the exchange) to 3 (final)."""
    return _RANK[state]


@attrs.frozen(slots=True, kw_only=True)
class ExchangeOrder:
    """An order as the exchange reports it: after submit, cancel, query, or in a pushed update.

    ``fills`` holds the fills the exchange reports with this update (possibly all of them so far,
    possibly none: a snapshot may give only ``filled_quantity`` and ``average_price``); receivers
    de-duplicate them by ``trade_id``.
    """

    client_order_id: str
    exchange_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    state: OrderState
    filled_quantity: Decimal = Decimal(0)
    average_price: Decimal | None = None
    fills: tuple[Fill, ...] = ()
    reason: str = ""

    @classmethod
    def of(
        cls,
        spec: OrderSpec,
        *,
        exchange_order_id: str,
        state: OrderState,
        filled_quantity: Decimal = Decimal(0),
        average_price: Decimal | None = None,
        fills: tuple[Fill, ...] = (),
        reason: str = "",
    ) -> ExchangeOrder:
        """A report on the order ``spec`` asked for."""
        return cls(
            client_order_id=spec.client_order_id,
            exchange_order_id=exchange_order_id,
            symbol=spec.symbol,
            side=spec.side,
            type=spec.type,
            quantity=spec.quantity,
            price=spec.price,
            state=state,
            filled_quantity=filled_quantity,
            average_price=average_price,
            fills=fills,
            reason=reason,
        )


@attrs.frozen(slots=True, kw_only=True)
class Applied:
    """What one report changed: the engine publishes events and books fills from this."""

    accepted: bool = False  # the order went from new to submitted (the first answer)
    fills: tuple[Fill, ...] = ()  # fills booked now, in report order
    state: OrderState | None = None  # the new state, if the state moved
    dropped: tuple[str, ...] = ()  # what was ignored, and why

    @property
    def changed(self) -> bool:
        return self.accepted or bool(self.fills) or self.state is not None


def _target(order: Order, report: ExchangeOrder) -> OrderState | str:
    """The state all that is known now implies, or why the report's state cannot be used."""
    reported = report.state
    if order.filled_quantity >= order.quantity:
        return _S.FILLED
    if reported in (_S.CANCELLED, _S.EXPIRED):
        return reported
    if reported is _S.REJECTED:
        if order.filled_quantity:
            return f"rejected, but {order.filled_quantity} already traded"
        return _S.REJECTED
    if reported is _S.FILLED:
        return f"filled, but only {order.filled_quantity} of {order.quantity} is known to trade"
    return _S.PARTIALLY_FILLED if order.filled_quantity else _S.SUBMITTED


def apply_update(order: Order, report: ExchangeOrder, at: float) -> Applied:
    """Apply what in ``report`` moves ``order`` forward; drop and describe the rest."""
    cid = order.client_order_id
    for name in ("client_order_id", "symbol", "side", "quantity"):
        if getattr(report, name) != getattr(order, name):
            return Applied(dropped=(f"report for another order: {name} {getattr(report, name)!r}",))
    if report.state in (_S.NEW, _S.UNKNOWN):
        return Applied(dropped=(f"a report cannot say {report.state.value}",))
    if report.state is _S.REJECTED and (report.fills or report.filled_quantity):
        return Applied(dropped=("a rejection with trades contradicts itself",))
    dropped: list[str] = []
    accepted = False
    before = order.state
    if order.exchange_order_id is None and report.exchange_order_id:
        order.exchange_order_id = report.exchange_order_id
    if before is _S.NEW and report.state is not _S.REJECTED:
        order.move_to(_S.SUBMITTED, at)  # NEW has no fills: always legal
        accepted = True
    booked: list[Fill] = []
    for fill in report.fills:
        try:
            if order.book_fill(fill):
                booked.append(fill)
        except InvalidFill as exc:
            dropped.append(str(exc))
    try:
        order.adopt_reported(report.filled_quantity, report.average_price)
    except InvalidFill as exc:
        dropped.append(str(exc))
    target = _target(order, report)
    if isinstance(target, str):
        dropped.append(f"{cid}: state dropped: {target}")
    elif target is not order.state:
        if rank(target) > rank(order.state) or order.state is _S.UNKNOWN:
            try:
                order.move_to(target, at)
            except (IllegalTransition, InvalidFill) as exc:
                dropped.append(str(exc))
        else:
            dropped.append(
                f"{cid}: stale state {report.state.value} dropped (order is {order.state.value})"
            )
    if report.state is not order.state and not isinstance(target, str):
        stale = f"{cid}: stale state {report.state.value} dropped (order is {order.state.value})"
        if stale not in dropped:
            dropped.append(stale)
    moved = order.state if order.state is not before else None
    if moved is _S.REJECTED:
        order.reject_reason = report.reason or "rejected by the exchange"
    if accepted and moved is _S.SUBMITTED:
        moved = None  # the acceptance says it
    return Applied(accepted=accepted, fills=tuple(booked), state=moved, dropped=tuple(dropped))
