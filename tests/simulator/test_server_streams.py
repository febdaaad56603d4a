"""Market streams and the WebSocket API over real sockets, driven by the stepped market clock."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
import trio
import trio.lowlevel
from websockets.exceptions import ConnectionClosed
from websockets.trio.client import ClientConnection, connect

from tests.simulator.server_helpers import (
    KEY,
    SECRET,
    START_MS,
    WallClock,
    http,
    make_config,
    signed_query,
    sim,
    wall,
)
from trading.exchanges.binance.signing import ws_api_signature
from trading.simulator.intervals import INTERVAL_MS
from trading.simulator.sim import ExchangeSim

INTERVALS = list(INTERVAL_MS)

__all__ = ["http", "sim", "wall"]


async def _recv(ws: ClientConnection) -> Any:
    with trio.fail_after(5):
        return json.loads(await ws.recv())


async def _drain(ws: ClientConnection, quiet: float = 0.1) -> list[Any]:
    """Every frame that arrives until the connection is quiet for ``quiet`` seconds."""
    frames = []
    while True:
        with trio.move_on_after(quiet) as scope:
            frames.append(json.loads(await ws.recv()))
        if scope.cancelled_caught:
            return frames


async def test_raw_stream_one_closed_kline_per_bar(sim: ExchangeSim) -> None:
    async with connect(sim.ws_url + "/ws/btcusdt@kline_1m") as ws:
        await trio.sleep(0.05)  # the server registers the connection
        for _ in range(3):
            await sim.advance(20)  # 20 s steps: three per bar
        await sim.advance(150)  # two bars close within one step, then half a bar
        frames = await _drain(ws)
    assert all(f["e"] == "kline" and f["s"] == "BTCUSDT" for f in frames)
    closed = [f["k"] for f in frames if f["k"]["x"]]
    assert [k["t"] for k in closed] == [START_MS, START_MS + 60_000, START_MS + 120_000]
    assert all(k["T"] == k["t"] + 59_999 for k in closed)
    flags = [f["k"]["x"] for f in frames]
    assert flags == [False, False, True, False, True, True, False]
    # An update never contradicts the close that follows it.
    rows = await _klines(sim, START_MS, 3)
    assert [[k["o"], k["h"], k["l"], k["c"]] for k in closed] == [r[1:5] for r in rows]


async def _klines(sim: ExchangeSim, start: int, limit: int) -> Any:
    async with httpx2.AsyncClient(base_url=sim.base_url) as client:
        r = await client.get(
            f"/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime={start}&limit={limit}"
        )
        return r.json()


async def test_combined_stream_and_live_subscribe_with_a_string_id(sim: ExchangeSim) -> None:
    async with connect(sim.ws_url + "/stream?streams=btcusdt@kline_1m") as ws:
        await ws.send(
            json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@kline_5m"], "id": "6b9f-uuid"})
        )
        assert await _recv(ws) == {"result": None, "id": "6b9f-uuid"}
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 7}))
        assert await _recv(ws) == {"result": ["btcusdt@kline_1m", "ethusdt@kline_5m"], "id": 7}
        await sim.advance(300)
        frames = await _drain(ws)
        assert {f["stream"] for f in frames} == {"btcusdt@kline_1m", "ethusdt@kline_5m"}
        eth = [f["data"]["k"] for f in frames if f["stream"] == "ethusdt@kline_5m"]
        assert [k["x"] for k in eth] == [True, False] and eth[0]["i"] == "5m"
        btc = [f["data"]["k"]["x"] for f in frames if f["stream"] == "btcusdt@kline_1m"]
        assert btc == [True] * 5 + [False]
        await ws.send(
            json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": None})
        )
        assert await _recv(ws) == {"result": None, "id": None}
        await sim.advance(60)
        assert {f["stream"] for f in await _drain(ws)} == {"ethusdt@kline_5m"}


async def test_bad_requests_on_a_stream_are_answered_and_the_stream_lives(sim: ExchangeSim) -> None:
    async with connect(sim.ws_url + "/ws/nonsense") as ws:
        await ws.send("not json {")
        assert (await _recv(ws))["error"]["code"] == 3
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@kline_7m"], "id": 1}))
        reply = await _recv(ws)
        assert reply["id"] == 1 and "kline_7m" in reply["error"]["msg"]
        await ws.send(json.dumps({"method": "FLY", "id": [1]}))
        assert (await _recv(ws))["id"] == [1]
        await ws.send(
            json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker"], "id": 2})
        )
        assert await _recv(ws) == {"result": None, "id": 2}
        await sim.advance(1)
        ticker = await _recv(ws)
        assert ticker["s"] == "BTCUSDT" and float(ticker["b"]) < float(ticker["a"])


async def test_malformed_market_frame_is_inserted_not_substituted(sim: ExchangeSim) -> None:
    async with connect(sim.ws_url + "/ws/btcusdt@kline_1m") as ws:
        await trio.sleep(0.05)
        sim.faults.malformed(stream="market")
        await sim.advance(60)
        with trio.fail_after(5):
            with pytest.raises(ValueError):
                json.loads(await ws.recv())
        assert [f["k"]["x"] for f in await _drain(ws)] == [True, False]


async def test_shutdown_says_server_shutdown_then_closes(
    nursery: trio.Nursery, wall: WallClock
) -> None:
    sim = await nursery.start(ExchangeSim(make_config(wall)).serve)
    async with connect(sim.ws_url + "/stream?streams=btcusdt@kline_1m") as ws:
        await trio.sleep(0.05)
        await sim.aclose()
        frame = await _recv(ws)
        assert frame["e"] == "serverShutdown"
        with trio.fail_after(5), pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1001


async def test_drop_stream_connections_is_abrupt(sim: ExchangeSim) -> None:
    async with connect(sim.ws_url + "/ws/btcusdt@kline_1m") as ws:
        await trio.sleep(0.05)
        assert await sim.drop_stream_connections() == 1
        with trio.fail_after(5), pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code is None or ws.close_code == 1006  # no close frame
    async with connect(sim.ws_url + "/ws/btcusdt@kline_1m") as ws:  # reconnecting works
        await trio.sleep(0.05)
        await sim.advance(1)
        assert (await _recv(ws))["e"] == "kline"


async def test_keepalive_drops_a_client_that_never_pongs(
    nursery: trio.Nursery, wall: WallClock
) -> None:
    config = make_config(wall, ping_interval=0.05, ping_timeout=0.1)
    sim = await nursery.start(ExchangeSim(config).serve)
    stream = await trio.open_tcp_stream("127.0.0.1", sim.server.port)
    await stream.send_all(
        b"GET /ws/btcusdt@kline_1m HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    data = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some():  # a raw client: reads, never answers pings
            data += chunk
    assert data.startswith(b"HTTP/1.1 101")
    assert b"\x89" in data  # at least one ping frame came before the server gave up
    await stream.aclose()


def _subscribe_request(wall: WallClock, request_id: Any = 1, secret: str = SECRET) -> str:
    params: dict[str, Any] = {"apiKey": KEY, "timestamp": wall.ms()}
    params["signature"] = ws_api_signature(secret, params)
    return json.dumps(
        {"id": request_id, "method": "userDataStream.subscribe.signature", "params": params}
    )


async def test_ws_api_user_stream_events_after_an_order(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock
) -> None:
    async with connect(sim.ws_url + "/ws-api/v3") as ws:
        await ws.send(_subscribe_request(wall, request_id="a-uuid"))
        reply = await _recv(ws)
        assert reply["id"] == "a-uuid" and reply["status"] == 200
        assert reply["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
        sub = reply["result"]["subscriptionId"]
        p = "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.01&price=59400.00"
        p += "&newClientOrderId=u1"
        r = await http.post("/api/v3/order?" + signed_query(p, wall), headers={"X-MBX-APIKEY": KEY})
        assert r.json()["status"] == "NEW"
        events = [await _recv(ws) for _ in range(2)]
        assert all(e["subscriptionId"] == sub for e in events)
        kinds = [e["event"]["e"] for e in events]
        assert kinds == ["executionReport", "outboundAccountPosition"]
        assert events[0]["event"]["x"] == "NEW" and events[0]["event"]["c"] == "u1"
        await sim.advance(600)  # the path rises through the price: the resting sell fills
        fills = [e["event"] for e in await _drain(ws) if e["event"]["e"] == "executionReport"]
        assert fills and fills[-1]["X"] == "FILLED" and fills[-1]["i"] == r.json()["orderId"]
        await ws.send(json.dumps({"id": 9, "method": "userDataStream.unsubscribe"}))
        assert (await _recv(ws))["result"] == {}


async def test_ws_api_errors(sim: ExchangeSim, wall: WallClock) -> None:
    async with connect(sim.ws_url + "/ws-api/v3") as ws:
        await ws.send("{nope")
        reply = await _recv(ws)
        assert reply["id"] is None and reply["status"] == 400 and "rateLimits" in reply
        await ws.send(_subscribe_request(wall, secret="wrong"))
        assert (await _recv(ws))["error"]["code"] == -1022
        wall.t -= 10
        stale = _subscribe_request(wall, 2)
        wall.t += 10
        await ws.send(stale)
        assert (await _recv(ws))["error"]["code"] == -1021
        await ws.send(
            json.dumps(
                {
                    "id": 3,
                    "method": "userDataStream.subscribe.signature",
                    "params": {"apiKey": "x", "timestamp": 1, "signature": "ab"},
                }
            )
        )
        assert (await _recv(ws))["error"]["code"] == -2015
        await ws.send(json.dumps({"id": 4, "method": "time"}))
        assert (await _recv(ws))["result"] == {"serverTime": wall.ms()}
        await ws.send(json.dumps({"id": 5, "method": "ping"}))
        assert (await _recv(ws))["result"] == {}


async def test_a_client_that_does_not_read_is_dropped_not_buffered(
    nursery: trio.Nursery, wall: WallClock
) -> None:
    sim = await nursery.start(ExchangeSim(make_config(wall, outbox_size=16)).serve)
    streams = "/".join(f"{s}@kline_{i}" for s in ("btcusdt", "ethusdt") for i in INTERVALS)
    stream = await trio.open_tcp_stream("127.0.0.1", sim.server.port)
    await stream.send_all(
        f"GET /stream?streams={streams} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n".encode()
        + b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    await trio.sleep(0.1)
    with trio.fail_after(20):
        while sim.streams.connection_count:  # never reading: the socket fills, then the queue
            await sim.advance(1)
            await trio.lowlevel.checkpoint()
    await stream.aclose()


async def test_drop_faults_on_streams_armed_over_http(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock
) -> None:
    async with (
        connect(sim.ws_url + "/ws/btcusdt@kline_1m") as market,
        connect(sim.ws_url + "/ws-api/v3") as user,
    ):
        await user.send(_subscribe_request(wall))
        assert (await _recv(user))["status"] == 200
        r = await http.post(
            "/_sim/faults",
            json=[{"kind": "drop", "stream": "market"}, {"kind": "drop", "stream": "user"}],
        )
        assert len(r.json()["armed"]) == 2
        assert (await http.get("/api/v3/ping")).status_code == 200  # requests do not match them
        await sim.advance(1)
        with trio.fail_after(5), pytest.raises(ConnectionClosed):
            await market.recv()
        p = "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001"
        await http.post("/api/v3/order?" + signed_query(p, wall), headers={"X-MBX-APIKEY": KEY})
        with trio.fail_after(5), pytest.raises(ConnectionClosed):
            await user.recv()
        assert user.close_code in (None, 1006)  # abrupt: no close frame
    async with connect(sim.ws_url + "/ws/btcusdt@kline_1m"):
        await trio.sleep(0.05)
        assert (await http.post("/_sim/drop_streams")).json() == {"dropped": 1}


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/ws/btcusdt@kline_1m", b"Upgrade: websocket\r\nConnection: Upgrade\r\n", b"400"),
        ("/api/v3/ping", b"Upgrade: websocket\r\nConnection: Upgrade\r\n", b"200"),
        ("/elsewhere", b"Upgrade: websocket\r\nConnection: Upgrade\r\n", b"404"),
    ],
)
async def test_bad_upgrades_are_answered(
    sim: ExchangeSim, path: str, headers: bytes, status: bytes
) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", sim.server.port)
    await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode() + headers + b"\r\n")
    with trio.fail_after(5):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some()
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.1 " + status), data
    await stream.aclose()


async def test_rotation_says_server_shutdown_closes_and_the_server_stays_up(
    sim: ExchangeSim, http: httpx2.AsyncClient
) -> None:
    async with connect(sim.ws_url + "/ws/btcusdt@kline_1m") as ws:
        await trio.sleep(0.05)
        assert (await http.post("/_sim/rotate_streams")).json() == {"closed": 1}
        assert (await _recv(ws))["e"] == "serverShutdown"
        with trio.fail_after(5), pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1001
    async with connect(sim.ws_url + "/ws/btcusdt@kline_1m") as ws:
        await trio.sleep(0.05)
        await sim.advance(1)
        assert (await _recv(ws))["e"] == "kline"
