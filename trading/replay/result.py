"""ReplayResult: what a replay did — orders, fills, the final portfolio, the equity curve.

The rules this module keeps:

* A result is a record: frozen, built once at the end of a replay, never updated.
* The equity curve has one point per replayed bar: ``(close time, cash + positions)`` valued at
  that bar's close, after the fills at that close (a market order placed at a close pays its
  slippage and fee in that same point). It is computed on first use from the holdings after each
  fill, so a replay does not pay for it bar by bar.
* ``summary()`` is plain text, one fact per line, for the CLI and for logs.
"""

from __future__ import annotations

import bisect
import collections
import functools
from collections.abc import Mapping, Sequence
from decimal import Decimal

import attrs

from trading.core.bars import Bar, Interval
from trading.core.commands import CommandResult
from trading.core.events import Event
from trading.core.ledger import Position
from trading.core.orders import Order, OrderState
from trading.core.records import Fill

__all__ = ["ReplayResult"]


@attrs.frozen(slots=False)
class ReplayResult:
    """See the module docstring. ``first`` is the index of the first replayed bar (the ones
    before it were history only); ``computes`` how many times ``next()`` ran; ``events`` the
    events kept (see ``replay``'s ``keep_events``), ``event_counts`` every event by kind."""

    strategy: str
    symbol: str
    interval: Interval
    bars: Sequence[Bar] = attrs.field(repr=False)
    first: int
    computes: int
    orders: tuple[Order, ...] = attrs.field(repr=False)
    fills: tuple[Fill, ...] = attrs.field(repr=False)
    opening: Mapping[str, Decimal]
    holdings: tuple[tuple[float, Mapping[str, Decimal]], ...] = attrs.field(repr=False)
    balances: Mapping[str, Decimal]
    positions: Mapping[str, Position] = attrs.field(repr=False)
    replies: tuple[tuple[float, str, list[CommandResult]], ...]
    undelivered: tuple[tuple[float, str], ...]
    events: tuple[Event, ...] = attrs.field(repr=False)
    event_counts: Mapping[str, int]
    error: str | None
    quote: str
    base: str

    @property
    def bars_replayed(self) -> int:
        return len(self.bars) - self.first

    @functools.cached_property
    def equity(self) -> list[tuple[float, Decimal]]:
        """One ``(close time, equity in the quote asset)`` per replayed bar (see the module)."""
        times = [t for t, _ in self.holdings]
        points: list[tuple[float, Decimal]] = []
        held: Mapping[str, Decimal] = self.opening
        index = bisect.bisect_right(times, self.bars[self.first].close_time) if times else 0
        if index:
            held = self.holdings[index - 1][1]
        zero = Decimal(0)
        for bar in self.bars[self.first :]:
            close_time = bar.close_time
            while index < len(times) and times[index] <= close_time:
                held = self.holdings[index][1]
                index += 1
            cash = held.get(self.quote, zero)
            base = held.get(self.base, zero)
            value = cash + base * Decimal(repr(bar.close)) if base else cash
            points.append((close_time, value))
        return points

    @property
    def starting_equity(self) -> Decimal:
        """The opening quote balance: what ``trading.results.summarise`` measures from."""
        return self.opening.get(self.quote, Decimal(0))

    @property
    def final_equity(self) -> Decimal:
        return self.equity[-1][1] if self.equity else self.starting_equity

    def summary(self) -> str:
        start_value = self.starting_equity
        end_value = self.final_equity
        change = (end_value / start_value - 1) * 100 if start_value else Decimal(0)
        states = collections.Counter(o.state for o in self.orders)
        fees = sum((f.fee for f in self.fills), Decimal(0))
        lines = [
            f"strategy      {self.strategy} on {self.symbol} {self.interval}",
            f"bars          {self.bars_replayed:,} replayed ({self.first:,} history only), "
            f"{self.computes:,} computed",
            f"orders        {len(self.orders):,} ({states[OrderState.FILLED]:,} filled, "
            f"{states[OrderState.CANCELLED]:,} cancelled, {states[OrderState.REJECTED]:,} "
            "rejected)",
            f"fills         {len(self.fills):,}, fees {fees:.2f} {self.quote}",
            f"equity        {start_value:.2f} -> {end_value:.2f} {self.quote} ({change:+.2f}%)",
        ]
        for symbol, position in self.positions.items():
            if position.quantity:
                lines.append(f"position      {symbol} {position.quantity}")
        for when, text, results in self.replies:
            for result in results:
                ok = "ok" if result.ok else "error"
                lines.append(f"command       {_stamp(when)} {text!r}: {ok}: {result.message}")
        for when, text in self.undelivered:
            lines.append(f"not delivered {_stamp(when)} {text!r} (after the last bar)")
        if self.error:
            lines.append(f"FAILED        {self.error}")
        return "\n".join(lines)


def _stamp(when: float) -> str:
    import datetime as dt

    return f"{dt.datetime.fromtimestamp(when, tz=dt.UTC):%Y-%m-%d %H:%M}"
