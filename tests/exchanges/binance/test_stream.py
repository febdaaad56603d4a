"""KlineStream against a real, scripted WebSocket server on 127.0.0.1.

Real sockets, so real time: backoff is tiny, and every test is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.trio.server import ServerConnection, serve

from tests.exchanges.binance.ws_servers import (
    Client,
    eventually,
    kline,
    running,
    subscribe_ok,
    wrapped,
)
from trading.exchanges.binance.frames import KlineUpdate
from trading.exchanges.binance.stream import KlineStream
from trading.exchanges.binance.ws import Connection, ReconnectBackoff, websockets_connector

FAST = ReconnectBackoff(initial_delay=0.001, max_delay=0.01, stable_after=3600)


class Recorder:
    """The owner's side: every update and reconnect, and a way to wait for them."""

    def __init__(self) -> None:
        self.updates: list[KlineUpdate] = []
        self.reconnects = 0
        self._changed = trio.Event()

    def on_update(self, update: KlineUpdate) -> None:
        self.updates.append(update)
        self._changed.set()

    def on_reconnect(self) -> None:
        self.reconnects += 1
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            self._changed = trio.Event()
            await self._changed.wait()


async def start(nursery: trio.Nursery, stream: KlineStream, recorder: Recorder) -> None:
    await nursery.start(stream.run, recorder.on_update, recorder.on_reconnect)


async def test_klines_arrive_open_and_closed_from_a_combined_stream_url() -> None:
    with trio.fail_after(10):
        async with running(subscribe_ok) as server, trio.open_nursery() as nursery:
            stream = KlineStream(server.url, backoff=FAST)
            stream.subscribe("BTCUSDT", "1m")
            stream.subscribe("ETHUSDT", "15m")
            stream.subscribe("BTCUSDT", "1m")  # idempotent
            recorder = Recorder()
            await start(nursery, stream, recorder)
            client = await server.client(0)
            assert client.path == "/stream?streams=btcusdt@kline_1m/ethusdt@kline_15m"
            await client.send(wrapped(kline(close="100.5")))
            await client.send(wrapped(kline(close="100.7", closed=True)))
            await client.send(wrapped(kline("ETHUSDT", "15m", close="3000.25")))
            await recorder.wait_for(lambda: len(recorder.updates) == 3)
            first, closing, eth = recorder.updates
            assert (first.bar.close, first.closed) == (100.5, False)
            assert (closing.bar.close, closing.closed) == (100.7, True)
            assert closing.bar.open_time == 1_735_689_600.0
            assert (eth.symbol, eth.interval.text, eth.bar.close) == ("ETHUSDT", "15m", 3000.25)
            assert recorder.reconnects == 0 and stream.connections == 1 and stream.connected
            nursery.cancel_scope.cancel()


async def test_cancelling_run_closes_the_connection() -> None:
    with trio.fail_after(10):
        async with running(subscribe_ok) as server:
            async with trio.open_nursery() as nursery:
                stream = KlineStream(server.url, backoff=FAST)
                stream.subscribe("BTCUSDT", "1m")
                await start(nursery, stream, Recorder())
                client = await server.client(0)
                nursery.cancel_scope.cancel()
            with trio.fail_after(2):
                await client.closed.wait()


async def test_subscribe_while_connected_sends_subscribe_and_checks_the_reply() -> None:
    with trio.fail_after(10):
        async with running(subscribe_ok) as server, trio.open_nursery() as nursery:
            stream = KlineStream(server.url, backoff=FAST, send_interval=0.05)
            recorder = Recorder()
            await start(nursery, stream, recorder)
            client = await server.client(0)
            assert client.path == "/stream"
            stream.subscribe("SOLUSDT", "1h")
            await server.wait_for(lambda: len(client.received) == 1)
            request = client.received[0]
            assert request["method"] == "SUBSCRIBE"
            assert request["params"] == ["solusdt@kline_1h"]
            assert isinstance(request["id"], int)
            await client.send(wrapped(kline("SOLUSDT", "1h")))
            await recorder.wait_for(lambda: len(recorder.updates) == 1)
            assert stream.streams == ("solusdt@kline_1h",)
            nursery.cancel_scope.cancel()


