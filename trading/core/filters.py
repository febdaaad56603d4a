"""A symbol's trading rules (Binance's filters), applied before an order is sent: round, then
validate.

Sans-IO, Decimal only. The rules this module keeps (Binance's ``filters.md``; a rule whose value
is 0 is off):

* LOT_SIZE: the quantity is rounded *down* to a multiple of ``stepSize`` (never buy or sell more
  than asked) and must then be at least ``minQty`` and above zero.
* PRICE_FILTER: a limit price is rounded to a multiple of ``tickSize`` toward the less aggressive
  side: a buy down, a sell up (never pay more, or accept less, than asked).
* NOTIONAL / MIN_NOTIONAL: ``price × quantity`` must be at least ``minNotional``; a market order
  uses the reference price it is given (the last price); without one its notional is left to the
  exchange to check (it answers -1013, a clean rejection).
* A breach raises :class:`FilterError` (an ``OrderRefused``: the order never reaches the
  exchange) naming the filter, the value and the limit. Non-finite or non-positive input is a
  breach too, never an arithmetic exception.
"""

from __future__ import annotations

from decimal import Decimal, DecimalException, Inexact, localcontext

import attrs

from trading.core.records import OrderRefused, OrderSpec, OrderType, Side

__all__ = ["FilterError", "SymbolInfo", "apply_filters", "round_price", "round_quantity"]


@attrs.frozen(slots=True)
class SymbolInfo:
    """Trading rules of one symbol, as Binance's exchangeInfo filters give them (0 = no rule)."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal = Decimal(0)
    step_size: Decimal = Decimal(0)
    min_quantity: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)


class FilterError(OrderRefused):
    """An order the symbol's filters refuse; ``filter``, ``value`` and ``limit`` say which."""

    def __init__(self, filter_name: str, value: Decimal, limit: Decimal, why: str) -> None:
        super().__init__(f"{filter_name}: {why} (value {value}, limit {limit})")
        self.filter = filter_name
        self.value = value
        self.limit = limit


def _to_multiple(value: Decimal, step: Decimal, up: bool, filter_name: str) -> Decimal:
    """``value`` on the ``step`` grid, exactly (an inexact result is refused, never rounded the
    wrong way)."""
    if step <= 0:
        return value
    try:
        if not value % step:
            return value  # already on the grid: as given (no trailing zeros added)
    except DecimalException:
        pass
    try:
        with localcontext() as ctx:
            ctx.prec = 60
            ctx.traps[Inexact] = True
            units = value // step  # exact (or DivisionImpossible); both positive: the floor
            if up and value % step:
                units += 1
            return units * step
    except DecimalException:
        raise FilterError(
            filter_name, value, step, "too many digits to put on the step grid exactly"
        ) from None


def _finite_positive(value: object, filter_name: str, what: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        shown = value if isinstance(value, Decimal) else Decimal(0)
        raise FilterError(filter_name, shown, Decimal(0), f"{what} must be a finite number above 0")
    return value


def round_quantity(quantity: Decimal, info: SymbolInfo) -> Decimal:
    """``quantity`` rounded down to ``stepSize`` (unchanged when the step is 0)."""
    quantity = _finite_positive(quantity, "LOT_SIZE", "quantity")
    return _to_multiple(quantity, info.step_size, False, "LOT_SIZE")


def round_price(price: Decimal, side: Side, info: SymbolInfo) -> Decimal:
    """``price`` on the tick grid, toward the less aggressive side: a buy down, a sell up."""
    price = _finite_positive(price, "PRICE_FILTER", "price")
    return _to_multiple(price, info.tick_size, side is Side.SELL, "PRICE_FILTER")


def apply_filters(
    spec: OrderSpec, info: SymbolInfo, *, reference_price: Decimal | None = None
) -> OrderSpec:
    """The spec with quantity and (limit) price rounded, after checking every filter.

    Raises FilterError naming the first filter the rounded order breaks; nothing is sent then.
    ``reference_price`` prices a market order's notional (ignored for limit orders).
    """
    quantity = round_quantity(spec.quantity, info)
    if quantity <= 0 or quantity < info.min_quantity:
        raise FilterError(
            "LOT_SIZE",
            quantity,
            max(info.min_quantity, info.step_size),
            f"quantity {spec.quantity} rounds down to {quantity}, below the minimum",
        )
    price = spec.price
    if spec.type is OrderType.LIMIT:
        if price is None:
            raise FilterError(
                "PRICE_FILTER", Decimal(0), info.tick_size, "a limit order needs a price"
            )
        price = round_price(price, spec.side, info)
        if price <= 0:
            raise FilterError("PRICE_FILTER", price, info.tick_size, "price rounds to zero")
        notional_price: Decimal | None = price
    else:
        if reference_price is not None:
            reference_price = _finite_positive(reference_price, "NOTIONAL", "reference price")
        notional_price = reference_price
    if notional_price is not None and info.min_notional > 0:
        notional = quantity * notional_price
        if notional < info.min_notional:
            raise FilterError(
                "NOTIONAL",
                notional,
                info.min_notional,
                f"{quantity} x {notional_price} is below the minimum notional",
            )
    return attrs.evolve(spec, quantity=quantity, price=price)
