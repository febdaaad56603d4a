"""Tests for bar intervals, bar-close arithmetic and durations (core: no event loop)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.bars import Bar, Due, Interval, IntervalError, next_due, parse_duration

# Written out here rather than read from the module, so a change to the module cannot hide itself.
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

# A plausible range of epoch times: 1970 .. ~2100.
EPOCH = 4_102_444_800


# -- Interval.parse -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1),
        ("1m", 60),
        ("5m", 300),
        ("15m", 900),
        ("1h", 3600),
        ("4h", 14400),
        ("1d", 86400),
        ("1w", 604800),
    ],
)
def test_parse_known_intervals(text: str, seconds: int) -> None:
    interval = Interval.parse(text)
    assert interval.seconds == seconds
    assert interval.text == text
    assert str(interval) == text


@pytest.mark.parametrize(
    ("text", "seconds", "canonical"),
    [
        (" 15m", 900, "15m"),
        ("15m ", 900, "15m"),
        ("\t1h\n", 3600, "1h"),
        ("15 m", 900, "15m"),
        ("  4  h  ", 14400, "4h"),
    ],
)
def test_parse_tolerates_whitespace_and_normalises_text(
    text: str, seconds: int, canonical: str
) -> None:
    interval = Interval.parse(text)
    assert interval.seconds == seconds
    assert interval.text == canonical


def test_parse_leading_zeros_are_normalised() -> None:
    interval = Interval.parse("015m")
    assert interval == Interval.parse("15m")
    assert interval.text == "15m"


def test_parse_passes_an_interval_through() -> None:
    interval = Interval.parse("4h")
    assert Interval.parse(interval) is interval


@given(count=st.integers(min_value=1, max_value=10_000), unit=st.sampled_from(sorted(UNIT_SECONDS)))
def test_parse_any_count_and_unit(count: int, unit: str) -> None:
    interval = Interval.parse(f"{count}{unit}")
    assert interval.seconds == count * UNIT_SECONDS[unit]
    assert interval.text == f"{count}{unit}"


def test_intervals_compare_by_value() -> None:
    assert Interval.parse("60m") != Interval.parse("1h")  # same length, different spelling
    assert Interval.parse("60m").seconds == Interval.parse("1h").seconds
    assert Interval.parse("15m") == Interval.parse(" 15m ")
    assert hash(Interval.parse("15m")) == hash(Interval.parse("15m"))


@pytest.mark.parametrize("bad", ["15x", "m", "-1m", "1.5m", "", "15", "1M", "m15", "1 5m", "15mm"])
def test_parse_rejects_malformed_text_naming_value_and_form(bad: str) -> None:
    with pytest.raises(IntervalError) as info:
        Interval.parse(bad)
    message = str(info.value)
    assert repr(bad) in message
    # the accepted form: the units and an example
    assert "s, m, h, d or w" in message
    assert "'15m'" in message


def test_parse_rejects_zero_length_naming_value_and_minimum() -> None:
    with pytest.raises(IntervalError) as info:
        Interval.parse("0m")
    message = str(info.value)
    assert "'0m'" in message
    assert "at least 1m" in message


@pytest.mark.parametrize("bad", [15, 1.5, None, b"15m", ["15m"]])
def test_parse_rejects_non_strings_naming_value_and_form(bad: Any) -> None:
    with pytest.raises(IntervalError) as info:
        Interval.parse(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert type(bad).__name__ in message
    assert "'15m'" in message


def test_interval_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Interval.parse("15x")


# -- next_close / last_close ----------------------------------------------------------------------

intervals = st.sampled_from(["1s", "1m", "5m", "15m", "1h", "4h", "1d", "1w", "7m", "3d"]).map(
    Interval.parse
)
float_times = st.floats(min_value=0, max_value=EPOCH, allow_nan=False, allow_infinity=False)
int_times = st.integers(min_value=0, max_value=EPOCH)


@given(interval=intervals, now=st.one_of(float_times, int_times))
def test_next_close_is_the_first_aligned_close_strictly_after_now(
    interval: Interval, now: float
) -> None:
    close = interval.next_close(now)
    assert close > now
    # aligned to the epoch
    assert close % interval.seconds == 0
    assert float(close).is_integer()
    # the *first* such close: one interval earlier is not after now
    assert close - interval.seconds <= now


@given(interval=intervals, data=st.data())
def test_next_close_on_an_exact_close_is_one_whole_bar_later(
    interval: Interval, data: st.DataObject
) -> None:
    k = data.draw(st.integers(min_value=0, max_value=EPOCH // interval.seconds))
    now = k * interval.seconds
    assert interval.next_close(now) == now + interval.seconds
    assert interval.next_close(float(now)) == now + interval.seconds


@given(interval=intervals, now=st.one_of(float_times, int_times))
def test_last_close_brackets_now(interval: Interval, now: float) -> None:
    last = interval.last_close(now)
    assert last <= now < last + interval.seconds
    assert last % interval.seconds == 0
    assert interval.next_close(now) == last + interval.seconds


@given(interval=intervals, data=st.data())
def test_just_before_a_close(interval: Interval, data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=1, max_value=EPOCH // interval.seconds))
    close = float(k * interval.seconds)
    before = math.nextafter(close, 0.0)
    assert interval.next_close(before) == close
    assert interval.last_close(before) == close - interval.seconds
    assert interval.last_close(close) == close


def test_closes_are_aligned_to_the_epoch_concretely() -> None:
    # 2024-01-01 00:07:30 UTC
    now = 1_704_067_650.0
    assert Interval.parse("15m").next_close(now) == 1_704_068_100  # 00:15
    assert Interval.parse("15m").last_close(now) == 1_704_067_200  # 00:00
    assert Interval.parse("1d").next_close(now) == 1_704_153_600  # next midnight UTC
    assert Interval.parse("1m").next_close(now) == 1_704_067_680


# -- parse_duration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("1.5m", 90.0),
        ("250ms", 0.25),
        ("2h", 7200.0),
        ("10", 10.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        (" 5 m ", 300.0),
        ("0.5", 0.5),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["abc", "-5s", "", "5x", "s", "1e3s", "5 s s", "1,5m"])
def test_parse_duration_rejects_malformed_text(bad: str) -> None:
    with pytest.raises(IntervalError) as info:
        parse_duration(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert "ms, s, m, h, d or w" in message


@pytest.mark.parametrize("bad", ["0s", "0", "0ms", "0.0h"])
def test_parse_duration_rejects_zero(bad: str) -> None:
    with pytest.raises(IntervalError) as info:
        parse_duration(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert "longer than zero" in message


@given(
    number=st.decimals(min_value="0.001", max_value="100000", places=3),
    unit=st.sampled_from(sorted(UNIT_SECONDS)),
)
def test_parse_duration_scales_by_unit(number: Any, unit: str) -> None:
    assert parse_duration(f"{number}{unit}") == pytest.approx(float(number) * UNIT_SECONDS[unit])
    assert parse_duration(f"{number}ms") == pytest.approx(float(number) / 1000)


# -- Bar ------------------------------------------------------------------------------------------


def test_bar_close_time_is_open_time_plus_interval() -> None:
    interval = Interval.parse("15m")
    bar = Bar("BTCUSDT", interval, 1_704_067_200.0, 1.0, 2.0, 0.5, 1.5, 10.0)
    assert bar.close_time == 1_704_067_200.0 + 900


# -- the overlap policy: no bar is skipped silently -----------------------------------------------



M15 = Interval.parse("15m")
C = 1_735_689_600.0  # a 15-minute close


def test_a_close_still_ahead_is_slept_to() -> None:
    assert next_due(M15, C + 900, C + 10) == Due(C + 900)


def test_a_compute_ending_exactly_on_the_next_close_computes_it_at_once() -> None:
    # 15-minute compute on 15-minute bars: every close computed, none skipped.
    assert next_due(M15, C + 900, C + 900) == Due(C + 900, skipped=0)


def test_an_overrun_computes_the_latest_close_once_and_counts_the_rest() -> None:
    # heading for C+900, but now is past C+2700: C+900 and C+1800 skipped, C+2700 computed
    assert next_due(M15, C + 900, C + 3 * 900 + 5) == Due(C + 3 * 900, skipped=2)


def test_before_the_first_close_waits_for_the_next_one() -> None:
    assert next_due(M15, None, C + 1) == Due(C + 900)
    assert next_due(M15, None, C) == Due(C + 900)


@given(
    due=st.integers(min_value=0, max_value=10_000).map(lambda k: C + k * 900),
    elapsed=st.floats(min_value=-900, max_value=10 * 86400, allow_nan=False),
)
def test_every_close_is_either_computed_or_counted(due: float, elapsed: float) -> None:
    now = due + elapsed
    got = next_due(M15, due, now)
    if now < due:
        assert got == Due(due)
    else:
        # every close from `due` up to now: the one computed (the latest) plus those skipped
        assert got.close == M15.last_close(now) and got.close <= now
        assert got.skipped + 1 == int((got.close - due) // 900) + 1
