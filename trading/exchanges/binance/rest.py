"""BinanceRest: Binance's spot REST API on ``httpx2.AsyncClient``, under Trio.

A thin IO front-end over the sans-IO modules (``signing``, ``codec``, ``errors``, ``weights``).
The rules it keeps:

* The network is a seam: ``transport=`` takes any ``httpx2.AsyncBaseTransport`` (tests pass
  ``httpx2.MockTransport``); ``None`` is httpx2's own, which runs on Trio natively (httpcore2
  picks its Trio backend through sniffio, a dependency of trio; nothing else is needed).
* Weight is reserved from the shared budget (``weights.budget_for``) before every request (and
  before a retry), the server's ``X-MBX-USED-WEIGHT-1M`` is observed on every answer, and a
  429 / 418 bans the whole budget for ``Retry-After`` *and* raises RateLimited / IpBanned.
* Signed calls carry ``timestamp = server_now_ms()`` (local wall time + the offset measured by
  ``sync_time``, done before the first signed call). On -1021 the offset is measured again and
  the call is sent once more — safe for ``POST /order`` because -1021 means nothing was placed.
* GET parameters travel in the query string, POST and DELETE parameters in a form body; what is
  signed is exactly what is sent. Decimals are sent as ``format(d, "f")`` (never an exponent).
* Secrets stay secret: log lines say method, path, status and used weight only (never the key,
  the signature or the query; httpx2's own request log line is stripped of its query by a filter
  on the ``httpx2`` logger); :class:`Credentials` shows neither part in its repr.
* Cancelling any call is safe for the client; the request may still have been carried out by the
  exchange (the engine reconciles). Errors: see ``errors``; an unreadable 2xx answer is a
  ``codec.DecodeError``; a network failure or timeout is a :class:`NetworkError` (outcome
  unknown).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Final, Self

import attrs
import httpx2
import trio

from trading.core.bars import Interval
from trading.core.records import OrderSpec, OrderType
from trading.core.updates import ExchangeOrder
from trading.exchanges.base import ExchangeError, SymbolInfo
from trading.exchanges.binance import codec
from trading.exchanges.binance.codec import AccountBalance, DecodeError, Kline, Trade
from trading.exchanges.binance.enums import BINANCE_SIDE, BINANCE_TIF, BINANCE_TYPE
from trading.exchanges.binance.errors import (
    IpBanned,
    OrderNotFound,
    RateLimited,
    TimestampOutsideWindow,
    error_for,
)
from trading.exchanges.binance.signing import encode_params, sign_request
from trading.exchanges.binance.transport import LeanTransport
from trading.exchanges.binance.weights import (
    ENDPOINT_WEIGHTS,
    OPEN_ORDERS_ALL_WEIGHT,
    WeightBudget,
    budget_for,
    used_weight,
)
from trading.exchanges.links import Link

__all__ = [
    "KLINE_INTERVALS",
    "AccountBalance",
    "BinanceRest",
    "Credentials",
    "Kline",
    "NetworkError",
    "Trade",
]

logger = logging.getLogger(__name__)


class _NoQueryInLogs(logging.Filter):
    """httpx2 logs every request's full URL at INFO; a signed GET's query holds the signature.
    This filter, on httpx2's own logger, logs the URL without its query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx2.URL) for a in record.args):
            record.args = tuple(
                a.copy_with(query=None) if isinstance(a, httpx2.URL) else a for a in record.args
            )
        return True


_httpx_logger = logging.getLogger("httpx2")
if not any(isinstance(f, _NoQueryInLogs) for f in _httpx_logger.filters):
    _httpx_logger.addFilter(_NoQueryInLogs())

#: The kline intervals Binance serves (case-sensitive; ``1M``, a month, has no Interval of ours).
KLINE_INTERVALS: Final = frozenset(
    ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w")
)
_FORM: Final = {"Content-Type": "application/x-www-form-urlencoded"}

Params = list[tuple[str, object]]


