"""BarScheduler: one timer for all the strategies of a Runner, waking them a chunk at a time.

Why it exists: thousands of strategies share a bar close (every 15-minute strategy wakes at
:00, :15, :30, :45). If each slept on its own trio timer, trio would make all of them runnable in
the same scheduling batch, and a command arriving at that close would wait behind every one of
their first steps — 2 s at 10,000 strategies, measured. Here only the scheduler sleeps until the
close; strategies park on a ``ParkingLot`` for that close, and the scheduler unparks at most
``chunk`` of them at a time, waiting for those to finish computing before it wakes more. A
command's receiver task is then never behind more than about one chunk of work, so it lands in
milliseconds, and every compute of the bar still runs. (Measured with
``benchmarks/command_latency.py`` at 1,000 strategies: a chunk of 8 puts a command at the close
within the timer's own lateness, 32 adds about a millisecond, and the herd takes as long either
way.)

The rules this module keeps:

* A strategy woken by the scheduler holds one *slot* until it calls :meth:`release` (its compute
  ended, or a command diverted it). Slots bound the computes in flight, not the strategies.
* A strategy cancelled while parked (a ``pause``, a ``stop``) leaves the lot and takes no slot;
  trio's ``ParkingLot`` guarantees that, so a command never waits for the herd.
* Times are the strategy clock's (epoch seconds); the clock does the sleeping, so the same code
  runs on a wall, compressed or virtual clock.
"""

from __future__ import annotations

import heapq
import math

import trio

from trading.runtime.clock import Clock

__all__ = ["BarScheduler"]


class BarScheduler:
    """Wakes parked strategies at their bar close, ``chunk`` computes in flight at most.

    Start it with ``await nursery.start(scheduler.run)``; strategies call
    ``await scheduler.wait_until(close)`` and, once it returned, :meth:`release` exactly once.
    """

    def __init__(self, clock: Clock, *, chunk: int = 8) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, not {chunk!r}")
        self.clock = clock
        self.chunk = chunk
        self.in_flight = 0
        self._lots: dict[float, trio.lowlevel.ParkingLot] = {}
        self._closes: list[float] = []  # a heap of the keys of _lots
        self._sleeping_until = math.inf
        self._sleep: trio.CancelScope | None = None
        self._changed = trio.Event()
        self._freed = trio.Event()

    async def wait_until(self, close: float) -> None:
        """Park until the scheduler wakes this task for ``close``; then hold a slot.

        Cancelling it is safe: a parked task that is cancelled leaves the lot and holds no slot.
        Once it returned normally, the caller owns a slot and must :meth:`release` it.
        """
        lot = self._lots.get(close)
        if lot is None:
            lot = self._lots[close] = trio.lowlevel.ParkingLot()
            heapq.heappush(self._closes, close)
            if close < self._sleeping_until and self._sleep is not None:
                self._sleep.cancel(reason="an earlier bar close was added")
            self._changed.set()
        await lot.park()

    def release(self) -> None:
        """Give back the slot taken when :meth:`wait_until` returned."""
        self.in_flight -= 1
        if self.in_flight < self.chunk:
            self._freed.set()

    def parked(self) -> int:
        """Strategies waiting for a close (for status and tests)."""
        return sum(len(lot) for lot in self._lots.values())

    async def run(
        self, *, task_status: trio.TaskStatus[BarScheduler] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Sleep until the earliest close, wake its strategies chunk by chunk; until cancelled."""
        task_status.started(self)
        while True:
            if not self._closes:
                await self._changed.wait()
                self._changed = trio.Event()
                continue
            close = self._closes[0]
            with trio.CancelScope() as self._sleep:
                self._sleeping_until = close
                await self.clock.sleep_until(close)
            self._sleep, self._sleeping_until = None, math.inf
            if self._closes[0] != close:
                continue  # an earlier close arrived meanwhile: serve that one first
            heapq.heappop(self._closes)
            lot = self._lots.pop(close)
            await self._wake(lot)

    async def _wake(self, lot: trio.lowlevel.ParkingLot) -> None:
        while lot:
            room = self.chunk - self.in_flight
            if room <= 0:
                self._freed = trio.Event()
                await self._freed.wait()
                continue
            self.in_flight += len(lot.unpark(count=room))
            # Let the woken run (and any command receiver woken meanwhile) before the next chunk.
            await trio.lowlevel.checkpoint()
