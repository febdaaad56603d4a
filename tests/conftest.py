"""Shared fixtures. Anything timed runs on trio's autojumping MockClock: no test sleeps for real."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import trio.testing
from hypothesis import settings

import trading
from trading.core.events import Event

# Property tests judge behaviour, never speed: no per-example deadline, which a loaded CI machine
# would otherwise turn into flaky failures.
settings.register_profile("trio-trade", deadline=None, print_blob=True)
settings.load_profile("trio-trade")

# 2025-01-01 00:00:00 UTC: on a 15-minute (and daily) bar close, which makes schedules easy to read.
T0 = 1_735_689_600.0


class EventLog(list[Event]):
    """A publish callback that keeps every event, for assertions."""

    def __call__(self, event: Event) -> None:
        self.append(event)

    def of(self, kind: type[Event], strategy: str | None = None) -> list[Event]:
        return [
            e for e in self if isinstance(e, kind) and (strategy is None or e.strategy == strategy)
        ]


def sim(clock: trading.Clock, seed: int = 7) -> dict[str, Any]:
    """The simulated edges as Runner keywords: ``Runner(clock=c, **sim(c))``. The Runner picks
    no edges itself; tests, like every composition root, pass them."""
    market, exchange = trading.simulated(clock, seed=seed)
    return {"market": market, "exchange": exchange}


def all_tasks() -> set[trio.lowlevel.Task]:
    """Every task of the running trio run: compared before and after, it shows what leaked."""
    found: set[trio.lowlevel.Task] = set()
    todo = [trio.lowlevel.current_root_task()]
    while todo:
        task = todo.pop()
        assert task is not None
        found.add(task)
        for nursery in task.child_nurseries:
            todo.extend(nursery.child_tasks)
    return found


@pytest.fixture
def events() -> EventLog:
    return EventLog()


@pytest.fixture
def clock() -> trio.testing.MockClock:
    """Trio's autojumping mock clock. pytest-trio only uses a clock the *test* asks for by
    argument, so every timed test lists `clock` (the runner fixture checks it did)."""
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
def vclock(clock: trio.testing.MockClock) -> trading.VirtualClock:
    """The runner's clock: epoch time on top of the mock clock, starting at T0."""
    return trading.VirtualClock(start=T0)


@pytest.fixture
async def runner(vclock: trading.VirtualClock, events: EventLog) -> AsyncIterator[trading.Runner]:
    if not isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock):
        raise RuntimeError(
            "add the `clock` fixture to the test's arguments: it would sleep for real"
        )
    policy = trading.RestartPolicy(max_restarts=3, window=3600, initial_delay=1, max_delay=60)
    async with trading.Runner(
        clock=vclock, publish=events, restart_policy=policy, **sim(vclock)
    ) as r:
        yield r


@pytest.fixture(autouse=True)
def _private_runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test's ``trio-trade run`` (and its subprocesses) gets its own control-socket folder:
    runs never meet each other's sockets, nor a real one in the user's runtime folder. Short, in
    /tmp, because a Unix socket path is limited to about 100 bytes."""
    folder = tempfile.mkdtemp(prefix="tt-")
    monkeypatch.setenv("XDG_RUNTIME_DIR", folder)
    # Plain lines even under `pytest -s` from a terminal (the pty tests drop TRIO_TRADE_*).
    monkeypatch.setenv("TRIO_TRADE_PLAIN", "1")
    yield
    shutil.rmtree(folder, ignore_errors=True)
