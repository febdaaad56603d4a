"""Summary statistics of a run, in plain Python: no pandas, so every replay can print them.

The rules this module keeps:

* Inputs are plain records: the equity curve as ``(time, equity)`` points, one per bar close,
  the starting equity (> 0) before the first bar, and the fills. Money stays Decimal (start,
  end, PnL, fees); ratios are floats.
* Returns are per bar, from the starting equity through each point. Sharpe and Sortino are
  annualised with the number of bars in a 365-day year (crypto trades every day), risk-free
  rate 0, sample standard deviation; Sortino's downside deviation is the root mean square of
  the negative returns over all bars. A ratio that is undefined (fewer than two returns, no
  variation, no losing bar for Sortino) is None, never NaN or infinity.
* Drawdown at a point is equity / running peak - 1 (the starting equity is the first peak), so
  it is <= 0; equity at or below zero is a total loss, -100%, the floor.
* Exposure is the fraction of bars whose close found a position open (fills at or before that
  close counted). Trades are closed round trips (``trading.results.trips``); the win rate is
  the share of them with a positive PnL after fees, None when there are none.
"""

from __future__ import annotations

import bisect
import collections
import decimal
import itertools
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Final

import attrs

from trading.core.bars import Interval
from trading.core.positions import EXACT, ZERO
from trading.core.records import Fill
from trading.data.load import interval_text
from trading.results.trips import fees_by_asset, round_trips, split_symbol

__all__ = [
    "EquityPoint",
    "Summary",
    "drawdowns",
    "max_drawdown",
    "periods_per_year",
    "returns",
    "sharpe",
    "sortino",
    "summarise",
]

EquityPoint = tuple[float, Decimal]
_YEAR: Final = 365 * 86_400


@attrs.frozen(slots=True, kw_only=True)
class Summary:
    """What a run earned and how it got there; see the module rules for each definition."""

    start_equity: Decimal
    end_equity: Decimal
    net_pnl: Decimal
    total_return: float
    max_drawdown: float
    max_drawdown_at: float | None
    sharpe: float | None
    sortino: float | None
    trades: int
    wins: int
    win_rate: float | None
    open_trades: int
    fees: Decimal
    fees_by_asset: tuple[tuple[str, Decimal], ...]
    exposure: float
    bars: int
    interval: str

    def lines(self) -> list[str]:
        """Human-readable ``name  value`` lines, for a terminal or a log."""

        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{value * 100:.2f}%"

        def num(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.2f}"

        other = ", ".join(f"{fee} {asset}" for asset, fee in self.fees_by_asset) or "none"
        rows = [
            ("bars", f"{self.bars} x {self.interval}"),
            ("equity", f"{self.start_equity} -> {self.end_equity} (net {self.net_pnl})"),
            ("total return", pct(self.total_return)),
            ("max drawdown", pct(self.max_drawdown)),
            ("sharpe", num(self.sharpe)),
            ("sortino", num(self.sortino)),
            ("trades", f"{self.trades} closed, {self.open_trades} open"),
            ("win rate", pct(self.win_rate)),
            ("fees", f"{self.fees} (as charged: {other})"),
            ("exposure", pct(self.exposure)),
        ]
        return [f"{name:<13} {value}" for name, value in rows]

    def __str__(self) -> str:
        return "\n".join(self.lines())


def periods_per_year(interval: Interval | str) -> float:
    """Bars in a 365-day year: 525,600 one-minute bars."""
    return _YEAR / Interval.parse(interval).seconds


def returns(equity: Sequence[EquityPoint], starting_equity: Decimal) -> list[float]:
    """Per-bar simple returns, the first from the starting equity. A return from an equity at
    or below zero (a ruined account) is undefined and counted as 0."""
    out: list[float] = []
    previous = float(starting_equity)
    for _, value in equity:
        current = float(value)
        out.append(current / previous - 1.0 if previous > 0 else 0.0)
        previous = current
    return out


def drawdowns(equity: Sequence[EquityPoint], starting_equity: Decimal) -> list[float]:
    """Drawdown at each point: equity / running peak - 1, in [-1, 0]. In floats: a ratio needs
    no exact money, and float division keeps ``value <= peak`` at or below 1."""
    _check_start(starting_equity)
    peak = float(starting_equity)
    out: list[float] = []
    append = out.append
    for _, amount in equity:
        value = float(amount)
        if value > peak:
            peak = value
        append(value / peak - 1.0 if value > 0 else -1.0)
    return out


def max_drawdown(
    equity: Sequence[EquityPoint], starting_equity: Decimal
) -> tuple[float, float | None]:
    """(deepest drawdown, time of its trough); (0.0, None) when equity never fell."""
    deepest, at = 0.0, None
    for (time, _), value in zip(equity, drawdowns(equity, starting_equity), strict=True):
        if value < deepest:
            deepest, at = value, time
    return deepest, at


