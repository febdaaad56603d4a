"""Scriptable Binance-like WebSocket servers on 127.0.0.1 for the stream tests.

Real servers (websockets' Trio server, port 0), scripted by the test: what to answer, when to
drop a connection abruptly (TCP closed without a close frame), what to push. Each connection is
recorded with what it asked for, so a test can check what a client restored after a reconnect.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import trio
from websockets.exceptions import ConnectionClosed
from websockets.trio.server import Server, ServerConnection, serve

from trading.exchanges.binance.signing import ws_api_signature


async def eventually(predicate: Callable[[], bool], interval: float = 0.005) -> None:
    """Until ``predicate()`` holds, for state no event announces (callers bound the wait)."""
    while True:
        if predicate():
            return
        await trio.sleep(interval)


def kline(
    symbol: str = "BTCUSDT",
    interval: str = "1m",
    *,
    open_ms: int = 1_735_689_600_000,
    close: str = "100.5",
    closed: bool = False,
    event_ms: int = 1_735_689_601_000,
) -> dict[str, Any]:
    """A kline event body as Binance sends it."""
    return {
        "e": "kline",
        "E": event_ms,
        "s": symbol,
        "k": {
            "t": open_ms,
            "T": open_ms + 59_999,
            "s": symbol,
            "i": interval,
            "f": 1,
            "L": 2,
            "o": "100.0",
            "c": close,
            "h": "101.0",
            "l": "99.0",
            "v": "12.5",
            "n": 2,
            "x": closed,
            "q": "1250.0",
            "V": "6",
            "Q": "600",
            "B": "0",
        },
    }


def wrapped(data: dict[str, Any]) -> str:
    """``data`` as a combined stream sends it."""
    k = data.get("k", {})
    name = f"{str(data.get('s', '')).lower()}@kline_{k.get('i', '')}"
    return json.dumps({"stream": name, "data": data})


@attrs.define
class Client:
    """One accepted connection and what it asked for."""

    ws: ServerConnection
    path: str
    streams: list[str]
    received: list[dict[str, Any]] = attrs.field(factory=list)
    received_at: list[float] = attrs.field(factory=list)
    closed: trio.Event = attrs.field(factory=trio.Event)

    async def send(self, text: str) -> None:
        await self.ws.send(text)

    async def drop(self) -> None:
        """Close the TCP connection abruptly: no close frame, as a network failure does."""
        await trio.aclose_forcefully(self.ws.stream)


@attrs.define
class ScriptedServer:
    """Accepts connections, records them, and answers requests through ``answer``.

    ``answer(client, request)`` returns the reply text to send, or None to stay silent.
    """

    answer: Callable[[Client, dict[str, Any]], str | None]
    clients: list[Client] = attrs.field(factory=list)
    server: Server | None = None
    _changed: trio.Event = attrs.field(factory=trio.Event)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.listeners[0].socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Until ``predicate()`` holds (checked whenever a connection or a message arrives)."""
        while not predicate():
            await self._changed.wait()

    async def client(self, n: int) -> Client:
        """The ``n``-th connection (0-based), once it is open."""
        await self.wait_for(lambda: len(self.clients) > n)
        return self.clients[n]

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        path = ws.request.path
        query = parse_qs(urlsplit(path).query)
        streams = query["streams"][0].split("/") if "streams" in query else []
        client = Client(ws, path, streams)
        self.clients.append(client)
        self._notify()
        try:
            async for message in ws:
                request = json.loads(message)
                client.received.append(request)
                client.received_at.append(trio.current_time())
                if request.get("method") == "SUBSCRIBE":
                    client.streams.extend(request.get("params", []))
                elif request.get("method") == "UNSUBSCRIBE":
                    gone = set(request.get("params", []))
                    client.streams[:] = [name for name in client.streams if name not in gone]
                reply = self.answer(client, request)
                self._notify()
                if reply is not None:
                    await ws.send(reply)
        except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            client.closed.set()
            self._notify()


