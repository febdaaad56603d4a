"""Tests for the built-in simulated market: deterministic, contiguous, plausible bars."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.core.bars import Interval
from trading.exchanges.base import UnknownSymbol
from trading.exchanges.sim import DEFAULT_PRICES, SimulatedMarket

T0 = 1_704_067_200.0  # 2024-01-01 00:00 UTC
INTERVALS = ["1s", "7s", "1m", "5m", "15m", "1h", "4h", "1d"]


def closes(market: SimulatedMarket, symbol: str = "BTCUSDT", interval: str = "15m") -> list[float]:
    return [b.close for b in market.bars(symbol, Interval.parse(interval), end=T0, limit=50)]


def test_same_seed_same_bars() -> None:
    a = SimulatedMarket(seed=3).bars("BTCUSDT", Interval.parse("15m"), end=T0, limit=100)
    b = SimulatedMarket(seed=3).bars("BTCUSDT", Interval.parse("15m"), end=T0, limit=100)
    assert a == b


def test_different_seed_different_bars() -> None:
    assert closes(SimulatedMarket(seed=3)) != closes(SimulatedMarket(seed=4))


def test_symbols_differ() -> None:
    market = SimulatedMarket()
    btc = [c / DEFAULT_PRICES["BTCUSDT"] for c in closes(market, "BTCUSDT")]
    eth = [c / DEFAULT_PRICES["ETHUSDT"] for c in closes(market, "ETHUSDT")]
    assert btc != eth


def test_prices_are_a_pure_function_of_time() -> None:
    market = SimulatedMarket()
    first = market.price("ETHUSDT", T0 + 12_345.6)
    market.bars("ETHUSDT", Interval.parse("1h"), end=T0 + 99_999, limit=20)  # no hidden state
    assert market.price("ETHUSDT", T0 + 12_345.6) == first


def test_default_symbols_and_custom_prices() -> None:
    assert set(SimulatedMarket().symbols) == set(DEFAULT_PRICES)
    market = SimulatedMarket(prices={"FOO": 10.0})
    assert tuple(market.symbols) == ("FOO",)
    assert 5 < market.price("FOO", T0) < 20


@pytest.mark.parametrize("interval", INTERVALS)
def test_bars_are_contiguous_and_well_formed(interval: str) -> None:
    iv = Interval.parse(interval)
    bars = SimulatedMarket().bars("BTCUSDT", iv, end=T0 + 1234.5, limit=60)
    assert len(bars) == 60
    for bar in bars:
        assert bar.symbol == "BTCUSDT"
        assert bar.interval == iv
        assert bar.high >= max(bar.open, bar.close)
        assert bar.low <= min(bar.open, bar.close)
        assert bar.low > 0
        assert bar.volume > 0
        assert bar.open_time % iv.seconds == 0
    for before, after in itertools.pairwise(bars):
        assert after.open_time == before.open_time + iv.seconds
        assert after.open == before.close


@settings(max_examples=60)
@given(
    interval=st.sampled_from(INTERVALS).map(Interval.parse),
    end=st.floats(min_value=T0, max_value=T0 + 3 * 365 * 86400, allow_nan=False),
    limit=st.integers(min_value=1, max_value=30),
)
def test_bars_end_at_the_last_close_at_or_before_end(
    interval: Interval, end: float, limit: int
) -> None:
    bars = SimulatedMarket().bars("SOLUSDT", interval, end=end, limit=limit)
    assert len(bars) == limit
    assert all(b.close_time <= end for b in bars)
    assert bars[-1].close_time == interval.last_close(end)
    # the last bar is the last complete one: the next would close after end
    assert bars[-1].close_time + interval.seconds > end


def test_bars_agree_across_windows() -> None:
    market = SimulatedMarket()
    iv = Interval.parse("1h")
    long = market.bars("BTCUSDT", iv, end=T0, limit=48)
    short = market.bars("BTCUSDT", iv, end=T0 - 5 * 3600, limit=10)
    assert long[-15:-5] == short


async def test_history_matches_bars_and_respects_limit() -> None:
    market = SimulatedMarket()
    iv = Interval.parse("15m")
    end = T0 + 600.0  # mid-bar: the bar opened at T0 has not closed yet
    bars = await market.history("ETHUSDT", iv, end=end, limit=25)
    assert len(bars) == 25
    assert bars == market.bars("ETHUSDT", iv, end=end, limit=25)
    assert bars[-1].close_time == T0
    assert all(b.close_time <= end for b in bars)
    assert [b.open_time for b in bars] == sorted(b.open_time for b in bars)


async def test_history_on_an_exact_close_includes_that_bar() -> None:
    market = SimulatedMarket()
    bars = await market.history("ETHUSDT", Interval.parse("15m"), end=T0, limit=3)
    assert bars[-1].close_time == T0


@pytest.mark.parametrize("limit", [0, -1])
def test_bad_limit(limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        SimulatedMarket().bars("BTCUSDT", Interval.parse("1m"), end=T0, limit=limit)


def test_unknown_symbol_names_known_symbols() -> None:
    market = SimulatedMarket()
    for call in (
        lambda: market.price("DOGEUSDT", T0),
        lambda: market.bars("DOGEUSDT", Interval.parse("1m"), end=T0, limit=1),
    ):
        with pytest.raises(UnknownSymbol) as info:
            call()
        message = str(info.value)
        assert "'DOGEUSDT'" in message
        for symbol in DEFAULT_PRICES:
            assert symbol in message


async def test_unknown_symbol_from_history() -> None:
    with pytest.raises(UnknownSymbol, match="BTCUSDT"):
        await SimulatedMarket().history("NOPE", Interval.parse("1m"), end=T0, limit=1)


@pytest.mark.parametrize("symbol", sorted(DEFAULT_PRICES))
def test_prices_stay_plausible_over_a_year(symbol: str) -> None:
    market = SimulatedMarket()
    base = DEFAULT_PRICES[symbol]
    prices = [market.price(symbol, T0 + h * 3600.0) for h in range(365 * 24)]
    assert min(prices) > 0.5 * base
    assert max(prices) < 2.0 * base
    # and it does move: trends a moving average can cross on
    assert max(prices) / min(prices) > 1.05


def test_price_is_continuous_within_a_minute() -> None:
    market = SimulatedMarket()
    a = market.price("BTCUSDT", T0 + 30.0)
    b = market.price("BTCUSDT", T0 + 30.001)
    assert abs(a - b) / a < 1e-4
