"""The records an order is made of: its vocabulary, what is asked, what happened, what went wrong.

Sans-IO, no behaviour beyond validation. :class:`OrderSpec` is what a strategy asks for, the one
record the request, the reports, the events and the refusals are built from (no field-by-field
copies); :class:`Fill` is one execution as the exchange reported it. The state machine that moves
an order between :class:`OrderState` values is ``trading.core.orders``.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Final, TypedDict

import attrs

__all__ = [
    "Fill",
    "IllegalTransition",
    "InvalidFill",
    "OrderError",
    "OrderEventFields",
    "OrderRefused",
    "OrderSpec",
    "OrderState",
    "OrderType",
    "OrderUnresolved",
    "Side",
    "TimeInForce",
    "is_finite_decimal",
]


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buys, -1 for sells, so position arithmetic needs no branches."""
        return 1 if self is Side.BUY else -1


class OrderType(enum.Enum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(enum.Enum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderState(enum.Enum):
    NEW = "new"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        """Final orders can be forgotten; UNKNOWN ones must still be chased."""
        return self in _FINAL_STATES


_FINAL_STATES: Final = frozenset(
    {OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED, OrderState.EXPIRED}
)


class OrderError(Exception):
    """Base class, so the engine can catch every order-level problem at once."""


class OrderRefused(OrderError):
    """An order that must never reach the exchange; ``reason`` is user-facing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IllegalTransition(OrderError):
    """A move outside :data:`TRANSITIONS`: a bug, or events arriving out of order."""

    def __init__(self, client_order_id: str, from_state: OrderState, to_state: OrderState) -> None:
        # Keep the raw values in args so the exception pickles/copies cleanly.
        super().__init__(client_order_id, from_state, to_state)
        self.client_order_id = client_order_id
        self.from_state = from_state
        self.to_state = to_state

    def __str__(self) -> str:
        return (
            f"order {self.client_order_id!r}: illegal transition "
            f"{self.from_state.value} -> {self.to_state.value}"
        )


class InvalidFill(OrderError):
    """Fill data that cannot be true for this order.

    Wrong order, symbol or side; an overfill; a trade id resent with different
    numbers; or a reconciliation report whose filled quantity contradicts the
    state it claims. Raised instead of guessing, because a wrong guess here
    corrupts positions and cash.
    """


# ------------------------------------------------------------------------ records


def is_finite_decimal(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite()


@attrs.frozen(kw_only=True)
class Fill:
    """One execution, as the exchange reported it.

    Keyword-only because ``quantity``, ``price`` and ``fee`` are all Decimals
    and a positional swap would type-check and silently corrupt the books.
    ``fee`` is the commission as the exchange charged it, in ``fee_asset``: the quote
    currency, the base asset (Binance's buys without BNB) or a third asset (BNB); the ledger
    debits it from that asset (see ``trading.core.ledger``). ``trade_id`` is the idempotency key.
    """

    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    time: float
    trade_id: str

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.side, Side):
            raise InvalidFill(f"fill side must be a Side, got {self.side!r}")
        for name in ("quantity", "price"):
            value = getattr(self, name)
            if not is_finite_decimal(value) or value <= 0:
                raise InvalidFill(f"fill {name} must be a finite Decimal > 0, got {value!r}")
        if not is_finite_decimal(self.fee):
            raise InvalidFill(f"fill fee must be a finite Decimal, got {self.fee!r}")
        if not self.trade_id:
            raise InvalidFill("fill trade_id must not be empty (it is the idempotency key)")


class OrderUnresolved(OrderError):
    """The exchange could not tell an order's fate before the deadline.

    The order stays ``unknown`` and the engine keeps reconciling it by client order id in the
    background; it is never re-sent.
    """


class OrderEventFields(TypedDict):
    """The fields every ``OrderEvent`` takes from the order's spec."""

    client_order_id: str
    symbol: str
    side: str
    order_type: str
    quantity: Decimal
    price: Decimal | None


@attrs.frozen(slots=True, kw_only=True)
class OrderSpec:
    """What an order asks for, and nothing that changes: the exchange request is this record, and
    reports, events and refusals are built from it.

    Not validated (a refusal must be describable even when the quantity could not be read);
    :class:`~trading.core.orders.Order` validates.
    """

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC

    def event_fields(self) -> OrderEventFields:
        """The fields every ``OrderEvent`` carries, in the events' own (text) vocabulary."""
        return {
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side.value,
            "order_type": self.type.value,
            "quantity": self.quantity,
            "price": self.price,
        }
