"""Live bars drive the schedule: a close is reached when its bars arrive; each bar once, in order.

The stream is played by the test (what a kline stream would call: ``on_bar``, ``on_reconnect``);
the REST fallback is a function over the exchange's true bars, which can lag or fail.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trading.core.bars import Bar, Interval
from trading.runtime.bar_feed import BarFeed, FeedClock
from trading.runtime.clock import VirtualClock

M1 = Interval.parse("1m")
T0 = 1_735_689_600.0  # a minute boundary


def bar(k: int, symbol: str = "BTCUSDT", interval: Interval = M1) -> Bar:
    """The k-th bar after T0; its prices say which it is."""
    price = 100.0 + k
    return Bar(symbol, interval, T0 + k * interval.seconds, price, price, price, price, 1.0)


class Exchange:
    """The exchange's REST view of bars: what has closed by now, fewer while it lags."""

    def __init__(self, clock: VirtualClock, *, lag: float = 0.0) -> None:
        self.clock = clock
        self.lag = lag
        self.calls: list[tuple[float, float]] = []
        self.fail_next = 0

    async def fetch(self, symbol: str, interval: Interval, start: float, end: float) -> list[Bar]:
        self.calls.append((start, end))
        await trio.sleep(0.05)  # a round trip
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("connection reset")
        now = self.clock.now() - self.lag
        out = []
        k = int((start - T0) // interval.seconds)
        while True:
            b = bar(k, symbol, interval)
            if b.open_time >= start and b.close_time <= min(end, now):
                out.append(b)
            if b.close_time > min(end, now):
                break
            k += 1
        return out


def make(clock_start: float = T0 + 1, *, lag: float = 0.0, grace: float = 5.0) -> tuple[
    VirtualClock, Exchange, BarFeed, FeedClock
]:
    base = VirtualClock(clock_start)
    exchange = Exchange(base, lag=lag)
    feed = BarFeed(base, exchange.fetch, grace=grace, retry=0.5)
    return base, exchange, feed, FeedClock(base, feed)


async def test_a_close_is_reached_when_its_bar_arrives_even_with_the_local_clock_behind(
    clock: trio.testing.MockClock,
) -> None:
    base, exchange, feed, fclock = make()
    fclock.watch("BTCUSDT", M1)
    reached: list[float] = []

    async def strategy() -> None:
        await fclock.sleep_until(T0 + 60)
        reached.append(base.now())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed.run)
        nursery.start_soon(strategy)
        # the exchange's bar closes 2 s before the local clock thinks it should
        await base.sleep_until(T0 + 58)
        assert reached == []
        feed.on_bar(bar(0), closed=True)
        await trio.testing.wait_all_tasks_blocked()
        assert reached == [pytest.approx(T0 + 58)]
        assert fclock.now() >= T0 + 60  # history now includes the bar just closed
        assert feed.bars("BTCUSDT", M1, end=fclock.now(), limit=1) == [bar(0)]
        assert exchange.calls == []  # the stream delivered it: no REST call
        nursery.cancel_scope.cancel()


async def test_an_unclosed_update_is_a_mark_not_a_close(clock: trio.testing.MockClock) -> None:
    _base, _exchange, feed, fclock = make()
    fclock.watch("BTCUSDT", M1)
    feed.on_bar(bar(0), closed=False)
    assert str(feed.mark("BTCUSDT")) == "100.0"
    assert feed.through("BTCUSDT", M1) == T0
    feed.on_bar(bar(5, symbol="ETHUSDT"), closed=True)  # not watched: only a mark
    assert str(feed.mark("ETHUSDT")) == "105.0"


async def test_a_silent_stream_is_covered_by_a_fetch_after_the_grace(
    clock: trio.testing.MockClock,
) -> None:
    base, exchange, feed, fclock = make(lag=1.0, grace=5.0)
    fclock.watch("BTCUSDT", M1)
    exchange.fail_next = 2  # and the first two fetches fail
    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed.run)
        await fclock.sleep_until(T0 + 60)
        assert base.now() >= T0 + 65  # not before the grace
        assert base.now() < T0 + 70  # but soon after it, despite two failures
        assert len(exchange.calls) == 3
        assert feed.bars("BTCUSDT", M1, end=T0 + 60, limit=1) == [bar(0)]
        assert feed.fetched == 1
        nursery.cancel_scope.cancel()


async def test_a_gap_is_filled_before_the_close_after_it_is_reached(
    clock: trio.testing.MockClock,
) -> None:
    base, _exchange, feed, fclock = make()
    fclock.watch("BTCUSDT", M1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed.run)
        await base.sleep_until(T0 + 121)
        feed.on_bar(bar(1), closed=True)  # bar 0's close was never pushed
        with trio.fail_after(1):
            await fclock.sleep_until(T0 + 60)
            await fclock.sleep_until(T0 + 120)
        assert feed.bars("BTCUSDT", M1, end=T0 + 120, limit=2) == [bar(0), bar(1)]
        nursery.cancel_scope.cancel()


