"""Starting strategies in bulk, and cleaning up after a start that did not happen.

The rules this module keeps (DESIGN.md rules 8 and 11, issue 6 points 21 and 23):

* A bulk start is all-or-report: every strategy is tried, and one ``on_start`` that raised
  does not leave the others unstarted; :class:`StartFailed` names each one that failed.
* A bulk start that is cancelled (Ctrl-C during start-up) leaves nothing running: what it
  started is stopped — on_stop, orders wound down — shielded and bounded, before the
  cancellation goes on. What was still starting is cancelled with it.
* A start that failed or was cancelled winds down whatever its ``on_start`` left resting at
  the exchange, as a stop would.
* The garbage collector is paused while thousands start (:func:`~trading.runtime.services.
  paused_gc`) and re-enabled afterwards; nothing is frozen out of later collections.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence

import trio

from trading.runtime.services import paused_gc
from trading.runtime.strategy import Strategy
from trading.runtime.strategy_runner import StrategyRunner

__all__ = ["StartFailed", "start_many", "wind_down_failed_start"]

log = logging.getLogger(__name__)

Add = Callable[[Strategy, str | None], Awaitable[StrategyRunner]]
StopEach = Callable[[Sequence[StrategyRunner]], Awaitable[object]]


class StartFailed(Exception):
    """Some strategies of :meth:`Runner.add_many` did not start; the others run.

    ``errors`` maps each failed strategy's name to what its start raised.
    """

    def __init__(self, errors: dict[str, BaseException], started: int) -> None:
        names = ", ".join(f"{n} ({type(e).__name__}: {e})" for n, e in errors.items())
        super().__init__(f"{len(errors)} strategies did not start ({started} did): {names}")
        self.errors = errors
        self.started = started


async def start_many(
    add: Add,
    stop_each: StopEach,
    strategies: Iterable[Strategy | tuple[str, Strategy]],
    *,
    stop_budget: float,
) -> list[StrategyRunner]:
    """Start every strategy concurrently with ``add``; see the module rules."""
    items = [(None, s) if isinstance(s, Strategy) else s for s in strategies]
    runners: list[StrategyRunner | None] = [None] * len(items)
    errors: dict[str, BaseException] = {}

    async def one(index: int, strategy: Strategy, name: str | None) -> None:
        try:
            runners[index] = await add(strategy, name)
        except Exception as exc:
            errors[name or type(strategy).__name__] = exc

    try:
        with paused_gc():
            async with trio.open_nursery() as nursery:
                for index, (name, strategy) in enumerate(items):
                    nursery.start_soon(one, index, strategy, name)
    except BaseException:
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + stop_budget
            await stop_each([r for r in runners if r is not None])
        raise
    started = [r for r in runners if r is not None]
    if errors:
        raise StartFailed(errors, len(started))
    return started


async def wind_down_failed_start(runner: StrategyRunner, stop_timeout: float) -> None:
    """Cancel what a failed or cancelled ``on_start`` left resting, shielded and bounded."""
    account = runner.account
    if account is None or not account.open_orders():
        return
    with trio.CancelScope(shield=True) as scope:
        deadline = min(trio.current_effective_deadline(), trio.current_time() + stop_timeout)
        if deadline == -math.inf:  # cancelled outside any wind-down: give it the stop budget
            deadline = trio.current_time() + stop_timeout
        scope.deadline = deadline
        try:
            done = await account.shutdown()
        except Exception:
            log.exception("%s: winding down after a failed start failed", runner.name)
            return
    log.warning("%s did not start; wound down: %s", runner.name, "; ".join(done) or "-")
