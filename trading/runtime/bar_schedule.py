"""One strategy's place on its bar schedule: the close it heads for, the last one computed.

The rules this module keeps (DESIGN.md rule 6, overlap policy "skip"):

* Closes are on the strategy's clock and aligned to its interval (:func:`next_due`).
* A close passed while busy (a compute or command ran past it), paused or failed is never
  computed late: the schedule goes on from the latest passed close, and every close left out
  is reported, counted, as one :class:`~trading.core.events.BarsSkipped` event and a warning.
* Sans-waiting: nothing here sleeps; the StrategyRunner waits for :attr:`BarSchedule.due`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from trading.core.bars import Interval, next_due
from trading.core.events import BarsSkipped, Event
from trading.runtime.clock import Clock

__all__ = ["BarSchedule"]

log = logging.getLogger(__name__)


class BarSchedule:
    """Where the schedule is; the StrategyRunner asks it for the next close and says when a
    close was reached. ``due`` is None until the schedule heads for a close (and after a skip)."""

    __slots__ = ("_clock", "_interval", "_name", "_publish", "due", "last_due")

    def __init__(
        self, name: str, interval: Interval, clock: Clock, publish: Callable[[Event], None]
    ) -> None:
        self._name = name
        self._interval = interval
        self._clock = clock
        self._publish = publish
        self.due: float | None = None
        self.last_due = -math.inf

    @property
    def bar_close(self) -> float | None:
        """The close the current compute is for (None before the first reached close)."""
        return self.last_due if self.last_due > -math.inf else None

    def head_for_next(self) -> float:
        """The close to wait for next; closes a compute or command ran past are reported."""
        due = next_due(self._interval, self.due, self._clock.now())
        if due.skipped:
            self._report_skipped(due.close, due.skipped, "busy: a compute or command ran past")
        self.due = due.close
        return due.close

    def reached(self, close: float) -> None:
        """``close`` came: it is the one computed next, and the schedule heads for the one after."""
        self.last_due = close
        self.due = close + self._interval.seconds

    def skip_to_now(self, reason: str) -> None:
        """Closes that passed while paused or failed are not computed: report them, and go
        back to the bar schedule from now."""
        if self.due is None:
            return
        step = self._interval.seconds
        latest = self._interval.last_close(self._clock.now())
        if self.due <= latest:
            count = round((latest - self.due) / step) + 1
            self._report_skipped(latest + step, count, reason)
            self.due = None

    def next_close(self) -> float:
        """The bar close the schedule goes to next (strategy clock)."""
        now = self._clock.now()
        due = next_due(self._interval, self.due, now)
        return due.close if due.close > now else now

    def _report_skipped(self, before: float, count: int, reason: str) -> None:
        """``count`` closes just before the close ``before`` were not computed."""
        step = self._interval.seconds
        first, last = before - count * step, before - step
        log.warning("%s: %d bar close(s) not computed (%s)", self._name, count, reason)
        self._publish(
            BarsSkipped(
                time=self._clock.now(),
                strategy=self._name,
                count=count,
                first=first,
                last=last,
                reason=reason,
            )
        )
