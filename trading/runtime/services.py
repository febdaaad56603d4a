"""What the Runner lends its strategies besides time: a market stand-in, a shared flush, errors.

The rules this module keeps:

* The runtime picks no edges (DESIGN.md, layout): a Runner built without a market gets
  :class:`NoMarket`, whose every call raises :class:`MarketUnavailable` naming the fix, instead
  of quietly importing the simulated market.
* :func:`paused_gc` pauses the cyclic garbage collector around bulk work on thousands of
  strategies (starting them, ``stop all``): each full collection rescans the whole heap — a
  few hundred objects per strategy — and a bulk step triggered several (0.7 s each at 10,000,
  over half of ``stop all``). It re-enables the collector afterwards and freezes nothing
  (``gc.freeze`` would pin whatever garbage the step made); the next regular collection
  reclaims the cycles the step left.
* :class:`SharedFlush` turns N concurrent "flush the recorder" requests into a handful of real
  flushes (group commit): a caller returns once a flush that *started after it asked* completed.
  ``stop all`` at 10,000 strategies costs a few flushes, not 10,000, and each stop reply still
  comes after that strategy's events were written.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager

import trio

from trading.core.bars import Bar, Interval

__all__ = [
    "MarketUnavailable",
    "NoMarket",
    "RunnerNotRunning",
    "RunnerThreadError",
    "SharedFlush",
    "paused_gc",
]


class RunnerNotRunning(RuntimeError):
    """The Runner was not entered yet, or has exited: it takes no strategies and no commands."""


class RunnerThreadError(RuntimeError):
    """A blocking entry point was called from the Runner's own thread, where it would deadlock
    (a trio task, or the host loop of trio guest mode): use ``await runner.send(...)``."""


class MarketUnavailable(RuntimeError):
    """The Runner was built without market data, and a strategy asked for bars."""


class NoMarket:
    """The MarketData of a Runner given none: lists no symbols, and every request for bars
    raises :class:`MarketUnavailable` (a strategy error, reported like any other)."""

    @property
    def symbols(self) -> Sequence[str]:
        return ()

    async def history(
        self, symbol: str, interval: Interval, *, end: float, limit: int
    ) -> list[Bar]:
        await trio.lowlevel.checkpoint()
        raise MarketUnavailable(
            f"no market data for {symbol}: this Runner was built without a market; pass "
            "Runner(market=...), e.g. market, exchange = trading.simulated(clock)"
        )


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic collection inside the block; nests; restores the collector's previous state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class SharedFlush:
    """Group commit over ``flush``: many concurrent callers share a few real flushes.

    A caller needs a flush that started after it called (one that started before may not cover
    its events). While one runs, newcomers wait for it to end, then one of them starts the next,
    which covers them all. If the task running a flush is cancelled, the waiters do not take
    that as done: one of them runs it again. Cancel-safe for every caller.
    """

    def __init__(self, flush: Callable[[], Awaitable[None]]) -> None:
        self._flush = flush
        self._started = 0  # flushes started so far; the n-th one covers callers with need <= n
        self._completed = 0  # the highest n that completed
        self._running: trio.Event | None = None
        self.flushes = 0  # real flushes done, for benchmarks and tests

    async def __call__(self) -> None:
        need = self._started + 1
        while self._completed < need:
            running = self._running
            if running is not None:
                await running.wait()
                continue
            self._started += 1
            number = self._started
            done = self._running = trio.Event()
            try:
                await self._flush()
                self.flushes += 1
                self._completed = max(self._completed, number)
            finally:
                self._running = None
                done.set()
