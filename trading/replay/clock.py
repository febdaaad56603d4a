"""ReplayClock: the strategy clock of a replay — time moves only to the next bar close.

Why it exists: on a :class:`~trading.runtime.clock.VirtualClock` every bar pays a full sleep and
wake through trio's scheduler (and the BarScheduler's task), several checkpoints of 4-8 µs each.
In a replay nothing else is waiting for the time in between, so the StrategyRunner's own
question "is this close already reached?" (``clock.reached(close)``) may simply *move* the clock
there and say yes: the strategy computes the next bar without yielding to trio at all. That is
the fast path; the strategy code, the runner, the mailbox and the engine are the same.

The rules this module keeps:

* Time never moves backwards, and it moves only to times somebody asked for: a bar close (the
  fast path, :meth:`reached`), a sleeper's deadline or a scheduled command (the slow path,
  :meth:`advance`, called by the replay's driver once every task is blocked).
* The fast path never jumps over anything: not over a scheduled command (a command at time
  ``t`` lands before the compute of the close at ``t``), not over another task's
  :meth:`sleep_until` deadline, not past the last bar (``end``). Then :meth:`reached` says no,
  the strategy sleeps the ordinary way, and the driver moves time in order.
* Every ``checkpoint_every`` fast-path steps it says no once anyway, so a long replay still
  yields to trio (Ctrl-C, a notebook's event loop, progress output) at a deterministic bar.
* Each move calls ``on_advance(now)`` once, synchronously: the replay feeds the bars that closed
  by then to the broker (fills of resting orders) and the progress hook there.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable

import trio

__all__ = ["ReplayClock"]


class ReplayClock:
    """Epoch time that a replay moves explicitly; see the module rules.

    ``start`` is the first time; ``end`` the last time the fast path may reach (the last bar's
    close). ``barriers`` are times the fast path must stop *before* (scheduled commands): the
    driver delivers what is due there and calls :meth:`passed_barrier`.
    """

    __slots__ = (
        "_barriers",
        "_count",
        "_hold",
        "_limit",
        "_next_barrier",
        "_now",
        "_seq",
        "_sleepers",
        "checkpoint_every",
        "end",
        "on_advance",
    )

    def __init__(
        self,
        start: float,
        *,
        end: float = math.inf,
        barriers: list[float] | None = None,
        checkpoint_every: int = 1000,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, not {checkpoint_every!r}")
        self._now = start
        self.end = end
        self.checkpoint_every = checkpoint_every
        self._count = 0
        self._hold = math.nan
        self._barriers = sorted(barriers or ())
        self._next_barrier = self._barriers[0] if self._barriers else math.inf
        self._sleepers: list[tuple[float, int, trio.Event]] = []
        self._seq = itertools.count()
        self._limit = self._compute_limit()
        self.on_advance: Callable[[float], None] | None = None

    # -- the Clock protocol ------------------------------------------------------------------

    def now(self) -> float:
        return self._now

    async def sleep_until(self, when: float) -> None:
        """Sleep until the replay's time reaches ``when`` (the driver moves it once every task
        is blocked). Cancelling it is safe: the sleeper is forgotten, time does not move."""
        if when <= self._now:
            await trio.lowlevel.checkpoint()
            return
        event = trio.Event()
        entry = (when, next(self._seq), event)
        heapq.heappush(self._sleepers, entry)
        self._limit = self._compute_limit()
        try:
            await event.wait()
        finally:
            if not event.is_set():
                self._sleepers.remove(entry)
                heapq.heapify(self._sleepers)
                self._limit = self._compute_limit()

    def reached(self, when: float) -> bool:
        """The fast path: True if ``when`` has come — moving the clock there when nothing else
        is due first (see the module rules). Never blocks, never yields."""
        if when <= self._now:
            return True
        if when > self._limit or when == self._hold:
            return False
        self._count += 1
        if self._count >= self.checkpoint_every:
            self._count = 0
            self._hold = when  # asked again for this close, the answer stays no
            return False  # yield to trio once in a while; the driver moves time instead
        self._move(when)
        return True

    # -- what the driver uses ------------------------------------------------------------------

    def next_event(self) -> float:
        """The earliest time somebody waits for: a sleeper or a barrier (inf: none)."""
        sleeper = self._sleepers[0][0] if self._sleepers else math.inf
        return min(sleeper, self._next_barrier)

    @property
    def next_barrier(self) -> float:
        return self._next_barrier

    def advance(self, when: float) -> int:
        """Move to ``when`` (never backwards) and wake every sleeper due by then; returns how
        many were woken."""
        if when > self._now:
            self._move(when)
        woken = 0
        while self._sleepers and self._sleepers[0][0] <= self._now:
            heapq.heappop(self._sleepers)[2].set()
            woken += 1
        self._limit = self._compute_limit()
        return woken

    def advance_without_waking(self, when: float) -> None:
        """Move to ``when`` (a barrier) and wake nobody yet: what is due there is delivered
        first, then :meth:`advance` wakes the sleepers due by then."""
        if when > self._now:
            self._move(when)

    def passed_barrier(self) -> None:
        """The driver delivered what was due at the next barrier: the fast path may go on."""
        if self._barriers:
            self._barriers.pop(0)
        self._next_barrier = self._barriers[0] if self._barriers else math.inf
        self._limit = self._compute_limit()

    # -- internals -------------------------------------------------------------------------------

    def _compute_limit(self) -> float:
        """The latest time the fast path may move to (inclusive)."""
        sleeper = self._sleepers[0][0] if self._sleepers else math.inf
        barrier = math.nextafter(self._next_barrier, -math.inf)  # strictly before a command
        return min(self.end, sleeper, barrier)

    def _move(self, when: float) -> None:
        self._now = when
        if self.on_advance is not None:
            self.on_advance(when)
