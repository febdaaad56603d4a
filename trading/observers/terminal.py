"""TerminalWriter: text for a terminal or a pipe, written without ever blocking the event loop.

A terminal stalls whenever its reader does: a pager waiting for a key, ``| less`` scrolled back,
a pipe whose reader is busy or gone (64 KiB of buffer, then ``write`` blocks). A write on the
event loop would then stop every strategy (DESIGN.md rule 6). So:

* ``write`` only appends to a bounded queue under a lock the writer thread holds for an instant;
  it never waits for the reader. Past ``max_pending`` queued writes, text is dropped and
  counted.
* One daemon thread per writer does the blocking writes. When it can write again it first says
  how much was dropped (``... N lines dropped: the reader was not keeping up``), so a quiet
  terminal never hides what was lost. Callers write a line at a time, so writes are lines.
* :meth:`for_fd` writes to a file descriptor with ``os.write``, bypassing ``sys.stdout``'s
  buffer and its lock: a thread stuck on a stalled pipe then holds no lock the interpreter needs
  at exit, so the process still ends on time (it would abort or hang at shutdown otherwise).
* :meth:`drain` waits, bounded, for the queue to empty: call it outside the loop (or in a
  thread) at the end of a run.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import TextIO

__all__ = ["TerminalWriter"]

log = logging.getLogger(__name__)


class TerminalWriter:
    """A text sink whose ``write`` never blocks; usable as the stream of a logging handler."""

    def __init__(
        self, sink: Callable[[str], object], *, name: str = "terminal", max_pending: int = 1_000
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        self.name = name
        self.max_pending = max_pending
        self.dropped = 0  # writes dropped in all, reported or not
        self.written = 0  # writes handed to the sink
        self._sink = sink
        self._unreported = 0
        self._pending: deque[str] = deque()
        self._writing = False
        self._broken = False
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()

    @classmethod
    def for_fd(
        cls, fd: int, *, name: str | None = None, encoding: str | None = None
    ) -> TerminalWriter:
        """Write to file descriptor ``fd`` (1 for standard output, 2 for standard error)."""
        encoding = encoding or getattr(sys.stdout, "encoding", None) or "utf-8"

        def sink(text: str) -> None:
            view = memoryview(text.encode(encoding, "backslashreplace"))
            while view:
                view = view[os.write(fd, view) :]

        return cls(sink, name=name or f"fd {fd}")

    @classmethod
    def for_stream(
        cls, stream: TextIO, *, name: str = "stream", max_pending: int = 1_000
    ) -> TerminalWriter:
        """Write to a text stream, flushing after each write (which may block: in the thread)."""

        def sink(text: str) -> None:
            stream.write(text)
            stream.flush()

        return cls(sink, name=name, max_pending=max_pending)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def write(self, text: str) -> int:
        """Queue ``text``; never blocks. Dropped (and counted) when the queue is full."""
        if not text:
            return 0
        with self._cond:
            if self._broken or len(self._pending) >= self.max_pending:
                self.dropped += 1
                self._unreported += 1
                return len(text)
            self._pending.append(text)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"terminal writer ({self.name})", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return len(text)

    def flush(self) -> None:
        """Nothing to do: the writer thread writes as fast as the reader reads."""

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until everything queued is written. Blocking."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._broken or (not self._pending and not self._writing), timeout
            )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._writing = False
                    self._cond.notify_all()
                    self._cond.wait()
                text = "".join(self._pending)
                self._pending.clear()
                lost, self._unreported = self._unreported, 0
                self._writing = True
            if lost:
                text = f"... {lost} lines dropped: the reader was not keeping up\n{text}"
            try:
                self._sink(text)
            except Exception as exc:  # a closed pipe, a full disk: stop writing, keep counting
                with self._cond:
                    self._broken = True
                    self._writing = False
                    self.dropped += len(self._pending) + 1
                    self._pending.clear()
                    self._cond.notify_all()
                log.debug("terminal writer %s stopped: %s", self.name, exc)
                return
            with self._cond:
                self.written += 1
