"""What happens to a strategy's error: caught by phase, reported once, backed off, restarted clean.

The rules this module keeps (DESIGN.md rules 3 and 4):

* Only ``Exception`` from strategy code is a failure (:func:`guard`); ``trio.Cancelled`` and
  other ``BaseException`` pass through untouched, so cancellation keeps its meaning.
* Every failure is reported once, as a :class:`~trading.core.events.StrategyFailed` event (the
  phase, the error, its traceback, the failure count and the restart delay or None for "gave
  up") and one log line.
* The restart delay counts real monotonic seconds (:func:`~trading.runtime.clock.monotonic`),
  never the bar clock: a compressed clock must not turn a crash loop into hundreds of restarts.
* ``on_stop`` after a failure is shielded and bounded by ``stop_timeout``.
* A restart runs a fresh instance that keeps the parameters an operator ``set``.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import attrs
import trio

from trading.core.events import Event, StrategyFailed
from trading.core.restart import Backoff, RestartPolicy
from trading.runtime.clock import Clock, monotonic
from trading.runtime.wind_down import run_on_stop

__all__ = ["Failed", "Restarts", "bounded_on_stop", "fresh_instance", "guard"]

log = logging.getLogger(__name__)
T = TypeVar("T")
C = TypeVar("C")


class Failed(Exception):
    """Strategy code raised; carries the phase so the error report can say where."""

    def __init__(self, phase: str, error: BaseException) -> None:
        super().__init__(phase, error)
        self.phase = phase
        self.error = error


async def guard(phase: str, hook: Callable[[C], Awaitable[None]], ctx: C) -> None:
    """Run a strategy hook; its ``Exception`` leaves as :class:`Failed` naming ``phase``."""
    try:
        await hook(ctx)
    except Exception as exc:
        raise Failed(phase, exc) from exc


class Restarts:
    """A strategy's restart budget, and when its next restart is due (real monotonic seconds;
    None: none scheduled, because it gave up or is not failed)."""

    __slots__ = ("_backoff", "at", "restarts")

    def __init__(self, policy: RestartPolicy) -> None:
        self._backoff = Backoff(policy)
        self.at: float | None = None
        self.restarts = 0  # restarts done in this run, operator's included

    def restarting(self) -> None:
        """The restart is happening now (its backoff ran out, or an operator asked)."""
        self.at = None
        self.restarts += 1

    @property
    def failures(self) -> int:
        return self._backoff.failures

    def reset(self) -> None:
        """An operator's resume of a failed strategy: a full restart budget again."""
        self._backoff.reset()

    def restart_in(self) -> float | None:
        """Real seconds until the scheduled restart, if one is scheduled."""
        return None if self.at is None else max(0.0, self.at - monotonic())

    def failed(
        self, name: str, failure: Failed, *, clock: Clock, publish: Callable[[Event], None]
    ) -> str:
        """Count the failure, report it, and schedule the restart (or give up); returns the
        one-line error kept as ``last_error``."""
        now = monotonic()  # backoff counts real seconds (C3), never the bar clock
        delay = self._backoff.failed(now)
        error = f"{type(failure.error).__name__}: {failure.error}"
        publish(
            StrategyFailed(
                time=clock.now(),
                strategy=name,
                phase=failure.phase,
                error=error,
                traceback="".join(traceback.format_exception(failure.error)),
                failures=self._backoff.failures,
                restart_in=delay,
            )
        )
        if delay is None:
            log.error("%s failed in %s and gave up restarting: %s", name, failure.phase, error)
        else:
            log.warning("%s failed in %s (%s); restart in %gs", name, failure.phase, error, delay)
        self.at = None if delay is None else now + delay
        return f"{failure.phase}: {error}"


async def bounded_on_stop(
    name: str, on_stop: Callable[[], Awaitable[None]], stop_timeout: float
) -> str | None:
    """on_stop after a failure, before the restart: shielded, bounded by ``stop_timeout``;
    returns what went wrong, or None."""
    with trio.CancelScope(shield=True, deadline=trio.current_time() + stop_timeout) as scope:
        problem = await run_on_stop(name, on_stop)
    return f"timed out after {stop_timeout:g}s" if scope.cancelled_caught else problem


def fresh_instance(strategy: T) -> T:
    """A clean instance for a restart that keeps parameters an operator may have ``set``."""
    if attrs.has(type(strategy)):
        return cast(T, attrs.evolve(cast(Any, strategy)))
    return type(strategy)()
