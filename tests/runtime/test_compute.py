"""CPU-bound compute off the event loop: a stop kills a worker process mid-computation.

These use real processes and the real clock (a worker cannot run on a mock clock); they assert
what happened — interrupted, killed — never how fast.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import trio

import trading
from tests.runtime.compute_work import spin_and_tick


@attrs.define
class Heavy(trading.Strategy):
    interval = "1h"
    ticks_file: str = ""
    started: trio.Event = attrs.field(factory=trio.Event, init=False)

    async def next(self, ctx: trading.Context) -> None:
        self.started.set()
        await ctx.run_in_process(spin_and_tick, self.ticks_file, 60.0)


async def test_stop_kills_the_worker_process_mid_compute(tmp_path: Path) -> None:
    ticks = tmp_path / "ticks"
    ticks.touch()
    with trio.fail_after(45):  # far less than the 60 s of work: only an interrupt gets here
        async with trading.Runner(publish=lambda e: None) as runner:
            sr = await runner.add(Heavy(ticks_file=str(ticks)), name="heavy")
            assert isinstance(sr.strategy, Heavy)
            await sr.strategy.started.wait()
            # Another process writes the file: there is no trio event to wait on, so poll.
            while ticks.stat().st_size < 5:  # noqa: ASYNC110
                await trio.sleep(0.05)
            assert sr.state is trading.StrategyState.COMPUTING
            (result,) = await runner.send("stop heavy")
            assert (result.ok, result.message) == (True, "stopped")
        size = ticks.stat().st_size
        await trio.sleep(0.5)
        assert ticks.stat().st_size == size  # killed: no more ticks


async def test_pause_interrupts_a_thread_compute_at_once() -> None:
    release = trio.Event()
    holding = trio.Event()

    def blocking_call() -> None:
        trio.from_thread.run_sync(holding.set)
        trio.from_thread.run(release.wait)

    @attrs.define
    class Threaded(trading.Strategy):
        interval = "1h"

        async def next(self, ctx: trading.Context) -> None:
            await ctx.run_in_thread(blocking_call)

    with trio.fail_after(20):
        async with trading.Runner(publish=lambda e: None) as runner:
            sr = await runner.add(Threaded(), name="t")
            await holding.wait()
            (result,) = await runner.send("pause t")
            assert result.ok and sr.state is trading.StrategyState.PAUSED
            release.set()  # let the abandoned thread finish
