"""The operator's console for ``trio-trade run``: commands in on standard input, replies out.

Standard input is read as bytes, a line at a time and at most :data:`MAX_COMMAND_LENGTH` bytes
of it, and decoded here rather than by the locale's text layer: a longer line or one that is
not UTF-8 is a bad command with an error reply, never a crash, and the run goes on. Replies go
through a :class:`TerminalWriter`, so a stalled reader never stalls the run.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import trio

from trading.core.commands import MAX_COMMAND_LENGTH, CommandResult
from trading.observers.terminal import TerminalWriter
from trading.runtime.runner import Runner

__all__ = ["decode_line", "print_results", "read_commands", "read_line"]

log = logging.getLogger(__name__)


def print_results(out: TerminalWriter, results: Sequence[CommandResult]) -> None:
    for result in results:
        out.write(f"{result}\n")


def read_line() -> bytes | None:
    """One line of standard input as bytes, at most ``MAX_COMMAND_LENGTH`` + 1 of them (the rest
    of a longer line is read and discarded); None at the end of input. Blocking."""
    stdin = sys.stdin.buffer
    line = stdin.readline(MAX_COMMAND_LENGTH + 1)
    if not line:
        return None
    if len(line) > MAX_COMMAND_LENGTH and not line.endswith(b"\n"):
        while True:  # skip the rest of the line, a bounded chunk at a time
            rest = stdin.readline(65_536)
            if not rest or rest.endswith(b"\n"):
                break
    return line


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
    while True:
        raw = await trio.to_thread.run_sync(read_line, abandon_on_cancel=True)
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
