"""One listener for everything: HTTP/1.1 through h11, WebSocket upgrades through websockets.

The rules this module keeps:

* One port serves REST and WebSockets, as a client pointed at one base URL expects. Each TCP
  connection is read by h11 (keep-alive, pipelined requests answered one at a time in order,
  ``Content-Length`` bodies, bodies capped at :data:`MAX_BODY`). A malformed request gets a 400
  and the connection is closed; nothing a client sends can end the server.
* A request carrying ``Upgrade: websocket`` leaves h11: its bytes are *replayed* to websockets'
  own Trio stack (:class:`~websockets.trio.server.ServerConnection` over a :class:`ReplayStream`
  that first returns the request, then whatever followed it, then the socket). Replaying keeps
  us on websockets' public, tested handshake (key check, version, extensions, 426/400 answers)
  instead of driving its sans-IO protocol by hand; the request is rebuilt from h11's
  ``raw_items()`` (original header casing), which is all an HTTP parser needs.
* The HTTP handler returns a :class:`HttpResponse`, or ``None`` to drop the connection without
  answering (the fault switches use that). Every WebSocket connection runs in its own cancel
  scope so the simulator can drop them all abruptly (no close frame), as a network would.
* Keepalive: a ping every ``ping_interval`` s; no pong within ``ping_timeout`` s closes it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import h11
import trio
from websockets.protocol import OPEN
from websockets.server import ServerProtocol
from websockets.trio.server import Server as _WsServer
from websockets.trio.server import ServerConnection

__all__ = [
    "MAX_BODY",
    "HttpHandler",
    "HttpRequest",
    "HttpResponse",
    "HttpServer",
    "ReplayStream",
    "WsHandler",
]

log = logging.getLogger(__name__)

#: Largest request body accepted (a Binance request is a few hundred bytes); larger gets 413.
MAX_BODY = 1 << 20
_RECEIVE = 65536


@attrs.frozen(slots=True)
class HttpRequest:
    """One request as it came: the raw query string and body are kept for signature checks."""

    method: str
    path: str
    raw_query: str
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes
    client: str  # peer address, for per-IP limits


@attrs.frozen(slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json;charset=UTF-8"


HttpHandler = Callable[[HttpRequest], Awaitable[HttpResponse | None]]
#: Called with an open connection, the path, the raw query and the peer's address; returns when
#: the socket is done.
WsHandler = Callable[[ServerConnection, str, str, str], Awaitable[None]]


class ReplayStream(trio.abc.Stream):
    """A stream that returns ``prefix`` before reading from ``inner``; writes go to ``inner``."""

    def __init__(self, inner: trio.abc.Stream, prefix: bytes) -> None:
        self.inner = inner
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            n = len(self._prefix) if max_bytes is None else max_bytes
            data, self._prefix = self._prefix[:n], self._prefix[n:]
            await trio.lowlevel.checkpoint()
            return bytes(data)
        return bytes(await self.inner.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        if isinstance(self.inner, trio.abc.HalfCloseableStream):
            await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


def _rebuild(request: h11.Request) -> bytes:
    lines = [request.method + b" " + request.target + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in request.headers.raw_items()]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class _Dropped(Exception):
    """The handler chose to drop the connection without an answer."""


class HttpServer:
    """The listener. ``serve`` is started with ``nursery.start`` and hands back the bound port.

    ``is_ws_path(path)`` tells which paths take WebSocket upgrades; anything else asking to
    upgrade gets a 404 JSON answer through the HTTP handler.
    """

    def __init__(
        self,
        http_handler: HttpHandler,
        ws_handler: WsHandler,
        is_ws_path: Callable[[str], bool],
        *,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 60.0,
        idle_timeout: float = 300.0,
    ) -> None:
        self._http = http_handler
        self._ws = ws_handler
        self._is_ws_path = is_ws_path
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.idle_timeout = idle_timeout
        self._ws_scopes: dict[ServerConnection, tuple[trio.CancelScope, trio.abc.Stream]] = {}
        self._ws_server = _WsServer([], self._unused_handler)
        self.port = 0

    @staticmethod
    async def _unused_handler(stream: trio.abc.Stream) -> None:  # pragma: no cover
        raise AssertionError("connections are accepted by HttpServer, not websockets' Server")

    @property
    def websockets(self) -> list[ServerConnection]:
        """Open WebSocket connections (a copy)."""
        return [c for c in self._ws_scopes if c.protocol.state is OPEN]

    async def serve(
        self, host: str, port: int, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen until cancelled; ``task_status.started(port)`` once bound.

        Cancelling it closes the listener and every connection (WebSockets without a close frame:
        callers that want a polite goodbye call :meth:`close_websockets` first).
        """
        listeners = await trio.open_tcp_listeners(port, host=host)
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._connection, listeners)
            task_status.started(self.port)

    def drop_websockets(self) -> int:
        """Drop every WebSocket connection abruptly (no close frame); returns how many."""
        scopes = list(self._ws_scopes.values())
        for scope, _ in scopes:
            scope.cancel(reason="simulator: drop stream connections")
        return len(scopes)

    def drop_websocket(self, conn: ServerConnection) -> None:
        """Drop one WebSocket connection abruptly (no close frame)."""
        entry = self._ws_scopes.get(conn)
        if entry is not None:
            entry[0].cancel(reason="simulator: drop fault")

    async def close_websockets(self, code: int = 1001, reason: str = "server shutdown") -> None:
        """Close every WebSocket politely (close frame 1001), each under a two-second deadline.

        Cancelling it leaves the rest open (those already closing finish on their own)."""
        async with trio.open_nursery() as nursery:
            for conn in list(self._ws_scopes):
                nursery.start_soon(self._close_one, conn, code, reason)

    @staticmethod
    async def _close_one(conn: ServerConnection, code: int, reason: str) -> None:
        with trio.move_on_after(2):
            await conn.aclose(code, reason)

    async def _connection(self, stream: trio.SocketStream) -> None:
        try:
            client = str(stream.socket.getpeername()[0])
        except OSError:
            client = "?"
        try:
            await self._http_loop(stream, client)
        except (trio.BrokenResourceError, trio.ClosedResourceError, _Dropped):
            pass
        except Exception:
            log.exception("connection from %s failed", client)
        finally:
            await trio.aclose_forcefully(stream)

    async def _receive(self, stream: trio.abc.Stream, conn: h11.Connection) -> None:
        with trio.fail_after(self.idle_timeout):
            data = await stream.receive_some(_RECEIVE)
        conn.receive_data(bytes(data))

    async def _next_event(self, stream: trio.abc.Stream, conn: h11.Connection) -> Any:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    await self._receive(stream, conn)
                except trio.TooSlowError:
                    raise _Dropped from None
                continue
            return event

    async def _http_loop(self, stream: trio.SocketStream, client: str) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        while True:
            try:
                event = await self._next_event(stream, conn)
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
                assert isinstance(event, h11.Request)
                request = event
                body = bytearray()
                while True:
                    event = await self._next_event(stream, conn)
                    if isinstance(event, h11.Data):
                        body += event.data
                        if len(body) > MAX_BODY:
                            await self._send(stream, conn, _error(413, -1000, "Body too large."))
                            return
                    elif isinstance(event, h11.EndOfMessage):
                        break
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._send(
                        stream,
                        conn,
                        _error(exc.error_status_hint, -1000, "Malformed HTTP request."),
                    )
                return
            target = request.target.decode("latin-1")
            path, _, raw_query = target.partition("?")
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
            if headers.get("upgrade", "").lower() == "websocket" and self._is_ws_path(path):
                trailing, _closed = conn.trailing_data
                await self._upgrade(stream, _rebuild(request) + trailing, path, raw_query, client)
                return
            answer = await self._http(
                HttpRequest(
                    request.method.decode("latin-1"), path, raw_query, headers, bytes(body), client
                )
            )
            if answer is None:
                raise _Dropped
            if request.method == b"HEAD":  # the headers a GET would get, no body
                answer = attrs.evolve(
                    answer,
                    body=b"",
                    headers=(("Content-Length", str(len(answer.body))), *answer.headers),
                )
            await self._send(stream, conn, answer)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    @staticmethod
    async def _send(stream: trio.abc.Stream, conn: h11.Connection, answer: HttpResponse) -> None:
        headers = [("Content-Type", answer.content_type), *answer.headers]
        if not any(name == "Content-Length" for name, _ in answer.headers):
            headers.insert(1, ("Content-Length", str(len(answer.body))))
        data = conn.send(h11.Response(status_code=answer.status, headers=headers))
        data += conn.send(h11.Data(data=answer.body)) if answer.body else b""
        data += conn.send(h11.EndOfMessage()) or b""
        await stream.send_all(data or b"")

    async def _upgrade(
        self, stream: trio.abc.Stream, replay: bytes, path: str, query: str, client: str
    ) -> None:
        ws_stream = ReplayStream(stream, replay)
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                protocol = ServerProtocol(max_size=2**20)
                conn = ServerConnection(
                    nursery,
                    ws_stream,
                    protocol,
                    self._ws_server,
                    ping_interval=self.ping_interval,
                    ping_timeout=self.ping_timeout,
                    close_timeout=5,
                )
                with trio.move_on_after(10):
                    await conn.handshake(server_header=None)
                if conn.protocol.state is not OPEN:
                    await conn.close_stream()
                    return
                self._ws_scopes[conn] = (scope, stream)
                try:
                    conn.start_keepalive()
                    await self._ws(conn, path, query, client)
                    with trio.move_on_after(5):
                        await conn.aclose()
                except Exception:
                    log.exception("WebSocket handler for %s failed", path)
                finally:
                    self._ws_scopes.pop(conn, None)
                nursery.cancel_scope.cancel()


def _error(status: int, code: int, msg: str) -> HttpResponse:
    import json

    return HttpResponse(status, json.dumps({"code": code, "msg": msg}).encode())
