"""The Runner's own thread: blocking entry points refuse it clearly (trio guest mode included),
and wait_idle sleeps instead of spinning."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import pytest
import trio
from trio.testing import MockClock

import trading

HOUR = 3600


@attrs.define
class Idle(trading.Strategy):
    interval = "1h"

    async def next(self, ctx: trading.Context) -> None:
        return None


@pytest.mark.timeout(30)  # a regression would deadlock the host loop: fail, do not hang
def test_send_from_thread_on_the_host_loop_of_guest_mode_names_the_awaitable_api() -> None:
    async def host() -> None:
        loop = asyncio.get_running_loop()
        handed: asyncio.Future[tuple[trading.Runner, trio.lowlevel.TrioToken, trio.Event]]
        handed = loop.create_future()
        finished: asyncio.Future[Any] = loop.create_future()

        async def trio_main() -> list[trading.CommandResult]:
            stop = trio.Event()
            async with trading.Runner() as runner:
                await runner.add(Idle(), name="a")
                handed.set_result((runner, trio.lowlevel.current_trio_token(), stop))
                await stop.wait()
                return await runner.send("status a")  # the awaitable API works in guest mode

        trio.lowlevel.start_guest_run(
            trio_main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=finished.set_result,
            host_uses_signal_set_wakeup_fd=True,
        )
        runner, token, stop = await handed
        # Here the host loop's thread runs no trio task: a blocking call would wait forever
        # for trio, which only runs when this very thread returns to the loop.
        with pytest.raises(trading.RunnerThreadError, match=r"await runner\.send\(\.\.\.\)"):
            runner.send_from_thread("status a")
        token.run_sync_soon(stop.set)
        (reply,) = (await finished).unwrap()
        assert reply.ok and reply.target == "a"

    asyncio.run(host())


async def test_send_from_thread_inside_a_trio_task_is_refused_not_deadlocked(
    clock: MockClock, runner: trading.Runner
) -> None:
    await runner.add(Idle(), name="a")
    with pytest.raises(trading.RunnerThreadError, match="guest mode"):
        runner.send_from_thread("status a")
    # from a real other thread it works
    (reply,) = await trio.to_thread.run_sync(runner.send_from_thread, "status a")
    assert reply.ok


class StepCounter(trio.abc.Instrument):
    """Counts the scheduling steps of tasks with a given name; cancels ``scope`` past a limit
    so a spinning task fails the test instead of hanging it."""

    def __init__(self, name: str, scope: trio.CancelScope, limit: int = 1000) -> None:
        self.name = name
        self.scope = scope
        self.limit = limit
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name == self.name:
            self.steps += 1
            if self.steps > self.limit:
                self.scope.cancel()


async def test_wait_idle_does_not_spin_after_a_given_up_strategy_is_restarted(
    clock: MockClock, runner: trading.Runner
) -> None:
    @attrs.define
    class FailsThrice(trading.Strategy):
        interval = "1h"
        failures: int = 0

        async def next(self, ctx: trading.Context) -> None:
            if ctx.name == "flaky" and FailsThrice.budget > 0:
                FailsThrice.budget -= 1
                raise RuntimeError("flaky")

    FailsThrice.budget = 4  # type: ignore[attr-defined]  # past the fixture's max_restarts=3
    sr = await runner.add(FailsThrice(), name="flaky")
    await trio.sleep(HOUR)
    assert sr.given_up  # the runner was idle once ...
    (reply,) = await runner.send("resume flaky")  # ... and an operator restarted it
    assert reply.ok
    await trio.sleep(1)
    assert not sr.given_up
    with trio.CancelScope() as scope:
        counter = StepCounter("waiter", scope)
        trio.lowlevel.add_instrument(counter)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(runner.wait_idle, name="waiter")
                await trio.sleep(10 * HOUR)  # the strategy sleeps through ten hourly bars
                assert counter.steps <= 2, counter.steps  # started, parked: no wake-ups
                await runner.send("stop flaky")
        finally:
            trio.lowlevel.remove_instrument(counter)
    assert not scope.cancelled_caught, f"wait_idle spun: {counter.steps} steps"
    assert counter.steps <= 4