def sharpe(per_bar: Sequence[float], interval: Interval | str) -> float | None:
    """Annualised mean / sample standard deviation of per-bar returns; None if undefined."""
    if len(per_bar) < 2:
        return None
    try:
        mean = math.fsum(per_bar) / len(per_bar)
        variance = math.fsum((r - mean) ** 2 for r in per_bar) / (len(per_bar) - 1)
    except OverflowError:  # returns beyond any real market's: no meaningful ratio
        return None
    return _finite(mean, math.sqrt(variance), interval)


def sortino(per_bar: Sequence[float], interval: Interval | str) -> float | None:
    """Annualised mean / downside deviation (target 0); None if no bar lost or undefined."""
    if len(per_bar) < 2:
        return None
    try:
        mean = math.fsum(per_bar) / len(per_bar)
        downside = math.sqrt(math.fsum(min(r, 0.0) ** 2 for r in per_bar) / len(per_bar))
    except OverflowError:
        return None
    return _finite(mean, downside, interval)


def _finite(mean: float, deviation: float, interval: Interval | str) -> float | None:
    # A deviation this small is rounding noise on a flat curve, not variation.
    if not math.isfinite(deviation) or deviation <= 1e-15 * max(1.0, abs(mean)):
        return None
    ratio = mean / deviation * math.sqrt(periods_per_year(interval))
    return ratio if math.isfinite(ratio) else None


def _check_start(starting_equity: Decimal) -> None:
    if not isinstance(starting_equity, Decimal) or not starting_equity.is_finite():
        raise ValueError(f"starting equity must be a finite Decimal, got {starting_equity!r}")
    if starting_equity <= 0:
        raise ValueError(f"starting equity must be above zero, got {starting_equity}")


def exposure(equity: Sequence[EquityPoint], fills: Sequence[Fill]) -> float:
    """Fraction of the points whose time found any position open."""
    if not equity:
        return 0.0
    ordered = sorted(fills, key=lambda fill: fill.time)
    times = [fill.time for fill in ordered]
    held: dict[str, Decimal] = collections.defaultdict(lambda: ZERO)
    applied = exposed = 0
    open_symbols = 0
    with decimal.localcontext(EXACT):
        for time, _ in equity:
            upto = bisect.bisect_right(times, time)
            for fill in ordered[applied:upto]:
                before = held[fill.symbol]
                held[fill.symbol] = before + fill.quantity * fill.side.sign
                open_symbols += (held[fill.symbol] != 0) - (before != 0)
            applied = max(applied, upto)
            exposed += open_symbols > 0
    return exposed / len(equity)


def summarise(
    equity: Sequence[EquityPoint],
    starting_equity: Decimal,
    fills: Iterable[Fill] = (),
    *,
    interval: Interval | str | None = None,
    quote: str = "USDT",
) -> Summary:
    """All the statistics of one run. ``interval`` annualises Sharpe and Sortino; without it,
    the most common step between equity points is used."""
    _check_start(starting_equity)
    points = list(equity)
    fill_list = list(fills)
    bar = Interval.parse(interval) if interval is not None else _infer_interval(points)
    per_bar = returns(points, starting_equity)
    deepest, trough = max_drawdown(points, starting_equity)
    trips = round_trips(fill_list, quote=quote)
    closed = [trip for trip in trips if not trip.is_open]
    wins = sum(1 for trip in closed if trip.pnl > 0)
    end = points[-1][1] if points else starting_equity
    with decimal.localcontext(EXACT):
        net = end - starting_equity
        fees = sum((_quote_fee(fill, quote) for fill in fill_list), ZERO)
    with decimal.localcontext() as context:
        context.prec = 28
        total_return = float(net / starting_equity)
    return Summary(
        start_equity=starting_equity,
        end_equity=end,
        net_pnl=net,
        total_return=total_return,
        max_drawdown=deepest,
        max_drawdown_at=trough,
        sharpe=sharpe(per_bar, bar),
        sortino=sortino(per_bar, bar),
        trades=len(closed),
        wins=wins,
        win_rate=wins / len(closed) if closed else None,
        open_trades=len(trips) - len(closed),
        fees=fees,
        fees_by_asset=tuple(sorted(fees_by_asset(fill_list).items())),
        exposure=exposure(points, fill_list),
        bars=len(points),
        interval=bar.text,
    )


def _quote_fee(fill: Fill, quote: str) -> Decimal:
    """A fee in the quote asset: quote fees as they are, base fees at the fill's price, others
    (BNB) nothing: they have no price here."""
    base, _ = split_symbol(fill.symbol, quote)
    if fill.fee_asset == quote or base is None:
        return fill.fee
    if fill.fee_asset == base:
        return fill.fee * fill.price
    return ZERO


def _infer_interval(points: Sequence[EquityPoint]) -> Interval:
    steps = collections.Counter(
        round(b[0] - a[0]) for a, b in itertools.pairwise(points) if b[0] - a[0] >= 1
    )
    if not steps:
        return Interval.parse("1d")  # nothing to annualise: Sharpe and Sortino are None anyway
    return Interval.parse(interval_text(steps.most_common(1)[0][0]))
