"""Per-strategy risk limits and the pre-trade checks that enforce them.

Core module: no trio, no IO. Every check runs *before* anything is sent, and returns the reason an
order is refused in words an operator can act on, or None. Exposure arithmetic is signed: a long
position is positive, a short one negative; an order "reduces" only if it moves the position
towards zero without crossing it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs

__all__ = ["RiskLimits", "check_order", "daily_loss_breached", "reduces_exposure"]


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not (isinstance(value, int | Decimal) and value > 0):
        raise ValueError(f"{attribute.name} must be a positive number or None, not {value!r}")


@attrs.frozen(slots=True)
class RiskLimits:
    """Limits for one strategy; None disables a limit.

    ``max_daily_loss`` is in the quote currency, counted from 00:00 UTC of the runner clock's day
    (realised + unrealised PnL − fees); breaching it pauses the strategy and notifies.
    """

    max_order_notional: Decimal | None = attrs.field(default=None, validator=_positive_or_none)
    max_open_orders: int | None = attrs.field(default=None, validator=_positive_or_none)
    max_daily_loss: Decimal | None = attrs.field(default=None, validator=_positive_or_none)
    cancel_open_orders_on_stop: bool = True
    flatten_on_stop: bool = False


def reduces_exposure(position: Decimal, signed_quantities: Iterable[Decimal]) -> bool:
    """Whether applying all ``signed_quantities`` leaves the position no larger and not flipped."""
    after = position + sum(signed_quantities, Decimal(0))
    if after == 0:
        return True
    same_side = (after > 0) == (position > 0) and position != 0
    return same_side and abs(after) <= abs(position)


def check_order(
    limits: RiskLimits,
    *,
    notional: Decimal | None,
    open_orders: int,
    reduce_only: bool,
    position: Decimal,
    pending: Iterable[Decimal],
    signed_quantity: Decimal,
) -> str | None:
    """The reason to refuse this order, or None. ``pending`` are the signed remaining quantities
    of the strategy's open orders in the same symbol, so two reduce-only exits cannot together
    flip a position."""
    if reduce_only and not reduces_exposure(position, [*pending, signed_quantity]):
        return (
            f"reduce-only is on: this order would take the position from {position} "
            f"to {position + sum(pending, Decimal(0)) + signed_quantity}; only exits are allowed"
        )
    if limits.max_open_orders is not None and open_orders >= limits.max_open_orders:
        return f"max_open_orders: already {open_orders} open (limit {limits.max_open_orders})"
    if (
        limits.max_order_notional is not None
        and notional is not None
        and notional > limits.max_order_notional
    ):
        return (
            f"max_order_notional: order worth {notional:.2f} is above the limit "
            f"{limits.max_order_notional}"
        )
    return None


def daily_loss_breached(limits: RiskLimits, pnl_today: Decimal) -> bool:
    return limits.max_daily_loss is not None and pnl_today < -limits.max_daily_loss