async def test_pause_while_waiting_for_a_bar_does_not_cancel_the_fetch_another_waits_on(
    clock: trio.testing.MockClock,
) -> None:
    base, exchange, feed, fclock = make(grace=1.0)
    fclock.watch("BTCUSDT", M1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed.run)
        with trio.move_on_at(base.trio_deadline(T0 + 61.02)):  # cancelled mid-fetch
            await fclock.sleep_until(T0 + 60)
        with trio.fail_after(1):
            await fclock.sleep_until(T0 + 60)
        assert len(exchange.calls) == 1
        nursery.cancel_scope.cancel()


async def test_wait_through_an_unwatched_series_is_a_clear_error(
    clock: trio.testing.MockClock,
) -> None:
    _, _, feed, _ = make()
    with pytest.raises(LookupError, match="ETHUSDT 1m is not watched"):
        await feed.wait_through("ETHUSDT", M1, T0 + 60)


async def test_a_bad_price_is_dropped_and_the_feed_goes_on(clock: trio.testing.MockClock) -> None:
    _, _, feed, fclock = make()
    fclock.watch("BTCUSDT", M1)
    broken = Bar("BTCUSDT", M1, T0, 1.0, 1.0, 1.0, float("nan"), 1.0)
    feed.on_bar(broken, closed=True)
    assert feed.mark("BTCUSDT") is None
    assert feed.through("BTCUSDT", M1) == T0


# ------------------------------------------------ every bar once, in order: any delivery


deliveries = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 11)),  # a closed bar (any, again, out of order)
        st.tuples(st.just("reconnect"), st.just(0)),
        st.tuples(st.just("wait"), st.integers(1, 90)),  # seconds pass
        st.tuples(st.just("next"), st.integers(0, 3)),  # the next bar due (+k) closes now
    ),
    max_size=40,
)


def _play(script: Sequence[tuple[str, int]], grace: float) -> tuple[list[Bar], list[float]]:
    seen: list[Bar] = []
    reached: list[float] = []

    async def main() -> None:
        base, _exchange, feed, fclock = make(lag=2.0, grace=grace)
        fclock.watch("BTCUSDT", M1)
        closes = 10

        async def strategy() -> None:
            for k in range(closes):
                close = T0 + 60 * (k + 1)
                await fclock.sleep_until(close)
                reached.append(close)
                assert fclock.reached(close)
                seen.extend(feed.bars("BTCUSDT", M1, end=close, limit=1) or [])
                # and the history up to it is whole
                assert feed.bars("BTCUSDT", M1, end=close, limit=k + 1) == [
                    bar(i) for i in range(k + 1)
                ]

        async def stream() -> None:
            for action, value in script:
                if action == "push":
                    if bar(value).close_time <= base.now():  # nobody pushes the future
                        feed.on_bar(bar(value), closed=True)
                elif action == "next":
                    k = int((base.now() - T0) // 60) - 1 + value
                    if k >= 0 and bar(k).close_time <= base.now():
                        feed.on_bar(bar(k), closed=True)
                elif action == "reconnect":
                    feed.on_reconnect()
                else:
                    await trio.sleep(value / base.speed)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed.run)
            nursery.start_soon(stream)
            with trio.fail_after(3600):
                await strategy()
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return seen, reached


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deliveries, st.sampled_from([5.0, 900.0]))
def test_whatever_the_stream_delivers_each_bar_is_seen_once_in_order(
    script: list[tuple[str, int]], grace: float
) -> None:
    seen, reached = _play(script, grace)
    assert reached == [T0 + 60 * (k + 1) for k in range(10)]
    assert seen == [bar(k) for k in range(10)]


async def test_a_long_run_keeps_a_bounded_number_of_bars(clock: trio.testing.MockClock) -> None:
    base = VirtualClock(T0)
    feed = BarFeed(base, Exchange(base).fetch, keep=100)
    feed.watch("BTCUSDT", M1)
    for k in range(1000):
        feed.on_bar(bar(k), closed=True)
    assert feed.through("BTCUSDT", M1) == T0 + 60 * 1000
    assert feed.bars("BTCUSDT", M1, end=T0 + 60 * 1000, limit=100) == [
        bar(k) for k in range(900, 1000)
    ]
    assert feed.bars("BTCUSDT", M1, end=T0 + 60 * 1000, limit=200) is None  # gone: REST's job
