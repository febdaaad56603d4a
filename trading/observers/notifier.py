"""ConsoleNotifier: short lines for what an operator must see, folded under load.

A notifier is for a human watching a terminal (or a chat, through a callable): it shows fills,
rejections, risk breaches, strategy errors and strategies pausing, failing or stopping, and
nothing routine. It is lossy by design. Under a burst it prints at most ``max_lines`` events per
batch and ``rate`` lines per second (trio time, so tests run on a mock clock), then one line
saying how many it folded, and it always says how many events the bus dropped for it: a quiet
console must mean "nothing happened", never "too much happened".

Writing never blocks the event loop (DESIGN.md rule 6): a text stream is written through a
:class:`~trading.observers.terminal.TerminalWriter`, whose thread does the blocking writes; when
the reader stalls (a pager, a full pipe), lines are dropped with a count that is printed once the
reader reads again (``lines_lost`` counts them meanwhile). A callable is called directly: it is a
chat front end's enqueue and must not block.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

import trio

from trading.core.events import (
    BarsSkipped,
    Event,
    OrderPartiallyFilled,
    OrderRejected,
    OrderUnknown,
    RiskBreached,
    StrategyFailed,
    StrategyStateChanged,
    describe,
)
from trading.observers.terminal import TerminalWriter

__all__ = ["NOTABLE_STATES", "ConsoleNotifier", "is_notable"]

log = logging.getLogger(__name__)

# The state changes an operator acts on; computing <-> sleeping flips are routine.
NOTABLE_STATES = frozenset({"paused", "failed", "stopped"})


def is_notable(event: Event) -> bool:
    if isinstance(event, StrategyStateChanged):
        return event.new in NOTABLE_STATES
    return isinstance(
        event,
        OrderPartiallyFilled
        | OrderRejected
        | OrderUnknown
        | RiskBreached
        | StrategyFailed
        | BarsSkipped,
    )


class ConsoleNotifier:
    """Lossy observer printing one line per notable event.

    ``stream`` is a text stream (flushed after each batch) or a callable taking one line, for
    chat front-ends. ``rate`` lines per second refill a bucket of ``max_lines``; what does not
    fit is counted and reported as "... N more events folded" at most once per
    ``summary_interval`` seconds, and at close. A stream's writer holds at most ``max_pending``
    lines a stalled reader has not taken (the rest are dropped and counted); at close it waits
    at most ``drain_timeout`` real seconds for it.
    """

    lossless = False
    buffer = 256
    max_batch = 1_000

    def __init__(
        self,
        stream: TextIO | TerminalWriter | Callable[[str], object] | None = None,
        *,
        name: str = "console",
        max_lines: int = 10,
        rate: float = 5.0,
        summary_interval: float = 1.0,
        drain_timeout: float = 1.0,
        max_pending: int = 100,
    ) -> None:
        if max_lines < 1 or rate <= 0:
            raise ValueError("max_lines must be >= 1 and rate > 0")
        self.name = name
        stream = stream if stream is not None else sys.stdout
        self._call: Callable[[str], object] | None = None
        self._writer: TerminalWriter | None = None
        self._own_writer = False
        if isinstance(stream, TerminalWriter):
            self._writer = stream
        elif callable(getattr(stream, "write", None)):
            self._writer = TerminalWriter.for_stream(
                stream,  # type: ignore[arg-type]
                name=name,
                max_pending=max_pending,
            )
            self._own_writer = True
        else:
            assert callable(stream)
            self._call = stream
        self.drain_timeout = drain_timeout
        self.max_lines = max_lines
        self.rate = rate
        self.summary_interval = summary_interval
        self.folded = 0  # notable events not shown, not yet reported
        self.dropped = 0  # events the bus dropped for us, not yet reported
        self.total_folded = 0
        self.total_dropped = 0
        self._tokens = float(max_lines)
        self._refilled_at: float | None = None
        self._summary_at: float | None = None

    def note_dropped(self, count: int) -> None:
        self.dropped += count
        self.total_dropped += count

    async def handle(self, batch: Sequence[tuple[int, Event]]) -> None:
        now = trio.current_time()
        self._refill(now)
        lines: list[str] = []
        for _, event in batch:
            if not is_notable(event):
                continue
            if len(lines) < self.max_lines and self._tokens >= 1:
                self._tokens -= 1
                lines.append(describe(event))
            else:
                self.folded += 1
                self.total_folded += 1
        due = self._summary_at is None or now - self._summary_at >= self.summary_interval
        if (self.folded or self.dropped) and due:
            lines.extend(self._summary())
            self._summary_at = now
        self._emit(lines)

    @property
    def lines_lost(self) -> int:
        """Writes the terminal did not take because its reader was stalled (or gone)."""
        return 0 if self._writer is None else self._writer.dropped

    async def aclose(self) -> None:
        """Say what is still folded or dropped, so the last word is never silently lost; wait
        (bounded by ``drain_timeout``, real time) for the terminal to take it."""
        self._emit(self._summary())
        writer = self._writer
        if writer is None:
            return
        # Shielded: the wait is bounded by drain_timeout (real seconds) in the thread itself, and
        # a caller's deadline on trio's clock must not cut off the last lines already queued.
        with trio.CancelScope(shield=True):
            drained = await trio.to_thread.run_sync(writer.drain, self.drain_timeout)
        if not drained or writer.dropped:
            log.warning(
                "%s: the terminal was stalled: %d writes dropped, %d not written at close",
                self.name,
                writer.dropped,
                writer.pending,
            )

    def _summary(self) -> list[str]:
        lines = []
        if self.folded:
            lines.append(f"... {self.folded} more events folded")
        if self.dropped:
            lines.append(f"... {self.dropped} events dropped under load")
        self.folded = self.dropped = 0
        return lines

    def _refill(self, now: float) -> None:
        if self._refilled_at is not None:
            elapsed = now - self._refilled_at
            self._tokens = min(float(self.max_lines), self._tokens + elapsed * self.rate)
        self._refilled_at = now

    def _emit(self, lines: list[str]) -> None:
        if not lines:
            return
        if self._call is not None:
            for line in lines:
                self._call(line)
            return
        assert self._writer is not None
        for line in lines:  # a line per write: what the writer drops and counts are lines
            self._writer.write(f"{line}\n")
