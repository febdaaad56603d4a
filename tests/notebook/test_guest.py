"""trading.notebook.start: a Runner as a trio guest on a real asyncio loop (``asyncio.run``).

Plain (sync) tests: pytest-trio's trio mode leaves them alone, and each runs its own asyncio
loop, as a Jupyter kernel does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import pandas as pd
import pytest

from tests.notebook.helpers import FailsToStart, Other, Sleeper, new_threads, options
from trading import RunnerThreadError
from trading.notebook import AlreadyRunning, NotebookRunner, start

T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main(), timeout)

    return asyncio.run(bounded())


def test_commands_and_status_while_the_runner_sleeps() -> None:
    async def main() -> None:
        handle = await start(Sleeper(), **options())
        try:
            assert handle.running
            # It computed once on start (one buy), and sleeps until the next hourly close.
            await until(lambda: handle.status()["state"].tolist() == ["sleeping"])
            assert len(handle.fills()) == 1
            [reply] = await handle.command("pause sleeper")
            assert (reply.ok, reply.state) == (True, "paused")
            assert handle.status()["state"].tolist() == ["paused"]
            # Bad input is an error reply, and the run goes on.
            [bad] = await handle.command("frobnicate sleeper")
            assert not bad.ok and "unknown command" in bad.message
            [unknown] = await handle.command("pause nobody")
            assert not unknown.ok
            assert handle.running
            # `wake` computes now: one market buy, filled by the paper broker.
            await handle.command("resume sleeper")
            [woke] = await handle.command("wake sleeper")
            assert woke.ok
            await until(lambda: len(handle.fills()) == 2)
            orders, fills = handle.orders(), handle.fills()
            assert orders["state"].tolist() == ["FILLED", "FILLED"]
            assert orders["filled_quantity"].tolist() == [Decimal("0.01")] * 2
            assert fills["client_order_id"].tolist() == orders["client_order_id"].tolist()
            assert isinstance(fills["time"].iloc[0], pd.Timestamp)
            positions = handle.positions()
            assert positions[["strategy", "symbol", "quantity"]].values.tolist() == [
                ["sleeper", "BTCUSDT", Decimal("0.02")]
            ]
            assert "BTCUSDT 0.02" in repr(handle)
            assert "<table>" in handle._repr_html_() and "sleeper" in handle._repr_html_()
        finally:
            [stopped] = await handle.stop()
        assert stopped.ok
        assert not handle.running and handle.finished
        # The tables stay readable after the run.
        assert handle.status()["state"].tolist() == ["stopped"]

    run(main)


async def until(condition: Callable[[], bool], within: float = 10) -> None:
    """Poll the handle's plain tables, as a user's cell would (bounded)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - the condition is plain data, no event to wait on
            await asyncio.sleep(0.01)


def test_a_second_start_returns_the_running_handle_or_refuses() -> None:
    async def main() -> None:
        handle = await start(Sleeper(), **options())
        try:
            again = await start(Sleeper(), **options())
            assert again is handle
            assert await start() is handle
            with pytest.raises(AlreadyRunning, match="sleeper"):
                await start(Other(), **options())
            assert handle.running and handle.names == ("sleeper",)
        finally:
            await handle.stop()
        # Once the run is over, a new one may start on the same loop.
        other = await start(Other(), **options())
        assert other is not handle
        await other.stop()

    run(main)


def test_stop_leaves_no_trio_task_and_no_thread() -> None:
    before = set(threading.enumerate())

    async def cycle() -> NotebookRunner:
        handle = await start(Sleeper(), Other(), **options())
        await handle.command("wake all")
        await handle.stop()
        return handle

    first = run(cycle)
    assert first.leftover_tasks == []
    assert new_threads(before) == []
    # Another run reuses trio's idle workers: the number of threads does not grow.
    count = len(threading.enumerate())
    second = run(cycle)
    assert second.leftover_tasks == []
    assert len(threading.enumerate()) <= count


def test_stop_runs_the_normal_wind_down_and_is_idempotent() -> None:
    async def main() -> None:
        handle = await start(Sleeper(), **options())
        first = await handle.stop()
        assert [(r.target, r.ok, r.state) for r in first] == [("sleeper", True, "stopped")]
        assert await handle.stop() == first
        # After the run, a command is answered, not raised.
        [late] = await handle.command("pause sleeper")
        assert not late.ok and "stopped" in late.message
        # The host loop goes on.
        await asyncio.sleep(0)

    run(main)


def test_a_failed_start_raises_its_error_and_leaves_the_loop_free() -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match="no start today"):
            await start(FailsToStart(), **options())
        handle = await start(Sleeper(), **options())
        await handle.stop()

    run(main)


def test_tables_from_another_thread_are_refused() -> None:
    async def main() -> None:
        handle = await start(Sleeper(), **options())
        try:
            loop = asyncio.get_running_loop()
            with pytest.raises(RunnerThreadError, match="host loop"):
                await loop.run_in_executor(None, handle.status)
        finally:
            await handle.stop()

    run(main)


def test_an_interrupted_await_does_not_hurt_the_run() -> None:
    """A cell interrupted while it awaits a reply: the await is cancelled, the run goes on."""

    async def main() -> None:
        handle = await start(Sleeper(), **options())
        try:

            async def slow(runner: Any) -> str:
                import trio

                await trio.sleep(0.2)
                return "done"

            task = asyncio.ensure_future(handle.call(slow))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await handle.call(slow) == "done"
            [reply] = await handle.command("status sleeper")
            assert reply.ok
        finally:
            await handle.stop()

    run(main)
