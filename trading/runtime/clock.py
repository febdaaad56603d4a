"""Clocks: where a strategy's "now" comes from and how it sleeps until a bar close.

Rule 3 of DESIGN.md: two kinds of time. Bars follow a strategy's :class:`Clock` (wall,
compressed or virtual); deadlines, graces, restart backoff and rate limits follow real monotonic
time, :func:`monotonic` (trio's clock: the mock's time under ``MockClock`` in tests), because the
exchange and the operator live in real time. Sleep is the clock's. Runners never call
``time.sleep`` or loop on short sleeps; they ask the clock for one ``sleep_until(close)``.
Swapping the clock is how the same code runs live (:class:`WallClock`), compressed on the
simulated market, and at full speed in replay and tests (:class:`VirtualClock` under
``trio.testing.MockClock``).
"""

from __future__ import annotations

import time
from typing import Protocol

import trio

__all__ = ["Clock", "VirtualClock", "WallClock", "monotonic"]


def monotonic() -> float:
    """Real monotonic seconds, for deadlines and backoff: never a strategy's bar clock."""
    return trio.current_time()


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds (UTC)."""
        ...

    async def sleep_until(self, when: float) -> None:
        """Sleep until epoch time ``when``. Cancellable: it is a plain trio sleep underneath."""
        ...


class WallClock:
    """Real time. Sleeps are converted to trio deadlines so trio's own clock does the waiting."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, when: float) -> None:
        await trio.sleep(max(0.0, when - time.time()))


class VirtualClock:
    """Epoch time derived from trio's clock: ``start + speed * (trio time since anchoring)``.

    Under trio's default clock with ``speed=900`` a 15-minute bar passes in one real second (the
    compressed clock of the simulated market); under ``MockClock(autojump_threshold=0)`` time jumps
    straight to the next deadline, so tests and replays run at full speed on the live code path.
    The anchor is taken lazily at the first call, inside ``trio.run``.
    """

    def __init__(self, start: float | None = None, *, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, not {speed!r}")
        self.speed = speed
        self._start = start
        self._anchor: float | None = None

    def _anchored(self) -> tuple[float, float]:
        if self._anchor is None:
            self._anchor = trio.current_time()
            if self._start is None:
                self._start = time.time()
        assert self._start is not None
        return self._start, self._anchor

    def now(self) -> float:
        start, anchor = self._anchored()
        return start + (trio.current_time() - anchor) * self.speed

    def trio_deadline(self, when: float) -> float:
        """The trio clock reading at which this clock shows ``when``."""
        start, anchor = self._anchored()
        return anchor + (when - start) / self.speed

    async def sleep_until(self, when: float) -> None:
        await trio.sleep_until(max(self.trio_deadline(when), trio.current_time()))