async def test_unsubscribe_while_connected_and_after_a_reconnect() -> None:
    with trio.fail_after(10):
        async with running(subscribe_ok) as server, trio.open_nursery() as nursery:
            stream = KlineStream(server.url, backoff=FAST, send_interval=0.01)
            stream.subscribe("BTCUSDT", "1m")
            stream.subscribe("ETHUSDT", "1m")
            recorder = Recorder()
            await start(nursery, stream, recorder)
            client = await server.client(0)
            stream.unsubscribe("ETHUSDT", "1m")
            stream.unsubscribe("ETHUSDT", "1m")  # a no-op now
            stream.subscribe("XRPUSDT", "1m")
            stream.unsubscribe("XRPUSDT", "1m")  # never sent: nothing to undo
            await server.wait_for(lambda: len(client.received) == 1)
            assert client.received[0]["method"] == "UNSUBSCRIBE"
            assert client.received[0]["params"] == ["ethusdt@kline_1m"]
            assert client.streams == ["btcusdt@kline_1m"]
            stream.subscribe("SOLUSDT", "1m")
            await server.wait_for(lambda: len(client.received) == 2)
            assert client.received[1]["method"] == "SUBSCRIBE"
            assert client.received[1]["params"] == ["solusdt@kline_1m"]
            await client.drop()
            second = await server.client(1)
            assert second.streams == ["btcusdt@kline_1m", "solusdt@kline_1m"]
            nursery.cancel_scope.cancel()


async def test_subscribe_bursts_are_batched_and_paced_under_five_messages_a_second() -> None:
    with trio.fail_after(10):
        async with running(subscribe_ok) as server, trio.open_nursery() as nursery:
            stream = KlineStream(server.url, backoff=FAST)  # default pacing: 0.25 s
            await start(nursery, stream, Recorder())
            client = await server.client(0)
            symbols = [f"S{i}USDT" for i in range(12)]
            for symbol in symbols:
                stream.subscribe(symbol, "1m")
                await trio.sleep(0.01)
            names = {f"s{i}usdt@kline_1m" for i in range(12)}
            await server.wait_for(lambda: set(client.streams) == names)
            assert len(client.received) <= 3, client.received
            gaps = [b - a for a, b in zip(client.received_at, client.received_at[1:], strict=False)]
            assert all(gap >= 0.2 for gap in gaps), gaps
            nursery.cancel_scope.cancel()


async def test_a_refused_subscription_is_logged_and_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(client: Client, request: dict[str, Any]) -> str:
        return json.dumps({"code": 2, "msg": "Invalid request: bad stream", "id": request["id"]})

    with trio.fail_after(10):
        async with running(refuse) as server, trio.open_nursery() as nursery:
            stream = KlineStream(server.url, backoff=FAST, send_interval=0.01)
            stream.subscribe("BTCUSDT", "1m")
            await start(nursery, stream, Recorder())
            client = await server.client(0)
            stream.subscribe("NOPE", "1m")
            await server.wait_for(lambda: len(client.received) == 1)
            await eventually(lambda: "nope@kline_1m" not in stream.streams)
            assert stream.streams == ("btcusdt@kline_1m",)
            assert "SUBSCRIBE ['nope@kline_1m'] refused: Invalid request: bad stream" in caplog.text
            assert stream.connections == 1
            nursery.cancel_scope.cancel()


async def test_an_unanswered_subscribe_replaces_the_connection_with_it_restored() -> None:
    with trio.fail_after(10):
        async with running(lambda client, request: None) as server, trio.open_nursery() as n:
            stream = KlineStream(server.url, backoff=FAST, reply_timeout=0.2)
            stream.subscribe("BTCUSDT", "1m")
            recorder = Recorder()
            await start(n, stream, recorder)
            stream.subscribe("ETHUSDT", "1m")
            second = await server.client(1)
            assert second.streams == ["btcusdt@kline_1m", "ethusdt@kline_1m"]
            assert server.clients[0].received[0]["params"] == ["ethusdt@kline_1m"]
            await recorder.wait_for(lambda: recorder.reconnects == 1)
            n.cancel_scope.cancel()


