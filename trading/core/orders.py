"""The order state machine, and the records that drive it.

Everything that affects an order's lifecycle lives here, and nothing else does.
The rules this module keeps:

* An order's state changes only through ``Order``'s ``mark_*``, ``apply_fill``
  and ``reconcile`` methods, and every one of them consults :data:`TRANSITIONS`,
  the single table of legal moves. A move that is not in the table raises
  :class:`IllegalTransition`; any failed call leaves the order untouched.
* Final states (filled, cancelled, rejected, expired) never change. ``UNKNOWN``
  is *not* final: it means we lost track mid-flight (a timeout, a dropped
  connection) and must reconcile with the exchange by client order id.
* Fills are idempotent by ``trade_id``, because exchanges resend them, and an
  order is never filled beyond its quantity; filled quantity never decreases.
* Prices, quantities, fees and money are :class:`~decimal.Decimal`, never
  float. Times are epoch seconds handed in by the caller.
* No IO, no clock, no event loop: the engine feeds events in and reads state
  out, so every rule here is testable without Trio.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Final

import attrs

__all__ = [
    "CLIENT_ORDER_ID_RE",
    "TRANSITIONS",
    "ClientOrderIdParts",
    "Fill",
    "IllegalTransition",
    "InvalidFill",
    "Order",
    "OrderError",
    "OrderRefused",
    "OrderState",
    "OrderType",
    "Side",
    "TimeInForce",
    "can_transition",
    "new_client_order_id",
    "parse_client_order_id",
    "strategy_of",
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

_S = OrderState

#: The one table of legal moves: state -> states it may move to. Read-only so
#: that nothing can quietly widen the state machine at runtime.
TRANSITIONS: Final[Mapping[OrderState, frozenset[OrderState]]] = MappingProxyType(
    {
        _S.NEW: frozenset({_S.SUBMITTED, _S.REJECTED, _S.UNKNOWN}),
        _S.SUBMITTED: frozenset(
            {
                _S.PARTIALLY_FILLED,
                _S.FILLED,
                _S.CANCELLED,
                _S.REJECTED,
                _S.EXPIRED,
                _S.UNKNOWN,
            }
        ),
        _S.PARTIALLY_FILLED: frozenset(
            {_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.EXPIRED, _S.UNKNOWN}
        ),
        # Reconciliation: the exchange tells us where the order really is.
        _S.UNKNOWN: frozenset(
            {
                _S.SUBMITTED,
                _S.PARTIALLY_FILLED,
                _S.FILLED,
                _S.CANCELLED,
                _S.REJECTED,
                _S.EXPIRED,
            }
        ),
        _S.FILLED: frozenset(),
        _S.CANCELLED: frozenset(),
        _S.REJECTED: frozenset(),
        _S.EXPIRED: frozenset(),
    }
)


def can_transition(from_state: OrderState, to_state: OrderState) -> bool:
    """Let callers ask before acting, instead of catching IllegalTransition."""
    return to_state in TRANSITIONS[from_state]


# --------------------------------------------------------------------------- errors


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


# ---------------------------------------------------------------- client order ids

#: Binance's ``newClientOrderId`` rule. Use ``fullmatch``: ``$`` alone would
#: accept a trailing newline.
CLIENT_ORDER_ID_RE: Final = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_MAX_ID_LEN: Final = 36
_SEQ_WIDTH: Final = 6
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9]{1,8}")
_UNSAFE_CHAR_RE: Final = re.compile(r"[^.A-Za-z0-9:/_-]")
_PARSE_RE: Final = re.compile(
    r"(?P<prefix>[A-Za-z0-9]{1,8})-(?P<strategy>[.A-Za-z0-9:/_-]+)"
    rf"-(?P<seq>[0-9]{{{_SEQ_WIDTH},}})-(?P<run>[A-Za-z0-9]{{1,8}})"
)


@attrs.frozen
class ClientOrderIdParts:
    """What a client order id says about where an order came from.

    Lets reconciliation after a restart tell our orders (and which run and
    strategy placed them) from ones placed by hand or by another bot.
    """

    prefix: str
    strategy: str
    seq: int
    run: str


def new_client_order_id(strategy: str, seq: int, run: str, *, prefix: str = "tt") -> str:
    """Build an id that is unique, names its strategy and the exchange accepts.

    Layout: ``{prefix}-{strategy}-{seq:06d}-{run}``, e.g.
    ``tt-sma_cross-000017-k3x9``.

    * ``seq`` must be unique within a run *across all strategies* (use one
      process-wide counter): the id is unique because ``(seq, run)`` is, since
      the strategy part may be sanitised or truncated into a collision.
    * ``run`` is a short per-process nonce (1-8 ASCII letters/digits, e.g.
      ``secrets.token_hex(2)``) so that a restarted process, whose ``seq``
      starts again at 0, never reuses an id -- Binance would reject the
      duplicate, or worse, reconciliation would match the wrong order.
    * ``strategy`` is sanitised (characters Binance refuses become ``_``) and
      truncated to whatever room is left; it is the only part that gives way,
      so the id always matches :data:`CLIENT_ORDER_ID_RE`.

    Raises ValueError for a negative ``seq``, a malformed ``run``/``prefix``,
    or a ``seq`` so large that no room is left for the strategy.
    """
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ValueError(f"seq must be an int >= 0, got {seq!r}")
    if not _TOKEN_RE.fullmatch(run):
        raise ValueError(f"run must be 1-8 ASCII letters/digits, got {run!r}")
    if not _TOKEN_RE.fullmatch(prefix):
        raise ValueError(f"prefix must be 1-8 ASCII letters/digits, got {prefix!r}")
    seq_text = f"{seq:0{_SEQ_WIDTH}d}"
    room = _MAX_ID_LEN - len(prefix) - len(seq_text) - len(run) - 3
    if room < 1:
        raise ValueError(f"seq {seq} leaves no room for the strategy name")
    name = _UNSAFE_CHAR_RE.sub("_", strategy)[:room] or "_"
    return f"{prefix}-{name}-{seq_text}-{run}"


def parse_client_order_id(client_order_id: str) -> ClientOrderIdParts | None:
    """Split one of our ids into its parts; None for ids we did not make."""
    match = _PARSE_RE.fullmatch(client_order_id)
    if match is None:
        return None
    return ClientOrderIdParts(
        prefix=match["prefix"],
        strategy=match["strategy"],
        seq=int(match["seq"]),
        run=match["run"],
    )


def strategy_of(client_order_id: str) -> str | None:
    """Recover the (possibly sanitised/truncated) strategy name from an id."""
    parts = parse_client_order_id(client_order_id)
    return None if parts is None else parts.strategy


# ------------------------------------------------------------------------ records


def _is_decimal(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite()


@attrs.frozen(kw_only=True)
class Fill:
    """One execution, as the exchange reported it.

    Keyword-only because ``quantity``, ``price`` and ``fee`` are all Decimals
    and a positional swap would type-check and silently corrupt the books.
    ``fee`` is always expressed in the symbol's *quote* currency (convert it if
    the exchange charged BNB or the base asset); ``fee_asset`` records what was
    actually charged, for audit. ``trade_id`` is the idempotency key.
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
            if not _is_decimal(value) or value <= 0:
                raise InvalidFill(f"fill {name} must be a finite Decimal > 0, got {value!r}")
        if not _is_decimal(self.fee):
            raise InvalidFill(f"fill fee must be a finite Decimal, got {self.fee!r}")
        if not self.trade_id:
            raise InvalidFill("fill trade_id must not be empty (it is the idempotency key)")


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
        if not _is_decimal(self.filled_quantity) or not (
            0 <= self.filled_quantity <= self.quantity
        ):
            raise OrderRefused(
                f"filled_quantity must be between 0 and quantity, got {self.filled_quantity!r}"
            )
        if self.filled_quantity > 0:
            if self.average_fill_price is None:
                raise OrderRefused("average_fill_price is required once filled_quantity > 0")
            self._notional = self.average_fill_price * self.filled_quantity

    # ------------------------------------------------------------------ queries

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
        """Record an execution; a trade id seen before is a no-op.

        A fill on an UNKNOWN order is legal: it proves the exchange has it.
        A fill on a NEW order is not: acknowledge it with ``mark_submitted``
        first (a market order's ack and its fills arrive in one response).
        """
        if fill.client_order_id != self.client_order_id:
            raise InvalidFill(
                f"fill {fill.trade_id!r} is for client order id {fill.client_order_id!r}, "
                f"not {self.client_order_id!r}"
            )
        if fill.symbol != self.symbol:
            raise InvalidFill(
                f"fill {fill.trade_id!r} symbol {fill.symbol!r} != order symbol {self.symbol!r}"
            )
        if fill.side is not self.side:
            raise InvalidFill(
                f"fill {fill.trade_id!r} side {fill.side.value} != order side {self.side.value}"
            )
        for seen in self.fills:
            if seen.trade_id == fill.trade_id:
                if (seen.quantity, seen.price, seen.fee) != (fill.quantity, fill.price, fill.fee):
                    raise InvalidFill(
                        f"order {self.client_order_id!r}: trade {fill.trade_id!r} resent "
                        f"with different quantity/price/fee"
                    )
                return
        filled = self.filled_quantity + fill.quantity
        target = OrderState.FILLED if filled >= self.quantity else OrderState.PARTIALLY_FILLED
        self._require(target)
        if filled > self.quantity:
            raise InvalidFill(
                f"order {self.client_order_id!r}: fill {fill.trade_id!r} of {fill.quantity} "
                f"would fill {filled} of {self.quantity}"
            )
        notional = self._notional + fill.quantity * fill.price
        average = notional / filled
        fees = self.fees + fill.fee
        # Everything that can raise has run: commit.
        self.state = target
        self.filled_quantity = filled
        self._notional = notional
        self.average_fill_price = average
        self.fees = fees
        self.fills.append(fill)
        self.updated_at = max(self.updated_at, fill.time)

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
        """Adopt what the exchange reports, within the transition table.

        ``filled_quantity`` is the exchange's cumulative figure and may not be
        below what we have already seen (that report is stale). If it is
        *above*, the extra trades are adopted without their trade ids, so a
        later ``apply_fill`` for one of them would count it again: apply the
        exchange's trades first, then reconcile the state. ``average_price`` is
        required when anything is filled and ignored otherwise; when the
        reported quantity equals ours, our own fill-based average is kept.
        """
        self._require(state)
        if not _is_decimal(filled_quantity) or not (
            self.filled_quantity <= filled_quantity <= self.quantity
        ):
            raise InvalidFill(
                f"order {self.client_order_id!r}: reported filled quantity "
                f"{filled_quantity!r} is outside [{self.filled_quantity}, {self.quantity}]"
            )
        self._require_consistent(state, filled_quantity)
        notional = self._notional
        average = self.average_fill_price
        if filled_quantity > self.filled_quantity:
            if average_price is None or not _is_decimal(average_price) or average_price <= 0:
                raise InvalidFill(
                    f"order {self.client_order_id!r}: reported fills need an "
                    f"average price > 0, got {average_price!r}"
                )
            notional = average_price * filled_quantity
            average = average_price
        self.state = state
        self.filled_quantity = filled_quantity
        self._notional = notional
        self.average_fill_price = average
        if state is OrderState.REJECTED and self.reject_reason is None:
            self.reject_reason = "rejected (reported by reconciliation)"
        self.updated_at = at

    # ---------------------------------------------------------------- internals

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
