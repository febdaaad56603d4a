"""TerminalWriter: a write never blocks the caller; what a stalled reader costs is counted."""

from __future__ import annotations

import os
import threading

import pytest

from trading.observers.terminal import TerminalWriter


def test_writes_reach_the_sink_in_order() -> None:
    got: list[str] = []
    writer = TerminalWriter(got.append)
    for i in range(100):
        writer.write(f"line {i}\n")
    assert writer.drain(10)
    assert "".join(got).splitlines() == [f"line {i}" for i in range(100)]
    assert writer.dropped == 0


def test_a_sink_that_blocks_forever_never_blocks_write() -> None:
    release = threading.Event()
    entered = threading.Event()
    got: list[str] = []

    def stalled(text: str) -> None:
        entered.set()
        release.wait()
        got.append(text)

    writer = TerminalWriter(stalled, max_pending=5)
    try:
        writer.write("0\n")
        assert entered.wait(10)  # the writer thread is now stuck in the sink with line 0
        for i in range(1, 50):  # returns at once every time: 5 queued, 44 dropped
            writer.write(f"{i}\n")
        assert not writer.drain(0.01)  # bounded: gives up rather than waiting for the reader
        assert writer.pending <= 5
        assert writer.dropped == 44
    finally:
        release.set()
    assert writer.drain(10)
    writer.write("back\n")
    assert writer.drain(10)
    text = "".join(got)
    assert f"... {writer.dropped} lines dropped: the reader was not keeping up" in text
    assert text.endswith("back\n")


def test_a_closed_pipe_stops_writing_and_counts_the_rest() -> None:
    read, write = os.pipe()
    os.close(read)
    writer = TerminalWriter.for_fd(write, name="closed pipe")
    try:
        writer.write("first\n")  # EPIPE (Python ignores SIGPIPE): the thread stops writing
        assert writer.drain(10)
        for _ in range(10):
            writer.write("more\n")
        assert writer.dropped == 11
        assert writer.drain(0)
    finally:
        os.close(write)


def test_max_pending_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_pending"):
        TerminalWriter(print, max_pending=0)