async def test_a_subscription_made_during_the_handshake_is_sent() -> None:
    """url() is built before the handshake; what is added meanwhile needs a SUBSCRIBE."""
    real = websockets_connector()
    stream: KlineStream

    def connector(url: str) -> AbstractAsyncContextManager[Connection]:
        stream.subscribe("LATEUSDT", "1m")
        return real(url)

    with trio.fail_after(10):
        async with running(subscribe_ok) as server, trio.open_nursery() as nursery:
            stream = KlineStream(server.url, connect=connector, backoff=FAST)
            stream.subscribe("BTCUSDT", "1m")
            await start(nursery, stream, Recorder())
            client = await server.client(0)
            assert client.path == "/stream?streams=btcusdt@kline_1m"
            await server.wait_for(lambda: len(client.received) == 1)
            assert client.received[0]["params"] == ["lateusdt@kline_1m"]
            nursery.cancel_scope.cancel()


async def test_a_hundred_abrupt_drops_restore_every_subscription_and_decode_each_frame_once() -> (
    None
):
    drops = 100
    with trio.fail_after(60):
        async with running(subscribe_ok) as server, trio.open_nursery() as nursery:
            stream = KlineStream(server.url, backoff=FAST, send_interval=0.001)
            stream.subscribe("BTCUSDT", "1m")
            recorder = Recorder()
            await start(nursery, stream, recorder)
            client = await server.client(0)
            stream.subscribe("ETHUSDT", "5m")  # added live: must be restored too
            await server.wait_for(lambda: len(client.streams) == 2)
            expected = ["btcusdt@kline_1m", "ethusdt@kline_5m"]
            for i in range(drops + 1):
                client = await server.client(i)
                assert client.streams == expected, (i, client.path)
                await recorder.wait_for(lambda i=i: recorder.reconnects == i)  # type: ignore[misc]
                # One bar update per connection, closed on every other one, then a drop.
                await client.send(wrapped(kline(open_ms=60_000 * i, closed=i % 2 == 1)))
                await recorder.wait_for(lambda i=i: len(recorder.updates) == i + 1)  # type: ignore[misc]
                if i < drops:
                    await client.drop()
            assert recorder.reconnects == drops
            assert stream.connections == drops + 1
            assert [u.bar.open_time for u in recorder.updates] == [
                60.0 * i for i in range(drops + 1)
            ]
            assert [u.closed for u in recorder.updates] == [i % 2 == 1 for i in range(drops + 1)]
            # Nothing was sent twice: the live SUBSCRIBE went once, the URL carried it afterwards.
            assert sum(len(c.received) for c in server.clients) == 1
            nursery.cancel_scope.cancel()


async def test_malformed_frames_are_skipped_and_logged_rate_limited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    junk = [
        "not json",
        "{",
        json.dumps({"stream": "x", "data": {"e": "kline", "E": 1, "k": {"t": "soon"}}}),
        json.dumps([1, 2, 3]),
        json.dumps({"e": "mystery"}),
        "",
    ]
    with trio.fail_after(10):
        async with running(subscribe_ok) as server, trio.open_nursery() as nursery:
            stream = KlineStream(server.url, backoff=FAST)
            stream.subscribe("BTCUSDT", "1m")
            recorder = Recorder()
            await start(nursery, stream, recorder)
            client = await server.client(0)
            caplog.set_level(logging.WARNING, logger="trading.exchanges.binance.stream")
            for i in range(30):
                await client.send(wrapped(kline(open_ms=60_000 * i)))
                await client.send(junk[i % len(junk)])
                await client.ws.send(b"\x00\xff binary junk")
            await recorder.wait_for(lambda: len(recorder.updates) == 30)
            assert [u.bar.open_time for u in recorder.updates] == [60.0 * i for i in range(30)]
            assert stream.connections == 1 and recorder.reconnects == 0
            bad = [r for r in caplog.records if "skipped a bad frame" in r.getMessage()]
            assert 1 <= len(bad) <= 2, [r.getMessage() for r in bad]  # 60 bad frames, one line
            nursery.cancel_scope.cancel()


