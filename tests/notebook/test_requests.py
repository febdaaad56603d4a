"""The door into a guest run (trading.notebook.session): every request gets exactly one
answer — its value, its error, "busy" past the bound, or "not running" once the run stops."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trio

from tests.notebook.helpers import Other, Sleeper, options
from tests.notebook.test_guest import run
from trading import Runner, RunnerNotRunning
from trading.notebook import RunnerBusy, start
from trading.notebook.session import MAX_PENDING


def test_past_the_bound_a_request_is_answered_busy_at_once() -> None:
    async def main() -> None:
        handle = await start(Sleeper(), **options())
        try:

            async def nap(runner: Runner) -> str:
                await trio.sleep(0.01)
                return "ok"

            # All posted in one go, before the run takes any of them off the channel.
            calls = [asyncio.ensure_future(handle.call(nap)) for _ in range(MAX_PENDING + 20)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            # One goes straight to the waiting server task, MAX_PENDING wait, the rest are busy.
            assert results.count("ok") == MAX_PENDING + 1
            busy = [r for r in results if isinstance(r, RunnerBusy)]
            assert len(busy) == 19
            assert handle.running
            assert await handle.call(nap) == "ok"
        finally:
            await handle.stop()

    run(main)


def test_a_request_in_flight_when_the_run_stops_is_answered_not_running() -> None:
    async def main() -> None:
        handle = await start(Sleeper(), **options())

        async def forever(runner: Runner) -> None:
            await trio.sleep_forever()

        waiting = asyncio.ensure_future(handle.call(forever))
        await asyncio.sleep(0.05)
        await handle.stop()
        with pytest.raises(RunnerNotRunning):
            await asyncio.wait_for(waiting, 5)
        with pytest.raises(RunnerNotRunning):
            await handle.call(forever)

    run(main)


def test_a_requests_error_is_raised_to_the_caller_and_the_run_goes_on() -> None:
    async def main() -> None:
        handle = await start(Sleeper(), **options())
        try:

            async def broken(runner: Runner) -> Any:
                raise ValueError("bad job")

            with pytest.raises(ValueError, match="bad job"):
                await handle.call(broken)
            assert handle.running
            assert await handle.add(Other()) == "other"
            assert handle.names == ("sleeper", "other")
            assert handle.status()["strategy"].tolist() == ["sleeper", "other"]
            with pytest.raises(ValueError, match="already running"):
                await handle.add(Other())
        finally:
            replies = await handle.stop()
        assert sorted(r.target for r in replies) == ["other", "sleeper"]

    run(main)


def test_what_start_is_given_is_checked_before_anything_runs() -> None:
    async def main() -> None:
        with pytest.raises(TypeError, match="not a strategy"):
            await start(object(), **options())  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="more than once: sleeper"):
            await start(Sleeper(), Sleeper(), **options())
        # A class, and a (name, instance) pair.
        handle = await start(Sleeper, ("second", Sleeper()), **options())
        assert handle.names == ("sleeper", "second")
        await handle.stop()

    run(main)
