"""Frozen event records: what happened, when, to which strategy.

Core module: no trio, no IO. Events are the one record of a run: observers (log, database,
notifiers) see nothing else, so every fact an operator may ask about later is an event here.
``time`` is the runner clock's epoch seconds (virtual in replay and tests).
"""

from __future__ import annotations

from decimal import Decimal

import attrs

__all__ = [
    "BarsSkipped",
    "CommandHandled",
    "Event",
    "OrderAccepted",
    "OrderCancelled",
    "OrderEvent",
    "OrderFilled",
    "OrderPartiallyFilled",
    "OrderReconciled",
    "OrderRejected",
    "OrderSubmitted",
    "OrderUnknown",
    "PositionSnapshot",
    "Recovered",
    "RiskBreached",
    "StrategyError",
    "StrategyFailed",
    "StrategyStateChanged",
    "describe",
]


@attrs.frozen(slots=True)
class Event:
    time: float
    strategy: str


@attrs.frozen(slots=True)
class StrategyStateChanged(Event):
    old: str
    new: str
    reason: str = ""


@attrs.frozen(slots=True)
class CommandHandled(Event):
    """The audit trail: every command, where it came from, and the reply it got."""

    command: str
    source: str
    ok: bool
    message: str


@attrs.frozen(slots=True)
class StrategyFailed(Event):
    """Strategy code raised. ``restart_in`` is None when the restart budget is spent."""

    phase: str
    error: str
    traceback: str
    failures: int
    restart_in: float | None


@attrs.frozen(slots=True)
class BarsSkipped(Event):
    """Bar closes a strategy did not compute (DESIGN rule 3: never silently).

    ``count`` closes from ``first`` to ``last`` (epoch seconds, strategy clock) passed without a
    compute: a compute or a command ran past them (``reason`` "busy"; the latest passed close is
    then computed at once), the strategy was paused, or it was failed or restarting."""

    count: int
    first: float
    last: float
    reason: str


# Deprecated name (before issue 6); kept so older code and other branches still import it.
StrategyError = StrategyFailed


@attrs.frozen(slots=True)
class OrderEvent(Event):
    """Something happened to one order. Prices and quantities are Decimal, as on the exchange."""

    client_order_id: str
    symbol: str
    side: str
    order_type: str
    quantity: Decimal
    price: Decimal | None


@attrs.frozen(slots=True)
class OrderSubmitted(OrderEvent):
    """Sent to the exchange (in flight); the outcome follows as another event."""


@attrs.frozen(slots=True)
class OrderAccepted(OrderEvent):
    exchange_order_id: str


@attrs.frozen(slots=True)
class OrderPartiallyFilled(OrderEvent):
    """One fill that leaves part of the order open. ``fill_*`` describe this fill alone."""

    trade_id: str
    fill_quantity: Decimal
    fill_price: Decimal
    fee: Decimal
    fee_asset: str
    filled_quantity: Decimal


@attrs.frozen(slots=True)
class OrderFilled(OrderPartiallyFilled):
    """The fill that completes the order."""


@attrs.frozen(slots=True)
class OrderCancelled(OrderEvent):
    filled_quantity: Decimal
    reason: str = ""


@attrs.frozen(slots=True)
class OrderRejected(OrderEvent):
    """Refused before sending (``sent`` False: validation or risk) or by the exchange."""

    reason: str
    sent: bool


@attrs.frozen(slots=True)
class OrderUnknown(OrderEvent):
    """A state-changing call passed its deadline: the order is being reconciled by client id."""

    reason: str


@attrs.frozen(slots=True)
class OrderReconciled(OrderEvent):
    """What the exchange said about an order we had lost track of."""

    state: str
    filled_quantity: Decimal


@attrs.frozen(slots=True)
class PositionSnapshot(Event):
    """A strategy's position in one symbol after a fill (and at stop), marked at ``mark_price``."""

    symbol: str
    quantity: Decimal
    average_price: Decimal
    mark_price: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    fees: Decimal


