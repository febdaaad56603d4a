"""SharedFlush (group commit for stops) and NoMarket (a Runner without market data)."""

from __future__ import annotations

import attrs
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from trio.testing import MockClock

import trading
from tests.conftest import EventLog
from trading.runtime.services import MarketUnavailable, NoMarket, SharedFlush


class Disk:
    """A flush target that writes what was published when the flush *started*, slowly."""

    def __init__(self) -> None:
        self.published = 0
        self.written = 0
        self.flushes = 0

    async def flush(self) -> None:
        target = self.published
        self.flushes += 1
        await trio.sleep(1)
        self.written = max(self.written, target)


@given(
    arrivals=st.lists(
        st.floats(min_value=0, max_value=5, allow_nan=False), min_size=1, max_size=60
    ),
    cancel_first=st.booleans(),
)
def test_every_caller_returns_after_a_flush_that_covers_it(
    arrivals: list[float], cancel_first: bool
) -> None:
    async def main() -> None:
        disk = Disk()
        shared = SharedFlush(disk.flush)
        covered: list[bool] = []

        async def caller(at: float, cancelled: bool) -> None:
            await trio.sleep(at)
            disk.published += 1  # this caller's event
            mine = disk.published
            with trio.move_on_after(0.5 if cancelled else float("inf")):
                await shared()
                covered.append(disk.written >= mine)

        async with trio.open_nursery() as nursery:
            for i, at in enumerate(sorted(arrivals)):
                nursery.start_soon(caller, at, cancel_first and i == 0)
        assert all(covered) and len(covered) == len(arrivals) - (1 if cancel_first else 0)
        # Group commit: far fewer flushes than callers when they overlap.
        assert disk.flushes <= 2 * (5 + 1) + 2

    trio.run(main, clock=MockClock(autojump_threshold=0))


async def test_ten_thousand_concurrent_callers_share_two_flushes(clock: MockClock) -> None:
    disk = Disk()
    shared = SharedFlush(disk.flush)
    async with trio.open_nursery() as nursery:
        for _ in range(10_000):
            nursery.start_soon(shared)
    assert disk.flushes == 2 and shared.flushes == 2  # the first caller's, then everyone else's


async def test_stop_all_shares_its_flushes(
    clock: MockClock, runner: trading.Runner, events: EventLog
) -> None:
    @attrs.define
    class Idle(trading.Strategy):
        async def next(self, ctx: trading.Context) -> None:
            return None

    await runner.add_many((f"s{i}", Idle()) for i in range(200))
    results = await runner.stop_all()
    assert len(results) == 200 and all(r.ok for r in results)
    assert runner._stop_flush.flushes <= 3


async def test_no_market_names_the_fix() -> None:
    with pytest.raises(MarketUnavailable, match=r"pass Runner\(market=...\)"):
        await NoMarket().history("BTCUSDT", trading.Interval.parse("1m"), end=0, limit=1)
    assert NoMarket().symbols == ()


async def test_a_strategy_asking_for_bars_without_a_market_fails_clearly(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog
) -> None:
    @attrs.define
    class Reader(trading.Strategy):
        async def next(self, ctx: trading.Context) -> None:
            await ctx.history(limit=5)

    async with trading.Runner(clock=vclock, publish=events) as runner:
        sr = await runner.add(Reader(), name="r")
        await trio.sleep(1)
        assert sr.last_error is not None and "MarketUnavailable" in sr.last_error
        assert "without a market" in sr.last_error
