"""trading.notebook.start_in_thread: a Runner in a thread of its own, with blocking methods."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from tests.notebook.helpers import FailsToStart, Other, Sleeper, new_threads, options
from trading import Runner, RunnerThreadError
from trading.notebook import start_in_thread


def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_commands_and_tables_from_a_plain_thread() -> None:
    before = set(threading.enumerate())
    handle = start_in_thread(Sleeper(), Other(), **options())
    try:
        assert handle.running
        until(lambda: handle.status()["state"].tolist() == ["sleeping", "sleeping"])
        [reply] = handle.command("pause sleeper")
        assert (reply.ok, reply.state) == (True, "paused")
        assert handle.status()["state"].tolist() == ["paused", "sleeping"]
        [bad] = handle.command("pause nobody")
        assert not bad.ok
        handle.command("wake other")
        until(lambda: len(handle.fills()) == 3)
        positions = handle.positions()
        assert positions.set_index("strategy")["quantity"].to_dict() == {
            "sleeper": Decimal("0.01"),
            "other": Decimal("0.02"),
        }
        assert set(handle.orders()["state"]) == {"FILLED"}
    finally:
        replies = handle.stop()
    assert sorted((r.target, r.ok) for r in replies) == [("other", True), ("sleeper", True)]
    assert not handle.running and handle.finished
    assert handle.leftover_tasks == []
    assert new_threads(before) == []
    assert handle.stop() == replies  # idempotent
    [late] = handle.command("status all")
    assert not late.ok and "stopped" in late.message
    assert handle.status()["state"].tolist() == ["stopped", "stopped"]


def test_a_blocking_method_from_the_runs_own_thread_is_refused() -> None:
    handle = start_in_thread(Sleeper(), **options())
    try:

        async def reenter(runner: Runner) -> str:
            try:
                handle.command("status sleeper")
            except RunnerThreadError as exc:
                return str(exc)
            return "no error"

        assert "own run" in handle.call(reenter)
        assert handle.running
    finally:
        handle.stop()


def test_a_failed_start_raises_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    with pytest.raises(RuntimeError, match="no start today"):
        start_in_thread(FailsToStart(), **options())
    assert new_threads(before) == []
