"""The order state machine, and the records that drive it.

Everything that affects an order's lifecycle lives here, and nothing else does.
The rules this module keeps:

* An order's state changes only through ``Order``'s methods (``mark_*``,
  ``apply_fill``, ``reconcile``, ``move_to``), and every one of them consults
  :data:`TRANSITIONS`, the single table of legal moves. A move that is not in
  the table raises :class:`IllegalTransition`; a failed call changes nothing.
* Final states (filled, cancelled, rejected, expired) never change. ``UNKNOWN``
  is *not* final: it means we lost track mid-flight (a timeout, a dropped
  connection) and must reconcile with the exchange by client order id.
* Fills are idempotent by ``trade_id``, because exchanges resend them, and an
  order is never filled beyond its quantity; filled quantity never decreases.
  ``book_fill`` and ``adopt_reported`` record fills without moving the state:
  ``trading.core.updates`` uses them for updates that arrive out of order.
* Prices, quantities, fees and money are :class:`~decimal.Decimal`, never
  float. Times are epoch seconds handed in by the caller.
* No IO, no clock, no event loop: the engine feeds events in and reads state
  out, so every rule here is testable without Trio.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Final

import attrs

from trading.core.ids import CLIENT_ORDER_ID_RE
from trading.core.records import (
    Fill,
    IllegalTransition,
    InvalidFill,
    OrderError,
    OrderRefused,
    OrderSpec,
    OrderState,
    OrderType,
    OrderUnresolved,
    Side,
    TimeInForce,
    is_finite_decimal,
)

# The records are re-exported: ``from trading.core.orders import Fill`` keeps working. Client
# order ids live in :mod:`trading.core.ids`.
__all__ = [
    "TRANSITIONS",
    "Fill",
    "IllegalTransition",
    "InvalidFill",
    "Order",
    "OrderError",
    "OrderRefused",
    "OrderSpec",
    "OrderState",
    "OrderType",
    "OrderUnresolved",
    "Side",
    "TimeInForce",
    "can_transition",
]

_S = OrderState

_AFTER_ACK: Final = frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.EXPIRED})

#: The one table of legal moves: state -> states it may move to. Read-only so
#: that nothing can quietly widen the state machine at runtime.
TRANSITIONS: Final[Mapping[OrderState, frozenset[OrderState]]] = MappingProxyType(
    {
        _S.NEW: frozenset({_S.SUBMITTED, _S.REJECTED, _S.UNKNOWN}),
        _S.SUBMITTED: _AFTER_ACK | {_S.REJECTED, _S.UNKNOWN},
        _S.PARTIALLY_FILLED: _AFTER_ACK | {_S.UNKNOWN},
        # Reconciliation: the exchange tells us where the order really is.
        _S.UNKNOWN: _AFTER_ACK | {_S.SUBMITTED, _S.REJECTED},
        **{final: frozenset() for final in (_S.FILLED, _S.CANCELLED, _S.REJECTED, _S.EXPIRED)},
    }
)


def can_transition(from_state: OrderState, to_state: OrderState) -> bool:
    """Let callers ask before acting, instead of catching IllegalTransition."""
    return to_state in TRANSITIONS[from_state]


def _reject_unless_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, Decimal):
        raise OrderRefused(f"{name} must be a Decimal, got {type(value).__name__} {value!r}")
    if not value.is_finite() or value <= 0:
        raise OrderRefused(f"{name} must be > 0, got {value}")


def _default_updated_at(order: Order) -> float:
    return order.created_at


_frozen = attrs.setters.frozen


@attrs.define(kw_only=True)
class Order:
    """An order's evolving record.

    Mutable because an order *is* a sequence of updates; the identity fields
    (id, strategy, symbol, side, type, quantity, price, time in force) are
    frozen after construction so that only the lifecycle can move. Never assign
    ``state`` or the fill fields directly: go through the methods, which are
    the only code that consults :data:`TRANSITIONS`.

    The lifecycle fields are constructor arguments so an order can be restored
    from storage; a fresh order just leaves them at their defaults.
    ``average_fill_price`` follows the ambient decimal context and is
    informational; the exact books are kept by ``trading.core.ledger``.
    """

    client_order_id: str = attrs.field(on_setattr=_frozen)
    strategy: str = attrs.field(on_setattr=_frozen)
    symbol: str = attrs.field(on_setattr=_frozen)
    side: Side = attrs.field(on_setattr=_frozen)
    type: OrderType = attrs.field(on_setattr=_frozen)
    quantity: Decimal = attrs.field(on_setattr=_frozen)
    price: Decimal | None = attrs.field(default=None, on_setattr=_frozen)
    time_in_force: TimeInForce = attrs.field(default=TimeInForce.GTC, on_setattr=_frozen)
    state: OrderState = OrderState.NEW
    filled_quantity: Decimal = Decimal(0)
    average_fill_price: Decimal | None = None
    fees: Decimal = Decimal(0)
    exchange_order_id: str | None = None
    created_at: float
    updated_at: float = attrs.field(default=attrs.Factory(_default_updated_at, takes_self=True))
    reject_reason: str | None = None
    fills: list[Fill] = attrs.Factory(list)
    # Running sum of quantity * price, so the average never drifts by being
    # re-derived from an already-rounded average.
    _notional: Decimal = attrs.field(init=False, default=Decimal(0), repr=False)
    # What the fills with trade ids add up to; ``filled_quantity`` may be ahead of it when a
    # report gave only a cumulative figure (see ``adopt_reported``).
    _fill_quantity: Decimal = attrs.field(init=False, default=Decimal(0), repr=False)
    _fill_notional: Decimal = attrs.field(init=False, default=Decimal(0), repr=False)
    _spec: OrderSpec = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if not CLIENT_ORDER_ID_RE.fullmatch(self.client_order_id):
            raise OrderRefused(
                f"client_order_id {self.client_order_id!r} does not match "
                f"{CLIENT_ORDER_ID_RE.pattern}"
            )
        if not self.symbol:
            raise OrderRefused("symbol must not be empty")
        if not isinstance(self.side, Side):
            raise OrderRefused(f"side must be a Side, got {self.side!r}")
        if not isinstance(self.type, OrderType):
            raise OrderRefused(f"type must be an OrderType, got {self.type!r}")
        if not isinstance(self.time_in_force, TimeInForce):
            raise OrderRefused(f"time_in_force must be a TimeInForce, got {self.time_in_force!r}")
        _reject_unless_positive("quantity", self.quantity)
        if self.type is OrderType.LIMIT:
            if self.price is None:
                raise OrderRefused("limit order requires a price")
            _reject_unless_positive("price", self.price)
        elif self.price is not None:
            raise OrderRefused(f"market order must not have a price (got {self.price})")
        # Restored orders: refuse impossible fill data rather than carry it.
        if not is_finite_decimal(self.filled_quantity) or not (
            0 <= self.filled_quantity <= self.quantity
        ):
            raise OrderRefused(
                f"filled_quantity must be between 0 and quantity, got {self.filled_quantity!r}"
            )
        if self.filled_quantity > 0:
            if self.average_fill_price is None:
                raise OrderRefused("average_fill_price is required once filled_quantity > 0")
            self._notional = self.average_fill_price * self.filled_quantity
        for fill in self.fills:
            self._fill_quantity += fill.quantity
            self._fill_notional += fill.quantity * fill.price
        self._spec = OrderSpec(
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            type=self.type,
            quantity=self.quantity,
            price=self.price,
            time_in_force=self.time_in_force,
        )

    # ------------------------------------------------------------------ queries

    @property
    def spec(self) -> OrderSpec:
        """What was asked: the record requests, reports and events are built from."""
        return self._spec

    @property
    def unbooked_quantity(self) -> Decimal:
        """Filled quantity a report announced whose trades have not arrived yet."""
        return self.filled_quantity - self._fill_quantity

    @property
    def remaining_quantity(self) -> Decimal:
        return self.quantity - self.filled_quantity

    @property
    def is_open(self) -> bool:
        """Open orders still hold risk (and, if UNKNOWN, still need chasing)."""
        return not self.state.is_final

    @property
    def notional(self) -> Decimal | None:
        """What a limit order commits at most; unknowable for a market order."""
        if self.price is None:
            return None
        return self.quantity * self.price

    # ------------------------------------------------------------------ events

    def mark_submitted(self, exchange_order_id: str, at: float) -> None:
        """The exchange acknowledged the order (or reconciliation found it resting)."""
        self._require(OrderState.SUBMITTED)
        self._require_consistent(OrderState.SUBMITTED, self.filled_quantity)
        self.state = OrderState.SUBMITTED
        self.exchange_order_id = exchange_order_id
        self.updated_at = at

    def apply_fill(self, fill: Fill) -> None:
        """Record an execution and move the state with it; a trade id seen before is a no-op.

        A fill on an UNKNOWN order is legal: it proves the exchange has it.
        A fill on a NEW order is not: acknowledge it with ``mark_submitted``
        first (a market order's ack and its fills arrive in one response).
        Updates that may arrive out of order go through ``trading.core.updates``.
        """
        if self._seen(fill):
            return
        filled = self.filled_quantity + fill.quantity
        target = OrderState.FILLED if filled >= self.quantity else OrderState.PARTIALLY_FILLED
        self._require(target)
        self._check_room(fill, filled)
        self._commit_fill(fill, filled, self._notional + fill.quantity * fill.price)
        self.state = target

    def book_fill(self, fill: Fill) -> bool:
        """Record an execution without moving the state; False for a trade id seen before.

        For updates that arrive out of order: the fill happened, whatever state a stale or
        early report left the order in, so it is always counted (a late fill of a cancelled
        order included). ``filled_quantity`` becomes the larger of what the trades add up to
        and what a report already said (``adopt_reported``), so a trade that a cumulative
        report announced is not counted twice. Raises InvalidFill for another order's fill, a
        resent trade id with other numbers, or trades adding up past the quantity.
        """
        if self._seen(fill):
            return False
        fill_quantity = self._fill_quantity + fill.quantity
        self._check_room(fill, fill_quantity)
        if fill_quantity >= self.filled_quantity:  # the trades tell the whole story
            self._commit_fill(fill, fill_quantity, self._fill_notional + fill.quantity * fill.price)
        else:
            self._commit_fill(fill, self.filled_quantity, self._notional)
        return True

    def adopt_reported(self, filled_quantity: Decimal, average_price: Decimal | None) -> bool:
        """Take a report's cumulative filled quantity if it is ahead of ours; False if not.

        Reports without trade ids (a REST snapshot) can know of trades we have not seen; the
        trades themselves are booked when they arrive (``book_fill``). Raises InvalidFill for a
        figure past the quantity or one without a usable average price.
        """
        if filled_quantity <= self.filled_quantity:
            return False
        if not is_finite_decimal(filled_quantity) or filled_quantity > self.quantity:
            raise InvalidFill(
                f"order {self.client_order_id!r}: reported filled quantity {filled_quantity!r} "
                f"is past the quantity {self.quantity}"
            )
        if average_price is None or not is_finite_decimal(average_price) or average_price <= 0:
            raise InvalidFill(
                f"order {self.client_order_id!r}: reported fills need an average price > 0, "
                f"got {average_price!r}"
            )
        self.filled_quantity = filled_quantity
        self._notional = average_price * filled_quantity
        self.average_fill_price = average_price
        return True

    def move_to(self, state: OrderState, at: float) -> None:
        """Set the state after checking the table and what the state says about fills."""
        self._require(state)
        self._require_consistent(state, self.filled_quantity)
        self.state = state
        self.updated_at = max(self.updated_at, at)

    def mark_cancelled(self, at: float) -> None:
        self._require(OrderState.CANCELLED)
        self.state = OrderState.CANCELLED
        self.updated_at = at

    def mark_rejected(self, reason: str, at: float) -> None:
        self._require(OrderState.REJECTED)
        self._require_consistent(OrderState.REJECTED, self.filled_quantity)
        self.state = OrderState.REJECTED
        self.reject_reason = reason
        self.updated_at = at

    def mark_expired(self, at: float) -> None:
        self._require(OrderState.EXPIRED)
        self.state = OrderState.EXPIRED
        self.updated_at = at

    def mark_unknown(self, at: float) -> None:
        """We no longer know where the order is; reconcile before trusting it."""
        self._require(OrderState.UNKNOWN)
        self.state = OrderState.UNKNOWN
        self.updated_at = at

    def reconcile(
        self,
        state: OrderState,
        filled_quantity: Decimal,
        average_price: Decimal | None,
        at: float,
    ) -> None:
        """Adopt, strictly, the state and cumulative fill the exchange reports: a figure below
        ours (stale), past the quantity, contradicting ``state`` or without an average price for
        new fills raises InvalidFill, and nothing changes. Extra trades are adopted without their
        trade ids: apply the trades first (for out-of-order updates see ``trading.core.updates``).
        """
        self._require(state)
        if not is_finite_decimal(filled_quantity) or filled_quantity < self.filled_quantity:
            raise InvalidFill(
                f"order {self.client_order_id!r}: reported filled quantity {filled_quantity!r} "
                f"is below the {self.filled_quantity} already seen"
            )
        self._require_consistent(state, filled_quantity)
        self.adopt_reported(filled_quantity, average_price)  # raises before changing anything
        self.state = state
        if state is OrderState.REJECTED and self.reject_reason is None:
            self.reject_reason = "rejected (reported by reconciliation)"
        self.updated_at = at

    # ---------------------------------------------------------------- internals

    def _seen(self, fill: Fill) -> bool:
        """Check the fill belongs here; True if its trade id was already booked."""
        for name in ("client_order_id", "symbol", "side"):
            if getattr(fill, name) != getattr(self, name):
                raise InvalidFill(
                    f"fill {fill.trade_id!r} {name} {getattr(fill, name)!r} does not match "
                    f"order {self.client_order_id!r} ({getattr(self, name)!r})"
                )
        for seen in self.fills:
            if seen.trade_id == fill.trade_id:
                if (seen.quantity, seen.price, seen.fee) != (fill.quantity, fill.price, fill.fee):
                    raise InvalidFill(
                        f"order {self.client_order_id!r}: trade {fill.trade_id!r} resent "
                        f"with different quantity/price/fee"
                    )
                return True
        return False

    def _check_room(self, fill: Fill, filled: Decimal) -> None:
        if filled > self.quantity:
            raise InvalidFill(
                f"order {self.client_order_id!r}: fill {fill.trade_id!r} of {fill.quantity} "
                f"would fill {filled} of {self.quantity}"
            )

    def _commit_fill(self, fill: Fill, filled: Decimal, notional: Decimal) -> None:
        """Everything that can raise has run: book the fill."""
        self.average_fill_price = notional / filled
        self.filled_quantity = filled
        self._notional = notional
        self._fill_quantity += fill.quantity
        self._fill_notional += fill.quantity * fill.price
        self.fees += fill.fee
        self.fills.append(fill)
        self.updated_at = max(self.updated_at, fill.time)

    def _require(self, to_state: OrderState) -> None:
        if to_state not in TRANSITIONS[self.state]:
            raise IllegalTransition(self.client_order_id, self.state, to_state)

    def _require_consistent(self, state: OrderState, filled: Decimal) -> None:
        """Some states say how much is filled; refuse reports that disagree."""
        if state in (OrderState.NEW, OrderState.SUBMITTED, OrderState.REJECTED):
            ok = filled == 0
        elif state is OrderState.PARTIALLY_FILLED:
            ok = 0 < filled < self.quantity
        elif state is OrderState.FILLED:
            ok = filled == self.quantity
        else:  # CANCELLED, EXPIRED, UNKNOWN: any amount may have traded.
            ok = True
        if not ok:
            raise InvalidFill(
                f"order {self.client_order_id!r}: state {state.value} contradicts "
                f"filled quantity {filled} of {self.quantity}"
            )
