"""BarScheduler: one timer; strategies woken at their close a chunk at a time; cancel-safe."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import trading
from tests.conftest import T0
from trading.runtime.scheduler import BarScheduler


async def _computer(
    scheduler: BarScheduler,
    close: float,
    log: list[tuple[str, int, float]],
    name: int,
    steps: int = 3,
) -> None:
    await scheduler.wait_until(close)
    try:
        log.append(("start", name, scheduler.clock.now()))
        for _ in range(steps):  # a compute with a few awaits in it
            await trio.lowlevel.checkpoint()
        log.append(("end", name, scheduler.clock.now()))
    finally:
        scheduler.release()


async def test_wakes_every_strategy_once_at_its_close_with_bounded_computes_in_flight(
    clock: trio.testing.MockClock,
) -> None:
    vclock = trading.VirtualClock(start=T0)
    scheduler = BarScheduler(vclock, chunk=8)
    log: list[tuple[str, int, float]] = []
    running: set[int] = set()
    peak = 0

    async def computer(name: int) -> None:
        nonlocal peak
        await scheduler.wait_until(T0 + 900)
        try:
            running.add(name)
            peak = max(peak, len(running))
            log.append(("start", name, vclock.now()))
            for _ in range(3):
                await trio.lowlevel.checkpoint()
        finally:
            running.discard(name)
            scheduler.release()

    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        async with trio.open_nursery() as herd:
            for i in range(100):
                herd.start_soon(computer, i)
        nursery.cancel_scope.cancel()
    starts = [entry for entry in log if entry[0] == "start"]
    assert sorted(name for _, name, _ in starts) == list(range(100))
    assert {t for _, _, t in log} == {T0 + 900}
    assert peak == 8  # the bound is reached and never passed
    assert scheduler.in_flight == 0


async def test_a_task_cancelled_while_parked_takes_no_slot_and_blocks_nobody(
    clock: trio.testing.MockClock,
) -> None:
    vclock = trading.VirtualClock(start=T0)
    scheduler = BarScheduler(vclock, chunk=1)
    log: list[tuple[str, int, float]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        paused = trio.CancelScope()
        nursery.start_soon(_park_in, scheduler, paused)
        await trio.testing.wait_all_tasks_blocked()
        assert scheduler.parked() == 1
        paused.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert scheduler.parked() == 0
        async with trio.open_nursery() as herd:
            for i in range(3):
                herd.start_soon(_computer, scheduler, T0 + 60, log, i)
        nursery.cancel_scope.cancel()
    assert len([e for e in log if e[0] == "end"]) == 3
    assert scheduler.in_flight == 0


async def _park_in(scheduler: BarScheduler, scope: trio.CancelScope) -> None:
    with scope:
        await scheduler.wait_until(T0 + 60)
        scheduler.release()
        raise AssertionError("a cancelled park must not return")


async def test_an_earlier_close_added_while_sleeping_is_served_on_time(
    clock: trio.testing.MockClock,
) -> None:
    vclock = trading.VirtualClock(start=T0)
    scheduler = BarScheduler(vclock)
    log: list[tuple[str, int, float]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        async with trio.open_nursery() as herd:
            herd.start_soon(_computer, scheduler, T0 + 3600, log, 1)
            await trio.testing.wait_all_tasks_blocked()
            herd.start_soon(_computer, scheduler, T0 + 60, log, 2)
        nursery.cancel_scope.cancel()
    starts = {name: t for kind, name, t in log if kind == "start"}
    assert starts == {1: T0 + 3600, 2: T0 + 60}


async def test_a_task_woken_at_the_close_runs_before_the_herd_has_computed(
    clock: trio.testing.MockClock,
) -> None:
    """The point of it: a command receiver woken at the close is not behind N computes."""
    vclock = trading.VirtualClock(start=T0)
    scheduler = BarScheduler(vclock, chunk=16)
    log: list[tuple[str, int, float]] = []
    seen_by_operator: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        async with trio.open_nursery() as herd:
            for i in range(1000):
                herd.start_soon(_computer, scheduler, T0 + 900, log, i)

            async def operator() -> None:
                await vclock.sleep_until(T0 + 900)
                await trio.lowlevel.checkpoint()  # the receiver's hop
                seen_by_operator.append(len([e for e in log if e[0] == "start"]))

            herd.start_soon(operator)
        nursery.cancel_scope.cancel()
    assert len([e for e in log if e[0] == "end"]) == 1000
    # At most a few chunks had started when the operator's task got its turn.
    assert seen_by_operator and seen_by_operator[0] <= 3 * 16


def test_chunk_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk"):
        BarScheduler(trading.WallClock(), chunk=0)