class NetworkError(ExchangeError):
    """The request could not be completed (connect, timeout, dropped): outcome unknown."""


@attrs.frozen(slots=True)
class Credentials:
    """An API key pair. Neither part appears in a repr, a log line or an error."""

    api_key: str = attrs.field(repr=False)
    api_secret: str = attrs.field(repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Credentials | None:
        """``BINANCE_API_KEY`` / ``BINANCE_API_SECRET``; None when neither is set.

        Raises ValueError naming the missing variable when only one is set.
        """
        key, secret = env.get("BINANCE_API_KEY", ""), env.get("BINANCE_API_SECRET", "")
        if not key and not secret:
            return None
        if not key or not secret:
            missing = "BINANCE_API_KEY" if not key else "BINANCE_API_SECRET"
            raise ValueError(
                f"{missing} is not set (both BINANCE_API_KEY and "
                "BINANCE_API_SECRET are needed for signed calls)"
            )
        return cls(key, secret)


def _dec(value: Decimal) -> str:
    """A decimal as Binance reads it: plain digits, never an exponent."""
    if not value.is_finite():
        raise ValueError(f"cannot send a non-finite number {value}")
    return format(value, "f")


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class BinanceRest:
    """One client of Binance's REST API (one connection pool). Use ``async with``.

    Every client on the same base URL shares one weight budget (Binance counts weight per IP,
    see ``weights.budget_for``) unless ``budget`` is given. Every method is cancellable:
    cancelled while it waits for weight, nothing is sent and the weight is given back; cancelled
    while the request is on the wire, its connection is dropped and the exchange may or may not
    have carried it out (the engine reconciles by client order id). The client stays usable.
    """

    def __init__(
        self,
        base_url: str,
        *,
        credentials: Credentials | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        budget: WeightBudget | None = None,
        recv_window_ms: int = 5000,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self.budget = budget or budget_for(
            credentials.api_key if credentials else None, self.base_url
        )
        self.recv_window_ms = recv_window_ms
        self.offset_ms = 0
        self._synced = False
        self._sync_lock = trio.Lock()
        # The lean keep-alive transport by default (an order's round trip is CPU-bound; see
        # transport.py); tests and users may plug in any httpx2 transport instead.
        self.link = Link("rest api")
        self._client = httpx2.AsyncClient(
            base_url=self.base_url, transport=transport or LeanTransport(), timeout=timeout
        )

    def __repr__(self) -> str:
        signed = "signed" if self._credentials else "unsigned"
        return f"BinanceRest({self.base_url!r}, {signed})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Cancelling it may leave sockets to the garbage collector."""
        await self._client.aclose()

    # ------------------------------------------------------------------ time

    def server_now_ms(self) -> int:
        """The exchange's clock as best known: local wall time plus the measured offset."""
        return _wall_ms() + self.offset_ms

    @property
    def synced(self) -> bool:
        """Whether the offset to the server's clock was measured at least once."""
        return self._synced

    async def sync_time(self) -> None:
        """Measure the offset to the server's clock (``GET /api/v3/time``, half the round trip
        assumed each way). Cancelling it keeps the previous offset."""
        before = _wall_ms()
        data = await self._send("GET", "/api/v3/time", [], signed=False)
        after = _wall_ms()
        server = codec.decode_server_time(data)
        self.offset_ms = server - (before + after) // 2
        self._synced = True
        logger.info(
            "binance clock offset %+d ms (round trip %d ms)", self.offset_ms, after - before
        )

    # ----------------------------------------------------------- the request

    async def _send(
        self, method: str, path: str, params: Params, *, signed: bool, weight: int | None = None
    ) -> object:
        """Reserve weight, sign, send, map errors, parse JSON. One retry after -1021."""
        cost = weight if weight is not None else ENDPOINT_WEIGHTS[(method, path)]
        if signed:
            if self._credentials is None:
                raise ValueError(f"{method} {path} needs an API key: pass credentials=")
            if not self._synced:
                async with self._sync_lock:
                    if not self._synced:
                        await self.sync_time()
        try:
            return await self._send_once(method, path, params, signed=signed, weight=cost)
        except TimestampOutsideWindow:
            if not signed:
                raise
            logger.warning("%s %s: timestamp outside recvWindow; resyncing the clock", method, path)
            await self.sync_time()
            return await self._send_once(method, path, params, signed=signed, weight=cost)

    async def _send_once(
        self, method: str, path: str, params: Params, *, signed: bool, weight: int
    ) -> object:
        await self.budget.acquire(weight)
        in_body = method in ("POST", "DELETE")
        headers: dict[str, str] = dict(_FORM) if in_body else {}
        if signed:
            assert self._credentials is not None
            req = sign_request(
                self._credentials.api_key,
                self._credentials.api_secret,
                query=() if in_body else params,
                body=params if in_body else (),
                timestamp_ms=self.server_now_ms(),
                recv_window_ms=self.recv_window_ms,
            )
            query, body = req.query, req.body
            headers.update(req.headers)
        else:
            query, body = encode_params(params), ""
        url = f"{path}?{query}" if query else path
        try:
            response = await self._client.request(
                method, url, content=body.encode() if body else None, headers=headers
            )
        except httpx2.RequestError as exc:  # connect, timeouts, dropped, undecodable
            logger.warning("%s %s: %s", method, path, type(exc).__name__)
            self.link.down(type(exc).__name__)
            raise NetworkError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status >= 500:
            self.link.down(f"HTTP {status}")
        else:
            self.link.answered()
        self.budget.observe(response.headers)
        logger.debug(
            "%s %s -> %d (weight used %s)", method, path, status, used_weight(response.headers)
        )
        if status >= 400:
            error = error_for(status, response.content, response.headers)
            if isinstance(error, RateLimited):
                self.budget.ban(error.retry_after)
                if isinstance(error, IpBanned):
                    logger.error("%s %s: IP banned for %.0f s", method, path, error.retry_after)
            raise error
        try:
            return json.loads(response.content)
        except (ValueError, RecursionError):
            prefix = response.content[:100].decode("utf-8", "replace")
            raise DecodeError(
                f"{method} {path}: HTTP {status} body is not JSON: {prefix!r}"
            ) from None

    # ------------------------------------------------------------ market data

    async def ticker_price(self, symbol: str) -> Decimal:
        """The last traded price of ``symbol``. Weight 2."""
        data = await self._send("GET", "/api/v3/ticker/price", [("symbol", symbol)], signed=False)
        return codec.decode_ticker_price(data)

    async def exchange_info(self, symbols: Sequence[str] | None = None) -> dict[str, SymbolInfo]:
        """Trading rules per symbol (all symbols when ``symbols`` is None). Weight 20."""
        params: Params = []
        if symbols:
            params.append(("symbols", json.dumps(list(symbols), separators=(",", ":"))))
        data = await self._send("GET", "/api/v3/exchangeInfo", params, signed=False)
        limit = codec.decode_weight_limit(data)
        if limit is not None:
            self.budget.adopt_exchange_limit(limit)
        return codec.decode_exchange_info(data)

    async def klines(
        self,
        symbol: str,
        interval: Interval,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[Kline]:
        """Kline rows as served, oldest first, the last possibly still open. Weight 2."""
        if interval.text not in KLINE_INTERVALS:
            raise ValueError(
                f"Binance has no {interval.text!r} klines; it serves "
                f"{', '.join(sorted(KLINE_INTERVALS))}"
            )
        params: Params = [("symbol", symbol), ("interval", interval.text)]
        if start_ms is not None:
            params.append(("startTime", start_ms))
        if end_ms is not None:
            params.append(("endTime", end_ms))
        params.append(("limit", limit))
        data = await self._send("GET", "/api/v3/klines", params, signed=False)
        return codec.decode_klines(data, symbol, interval)

    # ----------------------------------------------------------------- orders

    async def new_order(self, spec: OrderSpec) -> ExchangeOrder:
        """``POST /api/v3/order`` with ``newClientOrderId = spec.client_order_id`` and a FULL
        answer. Raises a BinanceError when refused (nothing placed); anything else, or being
        cancelled, leaves the outcome unknown."""
        params: Params = [
            ("symbol", spec.symbol),
            ("side", BINANCE_SIDE[spec.side]),
            ("type", BINANCE_TYPE[spec.type]),
        ]
        if spec.type is OrderType.LIMIT:
            if spec.price is None:
                raise ValueError(f"limit order {spec.client_order_id!r} has no price")
            params.append(("timeInForce", BINANCE_TIF[spec.time_in_force]))
            params.append(("quantity", _dec(spec.quantity)))
            params.append(("price", _dec(spec.price)))
        else:
            params.append(("quantity", _dec(spec.quantity)))
        params.append(("newClientOrderId", spec.client_order_id))
        params.append(("newOrderRespType", "FULL"))
        data = await self._send("POST", "/api/v3/order", params, signed=True)
        return codec.decode_order(data, spec)

    async def cancel_order(self, symbol: str, client_order_id: str) -> ExchangeOrder:
        """``DELETE /api/v3/order`` by our id. CancelRejected (-2011) when it is not open."""
        params: Params = [("symbol", symbol), ("origClientOrderId", client_order_id)]
        data = await self._send("DELETE", "/api/v3/order", params, signed=True)
        return codec.decode_order(data)

    async def get_order(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        """``GET /api/v3/order`` by our id; None when the exchange does not know it (-2013)."""
        params: Params = [("symbol", symbol), ("origClientOrderId", client_order_id)]
        try:
            data = await self._send("GET", "/api/v3/order", params, signed=True)
        except OrderNotFound:
            return None
        return codec.decode_order(data)

    async def open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]:
        """Open orders of one symbol (weight 6) or of all (weight 80)."""
        params: Params = [("symbol", symbol)] if symbol else []
        weight = None if symbol else OPEN_ORDERS_ALL_WEIGHT
        data = await self._send("GET", "/api/v3/openOrders", params, signed=True, weight=weight)
        return codec.decode_orders(data)

    # ---------------------------------------------------------------- account

    async def account(self) -> dict[str, AccountBalance]:
        """Balances per asset (``GET /api/v3/account``, weight 20)."""
        data = await self._send("GET", "/api/v3/account", [], signed=True)
        return codec.decode_account(data)

    async def all_orders(
        self,
        symbol: str,
        *,
        start_ms: int | None = None,
        order_id: int | None = None,
        limit: int = 1000,
    ) -> list[ExchangeOrder]:
        """Our orders on ``symbol``, open and closed (``GET /api/v3/allOrders``, weight 20),
        from ``order_id`` up or from ``start_ms``; oldest first."""
        params: Params = [("symbol", symbol)]
        if order_id is not None:
            params.append(("orderId", order_id))
        if start_ms is not None:
            params.append(("startTime", start_ms))
        params.append(("limit", limit))
        data = await self._send("GET", "/api/v3/allOrders", params, signed=True)
        return codec.decode_orders(data)

    async def my_trades(
        self,
        symbol: str,
        *,
        start_ms: int | None = None,
        from_id: int | None = None,
        order_id: str | None = None,
        limit: int = 1000,
    ) -> list[Trade]:
        """Our trades on ``symbol`` (``GET /api/v3/myTrades``, weight 20), oldest first; only
        one order's with ``order_id`` (the exchange's id)."""
        params: Params = [("symbol", symbol)]
        if order_id is not None:
            params.append(("orderId", order_id))
        if start_ms is not None:
            params.append(("startTime", start_ms))
        if from_id is not None:
            params.append(("fromId", from_id))
        params.append(("limit", limit))
        data = await self._send("GET", "/api/v3/myTrades", params, signed=True)
        return codec.decode_my_trades(data)
