"""A strategy's waits as *phases*: each one cancel scope that a command can interrupt.

The rules this module keeps (DESIGN.md rules 3, 6 and 10):

* At most one phase runs at a time (:meth:`Phases.scope`), and only it is interrupted: a command
  cancels the phase, never the strategy's task, so what it interrupted is known and reported
  (the first interruption is the one that ended the phase: :attr:`Phases.interrupted_by`).
* Bar closes are waited for on the strategy's clock, through the Runner's
  :class:`~trading.runtime.scheduler.BarScheduler` when there is one; a strategy woken by it
  holds one of its slots until :meth:`Phases.give_back_slot`, so the scheduler wakes a chunk
  of strategies at a time. Restart backoff waits in trio's (real monotonic) time.
"""

from __future__ import annotations

import types

import trio

from trading.runtime.clock import Clock
from trading.runtime.scheduler import BarScheduler

__all__ = ["Phases"]


class Phases:
    """The running phase of one strategy, and its scheduler slot."""

    __slots__ = ("_clock", "_current", "_scheduler", "_slot", "interrupted_by")

    def __init__(self, clock: Clock, scheduler: BarScheduler | None) -> None:
        self._clock = clock
        self._scheduler = scheduler
        self._current: trio.CancelScope | None = None
        self._slot = False
        self.interrupted_by = ""

    def scope(self) -> _Phase:
        """Run a phase: the body is what :meth:`interrupt` cancels."""
        return _Phase(self)

    def interrupt(self, reason: str) -> None:
        """Cancel the running phase; the first interruption is the one that ended it."""
        if self._current is not None and not self._current.cancel_called:
            self.interrupted_by = reason
            self._current.cancel(reason=reason)

    async def wait(self, *, until: float | None, real: bool, scheduled: bool) -> bool:
        """Wait until ``until`` (or forever) as a phase; False if it was interrupted.

        ``until`` is on the strategy's clock, or in trio's monotonic time when ``real``. A
        ``scheduled`` wait (a bar close) goes through the scheduler when there is one; coming
        back from it holds a slot, given back once the compute is over."""
        with self.scope() as scope:
            if until is None:
                await trio.sleep_forever()
            elif real:
                await trio.sleep_until(until)
            elif scheduled and self._scheduler is not None:
                await self._scheduler.wait_until(until)
                self._slot = True
            else:
                await self._clock.sleep_until(until)
        return not scope.cancelled_caught

    def give_back_slot(self) -> None:
        """Let the scheduler wake another strategy (no-op unless this one holds a slot)."""
        if self._slot:
            self._slot = False
            assert self._scheduler is not None
            self._scheduler.release()


class _Phase:
    """``with phases.scope() as scope:`` — a CancelScope that is the running phase meanwhile.
    A class, not a generator context manager: it runs once per bar, and a replay counts µs."""

    __slots__ = ("_phases", "_scope")

    def __init__(self, phases: Phases) -> None:
        self._phases = phases
        self._scope = trio.CancelScope()

    def __enter__(self) -> trio.CancelScope:
        scope = self._scope.__enter__()
        self._phases._current = scope
        return scope

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> bool:
        self._phases._current = None
        return self._scope.__exit__(exc_type, exc, tb)
