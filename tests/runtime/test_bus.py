"""EventBus: publish never blocks, lossless observers lose nothing, lossy ones count, tasks end."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import pytest
import trio
import trio.testing

from tests.conftest import T0, all_tasks
from trading.core.events import Event, StrategyStateChanged
from trading.runtime.bus import EventBus


def state_event(i: int) -> Event:
    return StrategyStateChanged(time=T0 + i, strategy="s", old="computing", new="sleeping")


class Collector:
    """An observer that keeps what it gets; optionally slow, gated, or failing."""

    def __init__(
        self,
        name: str = "collector",
        *,
        lossless: bool = True,
        delay: float = 0.0,
        gate: trio.Event | None = None,
        fail: int = 0,
    ) -> None:
        self.name = name
        self.lossless = lossless
        self.delay = delay
        self.gate = gate
        self.fail = fail  # raise on this many calls first (-1: always)
        self.batches: list[list[tuple[int, Event]]] = []
        self.dropped_notes: list[int] = []
        self.closed = 0

    @property
    def seqs(self) -> list[int]:
        return [seq for batch in self.batches for seq, _ in batch]

    def note_dropped(self, count: int) -> None:
        self.dropped_notes.append(count)

    async def handle(self, batch: Sequence[tuple[int, Event]]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await trio.sleep(self.delay)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("observer bug")
        self.batches.append(list(batch))

    async def aclose(self) -> None:
        self.closed += 1


class Stuck(Collector):
    async def handle(self, batch: Sequence[tuple[int, Event]]) -> None:
        await trio.sleep_forever()


async def test_publish_never_blocks_even_with_a_stuck_observer(
    clock: trio.testing.MockClock,
) -> None:
    bus = EventBus(close_timeout=1)
    lossy, lossless = Stuck("lossy", lossless=False), Stuck("lossless")
    bus.attach(lossy, buffer=8)
    bus.attach(lossless, buffer=8)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        await trio.testing.wait_all_tasks_blocked()
        started = trio.current_time()
        for i in range(10_000):
            bus.publish(state_event(i))
        assert trio.current_time() == started
        await trio.testing.wait_all_tasks_blocked()
        stats = bus.statistics()
        assert stats["lossy"].dropped >= 10_000 - 9
        assert stats["lossy"].pending + stats["lossy"].dropped == 10_000
        assert stats["lossless"].pending == 10_000  # channel + overflow + the stuck batch
        assert stats["lossless"].overflow > 8_000  # past the channel, minus the stuck batch
        assert stats["lossless"].dropped == 0
        nursery.cancel_scope.cancel(reason="test over")
    assert lossy.closed == lossless.closed == 1


async def test_lossless_observer_gets_every_event_in_order_past_its_channel(
    clock: trio.testing.MockClock,
) -> None:
    bus = EventBus()
    slow = Collector("slow", delay=0.01)
    bus.attach(slow, buffer=4, max_batch=3)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        published: list[Event] = []
        for i in range(1_000):
            event = state_event(i)
            published.append(event)
            bus.publish(event)
            if i % 37 == 0:  # let it drain now and then: channel and overflow interleave
                await trio.sleep(0.015)
        await bus.flush()
        stats = bus.statistics()["slow"]
        await bus.aclose()
    assert slow.seqs == list(range(1, 1_001))
    assert [event for batch in slow.batches for _, event in batch] == published
    assert max(len(batch) for batch in slow.batches) <= 3
    assert stats.max_pending > 4  # the overflow was used
    assert (stats.delivered, stats.dropped, stats.failed, stats.pending) == (1_000, 0, 0, 0)


async def test_lossy_observer_drops_and_counts(clock: trio.testing.MockClock) -> None:
    bus = EventBus()
    lossy = Collector("lossy", lossless=False, delay=0.5)
    bus.attach(lossy, buffer=4)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        for i in range(100):
            bus.publish(state_event(i))
        await bus.flush()
        stats = bus.statistics()["lossy"]
        assert stats.delivered + stats.dropped == 100
        assert stats.dropped >= 90
        assert stats.max_pending <= 5
        bus.publish(state_event(100))  # the next batch carries the news of the drops
        await bus.flush()
        await bus.aclose()
    assert sum(lossy.dropped_notes) == stats.dropped
    assert lossy.seqs[-1] == 101
    assert lossy.seqs == sorted(lossy.seqs)


async def test_wait_for_capacity_blocks_past_high_water_until_drained(
    clock: trio.testing.MockClock,
) -> None:
    bus = EventBus(high_water=50, low_water=10)
    gate = trio.Event()
    recorder = Collector("recorder", gate=gate)
    lossy = Stuck("notifier", lossless=False)  # a stuck lossy observer never holds anyone back
    bus.attach(recorder, buffer=8, max_batch=5)
    bus.attach(lossy, buffer=2)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        now = trio.current_time()
        await bus.wait_for_capacity()  # nothing pending: at once
        assert trio.current_time() == now
        for i in range(100):
            bus.publish(state_event(i))
        released: list[int] = []

        async def engine() -> None:
            await bus.wait_for_capacity()
            released.append(bus.statistics()["recorder"].pending)

        nursery.start_soon(engine)
        await trio.sleep(60)
        assert released == []
        gate.set()
        await trio.sleep(1)
        assert len(released) == 1 and released[0] <= 10
        assert recorder.seqs == list(range(1, 101))
        nursery.cancel_scope.cancel()


async def test_flush_waits_for_every_observer(clock: trio.testing.MockClock) -> None:
    bus = EventBus()
    fast, slow = Collector("fast"), Collector("slow", lossless=False, delay=1)
    bus.attach(fast)
    bus.attach(slow)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        for i in range(10):
            bus.publish(state_event(i))
            await trio.sleep(0.1)
        start = trio.current_time()
        await bus.flush()
        assert trio.current_time() > start
        assert fast.seqs == slow.seqs == list(range(1, 11))
        await bus.aclose()


async def test_detach_and_attach_at_runtime(clock: trio.testing.MockClock) -> None:
    bus = EventBus()
    a, b = Collector("a", delay=0.1), Collector("b")
    bus.attach(a)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        for i in range(3):
            bus.publish(state_event(i))
        bus.attach(b)
        for i in range(3, 6):
            bus.publish(state_event(i))
        await bus.detach(a)  # returns once a handled all it was given and was closed
        assert a.seqs == [1, 2, 3, 4, 5, 6] and a.closed == 1
        assert set(bus.statistics()) == {"b"}
        bus.publish(state_event(6))
        await bus.flush()
        assert b.seqs == [4, 5, 6, 7]
        with pytest.raises(ValueError, match="not attached"):
            await bus.detach(a)
        await bus.aclose()
    assert a.closed == b.closed == 1


async def test_a_raising_observer_does_not_kill_the_others(
    clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="trading.runtime.bus")
    bus = EventBus(retries=3, retry_delay=0.1)
    good = Collector("good")
    flaky = Collector("flaky", fail=2)  # lossless: retried, then it works
    broken = Collector("broken", fail=-1)  # lossless: retried, then counted as failed
    noisy = Collector("noisy", lossless=False, fail=-1)  # lossy: not retried
    for observer in (good, flaky, broken, noisy):
        bus.attach(observer)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        for i in range(10):
            bus.publish(state_event(i))
        await bus.flush()
        stats = bus.statistics()
        await bus.aclose()
    assert good.seqs == flaky.seqs == list(range(1, 11))
    assert (stats["flaky"].errors, stats["flaky"].failed, stats["flaky"].delivered) == (2, 0, 10)
    assert (stats["broken"].failed, stats["broken"].delivered) == (10, 0)
    assert stats["broken"].errors == 4  # one try and three retries for its one batch
    assert (stats["noisy"].errors, stats["noisy"].failed) == (1, 10)
    assert "broken failed on events #1-#10: 10 events not handled" in caplog.text
    assert all(o.closed == 1 for o in (good, flaky, broken, noisy))


async def test_aclose_leaves_no_bus_task_behind(clock: trio.testing.MockClock) -> None:
    before = all_tasks()
    bus = EventBus()
    bus.attach(Collector("a"))
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        bus.attach(Collector("b"))
        await trio.testing.wait_all_tasks_blocked()
        names = {task.name for task in all_tasks() - before}
        assert {"bus observer a", "bus observer b"} <= names
        bus.publish(state_event(0))
        await bus.aclose()
        left = {task.name for task in all_tasks() - before}
        assert not [name for name in left if "bus" in name or "EventBus" in name]
    assert all_tasks() == before


async def test_cancelling_run_still_drains_a_lossless_observer(
    clock: trio.testing.MockClock,
) -> None:
    bus = EventBus(close_timeout=30)
    recorder = Collector("recorder", delay=1)
    bus.attach(recorder, max_batch=4)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        for i in range(20):
            bus.publish(state_event(i))
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel(reason="test: hard stop")
    assert recorder.seqs == list(range(1, 21))
    assert recorder.closed == 1


async def test_closed_bus_drops_late_events_with_a_debug_line_and_refuses_observers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    early = Collector("early")
    bus.attach(early)
    bus.publish(state_event(0))  # before run: queued
    await bus.aclose()  # never ran: drained in place
    assert early.seqs == [1] and early.closed == 1
    with caplog.at_level(logging.DEBUG, logger="trading.runtime.bus"):
        bus.publish(state_event(1))  # never raises: the last publishers cannot always know
    assert bus.late == 1 and early.seqs == [1]
    assert "EventBus is closed: StrategyStateChanged dropped (1 late)" in caplog.text
    with pytest.raises(RuntimeError, match="closed"):
        bus.attach(Collector("late"))
    with pytest.raises(RuntimeError, match="runs once"):
        await bus.run()
    await bus.aclose()  # idempotent


def test_attach_checks_names_and_bounds() -> None:
    bus = EventBus()
    bus.attach(Collector("a"))
    with pytest.raises(ValueError, match="already attached"):
        bus.attach(Collector("a"))
    with pytest.raises(ValueError, match="positive int"):
        bus.attach(Collector("b"), buffer=math.inf)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="high_water"):
        EventBus(high_water=0)
