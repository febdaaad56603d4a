"""The operator's console for ``trio-trade run``: commands in on standard input, replies out.

Standard input is read as bytes, a line at a time and at most :data:`MAX_COMMAND_LENGTH` bytes
of it, and decoded here rather than by the locale's text layer: a longer line or one that is
not UTF-8 is a bad command with an error reply, never a crash, and the run goes on. Replies go
through a :class:`TerminalWriter`, so a stalled reader never stalls the run.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

import trio

from trading.core.commands import MAX_COMMAND_LENGTH, CommandResult
from trading.observers.terminal import TerminalWriter
from trading.runtime.runner import Runner

__all__ = ["LineReader", "decode_line", "print_results", "read_commands"]

log = logging.getLogger(__name__)


def print_results(out: TerminalWriter, results: Sequence[CommandResult]) -> None:
    for result in results:
        out.write(f"{result}\n")


class LineReader:
    """Lines of a file descriptor as bytes, each at most ``MAX_COMMAND_LENGTH`` + 1 of them (the
    rest of a longer line is read and dropped, a bounded chunk at a time). Blocking.

    It reads the raw descriptor with ``os.read``, not ``sys.stdin``: the reading thread is
    abandoned when the run ends, and a thread blocked inside ``sys.stdin.buffer.readline`` holds
    that buffer's lock, which the interpreter then needs at exit — a fatal error (exit 134) for
    every run that ended while standard input was still open.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()
        self._eof = False

    def read_line(self) -> bytes | None:
        """The next line (with its newline, if it had one); None at the end of input."""
        limit = MAX_COMMAND_LENGTH + 1
        while b"\n" not in self._buffer and not self._eof:
            if len(self._buffer) > limit:  # too long already: keep the head, drop the rest
                del self._buffer[limit:]
                line = bytes(self._buffer)
                self._buffer.clear()
                self._skip_rest_of_line()
                return line
            chunk = os.read(self.fd, 65_536)
            if not chunk:
                self._eof = True
            self._buffer += chunk
        if not self._buffer:
            return None
        end = self._buffer.find(b"\n")
        end = len(self._buffer) if end < 0 else end + 1
        line = bytes(self._buffer[:end])
        del self._buffer[:end]
        if len(line) > limit:
            line = line[:limit]
        return line

    def _skip_rest_of_line(self) -> None:
        while not self._eof:
            chunk = os.read(self.fd, 65_536)
            if not chunk:
                self._eof = True
                return
            end = chunk.find(b"\n")
            if end >= 0:
                self._buffer += chunk[end + 1 :]
                return


def decode_line(line: bytes) -> str:
    """A command line's text; raises ValueError with a reply for the operator."""
    if len(line.rstrip(b"\r\n")) > MAX_COMMAND_LENGTH:
        raise ValueError(f"command too long (the limit is {MAX_COMMAND_LENGTH} bytes); ignored")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"not UTF-8 text (byte 0x{line[exc.start]:02x} at column {exc.start + 1}); ignored"
        ) from None


async def read_commands(runner: Runner, out: TerminalWriter) -> None:
    """Each stdin line is a command. A thread reads because stdin may be a terminal, a pipe or a
    file, and only a blocking read handles all three; the thread is abandoned on exit. Bytes are
    decoded here, not by the locale's text layer, so bad bytes are a bad command, not a crash."""
    reader = LineReader(sys.stdin.fileno())
    while True:
        raw = await trio.to_thread.run_sync(reader.read_line, abandon_on_cancel=True)
        if raw is None:
            log.debug("end of standard input; still running (Ctrl-C to stop)")
            return
        try:
            line = decode_line(raw).strip()
        except ValueError as exc:
            out.write(f"error: {exc}\n")
            continue
        if line:
            print_results(out, await runner.send(line, source="stdin"))
