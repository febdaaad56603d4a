"""UserDataStream against a scripted WebSocket API (``/ws-api/v3``) on 127.0.0.1 that checks the
signature and the timestamp as Binance does."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from decimal import Decimal

import attrs
import pytest
import trio
import websockets.frames

from tests.exchanges.binance.ws_servers import (
    KEY,
    SECRET,
    Client,
    WsApi,
    eventually,
    execution_report,
    running,
    user_event,
)
from trading.core.records import OrderState
from trading.core.updates import ExchangeOrder
from trading.exchanges.binance.frames import AccountUpdate
from trading.exchanges.binance.user_stream import UserDataStream, UserStreamRefused
from trading.exchanges.binance.ws import ReconnectBackoff

FAST = ReconnectBackoff(initial_delay=0.001, max_delay=0.01, stable_after=3600)


@attrs.frozen
class Keys:
    api_key: str = KEY
    api_secret: str = attrs.field(default=SECRET, repr=False)


def wall_ms() -> int:
    return int(time.time() * 1000)


class Owner:
    """The engine's side: orders, balances and resubscriptions, and a way to wait for them."""

    def __init__(self) -> None:
        self.orders: list[ExchangeOrder] = []
        self.accounts: list[AccountUpdate] = []
        self.resubscribed = 0
        self._changed = trio.Event()

    def on_order(self, order: ExchangeOrder) -> None:
        self.orders.append(order)
        self._changed.set()

    def on_account(self, update: AccountUpdate) -> None:
        self.accounts.append(update)
        self._changed.set()

    def on_resubscribed(self) -> None:
        self.resubscribed += 1
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            self._changed = trio.Event()
            await self._changed.wait()

    async def start(self, nursery: trio.Nursery, stream: UserDataStream) -> None:
        await nursery.start(stream.run, self.on_order, self.on_account, self.on_resubscribed)


def the_request(client: Client) -> dict[str, object]:
    (request,) = [r for r in client.received if r.get("method")]
    return request


async def test_subscribes_with_a_signed_request_and_delivers_orders_and_balances() -> None:
    api = WsApi(server_now_ms=wall_ms)
    with trio.fail_after(10):
        async with running(api.answer) as server, trio.open_nursery() as nursery:
            stream = UserDataStream(
                server.url + "/ws-api/v3", Keys(), now_ms=wall_ms, connect=None, backoff=FAST
            )
            owner = Owner()
            await owner.start(nursery, stream)
            client = await server.client(0)
            assert client.path == "/ws-api/v3"
            request = the_request(client)
            assert request["method"] == "userDataStream.subscribe.signature"
            assert isinstance(request["id"], str) and uuid.UUID(request["id"])
            assert sorted(request["params"]) == ["apiKey", "signature", "timestamp"]  # type: ignore[arg-type]
            await client.send(user_event(0, execution_report("mine-1", trade_id=7)))
            await client.send(user_event(5, execution_report("not-ours", trade_id=8)))
            await client.send("garbage")
            await client.send(user_event(0, {"e": "balanceUpdate", "a": "BTC", "d": "1"}))
            position = {
                "e": "outboundAccountPosition",
                "E": 2,
                "B": [{"a": "BTC", "f": "1.1", "l": "0"}, {"a": "USDT", "f": "9990", "l": "0"}],
            }
            await client.send(user_event(0, position))
            await owner.wait_for(lambda: len(owner.accounts) == 1)
            (order,) = owner.orders
            assert order.client_order_id == "mine-1" and order.exchange_order_id == "42"
            assert order.state is OrderState.PARTIALLY_FILLED
            (fill,) = order.fills
            assert (fill.trade_id, fill.fee, fill.fee_asset) == ("7", Decimal("0.0001"), "BTC")
            assert owner.accounts[0].balances["BTC"] == (Decimal("1.1"), Decimal(0))
            assert owner.resubscribed == 0 and stream.subscriptions == 1
            nursery.cancel_scope.cancel()


async def test_a_bad_signature_ends_run_with_the_exchange_s_error_and_no_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    api = WsApi(server_now_ms=wall_ms, secret="another secret")
    with trio.fail_after(10):
        async with running(api.answer) as server:
            stream = UserDataStream(server.url + "/ws-api/v3", Keys(), now_ms=wall_ms, backoff=FAST)
            with pytest.raises(UserStreamRefused) as refused:
                await stream.run(Owner().on_order)
    assert refused.value.code == -1022 and refused.value.status == 400
    assert str(refused.value) == (
        "user data stream refused: Signature for this request is not valid. (code -1022, "
        "status 400)"
    )
    assert len(server.clients) == 1  # not retried: retrying cannot fix it
    for text in (str(refused.value), repr(stream), caplog.text):
        assert SECRET not in text and KEY not in text


