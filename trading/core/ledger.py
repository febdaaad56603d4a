"""Cash, positions and PnL, kept with exact arithmetic.

Everything that affects the books lives here. The rules this module keeps:

* The books change only by applying fills, and a fill is applied at most once
  per ``(symbol, trade_id)``, because exchanges resend them.
* A fill has already happened, so it is always recorded, even if it drives a
  balance negative: refusing it would make the books lie. Checking that an
  order is affordable is the engine's job, before the order is sent.
* Positions use average-cost accounting on a signed quantity (long > 0,
  short < 0). The position keeps its exact *cost basis*; the average price is
  derived from it, not stored, so it never drifts.
* Arithmetic is exact: sums and products run in a decimal context that raises
  instead of rounding. The one rounding is the share of cost basis released
  when a position is partly closed (a division); that same rounded amount
  leaves the cost basis and enters realised PnL, so
  ``realised + unrealised - fees == cash change + quantity * mark`` holds to
  the last digit.
* Fees are in the quote currency (see ``trading.orders.Fill``), accumulate
  separately from realised PnL, and are debited from quote cash.
* No IO, no clock, no event loop.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Final

import attrs

from trading.core.orders import Fill, Side

__all__ = [
    "Portfolio",
    "PortfolioError",
    "PortfolioSnapshot",
    "Position",
    "PositionSnapshot",
]


class PortfolioError(ValueError):
    """Input the books cannot absorb without guessing: unknown symbol, missing mark."""


_ZERO: Final = Decimal(0)

# Wide enough for any real price * quantity; Inexact is trapped so that a value
# that *would* be rounded surfaces as an error instead of a silent mismatch.
_EXACT: Final = decimal.Context(
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


def _exact_error(what: str, error: decimal.DecimalException) -> PortfolioError:
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
    quantity: Decimal = attrs.field(default=_ZERO, kw_only=True)
    cost_basis: Decimal = attrs.field(default=_ZERO, kw_only=True)
    realised_pnl: Decimal = attrs.field(default=_ZERO, kw_only=True)
    fees: Decimal = attrs.field(default=_ZERO, kw_only=True)

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
            return _ZERO
        return _divide(self.cost_basis, self.quantity)

    @property
    def net_realised_pnl(self) -> Decimal:
        """Realised PnL after fees: what closed trades actually earned."""
        with decimal.localcontext(_EXACT):
            return self.realised_pnl - self.fees

    def unrealised_pnl(self, mark_price: Decimal) -> Decimal:
        """What closing at ``mark_price`` would add to realised PnL (before fees)."""
        try:
            with decimal.localcontext(_EXACT):
                return self.quantity * mark_price - self.cost_basis
        except decimal.DecimalException as error:
            raise _exact_error(f"{self.symbol} unrealised PnL", error) from error

    def market_value(self, mark_price: Decimal) -> Decimal:
        """Signed: a short is worth a negative amount of quote currency."""
        try:
            with decimal.localcontext(_EXACT):
                return self.quantity * mark_price
        except decimal.DecimalException as error:
            raise _exact_error(f"{self.symbol} market value", error) from error

    def apply_fill(self, fill: Fill) -> None:
        """Book one fill; all-or-nothing, so a failure leaves the position as it was.

        Not idempotent on its own: ``Portfolio.apply_fill`` de-duplicates by
        trade id before it gets here.
        """
        if fill.symbol != self.symbol:
            raise PortfolioError(
                f"fill {fill.trade_id!r} for {fill.symbol!r} applied to position {self.symbol!r}"
            )
        self.quantity, self.cost_basis, self.realised_pnl, self.fees = _position_after(self, fill)


def _position_after(position: Position, fill: Fill) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """Average-cost accounting for one fill, computed without touching ``position``."""
    try:
        with decimal.localcontext(_EXACT):
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
        raise _exact_error(f"fill {fill.trade_id!r} on {fill.symbol}", error) from error
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


def _balance_pairs(
    balances: Mapping[str, Decimal] | Iterable[tuple[str, Decimal]],
) -> tuple[tuple[str, Decimal], ...]:
    items = balances.items() if isinstance(balances, Mapping) else balances
    return tuple(sorted(items))


@attrs.frozen(kw_only=True)
class PortfolioSnapshot:
    """The whole book at one set of marks; immutable so it can be queued or recorded.

    ``balances`` is a sorted tuple of ``(asset, amount)`` pairs rather than a
    dict so the snapshot is deeply immutable, hashable and picklable (it may
    cross a channel or a process boundary); ``balance()`` looks one up. PnL
    figures are in the positions' (single) quote currency, ``equity`` in
    ``in_asset``. ``net_pnl`` is realised + unrealised - fees.
    """

    balances: tuple[tuple[str, Decimal], ...] = attrs.field(converter=_balance_pairs)
    positions: tuple[PositionSnapshot, ...]
    in_asset: str
    equity: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    fees: Decimal
    net_pnl: Decimal

    def balance(self, asset: str) -> Decimal:
        """Zero for an asset never held, like an exchange account would report."""
        return dict(self.balances).get(asset, _ZERO)


# ---------------------------------------------------------------------- portfolio


def _copy_symbols(symbols: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    copied: dict[str, tuple[str, str]] = {}
    for symbol, pair in symbols.items():
        if len(pair) != 2 or not all(pair) or pair[0] == pair[1]:
            raise PortfolioError(f"symbol {symbol!r} needs distinct (base, quote), got {pair!r}")
        copied[symbol] = (pair[0], pair[1])
    return copied


def _copy_balances(balances: Mapping[str, Decimal]) -> dict[str, Decimal]:
    # A copy, so the caller's dict (often a config constant) is never mutated.
    return dict(balances)


def _copy_positions(positions: Mapping[str, Position]) -> dict[str, Position]:
    return dict(positions)


@attrs.define
class Portfolio:
    """Cash per asset plus positions per symbol, driven only by fills.

    ``symbols`` maps each tradable symbol to its ``(base, quote)`` assets, e.g.
    ``{"BTCUSDT": ("BTC", "USDT")}``; it is how a fill knows which balances to
    move and how ``equity`` values a balance.
    """

    symbols: dict[str, tuple[str, str]] = attrs.field(converter=_copy_symbols)
    balances: dict[str, Decimal] = attrs.field(factory=dict, converter=_copy_balances)
    positions: dict[str, Position] = attrs.field(factory=dict, converter=_copy_positions)
    # (symbol, trade id) -> the fill's numbers. Plain tuples of str and Decimal, which the
    # garbage collector stops tracking: a long run's books do not slow every collection down.
    _applied: dict[tuple[str, str], tuple[str, Decimal, Decimal, Decimal]] = attrs.field(
        init=False, factory=dict, repr=False
    )
    _by_pair: dict[tuple[str, str], str] = attrs.field(init=False, factory=dict, repr=False)

    def __attrs_post_init__(self) -> None:
        for symbol, pair in self.symbols.items():
            self._by_pair[pair] = symbol
        for asset, amount in self.balances.items():
            if not isinstance(amount, Decimal) or not amount.is_finite():
                raise PortfolioError(f"balance {asset!r} must be a finite Decimal, got {amount!r}")
        for symbol in self.positions:
            if symbol not in self.symbols:
                raise PortfolioError(f"position for unknown symbol {symbol!r}")

    def apply_fill(self, fill: Fill) -> bool:
        """Move cash and update the position; False if this trade was already booked.

        Buy: quote -= qty * price + fee, base += qty. Sell: base -= qty,
        quote += qty * price - fee.
        """
        pair = self.symbols.get(fill.symbol)
        if pair is None:
            raise PortfolioError(
                f"fill {fill.trade_id!r} is for unknown symbol {fill.symbol!r}; "
                f"known symbols: {sorted(self.symbols)}"
            )
        key = (fill.symbol, fill.trade_id)
        numbers = (fill.side.value, fill.quantity, fill.price, fill.fee)
        seen = self._applied.get(key)
        if seen is not None:
            if seen != numbers:
                raise PortfolioError(
                    f"trade {fill.trade_id!r} on {fill.symbol} resent with different numbers"
                )
            return False
        base, quote = pair
        position = self.positions.get(fill.symbol) or Position(fill.symbol)
        after = _position_after(position, fill)
        try:
            with decimal.localcontext(_EXACT):
                value = fill.quantity * fill.price
                if fill.side is Side.BUY:
                    quote_delta, base_delta = -(value + fill.fee), fill.quantity
                else:
                    quote_delta, base_delta = value - fill.fee, -fill.quantity
                new_quote = self.balances.get(quote, _ZERO) + quote_delta
                new_base = self.balances.get(base, _ZERO) + base_delta
        except decimal.DecimalException as error:
            raise _exact_error(f"fill {fill.trade_id!r} on {fill.symbol}", error) from error
        # Everything that can raise has run: commit.
        position.quantity, position.cost_basis, position.realised_pnl, position.fees = after
        self.positions[fill.symbol] = position
        self.balances[quote] = new_quote
        self.balances[base] = new_base
        self._applied[key] = numbers
        return True

    def position(self, symbol: str) -> Position:
        """The position for a known symbol, flat if it never traded."""
        if symbol not in self.symbols:
            raise PortfolioError(f"unknown symbol {symbol!r}")
        return self.positions.get(symbol) or Position(symbol)

    def equity(self, marks: Mapping[str, Decimal], in_asset: str = "USDT") -> Decimal:
        """Every balance valued in ``in_asset``.

        Balances already contain what positions bought or sold, so positions
        are not added again. A non-zero balance needs a symbol quoting it
        directly in ``in_asset`` and a mark for that symbol.
        """
        total = _ZERO
        try:
            with decimal.localcontext(_EXACT):
                for asset, amount in self.balances.items():
                    if amount == 0:
                        continue
                    if asset == in_asset:
                        total += amount
                    else:
                        total += amount * self._mark_for(asset, in_asset, marks)
        except decimal.DecimalException as error:
            raise _exact_error("equity", error) from error
        return total

    @property
    def total_realised_pnl(self) -> Decimal:
        """Gross of fees, in the positions' quote currency."""
        return self._sum(p.realised_pnl for p in self._positions_one_quote())

    @property
    def total_fees(self) -> Decimal:
        return self._sum(p.fees for p in self._positions_one_quote())

    def total_unrealised_pnl(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Needs a mark for every open position; flat ones contribute nothing."""
        return self._sum(
            p.unrealised_pnl(self._position_mark(p, marks))
            for p in self._positions_one_quote()
            if not p.is_flat
        )

    def snapshot(self, marks: Mapping[str, Decimal], in_asset: str = "USDT") -> PortfolioSnapshot:
        positions = []
        for symbol in sorted(self.positions):
            p = self.positions[symbol]
            mark = marks.get(symbol) if p.is_flat else self._position_mark(p, marks)
            positions.append(
                PositionSnapshot(
                    symbol=symbol,
                    quantity=p.quantity,
                    average_price=p.average_price,
                    cost_basis=p.cost_basis,
                    mark_price=mark,
                    market_value=_ZERO if mark is None else p.market_value(mark),
                    realised_pnl=p.realised_pnl,
                    unrealised_pnl=_ZERO if mark is None else p.unrealised_pnl(mark),
                    fees=p.fees,
                )
            )
        realised = self.total_realised_pnl
        unrealised = self.total_unrealised_pnl(marks)
        fees = self.total_fees
        return PortfolioSnapshot(
            balances=self.balances,
            positions=tuple(positions),
            in_asset=in_asset,
            equity=self.equity(marks, in_asset),
            realised_pnl=realised,
            unrealised_pnl=unrealised,
            fees=fees,
            net_pnl=self._sum([realised, unrealised, -fees]),
        )

    # ---------------------------------------------------------------- internals

    def _mark_for(self, asset: str, in_asset: str, marks: Mapping[str, Decimal]) -> Decimal:
        symbol = self._by_pair.get((asset, in_asset))
        if symbol is None:
            raise PortfolioError(f"no symbol prices {asset} in {in_asset}; cannot value it")
        mark = marks.get(symbol)
        if mark is None:
            raise PortfolioError(f"no mark for {symbol} to value {asset} in {in_asset}")
        return mark

    def _position_mark(self, position: Position, marks: Mapping[str, Decimal]) -> Decimal:
        mark = marks.get(position.symbol)
        if mark is None:
            raise PortfolioError(f"no mark for open position {position.symbol}")
        return mark

    def _positions_one_quote(self) -> list[Position]:
        """Adding USDT PnL to BTC PnL is a silent lie; refuse mixed quotes."""
        quotes = {self.symbols[symbol][1] for symbol in self.positions}
        if len(quotes) > 1:
            raise PortfolioError(
                f"positions are quoted in {sorted(quotes)}; PnL totals need a single quote asset"
            )
        return list(self.positions.values())

    @staticmethod
    def _sum(values: Iterable[Decimal]) -> Decimal:
        total = _ZERO
        try:
            with decimal.localcontext(_EXACT):
                for value in values:
                    total += value
        except decimal.DecimalException as error:
            raise _exact_error("PnL total", error) from error
        return total
