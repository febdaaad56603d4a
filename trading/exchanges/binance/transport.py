"""A lean HTTP/1.1 transport for ``httpx2.AsyncClient`` on Trio: keep-alive connections, h11.

Why: an order's round trip is bound by the client's CPU, and httpx2's default transport
(httpcore2's pool) costs about as much again as the rest of the request (benchmarks/README.md,
``order_roundtrip.py``). This transport plugs in behind the client's transport seam — the
client, its API and its tests are unchanged — and does the least a Binance client needs.

The rules this module keeps:

* One request at a time per connection; idle connections are kept per (scheme, host, port) and
  reused newest first. An idle connection the server has closed (its socket reads as ready
  while idle) is dropped before reuse, never written to.
* Head and body leave in one ``send_all``.
* A request is never retried here: a failure after the request may have left (a reset, a close
  before the answer) is raised as httpx2's own error, and the caller decides (the engine
  reconciles an order by its client id; it never re-sends a submit).
* A connection that failed, was cancelled mid-request, or was asked to close is closed, never
  pooled again. Cancelling a request is safe for the pool.
* Timeouts come from the request (``extensions["timeout"]``, as httpx2 sets them) and raise
  httpx2's ``ConnectTimeout``/``WriteTimeout``/``ReadTimeout``.
"""

from __future__ import annotations

import select
import ssl
from collections.abc import Mapping
from types import TracebackType

import h11
import httpx2
import trio

__all__ = ["LeanTransport"]

_READ_CHUNK = 65536
_MAX_IDLE = 8  # per origin


class _Conn:
    __slots__ = ("h11", "stream")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

    def closed_by_peer(self) -> bool:
        """An idle keep-alive connection is readable only if the server closed it (or sent
        something unasked): either way it must not carry a request."""
        sock = getattr(self.stream, "socket", None)
        if sock is None:
            inner = getattr(self.stream, "transport_stream", None)
            sock = getattr(inner, "socket", None)
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)


def _timeouts(request: httpx2.Request) -> Mapping[str, float | None]:
    timeouts = request.extensions.get("timeout")
    return timeouts if isinstance(timeouts, Mapping) else {}


def _deadline(seconds: float | None) -> float:
    return trio.current_time() + seconds if seconds is not None else float("inf")


class LeanTransport(httpx2.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 over Trio (TLS for ``https``), for ``httpx2.AsyncClient``."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Conn]] = {}
        self.opened = 0  # connections opened (for tests and diagnostics)

    async def __aenter__(self) -> LeanTransport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                await trio.aclose_forcefully(conn.stream)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx2.UnsupportedProtocol(f"unsupported scheme {scheme!r}")
        port = url.port or (443 if scheme == "https" else 80)
        origin = (scheme, url.host, port)
        timeouts = _timeouts(request)
        conn = self._checkout(origin)
        if conn is None:
            conn = await self._connect(origin, timeouts.get("connect"))
        try:
            response = await self._exchange(conn, request, timeouts)
        except BaseException:
            await trio.aclose_forcefully(conn.stream)
            raise
        if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
            conn.h11.start_next_cycle()
            pool = self._idle.setdefault(origin, [])
            if len(pool) < _MAX_IDLE:
                pool.append(conn)
            else:
                await trio.aclose_forcefully(conn.stream)
        else:  # "Connection: close", or a protocol switch: not reusable
            await trio.aclose_forcefully(conn.stream)
        return response

    # -- internals ---------------------------------------------------------------------------------

    def _checkout(self, origin: tuple[str, str, int]) -> _Conn | None:
        pool = self._idle.get(origin)
        while pool:
            conn = pool.pop()
            if not conn.closed_by_peer():
                return conn
            self._discard(conn)
        return None

    @staticmethod
    def _discard(conn: _Conn) -> None:
        """Close without awaiting (checking out is synchronous): the peer is gone anyway."""
        sock = getattr(conn.stream, "socket", None) or getattr(
            getattr(conn.stream, "transport_stream", None), "socket", None
        )
        if sock is not None:
            sock.close()

    async def _connect(self, origin: tuple[str, str, int], within: float | None) -> _Conn:
        scheme, host, port = origin
        try:
            with trio.fail_after(within) if within is not None else trio.CancelScope():
                stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
                if scheme == "https":
                    context = self._ssl or ssl.create_default_context()
                    tls = trio.SSLStream(stream, context, server_hostname=host)
                    await tls.do_handshake()
                    stream = tls
        except trio.TooSlowError:
            raise httpx2.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
            raise httpx2.ConnectError(f"cannot connect to {host}:{port}: {exc}") from None
        self.opened += 1
        return _Conn(stream)

    async def _exchange(
        self, conn: _Conn, request: httpx2.Request, timeouts: Mapping[str, float | None]
    ) -> httpx2.Response:
        body = await request.aread()
        headers = list(request.headers.raw)
        if not any(k.lower() == b"host" for k, _ in headers):
            headers.insert(0, (b"host", request.url.netloc))
        framed = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in headers)
        if body and not framed:
            headers.append((b"content-length", str(len(body)).encode()))
        out = conn.h11.send(
            h11.Request(method=request.method, target=request.url.raw_path, headers=headers)
        )
        assert out is not None
        if body:
            out += conn.h11.send(h11.Data(data=body)) or b""
        out += conn.h11.send(h11.EndOfMessage()) or b""
        try:
            with trio.fail_after(timeouts.get("write") or float("inf")):
                await conn.stream.send_all(out)
        except trio.TooSlowError:
            raise httpx2.WriteTimeout("sending the request timed out") from None
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise httpx2.WriteError(f"sending the request failed: {exc}") from None
        return await self._receive(conn, request, timeouts.get("read"))

    async def _receive(
        self, conn: _Conn, request: httpx2.Request, within: float | None
    ) -> httpx2.Response:
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        try:
            with trio.move_on_at(_deadline(within)) as waited:
                while True:
                    try:
                        event = conn.h11.next_event()
                    except h11.RemoteProtocolError as exc:
                        raise httpx2.RemoteProtocolError(str(exc)) from None
                    if event is h11.NEED_DATA:
                        data = await conn.stream.receive_some(_READ_CHUNK)
                        if not data and status == 0:
                            raise httpx2.RemoteProtocolError(
                                "Server disconnected without sending a response."
                            )
                        conn.h11.receive_data(bytes(data))
                    elif isinstance(event, h11.Response):
                        status, headers = event.status_code, list(event.headers)
                    elif isinstance(event, h11.Data):
                        chunks.append(bytes(event.data))
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    elif isinstance(event, h11.ConnectionClosed):
                        raise httpx2.RemoteProtocolError("the connection closed mid-response")
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise httpx2.ReadError(f"reading the response failed: {exc}") from None
        if waited.cancelled_caught:
            raise httpx2.ReadTimeout("waiting for the response timed out")
        return httpx2.Response(status, headers=headers, content=b"".join(chunks), request=request)
