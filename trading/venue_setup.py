"""The venue a run trades on, from its arguments: the built-in simulated market and paper
broker, or Binance (public data with the paper broker, or live orders).

Split from ``serve.py`` (the run's composition root): choosing and opening the edges is its own
concept. A venue that cannot be opened raises :class:`VenueUnavailable` with one line saying
why (the run exits 1 with it); the strategy clock comes back with the market, since a live
venue's bars drive it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from trading.exchanges.base import Exchange, MarketData
from trading.exchanges.defaults import simulated
from trading.exchanges.paper import DEFAULT_BALANCES, PaperBroker
from trading.runtime.clock import Clock
from trading.runtime.strategy import StrategySpec

__all__ = ["VenueUnavailable", "open_venue"]

log = logging.getLogger("trading.cli")  # the run's own lines, as before the split


class VenueUnavailable(Exception):
    """The exchange could not be reached or refused us at start; the message says why."""


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


@asynccontextmanager
async def open_venue(
    args: argparse.Namespace, specs: list[StrategySpec], clock: Clock | None
) -> AsyncIterator[tuple[Clock, MarketData, Exchange]]:
    """The market, the exchange and the strategy clock the run uses."""
    if args.exchange == "sim":
        assert clock is not None
        market, exchange = simulated(clock, seed=args.seed)
        if paper := getattr(args, "paper", None):  # the configuration's [paper] wallet and costs
            exchange = PaperBroker(market, clock, **paper)
        shortest = min(specs, key=lambda s: s.interval.seconds).interval
        pace = shortest.seconds / getattr(clock, "speed", 1.0)
        log.info(
            "simulated market (seed %d) from %s: one %s bar every %.3gs of real time; "
            "type 'help' for commands",
            args.seed,
            f"{dt.datetime.fromtimestamp(clock.now(), tz=dt.UTC):%Y-%m-%d %H:%M} UTC",
            shortest,
            pace,
        )
        yield clock, market, exchange
        return
    from trading.exchanges.binance.rest import Credentials
    from trading.exchanges.binance.venue import open_binance

    symbols = sorted({symbol for spec in specs for symbol in spec.symbols})
    env = getattr(args, "credentials_env", os.environ)
    credentials = Credentials.from_env(env) if args.live else None
    stack = AsyncExitStack()
    try:
        venue = await stack.enter_async_context(
            open_binance(
                base_url=args.base_url,
                ws_url=args.ws_url,
                symbols=symbols,
                live=args.live,
                credentials=credentials,
                paper_balances=(getattr(args, "paper", None) or {}).get(
                    "balances", DEFAULT_BALANCES
                ),
            )
        )
    except Exception as exc:  # unreachable, refused keys, unknown symbol: say which, exit 1
        cause = _leaf(exc)
        raise VenueUnavailable(
            f"cannot start on {args.base_url}: {type(cause).__name__}: {cause}"
        ) from None
    async with stack:
        log.info(
            "Binance at %s (%s): %s; type 'help' for commands",
            args.base_url,
            "LIVE orders" if venue.live else "dry run: orders go to the paper broker",
            ", ".join(symbols),
        )
        yield venue.clock, venue.market, venue.exchange
