"""ViewBridge: what the Trio run hands the terminal view's thread, through bounded buffers.

The rules this module keeps (DESIGN.md rules 6 and 7):

* The producing side never waits for the view. :meth:`ViewBridge.offer` and
  :meth:`ViewBridge.show_rows` take a lock held only for an append, and wake the view's asyncio
  loop with ``call_soon_threadsafe`` at most once until the view has taken what was waiting: a
  stalled view costs at most ``max_lines`` buffered lines and one scheduled callback, never an
  unbounded queue in its loop.
* Past ``max_lines`` waiting lines, lines are dropped and counted; the view says how many with
  the next lines it shows, so a quiet screen never hides what was lost.
* Table snapshots are not queued: the latest one replaces the one before (a table is a state,
  not a history).
* While no view is attached (before it starts, after it ends), :meth:`ViewBridge.offer` refuses
  text (returns False) and the producer writes it to the plain terminal itself: nothing is lost
  between the view and the run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import attrs

from trading.control.status_table import StatusRow

__all__ = ["DEFAULT_MAX_LINES", "Taken", "ViewBridge"]

DEFAULT_MAX_LINES = 2_000


@attrs.frozen
class Taken:
    """What the view takes in one go: the lines in order, how many were dropped before them,
    and the newest table (None when it has not changed since the last take)."""

    lines: tuple[str, ...]
    dropped: int
    rows: tuple[StatusRow, ...] | None


class ViewBridge:
    """Lines and table snapshots from any thread to the view's asyncio loop."""

    def __init__(self, *, max_lines: int = DEFAULT_MAX_LINES) -> None:
        if max_lines < 1:
            raise ValueError("max_lines must be >= 1")
        self.max_lines = max_lines
        self.dropped = 0  # lines dropped in all, shown or not
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._unshown = 0
        self._rows: tuple[StatusRow, ...] | None = None
        self._wake: Callable[[], object] | None = None
        self._schedule: Callable[[Callable[[], object]], object] | None = None
        self._scheduled = False

    @property
    def attached(self) -> bool:
        return self._wake is not None

    def attach(
        self,
        schedule: Callable[[Callable[[], object]], object],
        wake: Callable[[], object],
    ) -> None:
        """From now on, text is buffered and ``schedule(wake)`` is called (once until the next
        :meth:`take`) when there is something to take. ``schedule`` is the view loop's
        ``call_soon_threadsafe``. Called in the view's thread."""
        with self._lock:
            self._schedule, self._wake = schedule, wake
            self._scheduled = False
            if self._lines or self._rows is not None:
                self._wake_locked()

    def detach(self) -> Taken:
        """Stop buffering (:meth:`offer` refuses text again) and return what was not taken.
        Called in the view's thread before its loop closes, so no callback is ever scheduled
        on a closed loop."""
        with self._lock:
            self._schedule = self._wake = None
            return self._take_locked()

    def offer(self, text: str) -> bool:
        """Queue ``text`` (one or more lines) for the view and return True — or return False,
        taking nothing, when no view is attached. Never waits for the view."""
        with self._lock:
            if self._wake is None:
                return False
            for line in text.splitlines():
                if len(self._lines) >= self.max_lines:
                    self.dropped += 1
                    self._unshown += 1
                else:
                    self._lines.append(line)
            self._wake_locked()
            return True

    def show_rows(self, rows: Sequence[StatusRow]) -> None:
        """Make ``rows`` the table the view shows next; never waits for it."""
        with self._lock:
            self._rows = tuple(rows)
            if self._wake is not None:
                self._wake_locked()

    def take(self) -> Taken:
        """Everything waiting, and re-arm the wake-up. Called in the view's thread."""
        with self._lock:
            return self._take_locked()

    def _take_locked(self) -> Taken:
        taken = Taken(tuple(self._lines), self._unshown, self._rows)
        self._lines = []
        self._unshown = 0
        self._rows = None
        self._scheduled = False
        return taken

    def _wake_locked(self) -> None:
        if self._scheduled or self._schedule is None or self._wake is None:
            return
        self._scheduled = True
        self._schedule(self._wake)