async def test_an_unknown_key_is_refused_too() -> None:
    api = WsApi(server_now_ms=wall_ms, api_key="someone else")
    with trio.fail_after(10):
        async with running(api.answer) as server:
            stream = UserDataStream(server.url, Keys(), now_ms=wall_ms, backoff=FAST)
            with pytest.raises(UserStreamRefused, match="code -2015, status 401"):
                await stream.run(Owner().on_order)


async def test_a_timestamp_outside_the_window_resyncs_and_retries_on_the_same_connection() -> None:
    offset = [-10_000]  # our clock runs 10 s behind the server's

    def now_ms() -> int:
        return wall_ms() + offset[0]

    resyncs = 0

    async def resync() -> None:
        nonlocal resyncs
        resyncs += 1
        offset[0] = 0

    api = WsApi(server_now_ms=wall_ms)
    with trio.fail_after(10):
        async with running(api.answer) as server, trio.open_nursery() as nursery:
            stream = UserDataStream(server.url, Keys(), now_ms=now_ms, backoff=FAST, resync=resync)
            await Owner().start(nursery, stream)
            assert resyncs == 1 and len(server.clients) == 1
            stamps = [r["params"]["timestamp"] for r in server.clients[0].received]
            assert len(stamps) == 2 and stamps[1] - stamps[0] >= 9_000  # a fresh timestamp
            nursery.cancel_scope.cancel()


async def test_a_failing_resync_is_retried_on_a_new_connection() -> None:
    offset = [-10_000]
    calls = 0

    async def resync() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("REST is down")
        offset[0] = 0

    api = WsApi(server_now_ms=wall_ms)
    with trio.fail_after(10):
        async with running(api.answer) as server, trio.open_nursery() as nursery:
            stream = UserDataStream(
                server.url,
                Keys(),
                now_ms=lambda: wall_ms() + offset[0],
                backoff=FAST,
                resync=resync,
            )
            await Owner().start(nursery, stream)
            assert calls == 2 and len(server.clients) == 2
            nursery.cancel_scope.cancel()


async def test_without_resync_a_timestamp_error_is_retried_on_a_new_connection() -> None:
    offset = [-10_000]
    api = WsApi(server_now_ms=wall_ms)

    def now_ms() -> int:
        value = wall_ms() + offset[0]
        offset[0] = 0  # the owner's clock corrects itself meanwhile
        return value

    with trio.fail_after(10):
        async with running(api.answer) as server, trio.open_nursery() as nursery:
            stream = UserDataStream(server.url, Keys(), now_ms=now_ms, backoff=FAST)
            await Owner().start(nursery, stream)
            assert len(server.clients) == 2
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("status", "code", "msg"),
    [
        (503, -1001, "Internal error; unable to process your request."),
        (429, -1003, "Too many requests."),
        (418, -1003, "Way too many requests; IP banned until 1735689600000."),
    ],
)
async def test_busy_server_answers_are_retried(status: int, code: int, msg: str) -> None:
    api = WsApi(server_now_ms=wall_ms, forced=[(status, {"code": code, "msg": msg})])
    with trio.fail_after(10):
        async with running(api.answer) as server, trio.open_nursery() as nursery:
            stream = UserDataStream(server.url, Keys(), now_ms=wall_ms, backoff=FAST)
            await Owner().start(nursery, stream)
            assert len(server.clients) == 2 and stream.subscriptions == 1
            nursery.cancel_scope.cancel()


async def test_an_unanswered_subscription_is_retried() -> None:
    api = WsApi(server_now_ms=wall_ms)
    calls = 0

    def first_silent(client: Client, request: dict[str, object]) -> str | None:
        nonlocal calls
        calls += 1
        return None if calls == 1 else api.answer(client, request)  # type: ignore[arg-type]

    with trio.fail_after(10):
        async with running(first_silent) as server, trio.open_nursery() as nursery:
            stream = UserDataStream(
                server.url, Keys(), now_ms=wall_ms, backoff=FAST, reply_timeout=0.2
            )
            await Owner().start(nursery, stream)
            assert len(server.clients) == 2
            nursery.cancel_scope.cancel()


