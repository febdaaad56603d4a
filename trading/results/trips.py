"""Round trips: fills grouped into trades that open from flat and close back to flat.

The rules this module keeps:

* Per symbol, a round trip opens with the fill that leaves a flat position and closes with the
  fill that brings it back to zero. A fill that crosses zero closes one trip and opens the next
  (its whole fee is the closing trip's). A trip still open at the end is returned, marked open.
* A trip's PnL is the position's average-cost accounting (``trading.core.positions``, the
  ledger's rules, exact): realised PnL minus fees while it was open. Fees in the quote asset
  count as they stand, fees in the base asset at the fill's price, fees in a third asset (BNB)
  are not in PnL (as in the ledger); ``fees_by_asset`` has them all as charged.
* Pure: plain records in, plain records out; fills are taken in time order (stable).
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Sequence
from decimal import Decimal

import attrs

from trading.core.positions import EXACT, ZERO, Position, position_after
from trading.core.records import Fill

__all__ = ["RoundTrip", "fees_by_asset", "round_trips", "split_symbol"]


def split_symbol(symbol: str, quote: str) -> tuple[str | None, str]:
    """(base, quote) of ``BTCUSDT`` for quote ``USDT``; base None when the symbol is not
    quoted in ``quote`` (its fees then all count as quote fees)."""
    if symbol.endswith(quote) and len(symbol) > len(quote):
        return symbol[: -len(quote)], quote
    return None, quote


@attrs.frozen(slots=True, kw_only=True)
class RoundTrip:
    """One trade from flat to flat. ``side`` is ``long`` or ``short``; ``quantity`` the largest
    absolute position held; ``pnl`` realised PnL minus fees (quote asset); ``closed_at`` None
    while open."""

    symbol: str
    side: str
    opened_at: float
    closed_at: float | None
    quantity: Decimal
    entry_price: Decimal
    exit_price: Decimal | None
    fills: int
    gross_pnl: Decimal
    fees: Decimal
    pnl: Decimal

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


@attrs.define
class _Open:
    opened_at: float
    side: str
    start_realised: Decimal
    start_fees: Decimal
    largest: Decimal
    entry_price: Decimal
    fills: int = 0


def _ordered(fills: Iterable[Fill]) -> list[Fill]:
    return sorted(fills, key=lambda fill: fill.time)


def round_trips(fills: Iterable[Fill], *, quote: str = "USDT") -> list[RoundTrip]:
    """Every round trip in the fills, closed ones first by close time, open ones last."""
    positions: dict[str, Position] = {}
    opened: dict[str, _Open] = {}
    closed: list[RoundTrip] = []
    for fill in _ordered(fills):
        position = positions.setdefault(fill.symbol, Position(fill.symbol))
        base, _ = split_symbol(fill.symbol, quote)
        before, realised, fees = position.quantity, position.realised_pnl, position.fees
        after = position_after(position, fill, base, quote if base else None)
        position.quantity, position.cost_basis, position.realised_pnl, position.fees = after
        trip = opened.get(fill.symbol)
        if trip is None and before == 0 and position.quantity != 0:
            opened[fill.symbol] = _open(fill, position, realised, fees)
            continue
        if trip is None:
            continue
        trip.fills += 1
        crossed = position.quantity != 0 and (position.quantity > 0) != (before > 0)
        if not crossed:
            trip.largest = max(trip.largest, abs(position.quantity))
        if position.quantity == 0 or crossed:
            closed.append(_close(fill, position, trip))
            del opened[fill.symbol]
            if crossed:
                opened[fill.symbol] = _open(fill, position, position.realised_pnl, position.fees)
    still_open = [_still_open(positions[s], t) for s, t in sorted(opened.items())]
    return closed + still_open


def _open(fill: Fill, position: Position, realised: Decimal, fees: Decimal) -> _Open:
    return _Open(
        opened_at=fill.time,
        side="long" if position.quantity > 0 else "short",
        start_realised=realised,
        start_fees=fees,
        largest=abs(position.quantity),
        entry_price=fill.price,
        fills=1,
    )


def _close(fill: Fill, position: Position, trip: _Open) -> RoundTrip:
    with decimal.localcontext(EXACT):
        gross = position.realised_pnl - trip.start_realised
        fees = position.fees - trip.start_fees
        return RoundTrip(
            symbol=fill.symbol,
            side=trip.side,
            opened_at=trip.opened_at,
            closed_at=fill.time,
            quantity=trip.largest,
            entry_price=trip.entry_price,
            exit_price=fill.price,
            fills=trip.fills,
            gross_pnl=gross,
            fees=fees,
            pnl=gross - fees,
        )


def _still_open(position: Position, trip: _Open) -> RoundTrip:
    with decimal.localcontext(EXACT):
        gross = position.realised_pnl - trip.start_realised
        fees = position.fees - trip.start_fees
        return RoundTrip(
            symbol=position.symbol,
            side=trip.side,
            opened_at=trip.opened_at,
            closed_at=None,
            quantity=trip.largest,
            entry_price=trip.entry_price,
            exit_price=None,
            fills=trip.fills,
            gross_pnl=gross,
            fees=fees,
            pnl=gross - fees,
        )


def fees_by_asset(fills: Sequence[Fill]) -> dict[str, Decimal]:
    """Every fee as charged, per asset, exact."""
    totals: dict[str, Decimal] = {}
    with decimal.localcontext(EXACT):
        for fill in fills:
            totals[fill.fee_asset] = totals.get(fill.fee_asset, ZERO) + fill.fee
    return totals
