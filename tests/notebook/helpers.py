"""Strategies and checks shared by the notebook tests.

The strategies compute once on start, then sleep on an hourly bar of a VirtualClock at real
speed: after that, they compute only when a command wakes them.
"""

from __future__ import annotations

import re
import threading
from decimal import Decimal

import trading

T0 = 1_735_689_600.0  # 2025-01-01 00:00 UTC


class Sleeper(trading.Strategy):
    """Buys 0.01 BTCUSDT each time it computes (``wake`` makes it compute now)."""

    interval = "1h"
    symbols = ("BTCUSDT",)

    async def next(self, ctx: trading.Context) -> None:
        await ctx.buy(Decimal("0.01"))


class Other(Sleeper):
    name = "other"


class FailsToStart(Sleeper):
    name = "fails_to_start"

    async def on_start(self, ctx: trading.Context) -> None:
        raise RuntimeError("no start today")


def options() -> dict[str, object]:
    """start() keywords: a clock at real speed a minute past an hourly close (the simulated
    edges by default): the strategies sleep for the whole test."""
    return {"clock": trading.VirtualClock(start=T0 + 60, speed=1.0)}


_IDLE_TRIO_WORKER = re.compile(r"Trio thread \d+")


def new_threads(before: set[threading.Thread]) -> list[str]:
    """Threads alive now that were not before, except trio's idle thread-cache workers (shared
    by every trio run of the process, reused by the next one, gone after 10 s idle)."""
    return sorted(
        t.name
        for t in threading.enumerate()
        if t not in before and not _IDLE_TRIO_WORKER.fullmatch(t.name)
    )
