"""Printed: print() while the view runs reaches the view a whole line at a time."""

from __future__ import annotations

import io
import threading

from trading.observers.terminal import TerminalWriter
from trading.tui.printed import Printed


def collect() -> tuple[TerminalWriter, list[str]]:
    got: list[str] = []
    return TerminalWriter(got.append, max_pending=100_000), got


def test_lines_are_written_whole_and_a_partial_line_waits() -> None:
    writer, got = collect()
    printed = Printed(writer, io.StringIO())
    print("a", "b", end="", file=printed)
    print(" c", file=printed)
    printed.write("d\ne\nf")
    assert writer.drain(5)
    assert "".join(got) == "a b c\nd\ne\n"
    printed.flush()
    assert writer.drain(5)
    assert "".join(got) == "a b c\nd\ne\nf\n"
    assert not printed.isatty() and printed.writable() and printed.encoding


def test_a_line_without_end_is_not_held_without_bound() -> None:
    writer, got = collect()
    printed = Printed(writer, io.StringIO())
    printed.write("x" * (Printed.MAX_PARTIAL + 1))
    assert writer.drain(5)
    assert "".join(got) == "x" * (Printed.MAX_PARTIAL + 1) + "\n"


def test_threads_printing_at_once_keep_their_lines_whole() -> None:
    writer, got = collect()
    printed = Printed(writer, io.StringIO())

    def say(who: int) -> None:
        for i in range(500):
            print(f"thread {who} line {i}", file=printed)

    threads = [threading.Thread(target=say, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert writer.drain(5)
    lines = "".join(got).splitlines()
    assert len(lines) == 2_000
    assert all(line.startswith("thread ") and len(line.split()) == 4 for line in lines)
