"""One symbol's position: signed quantity, exact cost basis, realised PnL and fees.

Split from ``trading.core.ledger`` (which keeps the books across symbols and cash); the rules are
the ledger's: average-cost accounting on a signed quantity, exact arithmetic (a decimal context
that raises instead of rounding), one bounded rounding where a share of the basis is released.
No IO, no clock, no event loop.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Final

import attrs

from trading.core.records import Fill, Side

__all__ = ["PortfolioError", "Position", "PositionSnapshot", "position_after"]


class PortfolioError(ValueError):
    """Input the books cannot absorb without guessing: unknown symbol, missing mark."""


ZERO: Final = Decimal(0)

# Wide enough for any real price * quantity; Inexact is trapped so that a value
# that *would* be rounded surfaces as an error instead of a silent mismatch.
EXACT: Final = decimal.Context(
    prec=80,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow, decimal.Inexact],
)

#: Decimal places kept when a division does not come out exact.
_DIVISION_PLACES: Final = 18
_DIVISION_QUANTUM: Final = Decimal(1).scaleb(-_DIVISION_PLACES)


def _divide(numerator: Decimal, denominator: Decimal) -> Decimal:
    """The only rounding in the books, bounded so later sums stay exact."""
    context = decimal.Context(
        prec=80,
        rounding=decimal.ROUND_HALF_EVEN,
        traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
    )
    quotient = context.divide(numerator, denominator)
    exponent = quotient.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -_DIVISION_PLACES:
        quotient = quotient.quantize(_DIVISION_QUANTUM, context=context)
    return quotient


def exact_error(what: str, error: decimal.DecimalException) -> PortfolioError:
    return PortfolioError(
        f"{what}: cannot be computed exactly ({type(error).__name__}); "
        "values are too large, too precise, or not finite"
    )


# ---------------------------------------------------------------------- positions


@attrs.define
class Position:
    """One symbol's open quantity, cost basis and PnL.

    ``cost_basis`` is signed like ``quantity`` (what was paid for a long, what
    was received for a short) and is exactly zero whenever the position is
    flat. Everything but ``symbol`` is keyword-only so four Decimals can't be
    passed in the wrong order when restoring from storage.
    """

    symbol: str
    quantity: Decimal = attrs.field(default=ZERO, kw_only=True)
    cost_basis: Decimal = attrs.field(default=ZERO, kw_only=True)
    realised_pnl: Decimal = attrs.field(default=ZERO, kw_only=True)
    fees: Decimal = attrs.field(default=ZERO, kw_only=True)

    def __attrs_post_init__(self) -> None:
        for name in ("quantity", "cost_basis", "realised_pnl", "fees"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise PortfolioError(f"position {name} must be a finite Decimal, got {value!r}")
        if self.quantity == 0 and self.cost_basis != 0:
            raise PortfolioError("a flat position cannot carry a cost basis")
        if self.quantity * self.cost_basis < 0:
            raise PortfolioError("cost basis must have the same sign as quantity")

    @property
    def is_flat(self) -> bool:
        return self.quantity == 0

    @property
    def average_price(self) -> Decimal:
        """Derived from the exact cost basis; 0 when flat, positive for shorts too."""
        if self.quantity == 0:
            return ZERO
        return _divide(self.cost_basis, self.quantity)

    @property
    def net_realised_pnl(self) -> Decimal:
        """Realised PnL after fees: what closed trades actually earned."""
        with decimal.localcontext(EXACT):
            return self.realised_pnl - self.fees

    def unrealised_pnl(self, mark_price: Decimal) -> Decimal:
        """What closing at ``mark_price`` would add to realised PnL (before fees)."""
        try:
            with decimal.localcontext(EXACT):
                return self.quantity * mark_price - self.cost_basis
        except decimal.DecimalException as error:
            raise exact_error(f"{self.symbol} unrealised PnL", error) from error

    def market_value(self, mark_price: Decimal) -> Decimal:
        """Signed: a short is worth a negative amount of quote currency."""
        try:
            with decimal.localcontext(EXACT):
                return self.quantity * mark_price
        except decimal.DecimalException as error:
            raise exact_error(f"{self.symbol} market value", error) from error

    def apply_fill(self, fill: Fill) -> None:
        """Book one fill; all-or-nothing, so a failure leaves the position as it was.

        Not idempotent on its own: ``Portfolio.apply_fill`` de-duplicates by
        trade id before it gets here.
        """
        if fill.symbol != self.symbol:
            raise PortfolioError(
                f"fill {fill.trade_id!r} for {fill.symbol!r} applied to position {self.symbol!r}"
            )
        self.quantity, self.cost_basis, self.realised_pnl, self.fees = position_after(self, fill)


def position_after(
    position: Position, fill: Fill, base: str | None = None, quote: str | None = None
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """Average-cost accounting for one fill, computed without touching ``position``.

    ``fill.fee`` is in ``fill.fee_asset``, as the exchange charged it. In the quote asset (or
    when ``quote`` is not given) it is a fee as it stands. In the ``base`` asset (Binance's buys
    without BNB) the exchange kept part of what was bought: the position shrinks by that
    quantity, booked as a sale at the fill's price whose proceeds are the fee, so the identity
    ``realised + unrealised - fees == cash change + quantity * mark`` still holds. In any other
    asset (BNB) the fee is not the position's: the portfolio debits that asset's balance.
    """
    quantity, basis, realised, fees = _trade(position, fill)
    if quote is not None and fill.fee_asset not in (quote, base):
        return quantity, basis, realised, position.fees
    if base is not None and fill.fee_asset == base and fill.fee != 0:
        kept = Position(
            position.symbol,
            quantity=quantity,
            cost_basis=basis,
            realised_pnl=realised,
            fees=position.fees,
        )
        try:
            with decimal.localcontext(EXACT):
                value = fill.fee * fill.price
        except decimal.DecimalException as error:
            raise exact_error(f"fill {fill.trade_id!r} fee", error) from error
        withheld = attrs.evolve(fill, side=Side.SELL, quantity=fill.fee, fee=value)
        return _trade(kept, withheld)
    return quantity, basis, realised, fees


def _trade(position: Position, fill: Fill) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    try:
        with decimal.localcontext(EXACT):
            signed = fill.quantity * fill.side.sign
            quantity = position.quantity
            basis = position.cost_basis
            realised = position.realised_pnl
            if quantity == 0 or (quantity > 0) == (signed > 0):
                # Opening or adding: the whole fill joins the cost basis.
                basis += signed * fill.price
                quantity += signed
            else:
                # Reducing: release the closed share of the basis into PnL.
                closing = min(abs(signed), abs(quantity))
                if closing == abs(quantity):
                    released = basis  # closing everything: no division, no rounding
                else:
                    released = _divide(basis * closing, abs(quantity))
                signed_closing = closing * fill.side.sign
                # Cash moved by -signed_closing * price; the basis by -released.
                realised += -signed_closing * fill.price - released
                basis -= released
                quantity += signed_closing
                remainder = signed - signed_closing
                if remainder != 0:
                    # Crossed through zero: the rest opens the other side.
                    basis = remainder * fill.price
                    quantity = remainder
            fees = position.fees + fill.fee
    except decimal.DecimalException as error:
        raise exact_error(f"fill {fill.trade_id!r} on {fill.symbol}", error) from error
    return quantity, basis, realised, fees


@attrs.frozen(kw_only=True)
class PositionSnapshot:
    """A position frozen at a mark, for logs and recordings."""

    symbol: str
    quantity: Decimal
    average_price: Decimal
    cost_basis: Decimal
    mark_price: Decimal | None  # None only for a flat position with no mark
    market_value: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    fees: Decimal
