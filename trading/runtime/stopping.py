"""Stopping strategies in bulk (``stop all``, a cancelled ``add_many``, the Runner's exit).

The rules this module keeps (DESIGN.md rule 11):

* Every stop goes through the same ``stop`` command an operator sends, so each runs its
  on_stop and winds down its orders, each bounded by its own ``stop_timeout``.
* No task per strategy where its mailbox takes the stop without waiting (contract C5,
  ``StrategyRunner.send_nowait``): each stop is queued at once and replies by callback; only
  a strategy whose mailbox was full ("busy") gets a task that waits for room. So stopping
  thousands costs callbacks, not thousands of tasks.
* The garbage collector is paused meanwhile (:func:`~trading.runtime.services.paused_gc`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import trio

from trading.core.commands import Command, CommandResult
from trading.runtime.services import paused_gc
from trading.runtime.strategy_runner import StrategyRunner

__all__ = ["stop_each"]


async def stop_each(runners: Sequence[StrategyRunner], source: str) -> list[CommandResult]:
    """Send ``stop`` to each of ``runners`` at once; one reply each (order not kept)."""
    results: list[CommandResult] = []
    awaited: list[StrategyRunner] = []
    all_in = trio.Event()
    waiting = 1  # held by the loop below, so replies given at once cannot end it early

    def replied(runner: StrategyRunner) -> Callable[[CommandResult], None]:
        def got(result: CommandResult) -> None:
            nonlocal waiting
            if not result.ok and result.message.startswith("busy"):
                awaited.append(runner)  # its mailbox was full: wait for room below
            else:
                results.append(result)
            waiting -= 1
            if waiting == 0:
                all_in.set()

        return got

    with paused_gc():  # see trading.runtime.services: most of `stop all` was collection
        # No task per strategy where the mailbox takes a stop without waiting (contract C5,
        # StrategyRunner.send_nowait): each stop is queued at once and replies by callback.
        for runner in runners:
            send_nowait = getattr(runner, "send_nowait", None)
            if send_nowait is None:
                awaited.append(runner)
                continue
            waiting += 1
            send_nowait(
                Command("stop", runner.name, source=source, text="stop all"), replied(runner)
            )
        waiting -= 1
        if waiting:
            await all_in.wait()
        if awaited:
            async with trio.open_nursery() as nursery:
                for runner in awaited:
                    nursery.start_soon(_stop_one, runner, source, results)
    return results


async def _stop_one(runner: StrategyRunner, source: str, into: list[CommandResult]) -> None:
    into.append(await runner.send(Command("stop", runner.name, source=source, text="stop all")))
