"""Leaving ``async with Runner``: one bounded wind-down for every exit (DESIGN.md rule 11).

An exception in the block, an outside cancellation and a plain end all stop every strategy the
way ``stop`` does (on_stop, resting orders cancelled at the exchange), then the engine, then the
observers, each under a deadline; a hung observer is abandoned by name, and nothing but the
block's own exception comes out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal

import attrs
import pytest
import trio
from trio.testing import MockClock

import trading
from tests.conftest import EventLog
from trading.core import events as ev
from trading.exchanges.base import OrderUpdate
from trading.exchanges.paper import PaperBroker
from trading.testing.exchange import FaultyExchange, Hang

RESTING = Decimal(50_000)  # a limit buy well under the price: it rests until cancelled


class Prices:
    def price(self, symbol: str, t: float) -> float:
        return 60_000.0


class Broker(PaperBroker):
    """The paper exchange, noting when its connection (``run``) ends."""

    def __init__(self, clock: trading.Clock, order: list[str]) -> None:
        super().__init__(Prices(), clock)
        self.order = order

    async def run(
        self,
        on_update: OrderUpdate,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            await super().run(on_update, task_status=task_status)
        finally:
            self.order.append("exchange closed")


@attrs.define
class Rests(trading.Strategy):
    """Leaves one limit order resting at the exchange, and notes its on_stop."""

    interval = "15m"
    order: list[str] = attrs.field(factory=list)

    async def on_start(self, ctx: trading.Context) -> None:
        await ctx.buy("0.01", price=RESTING)

    async def next(self, ctx: trading.Context) -> None:
        return None

    async def on_stop(self, ctx: trading.Context) -> None:
        self.order.append(f"on_stop {ctx.name}")


class Observer:
    """A test observer: records what it got and when it was closed; may hang on purpose."""

    def __init__(
        self,
        name: str,
        order: list[str],
        *,
        lossless: bool,
        hang_handle: bool = False,
        hang_close: bool = False,
        delay: float = 0.0,
    ) -> None:
        self.name = name
        self.lossless = lossless
        self.order = order
        self.hang_handle = hang_handle
        self.hang_close = hang_close
        self.delay = delay
        self.got: list[ev.Event] = []

    async def handle(self, batch: Sequence[tuple[int, ev.Event]]) -> None:
        if self.hang_handle:
            await trio.sleep_forever()
        if self.delay:
            await trio.sleep(self.delay)
        self.got.extend(event for _, event in batch)

    async def aclose(self) -> None:
        self.order.append(f"{self.name} closed")
        if self.hang_close:
            await trio.sleep_forever()


class Boom(Exception):
    pass


def cancelled_ids(events: EventLog) -> set[str]:
    return {e.client_order_id for e in events.of(ev.OrderCancelled)}  # type: ignore[attr-defined]


async def test_an_exception_in_the_block_winds_down_like_a_stop(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog
) -> None:
    order: list[str] = []
    broker = Broker(vclock, order)
    with pytest.raises(Boom) as raised:
        async with trading.Runner(clock=vclock, publish=events, exchange=broker) as runner:
            for name in ("a", "b"):
                await runner.add(Rests(order), name=name)
            assert len(await broker.open_orders()) == 2
            raise Boom("the embedding app failed")
    assert type(raised.value) is Boom and str(raised.value) == "the embedding app failed"
    assert await broker.open_orders() == []  # cancelled at the exchange, not just forgotten
    submitted = {e.client_order_id for e in events.of(ev.OrderSubmitted)}  # type: ignore[attr-defined]
    assert len(submitted) == 2 and cancelled_ids(events) == submitted
    assert sorted(order[:2]) == ["on_stop a", "on_stop b"] and order[2] == "exchange closed"
    stops = [e for e in events.of(trading.CommandHandled) if e.command == "stop all"]  # type: ignore[attr-defined]
    assert len(stops) == 2 and all("cancelled 1 open order" in e.message for e in stops)  # type: ignore[attr-defined]


async def test_an_outside_cancellation_winds_down_like_a_stop(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog
) -> None:
    order: list[str] = []
    broker = Broker(vclock, order)
    with trio.CancelScope() as outside:
        async with trading.Runner(clock=vclock, publish=events, exchange=broker) as runner:
            for name in ("a", "b"):
                await runner.add(Rests(order), name=name)
            outside.cancel(reason="the app's own deadline")
            await trio.sleep_forever()
    assert outside.cancelled_caught
    assert await broker.open_orders() == []
    assert len(cancelled_ids(events)) == 2
    assert sorted(order[:2]) == ["on_stop a", "on_stop b"] and order[2] == "exchange closed"
    assert all(runner[n].state is trading.StrategyState.STOPPED for n in ("a", "b"))


async def test_an_outside_deadline_during_a_slow_on_stop_still_cancels_the_orders(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog
) -> None:
    @attrs.define
    class SlowStop(Rests):
        async def on_stop(self, ctx: trading.Context) -> None:
            await trio.sleep(2)  # within its half of stop_timeout: the wind-down waits
            self.order.append("slow on_stop done")

    order: list[str] = []
    broker = Broker(vclock, order)
    with trio.move_on_after(60):
        async with trading.Runner(
            clock=vclock, publish=events, exchange=broker, stop_timeout=5
        ) as runner:
            await runner.add(SlowStop(order), name="slow")
            await trio.sleep_forever()
    assert order[:2] == ["slow on_stop done", "exchange closed"]
    assert await broker.open_orders() == []


async def test_shutdown_order_is_strategies_then_engine_then_observers(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog
) -> None:
    order: list[str] = []
    recorder = Observer("recorder", order, lossless=True, delay=0.5)
    async with trading.Runner(
        clock=vclock, publish=events, exchange=Broker(vclock, order), observers=[recorder]
    ) as runner:
        await runner.add(Rests(order), name="a")
    assert order == ["on_stop a", "exchange closed", "recorder closed"]
    assert runner.bus.late == 0  # nothing published into the closed bus
    # The recorder got every event, the last ones (the stop's) included: drained, not cut.
    assert [type(e) for e in recorder.got] == [type(e) for e in events]


async def test_hung_observers_are_abandoned_by_name_and_leaving_never_hangs(
    clock: MockClock,
    vclock: trading.VirtualClock,
    events: EventLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    order: list[str] = []
    stuck = Observer("stuck-notifier", order, lossless=False, hang_handle=True)
    unclosable = Observer("unclosable-recorder", order, lossless=True, hang_close=True)
    runner = trading.Runner(
        clock=vclock,
        publish=events,
        exchange=Broker(vclock, order),
        observers=[stuck, unclosable],
        observer_timeout=10,
        lossy_observer_timeout=1,
    )
    async with runner:
        await runner.add(Rests(order), name="a")
        await trio.sleep(1)
        left = trio.current_time()
    took = trio.current_time() - left
    assert took <= 10 + 1  # bounded: the lossy one's 1 s, the lossless one's 10 s for aclose
    assert "observer stuck-notifier did not drain within 1s: abandoned" in caplog.text
    assert "observer unclosable-recorder: aclose abandoned after 10s" in caplog.text
    stats = runner.bus.statistics()
    assert stats["stuck-notifier"].dropped == len(events) and stats["stuck-notifier"].pending == 0
    assert stats["unclosable-recorder"].delivered == len(events)  # drained; only aclose hung


async def test_an_abandoned_observer_says_how_many_events_it_lost(
    clock: MockClock, vclock: trading.VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    order: list[str] = []
    stuck = Observer("slow-log", order, lossless=False, hang_handle=True)
    async with trading.Runner(
        clock=vclock, exchange=Broker(vclock, order), observers=[stuck], lossy_observer_timeout=1
    ) as runner:
        await runner.add(Rests(order), name="a")
        await trio.sleep(1)
    (line,) = [r.getMessage() for r in caplog.records if "slow-log" in r.getMessage()]
    assert line.startswith("observer slow-log did not drain within 1s: abandoned, ")
    assert int(line.split("abandoned, ")[1].split()[0]) > 0


async def test_a_lossless_observer_gets_longer_than_a_lossy_one_to_drain(
    clock: MockClock, vclock: trading.VirtualClock
) -> None:
    order: list[str] = []
    slow_recorder = Observer("recorder", order, lossless=True, delay=2)
    slow_notifier = Observer("notifier", order, lossless=False, delay=5)
    events = EventLog()
    async with trading.Runner(
        clock=vclock,
        publish=events,
        exchange=Broker(vclock, order),
        observers=[slow_recorder, slow_notifier],
        observer_timeout=10,
        lossy_observer_timeout=1,
    ) as runner:
        await runner.add(Rests(order), name="a")
    assert len(slow_recorder.got) == len(events)  # drained within its 10 s
    assert len(slow_notifier.got) < len(events)  # cut after its 1 s


async def test_nothing_raises_out_of_the_block_when_strategies_misbehave_on_stop(
    clock: MockClock, vclock: trading.VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    @attrs.define
    class BadStop(trading.Strategy):
        interval = "15m"

        async def next(self, ctx: trading.Context) -> None:
            return None

        async def on_stop(self, ctx: trading.Context) -> None:
            if ctx.name == "raises":
                raise RuntimeError("on_stop bug")
            await trio.sleep_forever()  # "hangs": cut at stop_timeout

    with caplog.at_level(logging.WARNING):
        async with trading.Runner(clock=vclock, stop_timeout=3) as runner:
            await runner.add(BadStop(), name="raises")
            await runner.add(BadStop(), name="hangs")
            left = trio.current_time()
    assert trio.current_time() - left <= 3 + 1
    assert runner["raises"].state is runner["hangs"].state is trading.StrategyState.STOPPED


async def test_a_runner_runs_once_and_refuses_strategies_once_closed(
    clock: MockClock, vclock: trading.VirtualClock
) -> None:
    runner = trading.Runner(clock=vclock)
    with pytest.raises(trading.RunnerNotRunning):
        await runner.add(Rests([]))
    async with runner:
        pass
    with pytest.raises(trading.RunnerNotRunning):
        await runner.add(Rests([]))
    with pytest.raises(RuntimeError, match="runs once"):
        async with runner:
            pass


async def test_leaving_is_bounded_when_the_exchange_never_answers_a_cancel(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog
) -> None:
    order: list[str] = []
    fx = FaultyExchange(Broker(vclock, order))
    fx.script("cancel", *[Hang()] * 5)
    fx.script("query", *[Hang()] * 50)
    runner = trading.Runner(clock=vclock, publish=events, exchange=fx, stop_timeout=3)
    async with runner:
        await runner.add(Rests(order), name="a")
        left = trio.current_time()
    took = trio.current_time() - left
    # every step bounded: stop 3 s (+1), engine 5 s (+1); observers have nothing to do
    assert took <= 3 + 1 + 5 + 1, took
    assert len(await fx.inner.open_orders()) == 1  # honestly still resting: nobody answered


async def test_while_closing_no_strategy_starts_but_a_stop_can_still_be_spawned(
    clock: MockClock, vclock: trading.VirtualClock
) -> None:
    seen: list[str] = []

    @attrs.define
    class Closer(trading.Strategy):
        interval = "15m"

        async def next(self, ctx: trading.Context) -> None:
            return None

        async def on_stop(self, ctx: trading.Context) -> None:
            with pytest.raises(trading.RunnerNotRunning, match="closing"):
                await runner.add(Closer(), name="late")
            runner.nursery.start_soon(runner.stop_all)  # e.g. a second Ctrl-C's handler
            seen.append("on_stop ran")

    runner = trading.Runner(clock=vclock)
    async with runner:
        await runner.add(Closer(), name="a")
    assert seen == ["on_stop ran"] and runner.names() == ["a"]
