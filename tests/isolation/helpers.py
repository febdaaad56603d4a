"""Shared helpers of the isolation tests: an event log that can be waited on, and a Runner on
real time (children are real processes: an autojumping clock would jump while we wait on them)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psutil
import trio

import trading
from tests.conftest import T0, sim
from trading.core.events import CommandHandled, Event, StrategyStateChanged
from trading.core.restart import RestartPolicy

WAIT = 20.0  # every wait on a child is bounded by this (real seconds)


class Watched(list[Event]):
    """Every published event; :meth:`until` waits (bounded) for a predicate over them."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = trio.Event()

    def __call__(self, event: Event) -> None:
        self.append(event)
        self._changed.set()
        self._changed = trio.Event()

    def of(self, kind: type[Any], strategy: str | None = None) -> list[Any]:
        return [
            e for e in self if isinstance(e, kind) and (strategy is None or e.strategy == strategy)
        ]

    async def until(self, predicate: Callable[[], bool], seconds: float = WAIT) -> None:
        with trio.fail_after(seconds):
            while not predicate():
                await self._changed.wait()

    def replies(self, strategy: str) -> list[tuple[str, bool, str]]:
        return [(e.command, e.ok, e.message) for e in self.of(CommandHandled, strategy)]

    def states(self, strategy: str) -> list[tuple[str, str]]:
        return [(e.old, e.new) for e in self.of(StrategyStateChanged, strategy)]


@asynccontextmanager
async def real_time_runner(
    watched: Watched, *, initial_delay: float = 0.2, max_restarts: int = 5
) -> AsyncIterator[trading.Runner]:
    """A Runner on the simulated market whose strategy clock stands still enough (1d bars) that
    only on_start computes and commands (wake) run next()."""
    clock = trading.VirtualClock(start=T0)
    policy = RestartPolicy(initial_delay=initial_delay, max_delay=1.0, max_restarts=max_restarts)
    async with trading.Runner(
        clock=clock, publish=watched, restart_policy=policy, stop_timeout=5.0, **sim(clock)
    ) as runner:
        yield runner


def gone(pid: int) -> bool:
    """The process is reaped, or at least dead (a zombie its reaper has not waited for yet)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _poll(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


async def eventually(predicate: Callable[[], bool], seconds: float = WAIT) -> None:
    """Wait (bounded) for a fact about processes we did not start, which nothing signals: it is
    polled in a worker thread, off the event loop. Raises TooSlowError."""
    if not await trio.to_thread.run_sync(_poll, predicate, seconds):
        raise trio.TooSlowError(f"not true within {seconds:g}s")


async def until_gone(pid: int, seconds: float = WAIT) -> None:
    """Wait (bounded) until ``pid`` is gone."""
    await eventually(lambda: gone(pid), seconds)


def isolated_children() -> list[psutil.Process]:
    """This process's strategy children (trio-parallel's cached workers are not counted)."""
    found = []
    for child in psutil.Process().children():
        try:
            if "trading.isolation.child" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass  # gone meanwhile
    return found
