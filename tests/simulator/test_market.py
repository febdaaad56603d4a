"""The price path and its klines: deterministic, exact, consistent between partial and closed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.bars import Interval
from trading.exchanges.sim import SimulatedMarket
from trading.simulator import DEFAULT_SYMBOLS, KlineRow, PricePath, SimError

T0 = 1_735_689_600_000  # 2025-01-01 00:00 UTC, in ms
MINUTE = 60_000
M1 = Interval.parse("1m")


def test_same_seed_same_prices_different_seed_different() -> None:
    a, b, c = PricePath(seed=3), PricePath(seed=3), PricePath(seed=4)
    times = [T0 + k * 7_919 for k in range(50)]
    assert [a.price("ETHUSDT", t) for t in times] == [b.price("ETHUSDT", t) for t in times]
    assert [a.price("ETHUSDT", t) for t in times] != [c.price("ETHUSDT", t) for t in times]


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
def test_minute_prices_are_the_simulated_markets_rounded_to_the_tick(symbol: str) -> None:
    market, path = SimulatedMarket(seed=7), PricePath(seed=7)
    tick = DEFAULT_SYMBOLS[symbol].tick_size
    for k in range(0, 600, 37):
        t = T0 + k * MINUTE
        expected = Decimal(repr(market.price(symbol, t / 1000))).quantize(tick)
        assert abs(path.price(symbol, t) - expected) <= tick  # float rounding at a half tick


def test_prices_are_whole_ticks_and_positive_for_every_symbol() -> None:
    path = PricePath()
    for symbol, rules in DEFAULT_SYMBOLS.items():
        for k in range(20):
            price = path.price(symbol, T0 + k * 12_345)
            assert price > 0
            assert price % rules.tick_size == 0


def test_unknown_symbol_is_minus_1121() -> None:
    with pytest.raises(SimError) as info:
        PricePath().price("NOPEUSDT", T0)
    assert (info.value.code, info.value.msg) == (-1121, "Invalid symbol.")


def test_symbols_need_a_typical_price() -> None:
    with pytest.raises(ValueError, match="FOOUSDT"):
        PricePath(symbols={"FOOUSDT": DEFAULT_SYMBOLS["BTCUSDT"]}, base_prices={})


def test_path_is_a_straight_line_between_minutes() -> None:
    path = PricePath()
    a, b = path.price("BTCUSDT", T0), path.price("BTCUSDT", T0 + MINUTE)
    middle = path.price("BTCUSDT", T0 + MINUTE // 2)
    assert abs(middle - (a + b) / 2) <= Decimal("0.01")


@given(
    interval=st.sampled_from(["1s", "1m", "5m", "1h"]),
    bar=st.integers(0, 200),
    offset=st.floats(0, 1),
)
def test_every_price_inside_a_bar_lies_within_its_high_and_low(
    interval: str, bar: int, offset: float
) -> None:
    path = PricePath()
    iv = Interval.parse(interval)
    length = iv.seconds * 1000
    open_ms = T0 + bar * length
    row = path.kline("BTCUSDT", iv, open_ms)
    t = open_ms + int(offset * (length - 1))
    assert row.low <= path.price("BTCUSDT", t) <= row.high
    assert row.low <= min(row.open, row.close) and max(row.open, row.close) <= row.high


def test_high_and_low_are_attained_not_bounds() -> None:
    # Exactness: the extremes of a 1h bar are prices the path actually takes at some second.
    path = PricePath()
    iv = Interval.parse("1h")
    row = path.kline("ETHUSDT", iv, T0)
    seconds = [path.price("ETHUSDT", T0 + s * 1000) for s in range(3600)]
    seconds.append(path.price("ETHUSDT", T0 + 3_599_999))
    assert (row.low, row.high) == (min(seconds), max(seconds))


@given(upto=st.integers(0, 15 * MINUTE - 1))
def test_partial_bar_closes_at_the_current_price_and_grows_into_the_closed_bar(upto: int) -> None:
    path = PricePath()
    iv = Interval.parse("15m")
    partial = path.kline("BTCUSDT", iv, T0, upto_ms=T0 + upto)
    closed = path.kline("BTCUSDT", iv, T0)
    assert partial.close == path.price("BTCUSDT", T0 + upto)
    assert partial.open == closed.open
    assert closed.low <= partial.low and partial.high <= closed.high
    assert partial.volume <= closed.volume
    assert path.kline("BTCUSDT", iv, T0, upto_ms=closed.close_ms) == closed
    assert closed.close == path.price("BTCUSDT", closed.close_ms)


def test_closed_bar_is_stable_whatever_was_asked_before() -> None:
    fresh = PricePath().kline("BTCUSDT", Interval.parse("1d"), T0)
    warmed = PricePath()
    warmed.klines("BTCUSDT", Interval.parse("1h"), now_ms=T0 + 86_400_000, limit=30)
    assert warmed.kline("BTCUSDT", Interval.parse("1d"), T0) == fresh


def test_kline_rejects_unaligned_open_and_upto_before_open() -> None:
    path = PricePath()
    with pytest.raises(ValueError, match="not the open"):
        path.kline("BTCUSDT", M1, T0 + 1)
    with pytest.raises(ValueError, match="before the bar's open"):
        path.kline("BTCUSDT", M1, T0, upto_ms=T0 - 1)


def test_klines_latest_rows_end_with_the_open_bar() -> None:
    path = PricePath()
    now = T0 + 10 * MINUTE + 12_345
    rows = path.klines("BTCUSDT", M1, limit=5, now_ms=now)
    assert [r.open_ms for r in rows] == [T0 + k * MINUTE for k in range(6, 11)]
    assert rows[-1].close == path.price("BTCUSDT", now)  # the open bar, up to now
    assert rows[-2] == path.kline("BTCUSDT", M1, T0 + 9 * MINUTE)


def test_klines_start_end_and_limit() -> None:
    path = PricePath()
    now = T0 + 100 * MINUTE
    from_start = path.klines("BTCUSDT", M1, start_ms=T0 + 1, limit=3, now_ms=now)
    assert [r.open_ms for r in from_start] == [T0 + MINUTE * k for k in (1, 2, 3)]
    window = path.klines("BTCUSDT", M1, start_ms=T0, end_ms=T0 + 4 * MINUTE, now_ms=now)
    assert [r.open_ms for r in window] == [T0 + MINUTE * k for k in range(5)]
    before_end = path.klines("BTCUSDT", M1, end_ms=T0 + 4 * MINUTE, limit=2, now_ms=now)
    assert [r.open_ms for r in before_end] == [T0 + 3 * MINUTE, T0 + 4 * MINUTE]
    assert path.klines("BTCUSDT", M1, start_ms=now + MINUTE, now_ms=now) == []
    assert len(path.klines("BTCUSDT", M1, limit=5000, now_ms=now)) == 1000
    assert len(path.klines("BTCUSDT", M1, limit=0, now_ms=now)) == 1


def test_daily_bars_are_built_from_cached_hour_blocks() -> None:
    path = PricePath()
    rows = path.klines("BTCUSDT", Interval.parse("1d"), limit=30, now_ms=T0)
    assert len(rows) == 30 and all(r.low <= r.high for r in rows)
    hours = path.klines("BTCUSDT", Interval.parse("1h"), end_ms=T0 - 1, limit=24, now_ms=T0)
    last_day = rows[-2]
    assert last_day.open_ms == hours[0].open_ms
    assert last_day.high == max(h.high for h in hours) and last_day.low == min(h.low for h in hours)


def test_row_json_is_binances_twelve_elements() -> None:
    row = PricePath().kline("BTCUSDT", M1, T0)
    data = row.to_json()
    assert len(data) == 12
    assert data[0] == T0 and data[6] == T0 + MINUTE - 1 and isinstance(data[8], int)
    assert data[11] == "0"
    for index in (1, 2, 3, 4, 5, 7, 9, 10):
        assert isinstance(data[index], str)
        assert len(str(data[index]).split(".")[1]) == 8
    assert Decimal(str(data[1])) == row.open


def test_stream_event_has_every_field() -> None:
    row = PricePath().kline("ETHUSDT", M1, T0, upto_ms=T0 + 5_000)
    event = row.to_stream("ETHUSDT", M1, False, T0 + 5_001)
    assert event["e"] == "kline" and event["E"] == T0 + 5_001 and event["s"] == "ETHUSDT"
    k = event["k"]
    assert isinstance(k, dict)
    assert set(k) == set("tTsifLochlvnxqVQB")
    assert (k["t"], k["T"], k["i"], k["x"]) == (T0, T0 + MINUTE - 1, "1m", False)
    assert Decimal(k["c"]) == row.close


def test_row_is_frozen() -> None:
    row: KlineRow = PricePath().kline("BTCUSDT", M1, T0)
    with pytest.raises(AttributeError):
        row.close = Decimal(1)  # type: ignore[misc]