@attrs.frozen(slots=True)
class RiskBreached(Event):
    """A risk rule refused an order or tripped the kill switch; ``action`` says what was done."""

    rule: str
    detail: str
    action: str


@attrs.frozen(slots=True)
class Recovered(Event):
    """What a restart found of a strategy's earlier runs and took over (crash recovery).

    ``restored_fills`` fills were replayed from the database into the books; ``adopted_orders``
    (client ids) were open on the exchange and are tracked again; ``booked_trades``
    (``SYMBOL:trade_id``) had happened on the exchange but were missing from the database (a
    crash lost them, or they happened while nothing ran) and were booked now, once;
    ``closed_orders`` (``client_id state``) are final on the exchange but were open, or missing,
    in the database (they are recorded final now); ``unresolved_orders`` the exchange did not
    know (yet): they are reconciled in the background; ``left_alone`` open orders on the
    exchange that are not this strategy's (another strategy's, or not placed by trio-trade).
    ``positions`` are (symbol, quantity) afterwards.
    """

    restored_fills: int
    adopted_orders: tuple[str, ...]
    booked_trades: tuple[str, ...]
    closed_orders: tuple[str, ...]
    unresolved_orders: tuple[str, ...]
    left_alone: tuple[str, ...]
    positions: tuple[tuple[str, Decimal], ...]


def describe(event: Event) -> str:
    """One readable line per event, for logs and console notifiers."""
    who = event.strategy or "runner"
    if isinstance(event, StrategyStateChanged):
        why = f" ({event.reason})" if event.reason else ""
        return f"{who}: {event.old} -> {event.new}{why}"
    if isinstance(event, CommandHandled):
        verdict = "ok" if event.ok else "error"
        return f"{who}: command {event.command!r} from {event.source}: {verdict}: {event.message}"
    if isinstance(event, StrategyFailed):
        then = "gave up" if event.restart_in is None else f"restart in {event.restart_in:g}s"
        return f"{who}: failed in {event.phase} ({event.error}); failure {event.failures}, {then}"
    if isinstance(event, BarsSkipped):
        return f"{who}: {event.count} bar close(s) not computed ({event.reason})"
    if isinstance(event, OrderFilled | OrderPartiallyFilled):
        word = "filled" if isinstance(event, OrderFilled) else "partially filled"
        return (
            f"{who}: {event.side} {event.fill_quantity} {event.symbol} @ {event.fill_price} "
            f"{word} ({event.client_order_id}, fee {event.fee} {event.fee_asset})"
        )
    if isinstance(event, OrderRejected):
        where = "exchange" if event.sent else "pre-trade check"
        return f"{who}: order {event.client_order_id} rejected by {where}: {event.reason}"
    if isinstance(event, OrderEvent):
        price = "market" if event.price is None else f"@ {event.price}"
        kind = type(event).__name__.removeprefix("Order").lower()
        order = f"{event.side} {event.quantity} {event.symbol} {price}"
        return f"{who}: {kind} {order} ({event.client_order_id})"
    if isinstance(event, PositionSnapshot):
        return (
            f"{who}: position {event.symbol} {event.quantity} avg {event.average_price}, "
            f"realised {event.realised_pnl}, unrealised {event.unrealised_pnl}, fees {event.fees}"
        )
    if isinstance(event, RiskBreached):
        return f"{who}: risk {event.rule}: {event.detail}; {event.action}"
    if isinstance(event, Recovered):
        held = ", ".join(f"{s} {q}" for s, q in event.positions if q) or "flat"
        return (
            f"{who}: recovered {event.restored_fills} recorded fill(s); positions {held}; "
            f"adopted {len(event.adopted_orders)} open order(s), booked "
            f"{len(event.booked_trades)} missed trade(s), closed {len(event.closed_orders)}, "
            f"unresolved {len(event.unresolved_orders)}, left alone {len(event.left_alone)}"
        )
    return f"{who}: {event!r}"