async def test_a_callback_that_raises_does_not_stop_the_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[float] = []

    def fragile(update: KlineUpdate) -> None:
        seen.append(update.bar.open_time)
        raise RuntimeError("owner bug")

    with trio.fail_after(10):
        async with running(subscribe_ok) as server, trio.open_nursery() as nursery:
            stream = KlineStream(server.url, backoff=FAST)
            stream.subscribe("BTCUSDT", "1m")
            await nursery.start(stream.run, fragile)
            client = await server.client(0)
            for i in range(3):
                await client.send(wrapped(kline(open_ms=60_000 * i)))
            await eventually(lambda: len(seen) == 3)
            assert stream.connections == 1
            assert "a callback raised" in caplog.text
            nursery.cancel_scope.cancel()


async def test_server_shutdown_reconnects_at_once_with_every_subscription() -> None:
    with trio.fail_after(10):
        async with running(subscribe_ok) as server, trio.open_nursery() as nursery:
            # stable_after=0: a planned reconnect after a healthy connection waits nothing.
            stream = KlineStream(
                server.url, backoff=ReconnectBackoff(initial_delay=60, stable_after=0)
            )
            stream.subscribe("BTCUSDT", "1m")
            recorder = Recorder()
            await start(nursery, stream, recorder)
            first = await server.client(0)
            await first.send(json.dumps({"e": "serverShutdown", "E": 1}))
            second = await server.client(1)  # a 60 s backoff would time the test out
            assert second.streams == ["btcusdt@kline_1m"]
            await first.closed.wait()
            await recorder.wait_for(lambda: recorder.reconnects == 1)
            nursery.cancel_scope.cancel()


async def test_a_connection_is_replaced_at_its_age_limit() -> None:
    with trio.fail_after(10):
        async with running(subscribe_ok) as server, trio.open_nursery() as nursery:
            backoff = ReconnectBackoff(initial_delay=60, stable_after=0.1, max_age=0.3)
            stream = KlineStream(server.url, backoff=backoff)
            stream.subscribe("BTCUSDT", "1m")
            recorder = Recorder()
            await start(nursery, stream, recorder)
            first = await server.client(0)
            second = await server.client(2)
            assert second.streams == ["btcusdt@kline_1m"]
            assert first.closed.is_set()
            await recorder.wait_for(lambda: recorder.reconnects >= 2)
            nursery.cancel_scope.cancel()


def test_subscriptions_stop_at_binance_s_limit_per_connection() -> None:
    stream = KlineStream("ws://x")
    for i in range(1024):
        stream.subscribe(f"S{i}", "1m")
    stream.subscribe("S0", "1m")  # already there: still fine
    with pytest.raises(ValueError, match="Binance allows 1024 streams per connection"):
        stream.subscribe("ONEMORE", "1m")
    assert len(stream.streams) == 1024


def test_url_shapes() -> None:
    stream = KlineStream("wss://stream.binance.com:9443/")
    assert stream.url() == "wss://stream.binance.com:9443/stream"
    stream.subscribe("BTCUSDT", "1d")
    assert stream.url() == "wss://stream.binance.com:9443/stream?streams=btcusdt@kline_1d"


