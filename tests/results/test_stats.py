"""Summary statistics against hand-computed examples, and their properties."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.results.helpers import D, curve, fill
from trading.results import (
    drawdowns,
    max_drawdown,
    periods_per_year,
    returns,
    round_trips,
    sharpe,
    sortino,
    summarise,
)


def test_a_hand_computed_daily_curve() -> None:
    # 1000 -> 1100 (+10%) -> 990 (-10%) -> 1089 (+10%)
    equity = curve("1100", "990", "1089")
    s = summarise(equity, D(1000), interval="1d")
    assert s.total_return == pytest.approx(0.089)
    assert s.net_pnl == D(89) and s.end_equity == D(1089)
    assert s.max_drawdown == pytest.approx(-0.1) and s.max_drawdown_at == equity[1][0]
    # mean 1/30; sample sd sqrt((2*(1/15)^2 + (2/15)^2) / 2) = sqrt(1/75); a 365-day year
    assert s.sharpe == pytest.approx((1 / 30) / math.sqrt(1 / 75) * math.sqrt(365))
    # downside deviation sqrt(0.1^2 / 3) = sqrt(1/300)
    assert s.sortino == pytest.approx((1 / 30) / math.sqrt(1 / 300) * math.sqrt(365))
    assert (s.bars, s.interval, s.trades, s.win_rate, s.exposure) == (3, "1d", 0, None, 0.0)


def test_returns_and_drawdowns_by_hand() -> None:
    equity = curve("110", "99", "121", "60.5")
    assert returns(equity, D(100)) == pytest.approx([0.1, -0.1, 2 / 9, -0.5])
    assert drawdowns(equity, D(100)) == pytest.approx([0.0, -0.1, 0.0, -0.5])
    assert max_drawdown(equity, D(100)) == (pytest.approx(-0.5), equity[3][0])
    # The starting equity is the first peak: a first bar below it is a drawdown.
    assert drawdowns(curve("80"), D(100)) == pytest.approx([-0.2])


def test_annualisation_follows_the_bar_interval() -> None:
    assert periods_per_year("1m") == 525_600
    assert periods_per_year("1h") == 8_760
    per_bar = [0.01, -0.005, 0.002, 0.0]
    assert sharpe(per_bar, "1m") == pytest.approx(sharpe(per_bar, "1d") * math.sqrt(1440))
    # Without an interval, the most common step between points is used.
    minutes = curve("101", "100", "102", "101", start=60, step=60)
    assert summarise(minutes, D(100)).interval == "1m"
    assert summarise(minutes, D(100)).sharpe == summarise(minutes, D(100), interval="1m").sharpe


def test_undefined_ratios_are_none() -> None:
    assert sharpe([], "1d") is None and sharpe([0.1], "1d") is None
    assert sharpe([0.01, 0.01, 0.01], "1d") is None  # no variation
    assert sharpe([0.018085650729143102] * 7, "1d") is None  # none, but for rounding
    assert sortino([0.01, 0.02, 0.0], "1d") is None  # no losing bar
    empty = summarise([], D(500))
    assert (empty.total_return, empty.max_drawdown, empty.sharpe, empty.sortino) == (
        0.0, 0.0, None, None,
    )  # fmt: skip
    assert empty.bars == 0 and empty.exposure == 0.0


def test_a_ruined_account_floors_at_minus_100_percent() -> None:
    equity = curve("50", "0", "-20", "10")
    assert drawdowns(equity, D(100)) == [-0.5, -1.0, -1.0, -0.9]
    assert returns(equity, D(100))[2:] == [0.0, 0.0]  # undefined from zero: counted as 0
    s = summarise(equity, D(100), interval="1d")
    assert s.max_drawdown == -1.0 and s.total_return == pytest.approx(-0.9)


@pytest.mark.parametrize("bad", [D(0), D(-1), D("NaN"), D("Infinity")])
def test_the_starting_equity_must_be_positive_and_finite(bad: Decimal) -> None:
    with pytest.raises(ValueError, match="starting equity"):
        summarise(curve("1"), bad)


def test_round_trips_long_short_and_a_flip() -> None:
    fills = [
        fill("buy", "1", "100", 1, fee="0.1"),
        fill("sell", "1", "110", 2, fee="0.11"),  # long: +10 - 0.21
        fill("sell", "2", "110", 3, fee="0.22"),
        fill("buy", "2", "120", 4, fee="0.24"),  # short: -20 - 0.46
        fill("buy", "1", "100", 5),
        fill("sell", "3", "105", 6, fee="0.3"),  # closes the long +5 - 0.3, opens short 2
        fill("buy", "2", "100", 7),  # short: +10
        fill("buy", "1", "100", 8),  # still open
    ]
    trips = round_trips(fills)
    assert [(t.side, t.pnl, t.closed_at) for t in trips] == [
        ("long", D("9.79"), 2),
        ("short", D("-20.46"), 4),
        ("long", D("4.7"), 6),
        ("short", D("10"), 7),
        ("long", D("0"), None),
    ]
    assert [t.quantity for t in trips] == [D(1), D(2), D(1), D(2), D(1)]
    assert [t.fills for t in trips] == [2, 2, 2, 2, 1]
    s = summarise(curve("1"), D(1000), fills, interval="1d")
    assert (s.trades, s.wins, s.win_rate, s.open_trades) == (4, 3, 0.75, 1)
    assert s.fees == D("0.97")


def test_round_trips_are_per_symbol() -> None:
    fills = [
        fill("buy", "1", "100", 1),
        fill("buy", "10", "5", 2, symbol="ETHUSDT"),
        fill("sell", "1", "90", 3),
        fill("sell", "10", "6", 4, symbol="ETHUSDT"),
    ]
    assert [(t.symbol, t.pnl) for t in round_trips(fills)] == [
        ("BTCUSDT", D(-10)),
        ("ETHUSDT", D(10)),
    ]


def test_fees_in_the_base_asset_and_in_bnb() -> None:
    fills = [
        fill("buy", "1", "100", 1, fee="0.001", fee_asset="BTC"),  # Binance kept 0.001 BTC
        fill("sell", "0.999", "110", 2, fee="0.1"),
        fill("buy", "1", "100", 3, fee="0.01", fee_asset="BNB"),
        fill("sell", "1", "100", 4, fee="0.01", fee_asset="BNB"),
    ]
    trips = round_trips(fills)
    assert len(trips) == 2 and not any(t.is_open for t in trips)
    assert trips[0].fees == D("0.2")  # 0.001 BTC at 100 + 0.1 USDT
    assert trips[1].pnl == 0  # BNB fees have no price here: not in PnL
    s = summarise(curve("1"), D(1000), fills, interval="1d")
    assert s.fees == D("0.2")
    assert s.fees_by_asset == (("BNB", D("0.02")), ("BTC", D("0.001")), ("USDT", D("0.1")))


def test_exposure_counts_bars_whose_close_finds_a_position() -> None:
    equity = curve("1", "1", "1", "1", start=60, step=60)  # closes at 60, 120, 180, 240
    fills = [fill("buy", "1", "1", 60), fill("sell", "1", "1", 150)]  # held at 60 and 120
    assert summarise(equity, D(1), fills).exposure == 0.5
    fills.append(fill("sell", "2", "1", 240))  # short at the last close
    assert summarise(equity, D(1), fills).exposure == 0.75


def test_the_summary_prints() -> None:
    s = summarise(curve("1100", "990"), D(1000), [fill("buy", "1", "1", 1)], interval="1d")
    text = str(s)
    assert "total return  -1.00%" in text and "max drawdown  -10.00%" in text
    assert "trades        0 closed, 1 open" in text and "win rate      n/a" in text


# ------------------------------------------------------------------------------ properties

equities = st.decimals(min_value=0, max_value=D("1e12"), places=4, allow_nan=False)
starts = st.decimals(min_value=D("0.01"), max_value=D("1e12"), places=2, allow_nan=False)


@given(start=starts, values=st.lists(equities, max_size=60))
def test_drawdown_is_between_minus_100_percent_and_zero(
    start: Decimal, values: list[Decimal]
) -> None:
    equity = [(60.0 * (i + 1), v) for i, v in enumerate(values)]
    for dd in drawdowns(equity, start):
        assert -1.0 <= dd <= 0.0
    s = summarise(equity, start, interval="1m")
    assert -1.0 <= s.max_drawdown <= 0.0
    for ratio in (s.sharpe, s.sortino):
        assert ratio is None or math.isfinite(ratio)


@given(start=starts, count=st.integers(0, 50))
def test_flat_equity_has_no_return_no_drawdown_and_no_ratio(start: Decimal, count: int) -> None:
    equity = [(60.0 * (i + 1), start) for i in range(count)]
    s = summarise(equity, start, interval="1m")
    assert (s.total_return, s.max_drawdown, s.max_drawdown_at) == (0.0, 0.0, None)
    assert s.sharpe is None and s.sortino is None


@given(
    start=starts,
    values=st.lists(st.floats(min_value=-1e300, max_value=1e300), min_size=2, max_size=30),
)
def test_sharpe_and_sortino_are_never_nan_or_inf(start: Decimal, values: list[float]) -> None:
    for ratio in (sharpe(values, "1s"), sortino(values, "1w")):
        assert ratio is None or math.isfinite(ratio)


@given(st.floats(min_value=-0.5, max_value=10), st.integers(2, 50))
def test_constant_returns_have_no_sharpe_despite_rounding(value: float, count: int) -> None:
    # e.g. [0.018085650729143102] * 7 has a float variance of 1.4e-35, not 0.
    assert sharpe([value] * count, "1d") is None


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 5)), max_size=30))
def test_every_fill_ends_in_exactly_one_trip_and_pnls_add_up(moves: list[tuple[bool, int]]) -> None:
    fills = [
        fill("buy" if up else "sell", str(size), str(100 + i), i + 1, fee="0.5")
        for i, (up, size) in enumerate(moves)
    ]
    trips = round_trips(fills)
    assert sum(1 for t in trips if t.is_open) <= 1
    assert all(t.closed_at is not None for t in trips[:-1])
    # Every fee is in exactly one trip, except a flip's, which belongs to the closing one.
    assert sum((t.fees for t in trips), D(0)) == D("0.5") * len(fills)
