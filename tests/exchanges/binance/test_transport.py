"""The lean keep-alive transport against a scripted HTTP/1.1 server on 127.0.0.1."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import h11
import httpx2
import pytest
import trio

from trading.exchanges.binance.transport import LeanTransport

pytestmark = pytest.mark.timeout(30)

#: What the server does with its n-th request overall: "ok", "close" (answer with Connection:
#: close), "drop" (close without answering), "hang" (never answer), "chunked", "ok+bye" (answer,
#: then close the idle connection right away).
Script = Callable[[int], str]


class Server:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests = 0
        self.connections = 0
        self.port = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.Request):
                    continue
                if isinstance(event, h11.EndOfMessage):
                    self.requests += 1
                    mode = self.script(self.requests)
                    if mode == "drop":
                        return
                    if mode == "hang":
                        await trio.sleep_forever()
                    body = b'{"n": %d}' % self.requests
                    headers = [(b"content-type", b"application/json")]
                    if mode == "chunked":
                        headers.append((b"transfer-encoding", b"chunked"))
                        out = conn.send(h11.Response(status_code=200, headers=headers)) or b""
                        out += conn.send(h11.Data(data=body[:3])) or b""
                        out += conn.send(h11.Data(data=body[3:])) or b""
                    else:
                        if mode == "close":
                            headers.append((b"connection", b"close"))
                        headers.append((b"content-length", str(len(body)).encode()))
                        out = conn.send(h11.Response(status_code=200, headers=headers)) or b""
                        out += conn.send(h11.Data(data=body)) or b""
                    out += conn.send(h11.EndOfMessage()) or b""
                    await stream.send_all(out)
                    if mode in ("close", "ok+bye"):
                        return
                    conn.start_next_cycle()
        except (trio.BrokenResourceError, h11.RemoteProtocolError):
            return
        finally:
            await stream.aclose()


@asynccontextmanager
async def serving(script: Script) -> AsyncIterator[Server]:
    server = Server(script)
    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1")
        listeners = await nursery.start(serve)
        server.port = listeners[0].socket.getsockname()[1]
        yield server
        nursery.cancel_scope.cancel()


async def get(transport: LeanTransport, server: Server, patience: float = 5.0) -> httpx2.Response:
    """One request through ``transport`` (its pool outlives the client: clients share it)."""
    client = httpx2.AsyncClient(transport=transport, timeout=patience)
    return await client.post(f"http://127.0.0.1:{server.port}/x?a=1", content=b"b=2")


async def test_requests_reuse_one_keep_alive_connection() -> None:
    transport = LeanTransport()
    client = httpx2.AsyncClient(transport=transport)
    async with serving(lambda n: "ok") as server:
        for i in range(1, 6):
            response = await client.post(f"http://127.0.0.1:{server.port}/o", content=b"q=1")
            assert response.json() == {"n": i}
        assert (server.connections, transport.opened) == (1, 1)
    await client.aclose()


async def test_an_idle_connection_the_server_closed_is_not_written_to() -> None:
    transport = LeanTransport()
    async with serving(lambda n: "ok+bye") as server:
        for i in range(1, 4):
            await trio.sleep(0.05)  # the server's close reaches us while the connection idles
            assert (await get(transport, server)).json() == {"n": i}
        assert server.requests == 3 and transport.opened == 3  # none lost, none sent twice


async def test_connection_close_and_chunked_answers() -> None:
    transport = LeanTransport()
    async with serving(lambda n: "close" if n == 1 else "chunked") as server:
        assert (await get(transport, server)).json() == {"n": 1}
        assert (await get(transport, server)).json() == {"n": 2}  # chunks reassembled
        assert transport.opened == 2  # the closed one was not pooled


async def test_a_dropped_answer_is_raised_not_retried() -> None:
    transport = LeanTransport()
    async with serving(lambda n: "drop" if n == 1 else "ok") as server:
        with pytest.raises(httpx2.RemoteProtocolError, match="without sending a response"):
            await get(transport, server)
        assert server.requests == 1  # the caller decides: never re-sent here
        assert (await get(transport, server)).json() == {"n": 2}


async def test_a_read_timeout_raises_and_the_connection_is_not_reused() -> None:
    transport = LeanTransport()
    async with serving(lambda n: "hang" if n == 1 else "ok") as server:
        with pytest.raises(httpx2.ReadTimeout):
            await get(transport, server, patience=0.2)
        assert (await get(transport, server)).json() == {"n": 2}
        assert transport.opened == 2


async def test_cancelling_a_request_leaves_the_pool_usable() -> None:
    transport = LeanTransport()
    async with serving(lambda n: "hang" if n == 1 else "ok") as server:
        with trio.move_on_after(0.2):
            await get(transport, server)
        assert (await get(transport, server)).json() == {"n": 2}
        assert transport.opened == 2


async def test_a_refused_connection_is_a_connect_error() -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()
    async with httpx2.AsyncClient(transport=LeanTransport()) as client:
        with pytest.raises(httpx2.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")