async def test_a_callback_blocking_the_loop_delays_pongs_but_the_connection_survives() -> None:
    """Our callbacks are synchronous: while one blocks, no task runs, websockets' reader
    included, so the pong waits for it. The server runs in its own thread here (its own Trio
    loop), so it keeps pinging while ours is blocked; Binance waits a minute for a pong."""
    frames, block = 6, 0.15
    ports: queue.Queue[int] = queue.Queue()
    stop = threading.Event()
    latencies: list[float] = []

    async def server_main() -> None:
        async def handler(ws: ServerConnection) -> None:
            for i in range(frames):
                await ws.send(wrapped(kline(open_ms=60_000 * i)))
                with trio.fail_after(5):  # the server's ping timeout
                    await (await ws.ping()).wait()
                latencies.append(ws.latency)
            await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(serve, handler, 0, host="127.0.0.1"))
            ports.put(server.listeners[0].socket.getsockname()[1])
            await trio.to_thread.run_sync(stop.wait)
            nursery.cancel_scope.cancel()

    def busy(update: KlineUpdate) -> None:
        time.sleep(block)  # an owner's callback that holds the event loop

    with trio.fail_after(20):
        async with trio.open_nursery() as outer:
            outer.start_soon(trio.to_thread.run_sync, trio.run, server_main)
            port = await trio.to_thread.run_sync(partial(ports.get, timeout=5))
            try:
                stream = KlineStream(f"ws://127.0.0.1:{port}", backoff=FAST)
                stream.subscribe("BTCUSDT", "1m")
                async with trio.open_nursery() as nursery:
                    await nursery.start(stream.run, busy)
                    await eventually(lambda: len(latencies) == frames)
                    assert stream.connections == 1
                    nursery.cancel_scope.cancel()
            finally:
                stop.set()


actions = st.lists(
    st.one_of(
        st.tuples(st.just("subscribe"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("unsubscribe"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("frame")),
        st.tuples(st.just("drop")),
        st.tuples(st.just("shutdown")),
        st.tuples(st.just("junk")),
        st.tuples(st.just("pause"), st.integers(0, 8)),  # lands inside a reconnect, or not
    ),
    max_size=12,
)


@settings(max_examples=40)
@given(actions)
def test_any_interleaving_of_subscriptions_drops_and_frames(script: list[tuple[Any, ...]]) -> None:
    """Subscriptions racing drops and shutdowns (sent before, during or after a reconnect):
    every connection ends up with every subscription exactly once, every frame is delivered
    once and in order, on_reconnect counts the reconnects."""

    async def scenario() -> None:
        with trio.fail_after(5):
            async with running(subscribe_ok) as server, trio.open_nursery() as nursery:
                stream = KlineStream(server.url, backoff=FAST, send_interval=0.001)
                stream.subscribe("BASEUSDT", "1m")
                recorder = Recorder()
                await start(nursery, stream, recorder)
                connections, sent = 1, 0

                async def settled() -> Client:
                    await server.wait_for(lambda: len(server.clients) == connections)
                    client = server.clients[-1]
                    await server.wait_for(lambda: set(client.streams) == set(stream.streams))
                    await recorder.wait_for(lambda: recorder.reconnects == connections - 1)
                    return client

                for action in script:
                    if action[0] in ("subscribe", "unsubscribe"):
                        change = getattr(stream, action[0])
                        change(f"S{action[1]}USDT", "1m")
                        if action[2]:
                            await settled()
                    elif action[0] == "frame":
                        client = await settled()
                        await client.send(wrapped(kline(open_ms=60_000 * sent)))
                        sent += 1
                        await recorder.wait_for(lambda n=sent: len(recorder.updates) == n)  # type: ignore[misc]
                    elif action[0] in ("drop", "shutdown"):
                        await server.wait_for(lambda n=connections: len(server.clients) == n)  # type: ignore[misc]
                        client = server.clients[-1]
                        if action[0] == "drop":
                            await client.drop()
                        else:
                            await client.send(json.dumps({"e": "serverShutdown", "E": 1}))
                        connections += 1
                    elif action[0] == "pause":
                        await trio.sleep(action[1] / 1000)
                    else:
                        await server.wait_for(lambda n=connections: len(server.clients) == n)  # type: ignore[misc]
                        await server.clients[-1].send("{junk")
                await settled()
                assert [u.bar.open_time for u in recorder.updates] == [
                    60.0 * i for i in range(sent)
                ]
                assert stream.connections == connections
                for client in server.clients:
                    assert len(client.streams) == len(set(client.streams)), client.streams
                nursery.cancel_scope.cancel()

    trio.run(scenario)
