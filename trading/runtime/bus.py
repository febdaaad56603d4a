"""EventBus: one bounded channel and one task per observer, so observers never block trading.

The rules this module keeps (DESIGN.md rules 1, 6 and 8):

* :meth:`EventBus.publish` is synchronous and never waits: the trading loop and the engine call it
  between awaits. It numbers the event (``seq``, from 1) and offers ``(seq, event)`` to each
  observer's own bounded trio memory channel.
* A *lossless* observer (the recorder) never loses an event: when its channel is full the event
  goes to an overflow deque, which its task drains after the channel and in order. Memory is the
  only bound, so :meth:`EventBus.wait_for_capacity` lets the engine wait before submitting orders
  once a lossless observer is more than ``high_water`` events behind.
* A *lossy* observer (notifiers, the log) drops what does not fit and is told how many it lost
  (``note_dropped``), so it can say so instead of going quiet.
* Observer tasks live in the bus's own nursery, started by ``await nursery.start(bus.run)``;
  :meth:`EventBus.aclose` drains everything, closes every observer and ends every task, each
  observer under its own deadline: ``close_timeout`` for a lossless one, the shorter
  ``lossy_close_timeout`` for a lossy one. One that overruns is abandoned with an error log line
  naming it and how many events it lost, so closing never hangs (rule 11). Deadlines reach
  through shields: they never outlive the deadline of whoever called :meth:`aclose`.
* Publishing into a closed bus drops the event with a debug log line and counts it (``late``);
  it never raises, because the last publishers (a strategy's final state change, a reply to a
  command that raced the shutdown) cannot always know the bus is gone.
* An observer that raises is logged and counted and the others go on; a lossless observer's batch
  is retried with backoff first, and events it still could not take are counted as ``failed``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math

import trio

from trading.core.events import Event
from trading.runtime.observer_queue import Item, Observer, ObserverQueue, ObserverStats

__all__ = ["DEFAULT_BUFFER", "DEFAULT_MAX_BATCH", "EventBus", "Observer", "ObserverStats"]

log = logging.getLogger(__name__)

DEFAULT_BUFFER = 1024
DEFAULT_MAX_BATCH = 1024


class EventBus:
    """Fans events out to observers. Start it with ``bus = await nursery.start(EventBus().run)``
    (or attach first, then start), use ``bus.publish`` as the runner's ``publish`` callback, and
    ``await bus.aclose()`` at shutdown, after the publishers have stopped.

    Only trio code in the bus's thread may call :meth:`publish`; other threads come in through
    the trio token (DESIGN.md rule 7).
    """

    def __init__(
        self,
        *,
        high_water: int = 100_000,
        low_water: int | None = None,
        retries: int = 3,
        retry_delay: float = 0.1,
        close_timeout: float = 10.0,
        lossy_close_timeout: float = 1.0,
    ) -> None:
        if high_water < 1:
            raise ValueError(f"high_water must be >= 1, not {high_water!r}")
        self.high_water = high_water
        self.low_water = high_water // 2 if low_water is None else low_water
        if not 0 <= self.low_water <= high_water:
            raise ValueError(f"low_water must be in [0, high_water], not {low_water!r}")
        self.retries = retries
        self.retry_delay = retry_delay
        self.close_timeout = close_timeout
        self.lossy_close_timeout = min(lossy_close_timeout, close_timeout)
        self.late = 0  # events published after close: dropped, counted, logged at debug level
        self._close_bound = math.inf  # the deadline of whoever called aclose (rule 11, C1)
        self._slots: list[ObserverQueue] = []
        self._tiebreak = itertools.count()
        self._seq = 0
        self._state = "new"  # -> running -> closing -> closed
        self._nursery: trio.Nursery | None = None
        self._closing = trio.Event()
        self._finished = trio.Event()

    @property
    def last_seq(self) -> int:
        """The seq of the last event published (0 before the first)."""
        return self._seq

    # -- publishing -----------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Number ``event`` and offer it to every observer; never blocks. Its seq is
        :attr:`last_seq` right after the call. Fits the runner's ``Publish`` callback type.

        Once :meth:`aclose` was called or :meth:`run` ended, the event is dropped: counted in
        :attr:`late` and logged at debug level, never raised.
        """
        if self._state in ("closing", "closed"):
            self.late += 1
            log.debug("EventBus is closed: %s dropped (%d late)", type(event).__name__, self.late)
            return
        self._seq = seq = self._seq + 1
        item = (seq, event)
        for slot in self._slots:
            slot.offer(item)

    async def wait_for_capacity(self) -> None:
        """Return at once unless a lossless observer has more than ``high_water`` events pending;
        then wait until it is down to ``low_water``. Always a checkpoint (cancellable)."""
        await trio.lowlevel.checkpoint()
        for slot in list(self._slots):
            if slot.lossless and slot.pending > self.high_water:
                log.warning("observer %s is %d events behind: waiting", slot.name, slot.pending)
                while slot.pending > self.low_water and not slot.done.is_set():
                    await slot.progress.park()

    async def flush(self, *, lossless_only: bool = False) -> None:
        """Wait until every event published so far has been handled (or failed, or dropped) by
        every attached observer — or, with ``lossless_only``, by the lossless ones, so a slow or
        stuck notifier cannot delay a stop. Blocks while the bus is not running; bound it with
        a timeout if an observer may hang."""
        await trio.lowlevel.checkpoint()
        targets = [
            (slot, slot.accepted_seq) for slot in self._slots if slot.lossless or not lossless_only
        ]
        for slot, target in targets:
            if slot.handled_seq < target and not slot.done.is_set():
                reached = trio.Event()
                heapq.heappush(slot.waiters, (target, next(self._tiebreak), reached))
                await reached.wait()

    # -- observers ------------------------------------------------------------------------------

    def attach(
        self,
        observer: Observer,
        *,
        buffer: int | None = None,
        lossless: bool | None = None,
        max_batch: int | None = None,
    ) -> None:
        """Deliver every event published from now on to ``observer``. Before :meth:`run` the
        observer's task starts with the bus; while running it starts at once."""
        if self._state in ("closing", "closed"):
            raise RuntimeError(f"EventBus is closed: cannot attach {observer.name!r}")
        for slot in self._slots:
            if slot.observer is observer or slot.name == observer.name:
                raise ValueError(f"an observer named {observer.name!r} is already attached")
        size: int = getattr(observer, "buffer", DEFAULT_BUFFER) if buffer is None else buffer
        batch: int = getattr(observer, "max_batch", DEFAULT_MAX_BATCH)
        batch = batch if max_batch is None else max_batch
        for what, value in (("buffer", size), ("max_batch", batch)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be a positive int (bounded), not {value!r}")
        keep_all = observer.lossless if lossless is None else lossless
        slot = ObserverQueue(observer, size, keep_all, batch)
        self._slots.append(slot)
        if self._nursery is not None:
            self._start(slot)

    async def detach(self, observer: Observer) -> None:
        """Stop delivering to ``observer``; returns once it has handled what it was given and
        its ``aclose`` ran."""
        slot = next((s for s in self._slots if s.observer is observer), None)
        if slot is None:
            raise ValueError(f"observer {observer.name!r} is not attached")
        self._slots.remove(slot)
        slot.close_input()
        bound = min(trio.current_effective_deadline(), trio.current_time() + self._timeout(slot))
        slot.drain.deadline = bound
        if slot.scheduled:
            await slot.done.wait()
        else:
            await self._serve(slot)  # never started: drain it in the caller's task

    def statistics(self) -> dict[str, ObserverStats]:
        return {slot.name: slot.stats() for slot in self._slots}

    # -- lifetime -------------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[EventBus] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Own the observer tasks until :meth:`aclose` (then drain and close them all) or until
        cancelled (then lossless observers get up to ``close_timeout`` to take what is queued)."""
        if self._state != "new":
            raise RuntimeError(f"EventBus.run: the bus is {self._state}; a bus runs once")
        self._state = "running"
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for slot in self._slots:
                    self._start(slot)
                task_status.started(self)
                await self._closing.wait()
                now = trio.current_time()
                for slot in self._slots:
                    slot.close_input()
                    slot.drain.deadline = min(self._close_bound, now + self._timeout(slot))
        finally:
            self._nursery = None
            self._state = "closed"
            self._finished.set()

    async def aclose(self) -> None:
        """Stop accepting events, let every observer handle what it was given, close them and
        end their tasks. Idempotent. Cancelling it leaves ``run`` to drain on its own.

        Bounded: each observer gets ``close_timeout`` (lossless) or ``lossy_close_timeout``
        (lossy) to drain, and as long again for its ``aclose``, never past the caller's own
        effective deadline; an observer that overruns is abandoned and logged with its losses.
        """
        self._close_bound = min(self._close_bound, trio.current_effective_deadline())
        if self._state == "new":  # never ran: drain each observer in this task
            self._state = "closing"
            try:
                for slot in self._slots:
                    slot.close_input()
                    slot.drain.deadline = min(
                        self._close_bound, trio.current_time() + self._timeout(slot)
                    )
                    await self._serve(slot)
            finally:
                self._state = "closed"
                self._finished.set()
            return
        if self._state == "running":
            self._state = "closing"
            self._closing.set()
        await self._finished.wait()

    def _timeout(self, slot: ObserverQueue) -> float:
        return self.close_timeout if slot.lossless else self.lossy_close_timeout

    def _start(self, slot: ObserverQueue) -> None:
        assert self._nursery is not None
        slot.scheduled = True
        self._nursery.start_soon(self._serve, slot, name=f"bus observer {slot.name}")

    # -- one observer's task --------------------------------------------------------------------

    async def _serve(self, slot: ObserverQueue) -> None:
        try:
            with slot.drain:
                await self._pump(slot, wait=True)
            if slot.drain.cancelled_caught:
                slot.abandon(f"did not drain within {self._timeout(slot):g}s")
        except trio.Cancelled:
            if slot.lossless and (slot.queued or slot.current):
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + self.close_timeout
                    await self._pump(slot, wait=False)
            if slot.pending:
                slot.abandon("cancelled")
            raise
        finally:
            slot.closed = True
            slot.send.close()
            timeout = self._timeout(slot)
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = min(self._close_bound, trio.current_time() + timeout)
                try:
                    await slot.observer.aclose()
                except Exception:
                    log.exception("observer %s: aclose raised", slot.name)
            if scope.cancelled_caught:
                log.error("observer %s: aclose abandoned after %gs", slot.name, timeout)
            slot.done.set()
            slot.progress.unpark_all()
            for _, _, reached in slot.waiters:
                reached.set()
            slot.waiters.clear()

    async def _pump(self, slot: ObserverQueue, *, wait: bool) -> None:
        """Hand batches to the observer until its input is closed and empty (or, with
        ``wait=False``, until nothing is queued)."""
        while True:
            batch = slot.current or slot.take(slot.max_batch)
            if not batch:
                if slot.closed or not wait:
                    return
                try:
                    first = await slot.receive.receive()
                except trio.EndOfChannel:
                    continue  # the overflow may still hold events
                slot.queued -= 1
                batch = [first, *slot.take(slot.max_batch - 1)]
            slot.current = batch
            slot.in_flight = len(batch)
            await self._deliver(slot, batch)
            slot.current = None
            slot.in_flight = 0
            slot.handled_seq = batch[-1][0]
            slot.progress.unpark_all()
            while slot.waiters and slot.waiters[0][0] <= slot.handled_seq:
                heapq.heappop(slot.waiters)[2].set()
            # An observer whose handle never yields must not starve the trading loop.
            await trio.lowlevel.checkpoint()

    async def _deliver(self, slot: ObserverQueue, batch: list[Item]) -> None:
        if slot.note_dropped is not None and slot.dropped > slot.dropped_reported:
            count, slot.dropped_reported = slot.dropped - slot.dropped_reported, slot.dropped
            try:
                slot.note_dropped(count)
            except Exception:
                log.exception("observer %s: note_dropped raised", slot.name)
        attempts = 1 + (self.retries if slot.lossless else 0)
        first, last = batch[0][0], batch[-1][0]
        for attempt in range(1, attempts + 1):
            try:
                await slot.observer.handle(batch)
            except Exception:
                slot.errors += 1
                if attempt == attempts:
                    slot.failed += len(batch)
                    log.exception(
                        "observer %s failed on events #%d-#%d: %d events not handled",
                        slot.name,
                        first,
                        last,
                        len(batch),
                    )
                    return
                delay = self.retry_delay * 4 ** (attempt - 1)
                log.warning(
                    "observer %s failed on events #%d-#%d (attempt %d of %d); retry in %gs",
                    slot.name,
                    first,
                    last,
                    attempt,
                    attempts,
                    delay,
                    exc_info=True,
                )
                await trio.sleep(delay)
            else:
                slot.delivered += len(batch)
                return