async def test_twenty_drops_resubscribe_each_time_and_deliver_each_push_once() -> None:
    drops = 20
    api = WsApi(server_now_ms=wall_ms)
    with trio.fail_after(30):
        async with running(api.answer) as server, trio.open_nursery() as nursery:
            stream = UserDataStream(server.url, Keys(), now_ms=wall_ms, backoff=FAST)
            owner = Owner()
            await owner.start(nursery, stream)
            for i in range(drops + 1):
                client = await server.client(i)
                await owner.wait_for(lambda i=i: owner.resubscribed == i)  # type: ignore[misc]
                assert client.streams == [f"subscription:{i}"]
                await client.send(user_event(i, execution_report("mine", trade_id=i)))
                await owner.wait_for(lambda i=i: len(owner.orders) == i + 1)  # type: ignore[misc]
                if i < drops:
                    await client.drop()
            assert [o.fills[0].trade_id for o in owner.orders] == [str(i) for i in range(21)]
            assert stream.subscriptions == drops + 1 and owner.resubscribed == drops
            nursery.cancel_scope.cancel()


async def test_event_stream_terminated_resubscribes() -> None:
    api = WsApi(server_now_ms=wall_ms)
    with trio.fail_after(10):
        async with running(api.answer) as server, trio.open_nursery() as nursery:
            stream = UserDataStream(server.url, Keys(), now_ms=wall_ms, backoff=FAST)
            owner = Owner()
            await owner.start(nursery, stream)
            first = await server.client(0)
            await first.send(user_event(0, {"e": "eventStreamTerminated", "E": 1}))
            second = await server.client(1)
            await owner.wait_for(lambda: owner.resubscribed == 1)
            assert second.streams == ["subscription:1"]
            await first.closed.wait()
            nursery.cancel_scope.cancel()


async def test_a_callback_that_raises_is_logged_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def fragile(order: ExchangeOrder) -> None:
        seen.append(order.fills[0].trade_id)
        raise RuntimeError("engine bug")

    api = WsApi(server_now_ms=wall_ms)
    with trio.fail_after(10):
        async with running(api.answer) as server, trio.open_nursery() as nursery:
            stream = UserDataStream(server.url, Keys(), now_ms=wall_ms, backoff=FAST)
            await nursery.start(stream.run, fragile)
            client = await server.client(0)
            for i in range(3):
                await client.send(user_event(0, execution_report("x", trade_id=i)))
            await eventually(lambda: len(seen) == 3)
            assert "a callback raised" in caplog.text and len(server.clients) == 1
            nursery.cancel_scope.cancel()


async def test_cancelling_run_closes_the_connection() -> None:
    api = WsApi(server_now_ms=wall_ms)
    with trio.fail_after(10):
        async with running(api.answer) as server:
            async with trio.open_nursery() as nursery:
                stream = UserDataStream(server.url, Keys(), now_ms=wall_ms, backoff=FAST)
                await Owner().start(nursery, stream)
                nursery.cancel_scope.cancel()
            with trio.fail_after(2):
                await server.clients[0].closed.wait()


async def test_debug_logging_everywhere_shows_no_key_and_no_signature(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As WEBSOCKETS_MAX_LOG_SIZE=100000 would: websockets logs whole frames at DEBUG.
    monkeypatch.setattr(websockets.frames.Frame, "MAX_LOG_SIZE", 100_000)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="websockets")
    api = WsApi(server_now_ms=wall_ms)
    with trio.fail_after(10):
        async with running(api.answer) as server, trio.open_nursery() as nursery:
            stream = UserDataStream(server.url, Keys(), now_ms=wall_ms, backoff=FAST)
            owner = Owner()
            await owner.start(nursery, stream)
            client = server.clients[0]
            await client.send(user_event(0, execution_report("x", trade_id=1)))
            await owner.wait_for(lambda: len(owner.orders) == 1)
            await client.drop()
            await owner.wait_for(lambda: owner.resubscribed == 1)
            nursery.cancel_scope.cancel()
    signatures = [r["params"]["signature"] for c in server.clients for r in c.received]
    assert len(signatures) == 2
    ours = "\n".join(  # the exchange's side (the test server) may log what it received
        f"{r.name} {r.getMessage()}" for r in caplog.records if r.name != "websockets.server"
    )
    assert "DEBUG" in {r.levelname for r in caplog.records}  # it did log, at DEBUG too
    assert "user data stream" in ours
    for secret in (KEY, SECRET, *signatures):
        for i in range(0, len(secret) - 12, 4):
            assert secret[i : i + 12] not in ours


def test_the_request_is_signed_as_the_documentation_says() -> None:
    stream = UserDataStream("ws://x", Keys(), now_ms=lambda: 1645423376532)
    request_id, text = stream._request()
    request = json.loads(text)
    assert request["id"] == request_id
    params = request["params"]
    assert params["apiKey"] == KEY and params["timestamp"] == 1645423376532
    # HMAC-SHA256 over "apiKey=...&timestamp=..." (sorted, not percent-encoded).
    import hashlib
    import hmac

    payload = f"apiKey={KEY}&timestamp=1645423376532"
    expected = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    assert params["signature"] == expected
    assert KEY not in repr(stream) and SECRET not in repr(stream)
