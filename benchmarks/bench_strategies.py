"""Strategies the benchmarks run in child processes: importable by reference (module:Class)."""

from __future__ import annotations

import attrs
import trio

import trading


@attrs.define
class Computes(trading.Strategy):
    """A compute that waits ``sleep`` seconds (a pause has something to cancel); 1h bars."""

    interval = "1h"
    sleep: float = 3600.0

    async def next(self, ctx: trading.Context) -> None:
        if self.sleep:
            await trio.sleep(self.sleep)
