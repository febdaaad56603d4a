"""BinanceRest against a small real HTTP server on 127.0.0.1, and through httpx2's MockTransport.

The server (h11 on trio, below) checks what Binance checks: the API key header, the signature
over the raw query string followed by the raw body (``signing.verify``), the timestamp against its
own clock and ``recvWindow``; and answers with Binance's JSON, codes and weight headers. Tests over
its real sockets run on trio's real clock, every wait bounded by ``trio.fail_after``; the waiting
a 429 causes is tested through the MockTransport seam on the autojumping clock.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import h11
import httpx2
import pytest
import trio
import trio.testing

from tests.exchanges.binance.test_codec import EXCHANGE_INFO, KLINE
from trading.core.bars import Interval
from trading.core.records import OrderSpec, OrderState, OrderType, Side, TimeInForce
from trading.exchanges.base import ExchangeError, ExchangeRejected
from trading.exchanges.binance.codec import DecodeError
from trading.exchanges.binance.errors import (
    AuthError,
    CancelRejected,
    IpBanned,
    OrderRejected,
    RateLimited,
    ServerError,
    TimestampOutsideWindow,
    UnexpectedResponse,
)
from trading.exchanges.binance.rest import BinanceRest, Credentials, NetworkError
from trading.exchanges.binance.signing import timestamp_ok, verify
from trading.exchanges.binance.weights import WeightBudget

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
CREDS = Credentials(KEY, SECRET)
D = Decimal

Answer = tuple[int, bytes, dict[str, str]]


def answer(status: int, payload: object, **headers: str) -> Answer:
    return status, json.dumps(payload).encode(), headers


def error(status: int, code: int, msg: str) -> Answer:
    return answer(status, {"code": code, "msg": msg})


class FakeBinance:
    """Just enough of Binance's spot REST API to check a client byte for byte."""

    def __init__(self, *, clock_offset_ms: int = 0) -> None:
        self.clock_offset_ms = clock_offset_ms
        self.requests: list[dict[str, Any]] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.time_calls = 0
        self.weight = 0
        # (method, path) -> canned answers served instead of the real one, first in first out
        self.script: dict[tuple[str, str], list[Answer]] = {}
        self.delay = 0.0
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.clock_offset_ms

    # ----------------------------------------------------------------- HTTP over h11

    async def serve(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request: h11.Request | None = None
                body = b""
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await stream.receive_some(65536))
                    elif isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:  # ConnectionClosed: the client went away
                        return
                assert request is not None
                status, content, headers = self.handle(request, body)
                if self.delay:
                    await trio.sleep(self.delay)
                head = [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(content))),
                    ("X-MBX-USED-WEIGHT-1M", str(self.weight)),
                    *headers.items(),
                ]
                await stream.send_all(conn.send(h11.Response(status_code=status, headers=head)))
                await stream.send_all(conn.send(h11.Data(data=content)))
                await stream.send_all(conn.send(h11.EndOfMessage()))
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            return
        finally:
            await stream.aclose()

    # ------------------------------------------------------------------ Binance

    def handle(self, request: h11.Request, raw_body: bytes) -> Answer:
        target = request.target.decode()
        path, _, raw_query = target.partition("?")
        method = request.method.decode()
        headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        body = raw_body.decode()
        # the query string wins over the body for a parameter sent in both
        params = {**dict(parse_qsl(body)), **dict(parse_qsl(raw_query))}
        record = {
            "method": method,
            "path": path,
            "query": raw_query,
            "body": body,
            "headers": headers,
            "params": params,
            "verified": None,
        }
        self.requests.append(record)
        self.weight += 1
        canned = self.script.get((method, path))
        if canned:
            return canned.pop(0)
        if path == "/api/v3/time":
            self.time_calls += 1
            return answer(200, {"serverTime": self.now_ms()})
        if path == "/api/v3/exchangeInfo":
            return answer(200, EXCHANGE_INFO)
        if path == "/api/v3/klines":
            return answer(200, [KLINE, KLINE])
        if headers.get("x-mbx-apikey") != KEY:
            return error(401, -2015, "Invalid API-key, IP, or permissions for action.")
        record["verified"] = verify(SECRET, raw_query, body)
        if not record["verified"]:
            return error(400, -1022, "Signature for this request is not valid.")
        window = float(params.get("recvWindow", 5000))
        record["skew_ms"] = self.now_ms() - int(params["timestamp"])
        if not timestamp_ok(int(params["timestamp"]), self.now_ms(), window):
            return error(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return self.signed(method, path, params)

    def signed(self, method: str, path: str, params: dict[str, str]) -> Answer:
        route = (method, path)
        if route == ("POST", "/api/v3/order"):
            cid = params["newClientOrderId"]
            if cid in self.orders and self.orders[cid]["status"] == "NEW":
                return error(400, -2010, "Duplicate order sent.")
            market = params["type"] == "MARKET"
            order = {
                "symbol": params["symbol"],
                "orderId": len(self.orders) + 1,
                "orderListId": -1,
                "clientOrderId": cid,
                "transactTime": self.now_ms(),
                "price": params.get("price", "0.00000000"),
                "origQty": params["quantity"],
                "executedQty": params["quantity"] if market else "0",
                "cummulativeQuoteQty": str(D(params["quantity"]) * 100) if market else "0",
                "status": "FILLED" if market else "NEW",
                "timeInForce": params.get("timeInForce", "GTC"),
                "type": params["type"],
                "side": params["side"],
            }
            self.orders[cid] = order
            fills = (
                [
                    {
                        "price": "100",
                        "qty": params["quantity"],
                        "commission": "0.001",
                        "commissionAsset": "BNB",
                        "tradeId": 7,
                    }
                ]
                if market
                else []
            )
            return answer(200, {**order, "fills": fills})
        if path == "/api/v3/order":
            order = self.orders.get(params["origClientOrderId"])
            if method == "GET":
                if order is None:
                    return error(400, -2013, "Order does not exist.")
                return answer(200, order)
            if order is None or order["status"] != "NEW":
                return error(400, -2011, "Unknown order sent.")
            order["status"] = "CANCELED"
            return answer(
                200,
                {
                    **order,
                    "origClientOrderId": order["clientOrderId"],
                    "clientOrderId": "cancel-xyz",
                },
            )
        if route == ("GET", "/api/v3/openOrders"):
            return answer(200, [o for o in self.orders.values() if o["status"] == "NEW"])
        if route == ("GET", "/api/v3/account"):
            return answer(200, {"balances": [{"asset": "USDT", "free": "100.5", "locked": "1"}]})
        if route == ("GET", "/api/v3/myTrades"):
            return answer(
                200,
                [
                    {
                        "symbol": params["symbol"],
                        "id": 7,
                        "orderId": 1,
                        "price": "100",
                        "qty": "1",
                        "quoteQty": "100",
                        "commission": "0.001",
                        "commissionAsset": "BNB",
                        "time": 1499865549590,
                        "isBuyer": True,
                        "isMaker": False,
                    }
                ],
            )
        return error(404, -1000, "no such route")


@pytest.fixture
async def fake(nursery: trio.Nursery) -> AsyncIterator[FakeBinance]:
    server = FakeBinance(clock_offset_ms=3000)  # the exchange's clock runs 3 s ahead of ours
    listeners = await nursery.start(partial(trio.serve_tcp, server.serve, 0, host="127.0.0.1"))
    server.port = listeners[0].socket.getsockname()[1]
    yield server


def limit_buy(cid: str = "ours-1") -> OrderSpec:
    return OrderSpec(
        client_order_id=cid,
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=D("0.00100000"),
        price=D("3E+4"),
        time_in_force=TimeInForce.GTC,
    )


def market_sell(cid: str = "ours-2") -> OrderSpec:
    return OrderSpec(
        client_order_id=cid,
        symbol="BTCUSDT",
        side=Side.SELL,
        type=OrderType.MARKET,
        quantity=D("1E-8"),
    )


def client(fake: FakeBinance, **kw: Any) -> BinanceRest:
    return BinanceRest(fake.base_url, credentials=CREDS, budget=WeightBudget(), **kw)


# ------------------------------------------------------------------ over real sockets


async def test_every_call_signs_what_it_sends_and_the_server_verifies_it(
    fake: FakeBinance, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(10):
        async with client(fake) as rest:
            info = await rest.exchange_info(["BTCUSDT"])
            klines = await rest.klines("BTCUSDT", Interval.parse("1m"), start_ms=1, limit=2)
            placed = await rest.new_order(limit_buy())
            filled = await rest.new_order(market_sell())
            queried = await rest.get_order("BTCUSDT", "ours-1")
            open_orders = await rest.open_orders("BTCUSDT")
            cancelled = await rest.cancel_order("BTCUSDT", "ours-1")
            balances = await rest.account()
            trades = await rest.my_trades("BTCUSDT", from_id=1)
    assert info["BTCUSDT"].tick_size == D("0.01") and len(klines) == 2
    assert placed.state is OrderState.SUBMITTED and placed.price == D(30000)
    assert filled.state is OrderState.FILLED and filled.fills[0].fee_asset == "BNB"
    assert queried is not None and queried.client_order_id == "ours-1"
    assert [o.client_order_id for o in open_orders] == ["ours-1"]
    assert cancelled.client_order_id == "ours-1" and cancelled.state is OrderState.CANCELLED
    assert balances["USDT"].free == D("100.5") and trades[0].trade_id == "7"

    signed = [
        r
        for r in fake.requests
        if r["path"] not in ("/api/v3/time", "/api/v3/exchangeInfo", "/api/v3/klines")
    ]
    assert len(signed) == 7 and all(r["verified"] for r in signed)
    for r in signed:
        assert r["headers"]["x-mbx-apikey"] == KEY
        if r["method"] in ("POST", "DELETE"):  # in a form body, nothing in the query
            assert r["query"] == "" and "signature=" in r["body"]
            assert r["headers"]["content-type"] == "application/x-www-form-urlencoded"
        else:
            assert r["body"] == "" and "signature=" in r["query"]
    post = next(r for r in signed if r["method"] == "POST")
    assert post["body"].startswith(
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.00100000&price=30000"
        "&newClientOrderId=ours-1&newOrderRespType=FULL&recvWindow=5000&timestamp="
    )
    market = [r for r in signed if r["method"] == "POST"][1]["params"]
    assert market["quantity"] == "0.00000001" and "price" not in market
    assert "timeInForce" not in market
    assert fake.requests[0]["query"] == "symbols=%5B%22BTCUSDT%22%5D"

    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/api/v3/order" in text  # method and path are logged ...
    for secret in (KEY, SECRET, "signature", "timestamp=", "symbol="):
        assert secret not in text  # ... never the key, the secret, a signature or a query


async def test_the_server_clock_offset_is_applied_to_timestamps(fake: FakeBinance) -> None:
    with trio.fail_after(10):
        async with client(fake) as rest:
            await rest.account()  # the first signed call measures the offset first
            assert abs(rest.offset_ms - 3000) < 500
            assert abs(rest.server_now_ms() - fake.now_ms()) < 500
            await rest.open_orders()
    assert fake.time_calls == 1
    skews = [r["skew_ms"] for r in fake.requests if "skew_ms" in r]
    assert len(skews) == 2 and all(abs(s) < 500 for s in skews)


async def test_minus_1021_resyncs_and_retries_once_without_a_duplicate_order(
    fake: FakeBinance,
) -> None:
    with trio.fail_after(10):
        async with client(fake) as rest:
            await rest.account()
            fake.clock_offset_ms += 20_000  # the exchange's clock jumps: our offset is stale
            order = await rest.new_order(limit_buy())
    assert order.state is OrderState.SUBMITTED
    posts = [r for r in fake.requests if r["method"] == "POST"]
    assert len(posts) == 2 and fake.time_calls == 2  # rejected, resynced, sent once more
    assert len(fake.orders) == 1


async def test_minus_1021_twice_is_raised_not_retried_forever(fake: FakeBinance) -> None:
    stale = error(400, -1021, "Timestamp for this request is outside of the recvWindow.")
    fake.script[("POST", "/api/v3/order")] = [stale, stale, stale]
    with trio.fail_after(10):
        async with client(fake) as rest:
            with pytest.raises(TimestampOutsideWindow) as info:
                await rest.new_order(limit_buy())
    assert isinstance(info.value, ExchangeRejected) and info.value.code == -1021
    assert len([r for r in fake.requests if r["method"] == "POST"]) == 2


async def test_5xx_is_server_error_outcome_unknown(fake: FakeBinance) -> None:
    fake.script[("POST", "/api/v3/order")] = [error(503, -1001, "Internal error")]
    with trio.fail_after(10):
        async with client(fake) as rest:
            with pytest.raises(ServerError) as info:
                await rest.new_order(limit_buy())
    assert not isinstance(info.value, ExchangeRejected) and info.value.status == 503


async def test_malformed_json_is_a_decode_error_naming_the_request(fake: FakeBinance) -> None:
    fake.script[("GET", "/api/v3/account")] = [(200, b'{"balances": [', {})]
    fake.script[("GET", "/api/v3/openOrders")] = [answer(200, [{"symbol": "BTCUSDT"}])]
    with trio.fail_after(10):
        async with client(fake) as rest:
            with pytest.raises(DecodeError, match=r"GET /api/v3/account.*not JSON"):
                await rest.account()
            with pytest.raises(DecodeError, match="clientOrderId"):
                await rest.open_orders("BTCUSDT")


async def test_unknown_order_is_none_and_rejections_carry_the_exchanges_words(
    fake: FakeBinance,
) -> None:
    with trio.fail_after(10):
        async with client(fake) as rest:
            assert await rest.get_order("BTCUSDT", "never-sent") is None
            with pytest.raises(CancelRejected, match="Unknown order sent"):
                await rest.cancel_order("BTCUSDT", "never-sent")
            await rest.new_order(limit_buy())
            with pytest.raises(OrderRejected, match=r"Duplicate order sent\. \(code -2010\)"):
                await rest.new_order(limit_buy())


async def test_a_wrong_secret_is_an_auth_error_that_names_neither_part(
    fake: FakeBinance,
) -> None:
    wrong = Credentials(KEY, "not-the-secret-0123456789")
    with trio.fail_after(10):
        async with BinanceRest(fake.base_url, credentials=wrong, budget=WeightBudget()) as rest:
            with pytest.raises(AuthError) as info:
                await rest.account()
    assert info.value.code == -1022
    for text in (str(info.value), repr(info.value), repr(wrong), repr(rest)):
        assert KEY not in text and "not-the-secret" not in text


async def test_429_over_the_wire_raises_and_bans_the_shared_budget(fake: FakeBinance) -> None:
    fake.script[("GET", "/api/v3/account")] = [
        (429, b'{"code":-1003,"msg":"Too much request weight used"}', {"Retry-After": "30"})
    ]
    budget = WeightBudget()
    with trio.fail_after(10):
        async with BinanceRest(fake.base_url, credentials=CREDS, budget=budget) as rest:
            with pytest.raises(RateLimited) as info:
                await rest.account()
    assert info.value.retry_after == 30
    assert budget.core.banned_until >= trio.current_time() + 29


async def test_an_html_error_page_is_named_by_status_and_prefix(fake: FakeBinance) -> None:
    fake.script[("GET", "/api/v3/exchangeInfo")] = [(403, b"<html>WAF says no</html>", {})]
    with trio.fail_after(10):
        async with client(fake) as rest:
            with pytest.raises(UnexpectedResponse, match=r"HTTP 403.*WAF says no"):
                await rest.exchange_info()


async def test_a_timeout_is_a_network_error(fake: FakeBinance) -> None:
    fake.delay = 5
    with trio.fail_after(10):
        async with client(fake, timeout=0.2) as rest:
            with pytest.raises(NetworkError, match="GET /api/v3/exchangeInfo"):
                await rest.exchange_info()


async def test_a_refused_connection_is_a_network_error() -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    with trio.fail_after(10):
        async with BinanceRest(f"http://127.0.0.1:{port}", budget=WeightBudget()) as rest:
            with pytest.raises(NetworkError) as info:
                await rest.exchange_info()
    assert isinstance(info.value, ExchangeError)


async def test_a_cancelled_call_leaves_the_client_usable(fake: FakeBinance) -> None:
    async with client(fake) as rest:
        fake.delay = 5
        with trio.move_on_after(0.2) as scope:
            await rest.exchange_info()
        assert scope.cancelled_caught
        fake.delay = 0
        with trio.fail_after(10):
            assert "BTCUSDT" in await rest.exchange_info()


async def test_concurrent_first_signed_calls_measure_the_clock_once(fake: FakeBinance) -> None:
    with trio.fail_after(10):
        async with client(fake) as rest, trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(rest.account)
    assert fake.time_calls == 1
    assert len([r for r in fake.requests if r["path"] == "/api/v3/account"]) == 5


# ----------------------------------------------------- through the MockTransport seam

Handler = Callable[[httpx2.Request], httpx2.Response]


def mock(handler: Handler, budget: WeightBudget, creds: Credentials | None = CREDS) -> BinanceRest:
    return BinanceRest(
        "https://api.test",
        credentials=creds,
        budget=budget,
        transport=httpx2.MockTransport(handler),
    )


async def test_429_retry_after_makes_every_client_on_the_key_wait(
    clock: trio.testing.MockClock,
) -> None:
    sent: list[float] = []
    statuses = [429, 200, 200]

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(trio.current_time())
        status = statuses.pop(0)
        if status == 429:
            return httpx2.Response(
                429,
                headers={"Retry-After": "30"},
                json={"code": -1003, "msg": "Too much request weight used"},
            )
        return httpx2.Response(200, json=[])

    budget = WeightBudget()
    first, second = mock(handler, budget, None), mock(handler, budget, None)
    start = trio.current_time()
    with pytest.raises(RateLimited):
        await first.klines("BTCUSDT", Interval.parse("1m"))
    await second.klines("BTCUSDT", Interval.parse("1m"))  # another strategy, same key
    await first.klines("BTCUSDT", Interval.parse("1m"))
    assert sent[0] == start and sent[1] == pytest.approx(start + 30) and sent[2] >= sent[1]


async def test_418_bans_for_its_retry_after(clock: trio.testing.MockClock) -> None:
    sent: list[float] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(trio.current_time())
        if len(sent) == 1:
            return httpx2.Response(418, headers={"Retry-After": "7200"}, text="banned")
        return httpx2.Response(200, json={"serverTime": 1})

    rest = mock(handler, WeightBudget())
    with pytest.raises(IpBanned) as info:
        await rest.sync_time()
    assert info.value.retry_after == 7200
    await rest.sync_time()
    assert sent[1] - sent[0] == pytest.approx(7200)


async def test_cancelling_a_call_waiting_for_weight_sends_nothing(
    clock: trio.testing.MockClock,
) -> None:
    sent: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(request.url.path)
        return httpx2.Response(200, json=EXCHANGE_INFO)

    budget = WeightBudget(limit=20)
    rest = mock(handler, budget, None)
    await rest.exchange_info()
    with trio.move_on_after(10):
        await rest.exchange_info()  # waits a minute for weight; cancelled after 10 s
    assert sent == ["/api/v3/exchangeInfo"]
    assert budget.core.sent() == [(pytest.approx(clock.current_time() - 10), 20)]


def test_signed_calls_without_credentials_and_odd_intervals_fail_before_sending() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise AssertionError("nothing may be sent")

    rest = mock(handler, WeightBudget(), None)

    async def main() -> None:
        with pytest.raises(ValueError, match="needs an API key"):
            await rest.account()
        with pytest.raises(ValueError, match="no '2m' klines"):
            await rest.klines("BTCUSDT", Interval.parse("2m"))

    trio.run(main)


def test_credentials_from_env() -> None:
    assert Credentials.from_env({}) is None
    creds = Credentials.from_env({"BINANCE_API_KEY": "k1", "BINANCE_API_SECRET": "s1"})
    assert creds == Credentials("k1", "s1")
    assert "k1" not in repr(creds) and "s1" not in repr(creds)
    with pytest.raises(ValueError, match="BINANCE_API_SECRET is not set"):
        Credentials.from_env({"BINANCE_API_KEY": "k1"})
    with pytest.raises(ValueError, match="BINANCE_API_KEY is not set"):
        Credentials.from_env({"BINANCE_API_SECRET": "s1"})


async def test_the_servers_used_weight_header_holds_the_next_call_back(
    clock: trio.testing.MockClock,
) -> None:
    sent: list[float] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(trio.current_time())  # another process on the key has used almost all
        used = 4797 + 2 * (len(sent) - 1)
        return httpx2.Response(200, json=[], headers={"X-MBX-USED-WEIGHT-1M": str(used)})

    rest = mock(handler, WeightBudget(limit=4800), None)
    await rest.klines("BTCUSDT", Interval.parse("1m"))  # weight 2
    await rest.klines("BTCUSDT", Interval.parse("1m"))  # 4797 + 2 <= 4800: goes now
    await rest.klines("BTCUSDT", Interval.parse("1m"))  # must wait for the minute to pass
    assert sent[1] == sent[0] and sent[2] - sent[0] == pytest.approx(60)
