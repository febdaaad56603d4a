"""What the bus delivers to (the Observer protocol), and one observer's queue and counters.

The rules this module keeps (DESIGN.md rules 6 and 8; the bus's side is in
:mod:`trading.runtime.bus`):

* :meth:`ObserverQueue.offer` never waits: it is called from ``EventBus.publish``.
* A lossless queue never loses an event: what does not fit its bounded channel goes to an
  overflow deque, drained after the channel and in order, so ``seq`` order holds. A lossy
  queue drops what does not fit and counts it.
* Whatever is given up (a closed queue, an abandoned drain) is counted, as ``failed`` for a
  lossless observer and ``dropped`` for a lossy one, never silently lost.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

import attrs
import trio

from trading.core.events import Event

__all__ = ["Item", "Observer", "ObserverQueue", "ObserverStats"]

log = logging.getLogger(__name__)

Item = tuple[int, Event]


class Observer(Protocol):
    """What the bus delivers to. Optional attributes the bus reads at attach time: ``buffer`` and
    ``max_batch`` (ints: channel size and largest batch), and ``note_dropped(count)``, called
    just before ``handle`` with the number of events dropped since the previous batch."""

    name: str
    lossless: bool

    async def handle(self, batch: Sequence[tuple[int, Event]]) -> None:
        """Take everything that was waiting (1 to ``max_batch`` events, in ``seq`` order)."""

    async def aclose(self) -> None:
        """Flush and release resources; called once, shielded, when the bus closes or detaches."""


@attrs.frozen(slots=True)
class ObserverStats:
    """One observer's health. ``pending`` = ``buffered`` (channel) + ``overflow`` + in-flight."""

    name: str
    lossless: bool
    buffer: int
    buffered: int
    overflow: int
    pending: int
    max_pending: int
    delivered: int
    dropped: int
    failed: int
    errors: int


class ObserverQueue:
    """One observer's mailbox and counters. Channel items are always older than overflow items:
    new items go to the overflow while it is not empty, and it is drained only once the channel
    is empty, in the same synchronous step (no publish can interleave)."""

    def __init__(self, observer: Observer, buffer: int, lossless: bool, max_batch: int) -> None:
        self.observer = observer
        self.name = observer.name
        self.lossless = lossless
        self.buffer = buffer
        self.max_batch = max_batch
        self.send, self.receive = trio.open_memory_channel[Item](buffer)
        self.overflow: deque[Item] = deque()
        self.note_dropped: Callable[[int], object] | None = getattr(observer, "note_dropped", None)
        self.queued = 0  # channel + overflow, kept by hand: publish must not build statistics
        self.in_flight = 0
        self.current: list[Item] | None = None  # the batch being handled, redone on cancel
        self.max_pending = self.delivered = self.dropped = self.failed = self.errors = 0
        self.dropped_reported = 0
        self.accepted_seq = 0  # last seq that entered this mailbox (dropped ones never do)
        self.handled_seq = 0  # last seq the observer is done with (handled or failed)
        self.progress = trio.lowlevel.ParkingLot()
        # flush() waiters as a heap of (target seq, tiebreak, event): each handled batch wakes
        # only those it satisfies, so 10,000 concurrent flushes (10,000 strategies stopping)
        # cost O(log n) per flush instead of all of them re-checking after every batch.
        self.waiters: list[tuple[int, int, trio.Event]] = []
        self.scheduled = False
        self.closed = False
        self.done = trio.Event()
        # Wraps the observer's pump; at close it gets the observer's drain deadline.
        self.drain = trio.CancelScope()

    @property
    def pending(self) -> int:
        return self.queued + self.in_flight

    def offer(self, item: Item) -> None:
        if self.closed:  # its task is ending (the bus is being cancelled): count, never raise
            if self.lossless:
                self.failed += 1
            else:
                self.dropped += 1
            return
        if self.overflow:
            if not self.lossless:
                self.dropped += 1
                return
            self.overflow.append(item)
        else:
            try:
                self.send.send_nowait(item)
            except trio.WouldBlock:
                if not self.lossless:
                    self.dropped += 1
                    return
                self.overflow.append(item)
        self.accepted_seq = item[0]
        self.queued += 1
        pending = self.queued + self.in_flight
        if pending > self.max_pending:
            self.max_pending = pending

    def take(self, limit: int) -> list[Item]:
        """Up to ``limit`` waiting items without blocking: the channel first, then the overflow."""
        batch: list[Item] = []
        receive_nowait = self.receive.receive_nowait
        try:
            while len(batch) < limit:
                batch.append(receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            overflow = self.overflow
            while overflow and len(batch) < limit:
                batch.append(overflow.popleft())
        self.queued -= len(batch)
        return batch

    def close_input(self) -> None:
        self.closed = True
        self.send.close()

    def stats(self) -> ObserverStats:
        buffered = self.send.statistics().current_buffer_used
        return ObserverStats(
            self.name,
            self.lossless,
            self.buffer,
            buffered,
            len(self.overflow),
            self.pending,
            self.max_pending,
            self.delivered,
            self.dropped,
            self.failed,
            self.errors,
        )

    def abandon(self, why: str) -> None:
        """Give up on what this queue still holds: count it as lost and say so, by name."""
        lost = self.pending
        if not lost:
            return
        self.take(self.queued)  # empty the mailbox so nothing is counted twice
        self.current = None
        self.in_flight = 0
        if self.lossless:
            self.failed += lost
        else:
            self.dropped += lost
        log.error("observer %s %s: abandoned, %d events lost", self.name, why, lost)