def silent(client: Client, request: dict[str, Any]) -> str | None:
    return None


@asynccontextmanager
async def running(
    answer: Callable[[Client, dict[str, Any]], str | None] = silent,
    *,
    handler: Callable[[ServerConnection], Awaitable[None]] | None = None,
    **options: Any,
) -> AsyncIterator[ScriptedServer]:
    """A ScriptedServer on 127.0.0.1, port 0, for the duration of the block (``handler``
    replaces the scripted one entirely)."""
    scripted = ScriptedServer(answer)
    async with trio.open_nursery() as nursery:
        scripted.server = await nursery.start(
            lambda task_status: serve(
                handler or scripted.handler,
                0,
                host="127.0.0.1",
                task_status=task_status,
                **options,
            )
        )
        try:
            yield scripted
        finally:
            nursery.cancel_scope.cancel()


def subscribe_ok(client: Client, request: dict[str, Any]) -> str | None:
    """Binance's answer to SUBSCRIBE: the id echoed with its type."""
    return json.dumps({"result": None, "id": request.get("id")})


# --- the WebSocket API -------------------------------------------------------------------------

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}
]


@attrs.define
class WsApi:
    """The user-data side of ``/ws-api/v3``: checks the signature and the timestamp as Binance
    does, answers, and numbers subscriptions."""

    secret: str = SECRET
    api_key: str = KEY
    server_now_ms: Callable[[], int] = lambda: 0
    recv_window_ms: int = 5000
    next_subscription: int = 0
    forced: list[tuple[int, dict[str, Any]]] = attrs.field(factory=list)  # (status, error) queue

    def answer(self, client: Client, request: dict[str, Any]) -> str | None:
        rid = request.get("id")

        def error(status: int, code: int, msg: str) -> str:
            body = {"id": rid, "status": status, "error": {"code": code, "msg": msg}}
            return json.dumps({**body, "rateLimits": RATE_LIMITS})

        if request.get("method") != "userDataStream.subscribe.signature":
            return error(400, -1100, "Illegal characters found in parameter 'method'.")
        if self.forced:
            status, err = self.forced.pop(0)
            return error(status, err["code"], err["msg"])
        params = dict(request.get("params", {}))
        signature = params.pop("signature", "")
        if params.get("apiKey") != self.api_key:
            return error(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if ws_api_signature(self.secret, params) != signature:
            return error(400, -1022, "Signature for this request is not valid.")
        timestamp = params.get("timestamp")
        now = self.server_now_ms()
        if not isinstance(timestamp, int) or not (
            timestamp < now + 1000 and now - timestamp <= self.recv_window_ms
        ):
            return error(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        sub = self.next_subscription
        self.next_subscription += 1
        client.streams.append(f"subscription:{sub}")
        return json.dumps(
            {"id": rid, "status": 200, "result": {"subscriptionId": sub}, "rateLimits": RATE_LIMITS}
        )


def user_event(subscription: int, event: dict[str, Any]) -> str:
    return json.dumps({"subscriptionId": subscription, "event": event})


def execution_report(client_order_id: str, trade_id: int, **overrides: Any) -> dict[str, Any]:
    """A TRADE executionReport for 0.1 BTC at 100, fee charged in BTC."""
    event: dict[str, Any] = {
        "e": "executionReport",
        "E": 1_735_689_600_500,
        "s": "BTCUSDT",
        "c": client_order_id,
        "S": "BUY",
        "o": "LIMIT",
        "f": "GTC",
        "q": "1.00000000",
        "p": "100.00000000",
        "C": "",
        "x": "TRADE",
        "X": "PARTIALLY_FILLED",
        "r": "NONE",
        "i": 42,
        "l": "0.10000000",
        "z": "0.10000000",
        "L": "100.00000000",
        "n": "0.00010000",
        "N": "BTC",
        "T": 1_735_689_600_400,
        "t": trade_id,
        "Z": "10.00000000",
    }
    event.update(overrides)
    return event
