"""Tests for restart backoff under an OTP-style restart intensity (core: no event loop)."""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from trading.core.restart import Backoff, RestartPolicy


def test_defaults() -> None:
    policy = RestartPolicy()
    assert (policy.max_restarts, policy.window, policy.initial_delay, policy.max_delay) == (
        5,
        3600.0,
        1.0,
        300.0,
    )
    assert policy.factor == 2.0


def test_delays_double_from_initial_delay_then_cap() -> None:
    backoff = Backoff(RestartPolicy(max_restarts=10, window=1e6, initial_delay=1.5, max_delay=20))
    delays = [backoff.failed(float(t)) for t in range(8)]
    assert delays == [1.5, 3.0, 6.0, 12.0, 20.0, 20.0, 20.0, 20.0]
    assert backoff.failures == 8


def test_custom_factor() -> None:
    backoff = Backoff(RestartPolicy(initial_delay=2, factor=3, max_delay=1000, window=1e6))
    assert [backoff.failed(float(t)) for t in range(4)] == [2.0, 6.0, 18.0, 54.0]


def test_factor_one_is_a_constant_delay() -> None:
    backoff = Backoff(RestartPolicy(initial_delay=7, factor=1, window=1e6))
    assert [backoff.failed(float(t)) for t in range(5)] == [7.0] * 5


def test_delays_are_floats() -> None:
    backoff = Backoff(RestartPolicy(initial_delay=1, max_delay=4))
    for t in range(3):
        delay = backoff.failed(float(t))
        assert isinstance(delay, float)


def test_gives_up_after_max_restarts_within_window() -> None:
    backoff = Backoff(RestartPolicy(max_restarts=3, window=100))
    delays = [backoff.failed(float(t)) for t in (0, 1, 2)]
    assert all(d is not None for d in delays)  # three restarts
    assert backoff.failed(3.0) is None  # a fourth failure within the window: give up
    assert backoff.failed(4.0) is None  # and it stays given up inside the window


def test_zero_max_restarts_never_restarts() -> None:
    backoff = Backoff(RestartPolicy(max_restarts=0))
    assert backoff.failed(0.0) is None


@given(max_restarts=st.integers(min_value=0, max_value=30))
def test_exactly_max_restarts_are_allowed(max_restarts: int) -> None:
    backoff = Backoff(RestartPolicy(max_restarts=max_restarts, window=1e9, max_delay=1e9))
    results = [backoff.failed(float(t)) for t in range(max_restarts + 1)]
    assert all(r is not None for r in results[:-1])
    assert results[-1] is None


def test_failures_older_than_window_are_forgotten() -> None:
    backoff = Backoff(RestartPolicy(max_restarts=2, window=60, initial_delay=1, max_delay=100))
    assert backoff.failed(0.0) == 1.0
    assert backoff.failed(10.0) == 2.0
    # 100s later both are out of the window: a fresh budget and the initial delay again
    assert backoff.failed(110.0) == 1.0
    assert backoff.failures == 1


def test_failure_exactly_window_old_still_counts() -> None:
    backoff = Backoff(RestartPolicy(max_restarts=1, window=60))
    assert backoff.failed(0.0) is not None
    assert backoff.failed(60.0) is None  # 0.0 is not older than the window yet
    assert backoff.failed(120.5) is not None  # but now 0.0 and 60.0 are


def test_daily_failure_restarts_forever() -> None:
    backoff = Backoff(RestartPolicy(max_restarts=1, window=3600, initial_delay=5))
    day = 86400.0
    for n in range(1000):
        assert backoff.failed(n * day) == 5.0
    assert backoff.failures == 1


def test_rapid_failures_after_a_quiet_period_still_give_up() -> None:
    backoff = Backoff(RestartPolicy(max_restarts=2, window=60))
    assert backoff.failed(0.0) is not None
    # quiet for an hour, then a burst
    assert backoff.failed(3600.0) is not None
    assert backoff.failed(3601.0) is not None
    assert backoff.failed(3602.0) is None


def test_reset_restores_the_budget() -> None:
    backoff = Backoff(RestartPolicy(max_restarts=1, window=3600, initial_delay=2))
    assert backoff.failed(0.0) == 2.0
    assert backoff.failed(1.0) is None
    backoff.reset()
    assert backoff.failures == 0
    assert backoff.failed(2.0) == 2.0  # the initial delay again, and a restart is allowed


def test_backoffs_do_not_share_history() -> None:
    policy = RestartPolicy(max_restarts=1)
    a, b = Backoff(policy), Backoff(policy)
    a.failed(0.0)
    a.failed(1.0)
    assert b.failures == 0
    assert b.failed(2.0) is not None


def test_failures_is_not_an_init_argument() -> None:
    with pytest.raises(TypeError):
        Backoff(RestartPolicy(), failures=[1.0])  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_restarts": -1},
        {"window": 0},
        {"window": -1.0},
        {"initial_delay": 0},
        {"initial_delay": -0.5},
        {"max_delay": 0},
        {"factor": 0.5},
        {"factor": 0},
        {"window": float("nan")},
    ],
)
def test_policy_validators_reject_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as info:
        RestartPolicy(**kwargs)
    assert next(iter(kwargs)) in str(info.value)


def test_policy_is_frozen() -> None:
    policy = RestartPolicy()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.max_restarts = 9  # type: ignore[misc]


@given(
    initial=st.floats(min_value=0.001, max_value=100),
    cap=st.floats(min_value=0.001, max_value=1000),
    factor=st.floats(min_value=1, max_value=10),
    n=st.integers(min_value=1, max_value=40),
)
def test_delays_never_exceed_the_cap_and_never_shrink(
    initial: float, cap: float, factor: float, n: int
) -> None:
    assume(cap >= initial)
    backoff = Backoff(
        RestartPolicy(
            max_restarts=100, window=1e9, initial_delay=initial, max_delay=cap, factor=factor
        )
    )
    delays = [backoff.failed(float(t)) for t in range(n)]
    assert all(d is not None and d <= cap for d in delays)
    assert delays[0] == min(initial, cap)
    assert all(a <= b for a, b in itertools.pairwise(delays))  # type: ignore[operator]


def test_many_failures_in_a_long_window_stay_capped() -> None:
    backoff = Backoff(RestartPolicy(max_restarts=5000, window=86400, max_delay=1.0))
    delay = None
    for t in range(1100):
        delay = backoff.failed(float(t))
    assert delay == 1.0
