"""exchange-sim for the adapter's end-to-end tests: serving it, and a live Runner on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

import trading
from trading.exchanges.binance.rest import Credentials
from trading.exchanges.binance.venue import Venue, open_binance
from trading.exchanges.binance.ws import ReconnectBackoff
from trading.testing import ExchangeSim, SimConfig

#: Reconnect at once: these tests drop connections on purpose, many times a second.
QUICK = ReconnectBackoff(initial_delay=0.005, max_delay=0.05)


@asynccontextmanager
async def serving(config: SimConfig) -> AsyncIterator[ExchangeSim]:
    """exchange-sim on 127.0.0.1 for the block."""
    async with trio.open_nursery() as nursery:
        yield await nursery.start(ExchangeSim(config).serve)
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def live_runner(sim: ExchangeSim) -> AsyncIterator[tuple[Venue, trading.Runner]]:
    """A Runner trading live on ``sim`` with its own keys, BTCUSDT's bars streamed."""
    credentials = Credentials(sim.config.api_key, sim.config.api_secret)
    async with (
        open_binance(
            base_url=sim.base_url,
            symbols=["BTCUSDT"],
            live=True,
            credentials=credentials,
            backoff=QUICK,
        ) as venue,
        trading.Runner(clock=venue.clock, market=venue.market, exchange=venue.exchange) as runner,
    ):
        yield venue, runner
