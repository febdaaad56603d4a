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
* A fill's fee is in the asset the exchange charged it in (``Fill.fee_asset``) and is debited
  from that asset's balance, exactly: quote fees from quote cash; base fees (Binance's buys
  without BNB) from what was bought, so the position is what the account holds; any other asset
  (BNB) from its own balance. ``fees_paid`` sums them per asset as charged. Position fees and PnL
  count quote and base fees (base valued at the fill's price); a third asset's fee has no price
  in the fill, so it is in ``fees_paid`` and the balances, not in PnL.
* No IO, no clock, no event loop.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Mapping
from decimal import Decimal

import attrs

from trading.core.positions import (
    EXACT,
    ZERO,
    PortfolioError,
    Position,
    PositionSnapshot,
    exact_error,
    position_after,
)
from trading.core.records import Fill, Side

__all__ = [
    "Portfolio",
    "PortfolioError",
    "PortfolioSnapshot",
    "Position",
    "PositionSnapshot",
]


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
        return dict(self.balances).get(asset, ZERO)


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
    #: Every fee as charged, per asset (exact; BNB fees are only here and in the balances).
    fees_paid: dict[str, Decimal] = attrs.field(init=False, factory=dict)
    _applied: dict[tuple[str, str], tuple[str, Decimal, Decimal, Decimal, str]] = attrs.field(
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

        Buy: quote -= qty * price, base += qty. Sell: base -= qty, quote += qty * price.
        Then the fee leaves the balance of the asset it was charged in.
        """
        pair = self.symbols.get(fill.symbol)
        if pair is None:
            raise PortfolioError(
                f"fill {fill.trade_id!r} is for unknown symbol {fill.symbol!r}; "
                f"known symbols: {sorted(self.symbols)}"
            )
        key = (fill.symbol, fill.trade_id)
        numbers = (fill.side.value, fill.quantity, fill.price, fill.fee, fill.fee_asset)
        seen = self._applied.get(key)
        if seen is not None:
            if seen != numbers:
                raise PortfolioError(
                    f"trade {fill.trade_id!r} on {fill.symbol} resent with different numbers"
                )
            return False
        base, quote = pair
        position = self.positions.get(fill.symbol) or Position(fill.symbol)
        after = position_after(position, fill, base, quote)
        try:
            with decimal.localcontext(EXACT):
                value = fill.quantity * fill.price
                if fill.side is Side.BUY:
                    deltas = {quote: -value, base: fill.quantity}
                else:
                    deltas = {quote: value, base: -fill.quantity}
                deltas[fill.fee_asset] = deltas.get(fill.fee_asset, ZERO) - fill.fee
                new = {a: self.balances.get(a, ZERO) + d for a, d in deltas.items()}
                paid = self.fees_paid.get(fill.fee_asset, ZERO) + fill.fee
        except decimal.DecimalException as error:
            raise exact_error(f"fill {fill.trade_id!r} on {fill.symbol}", error) from error
        # Everything that can raise has run: commit.
        position.quantity, position.cost_basis, position.realised_pnl, position.fees = after
        self.positions[fill.symbol] = position
        self.balances.update(new)
        if fill.fee:
            self.fees_paid[fill.fee_asset] = paid
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
        total = ZERO
        try:
            with decimal.localcontext(EXACT):
                for asset, amount in self.balances.items():
                    if amount == 0:
                        continue
                    if asset == in_asset:
                        total += amount
                    else:
                        total += amount * self._mark_for(asset, in_asset, marks)
        except decimal.DecimalException as error:
            raise exact_error("equity", error) from error
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
                    market_value=ZERO if mark is None else p.market_value(mark),
                    realised_pnl=p.realised_pnl,
                    unrealised_pnl=ZERO if mark is None else p.unrealised_pnl(mark),
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
        total = ZERO
        try:
            with decimal.localcontext(EXACT):
                for value in values:
                    total += value
        except decimal.DecimalException as error:
            raise exact_error("PnL total", error) from error
        return total
