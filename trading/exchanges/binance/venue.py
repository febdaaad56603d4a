"""Binance put together: market data, an exchange (real or paper) and the live strategy clock.

What ``trio-trade run --exchange binance`` and embedding code use. Public market data needs no
keys; by default orders go to a paper broker filling at the streamed prices (a dry run), and only
``live=True`` sends real orders, which needs keys. Each REST/WebSocket client lives inside the
context manager and is closed when it exits (DESIGN.md rule 9: sockets are made where used).

Where the streams are, from the REST base URL, as Binance publishes them:

* ``https://api.binance.com`` (and api1-4, api-gcp): streams ``wss://stream.binance.com:9443``,
  WebSocket API ``wss://ws-api.binance.com:443/ws-api/v3``;
* ``https://testnet.binance.vision``: ``wss://stream.testnet.binance.vision`` and
  ``wss://ws-api.testnet.binance.vision/ws-api/v3``;
* anything else (``trio-trade exchange-sim``, a proxy): the same host and port, ``ws``/``wss``
  for ``http``/``https``, streams under ``/ws`` and ``/stream``, the API at ``/ws-api/v3``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from urllib.parse import urlsplit

import attrs
import trio

from trading.exchanges.base import Exchange
from trading.exchanges.binance.exchange import BinanceExchange
from trading.exchanges.binance.market import BinanceMarket
from trading.exchanges.binance.rest import BinanceRest, Credentials
from trading.exchanges.binance.stream import KlineStream
from trading.exchanges.binance.user_stream import UserDataStream
from trading.exchanges.binance.ws import ReconnectBackoff
from trading.exchanges.paper import DEFAULT_BALANCES, PaperBroker
from trading.runtime.bar_feed import FeedClock
from trading.runtime.clock import Clock

__all__ = ["MAINNET", "MissingCredentials", "Venue", "open_binance", "stream_urls"]

MAINNET = "https://api.binance.com"
_KNOWN = {
    "api.binance.com": ("wss://stream.binance.com:9443", "wss://ws-api.binance.com:443/ws-api/v3"),
    "testnet.binance.vision": (
        "wss://stream.testnet.binance.vision",
        "wss://ws-api.testnet.binance.vision/ws-api/v3",
    ),
}


class MissingCredentials(ValueError):
    """Live trading was asked for without keys; the message says where keys come from."""


def stream_urls(base_url: str, ws_url: str | None = None) -> tuple[str, str]:
    """(market streams base, WebSocket API URL) for a REST base URL, or for ``ws_url``."""
    if ws_url:
        root = ws_url.rstrip("/")
        for suffix in ("/ws-api/v3", "/stream", "/ws"):
            root = root.removesuffix(suffix)
        return root, f"{root}/ws-api/v3"
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if host in _KNOWN:
        return _KNOWN[host]
    if host.startswith(("api1.", "api2.", "api3.", "api4.", "api-gcp.")) and host.endswith(
        ".binance.com"
    ):
        return _KNOWN["api.binance.com"]
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    root = f"{scheme}://{parts.netloc}"
    return root, f"{root}/ws-api/v3"


@attrs.frozen
class Venue:
    """What a Runner needs: ``Runner(clock=v.clock, market=v.market, exchange=v.exchange)``."""

    market: BinanceMarket
    exchange: Exchange
    clock: FeedClock
    live: bool


class _StreamedPrices:
    """The paper broker's price source: the market's streamed marks."""

    def __init__(self, market: BinanceMarket) -> None:
        self._market = market

    def price(self, symbol: str, t: float) -> float:
        mark = self._market.mark(symbol)
        if mark is None:
            raise LookupError(f"no streamed price for {symbol} yet")
        return float(mark)


@asynccontextmanager
async def open_binance(
    *,
    base_url: str = MAINNET,
    ws_url: str | None = None,
    symbols: Sequence[str] = (),
    live: bool = False,
    credentials: Credentials | None = None,
    clock: Clock | None = None,  # default: the exchange's own time (see ExchangeClock)
    paper_balances: Mapping[str, Decimal] = DEFAULT_BALANCES,
    grace: float = 5.0,
    backoff: ReconnectBackoff | None = None,
) -> AsyncIterator[Venue]:
    """Connect (REST, kline stream, and for ``live`` the user data stream); yield the venue.

    ``backoff`` paces reconnects of both streams (default: 0.5 s doubling to 30 s, reset once
    a connection stayed up a minute).

    Raises MissingCredentials for ``live`` without keys, before anything connects.
    """
    if live and credentials is None:
        raise MissingCredentials(
            "live trading needs API keys: set BINANCE_API_KEY and BINANCE_API_SECRET "
            "(or [exchange] keys in the config); without --live orders go to the paper broker"
        )
    streams_base, ws_api = stream_urls(base_url, ws_url)
    async with (
        BinanceRest(base_url, credentials=credentials if live else None) as rest,
        trio.open_nursery() as nursery,
    ):
        market = BinanceMarket(
            rest, KlineStream(streams_base, backoff=backoff), clock, symbols=symbols, grace=grace
        )
        await nursery.start(market.run)
        exchange: Exchange
        if live:
            assert credentials is not None
            await rest.account()  # the keys work (AuthError naming the exchange's words if not)
            user = UserDataStream(ws_api, credentials, now_ms=rest.server_now_ms, backoff=backoff)
            exchange = BinanceExchange(
                rest, user, marks=market.mark, symbols=tuple(symbols), info=market.info
            )
        else:
            exchange = PaperBroker(
                _StreamedPrices(market), market.clock, balances=paper_balances, symbols=market.info
            )
        try:
            yield Venue(market=market, exchange=exchange, clock=market.clock, live=live)
        finally:
            nursery.cancel_scope.cancel(reason="venue closed")
