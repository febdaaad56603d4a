"""Printed: what ``print()`` writes while the terminal view runs.

The rules this module keeps:

* Text goes to a :class:`~trading.observers.terminal.TerminalWriter` a whole line at a time, so a
  strategy's or a library's ``print()`` scrolls above the table like a log line instead of landing
  in the input line; a partial line waits for its newline (or a ``flush``), each thread's apart,
  so threads printing at once never splice their lines (``print`` writes the text and the end
  in two calls).
* Writing never blocks (the writer queues, bounded) and is safe from any thread; a partial line
  longer than ``MAX_PARTIAL`` characters is written out rather than held without bound.
"""

from __future__ import annotations

import io
import threading
from typing import TextIO

from trading.observers.terminal import TerminalWriter

__all__ = ["Printed"]


class Printed(io.TextIOBase):
    """``sys.stdout`` and ``sys.stderr`` while the view runs: what is printed goes to a writer a
    whole line at a time (a line longer than ``MAX_PARTIAL`` characters is cut), so it scrolls
    above the table instead of landing in the input line. Never blocks."""

    MAX_PARTIAL = 65_536

    def __init__(self, writer: TerminalWriter, like: TextIO) -> None:
        super().__init__()
        self._writer = writer
        self._encoding = getattr(like, "encoding", None) or "utf-8"
        self._partial: dict[int, str] = {}  # per thread: print() writes a line in two calls
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        thread = threading.get_ident()
        with self._lock:
            partial = self._partial.pop(thread, "") + text
            if "\n" in partial:
                lines, _, partial = partial.rpartition("\n")
                self._writer.write(f"{lines}\n")
            if len(partial) > self.MAX_PARTIAL:
                self._writer.write(f"{partial}\n")
                partial = ""
            if partial:
                self._partial[thread] = partial
        return len(text)

    def flush(self) -> None:
        with self._lock:
            partial = self._partial.pop(threading.get_ident(), "")
            if partial:
                self._writer.write(f"{partial}\n")
