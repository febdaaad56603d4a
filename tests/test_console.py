"""The console's stdin reader: bounded lines from the raw descriptor, and a run that ends while
standard input is still open exits cleanly (the abandoned reading thread holds no lock the
interpreter needs at exit)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trading.console import LineReader
from trading.core.commands import MAX_COMMAND_LENGTH

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    for fd in (read, write):
        with contextlib.suppress(OSError):  # a test may have closed it already
            os.close(fd)


def test_lines_come_whole_and_in_order_across_reads(pipe: tuple[int, int]) -> None:
    read, write = pipe
    os.write(write, b"pause a\nresu")
    os.write(write, b"me a\n\nlast without newline")
    os.close(write)
    reader = LineReader(read)
    got = []
    while (line := reader.read_line()) is not None:
        got.append(line)
    assert got == [b"pause a\n", b"resume a\n", b"\n", b"last without newline"]


def test_a_long_line_is_cut_to_the_bound_and_the_next_line_survives(pipe: tuple[int, int]) -> None:
    read, write = pipe
    reader = LineReader(read)
    huge = b"x" * (10 * MAX_COMMAND_LENGTH)
    # written by a thread: the pipe holds 64 KiB, and the line is longer than that

    def write_all() -> None:
        os.write(write, huge + b"\nstatus\n")
        os.close(write)

    writer = threading.Thread(target=write_all)
    writer.start()
    first = reader.read_line()
    second = reader.read_line()
    writer.join()
    assert first is not None and len(first) == MAX_COMMAND_LENGTH + 1
    assert second == b"status\n"
    assert reader.read_line() is None


def test_a_run_that_ends_with_stdin_still_open_exits_cleanly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "trading", "run", "sma_cross", "--for", "2s", "--no-db"],
        cwd=REPO,
        stdin=subprocess.PIPE,  # left open: nobody ever closes it during the run
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"status\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert "Fatal Python error" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait()
