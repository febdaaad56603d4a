"""exchange-sim's REST front door, as an adversarial client sees it: where parameters travel,
signatures over raw bytes, the error codes, the endpoints' answers."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
import trio

from tests.simulator.server_helpers import (
    KEY,
    SECRET,
    WallClock,
    http,
    sign,
    signed_query,
    sim,
    wall,
)
from trading.simulator.faults import Faults
from trading.simulator.rate_limits import WeightLedger
from trading.simulator.rest_api import Call, RestApi, Route
from trading.simulator.server import MAX_BODY, HttpRequest
from trading.simulator.sim import ExchangeSim

__all__ = ["http", "sim", "wall"]

H = {"X-MBX-APIKEY": KEY}
FORM = {"Content-Type": "application/x-www-form-urlencoded", "X-MBX-APIKEY": KEY}


def _limit_params(price: str = "50000.00", qty: str = "0.01", cid: str = "c1") -> str:
    return (
        f"symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity={qty}&price={price}"
        f"&newClientOrderId={cid}"
    )


async def _check_open(http: httpx2.AsyncClient, wall: WallClock, cid: str) -> dict[str, Any]:
    r = await http.get(
        "/api/v3/order?" + signed_query(f"symbol=BTCUSDT&origClientOrderId={cid}", wall), headers=H
    )
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


@pytest.mark.parametrize("where", ["query", "body", "mixed", "mixed-signature-in-query"])
async def test_parameters_travel_in_query_body_or_both(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock, where: str
) -> None:
    params = _limit_params(cid=f"sig-{where}") + f"&timestamp={wall.ms()}"
    with trio.fail_after(10):
        if where == "query":
            r = await http.post(f"/api/v3/order?{params}&signature={sign(params)}", headers=H)
        elif where == "body":
            r = await http.post(
                "/api/v3/order", content=f"{params}&signature={sign(params)}", headers=FORM
            )
        else:
            query, body = params.split("&quantity=")
            body = "quantity=" + body
            if where == "mixed":  # signature over query + body, no separator between them
                content, url = f"{body}&signature={sign(query + body)}", f"/api/v3/order?{query}"
            else:
                content, url = body, f"/api/v3/order?{query}&signature={sign(query + body)}"
            r = await http.post(url, content=content, headers=FORM)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "NEW"
        assert (await _check_open(http, wall, f"sig-{where}"))["price"] == "50000.00000000"


async def test_unsorted_params_and_str_float_numbers_are_accepted(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock
) -> None:
    # Binance's own SDK: every parameter in the query, unsorted, numbers as str(float).
    params = (
        f"timestamp={wall.ms()}&quantity={0.01}&type=LIMIT&price={50000.0}&symbol=BTCUSDT"
        "&timeInForce=GTC&side=BUY&newClientOrderId=sdk-1"
    )
    with trio.fail_after(10):
        r = await http.delete(f"/api/v3/order?{params}&signature=00", headers=H)
        assert r.json()["code"] == -1022  # DELETE checked too, before anything else happens
        r = await http.post(f"/api/v3/order?{params}&signature={sign(params)}", headers=H)
        assert r.status_code == 200, r.text
        assert r.json()["origQty"] == "0.01000000"
        # Tiny floats print in exponent form, which Binance's number syntax refuses.
        bad = params.replace("quantity=0.01", f"quantity={0.00001}").replace("sdk-1", "sdk-2")
        r = await http.post(f"/api/v3/order?{bad}&signature={sign(bad)}", headers=H)
        assert (r.status_code, r.json()["code"]) == (400, -1100)


async def test_query_wins_over_body(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock
) -> None:
    query = "price=40000.00"
    body = _limit_params(price="45000.00", cid="wins") + f"&timestamp={wall.ms()}"
    with trio.fail_after(10):
        r = await http.post(
            f"/api/v3/order?{query}",
            content=f"{body}&signature={sign(query + body)}",
            headers=FORM,
        )
        assert r.status_code == 200, r.text
        assert r.json()["price"] == "40000.00000000"


async def test_signature_and_key_errors(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock
) -> None:
    q = signed_query("", wall)
    with trio.fail_after(10):
        cases = [
            ({}, q, 401, -2014),
            ({"X-MBX-APIKEY": "someone-else"}, q, 401, -2015),
            (H, signed_query("", wall, secret=SECRET + "x"), 400, -1022),
            (H, q.replace("timestamp=", "timestamp=1"), 400, -1022),  # tampered after signing
            (H, f"timestamp={wall.ms()}", 400, -1102),  # no signature
        ]
        for headers, query, status, code in cases:
            r = await http.get(f"/api/v3/account?{query}", headers=headers)
            assert (r.status_code, r.json()["code"]) == (status, code), (query, r.text)
            assert r.headers["content-type"].startswith("application/json")
            assert "X-MBX-USED-WEIGHT-1M".lower() in r.headers
            assert SECRET not in r.text and KEY not in r.text


@pytest.mark.parametrize(
    ("offset_ms", "recv_window", "ok"),
    [(0, None, True), (-4999, None, True), (-5001, None, False), (999, None, True),
     (1000, None, False), (-59_000, 60_000, True), (-61_000, 60_000, False)],
)  # fmt: skip
async def test_timestamp_and_recv_window(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock,
    offset_ms: int, recv_window: int | None, ok: bool,
) -> None:  # fmt: skip
    params = f"timestamp={wall.ms() + offset_ms}"
    if recv_window is not None:
        params += f"&recvWindow={recv_window}"
    with trio.fail_after(10):
        r = await http.get(f"/api/v3/account?{params}&signature={sign(params)}", headers=H)
    assert (r.status_code == 200) is ok, r.text
    if not ok:
        assert r.json()["code"] == -1021


async def test_recv_window_over_the_cap_is_refused(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock
) -> None:
    params = f"timestamp={wall.ms()}&recvWindow=60001"
    with trio.fail_after(10):
        r = await http.get(f"/api/v3/account?{params}&signature={sign(params)}", headers=H)
    assert r.status_code == 400 and r.json()["code"] == -1131


async def test_request_errors_are_json_4xx(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock
) -> None:
    with trio.fail_after(10):
        r = await http.get("/api/v3/nope")
        assert r.status_code == 404 and r.json()["code"] == -1000
        assert "x-mbx-used-weight-1m" in r.headers
        r = await http.put("/api/v3/ping")
        assert r.status_code == 405
        r = await http.head("/api/v3/time")  # answered without a body, connection still usable
        assert r.status_code == 405 and r.content == b""
        assert (await http.get("/api/v3/ping")).status_code == 200
        r = await http.get("/api/v3/klines?symbol=BTCUSDT&interval=7m")
        assert r.json()["code"] == -1120
        r = await http.get("/api/v3/klines?symbol=NOPE&interval=1m")
        assert r.json()["code"] == -1121
        r = await http.get("/api/v3/klines?interval=1m")
        assert r.json()["code"] == -1102 and "'symbol'" in r.json()["msg"]
        r = await http.get("/api/v3/klines?symbol=BTCUSDT&symbol=ETHUSDT&interval=1m")
        assert r.json()["code"] == -1101
        r = await http.get(
            "/api/v3/order?" + signed_query("symbol=BTCUSDT&origClientOrderId=none", wall),
            headers=H,
        )
        assert (r.status_code, r.json()["code"]) == (400, -2013)
        r = await http.delete(
            "/api/v3/order?" + signed_query("symbol=BTCUSDT&orderId=999", wall), headers=H
        )
        assert (r.status_code, r.json()["code"]) == (400, -2011)
        big = _limit_params(qty="1", cid="big")
        r = await http.post("/api/v3/order?" + signed_query(big, wall), headers=H)
        assert r.json()["code"] == -2010
        r = await http.post("/_sim/faults", content=b'{"kind": "teleport"}')
        assert r.status_code == 400 and "teleport" in r.json()["msg"]


async def test_an_order_lifecycle(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock
) -> None:
    with trio.fail_after(10):
        for resp_type, keys in [("ACK", 5), ("RESULT", 16), ("FULL", 17)]:
            p = (
                _limit_params(price="1000.00", cid=f"r-{resp_type}")
                + f"&newOrderRespType={resp_type}"
            )
            r = await http.post("/api/v3/order?" + signed_query(p, wall), headers=H)
            assert r.status_code == 200 and len(r.json()) == keys, r.text
            assert r.headers["x-mbx-order-count-10s"] and r.headers["x-mbx-order-count-1d"]
        r = await http.get("/api/v3/openOrders?" + signed_query("symbol=BTCUSDT", wall), headers=H)
        assert [o["clientOrderId"] for o in r.json()] == ["r-ACK", "r-RESULT", "r-FULL"]
        r = await http.delete(
            "/api/v3/order?" + signed_query("symbol=BTCUSDT&origClientOrderId=r-ACK", wall),
            headers=H,
        )
        assert r.json()["status"] == "CANCELED" and r.json()["origClientOrderId"] == "r-ACK"
        r = await http.delete(
            "/api/v3/openOrders?" + signed_query("symbol=BTCUSDT", wall), headers=H
        )
        assert sorted(o["origClientOrderId"] for o in r.json()) == ["r-FULL", "r-RESULT"]
        p = "symbol=BTCUSDT&side=BUY&type=MARKET&quoteOrderQty=100"
        r = await http.post("/api/v3/order?" + signed_query(p, wall), headers=H)
        assert r.json()["status"] == "FILLED" and r.json()["fills"]
        r = await http.get("/api/v3/allOrders?" + signed_query("symbol=BTCUSDT", wall), headers=H)
        assert [o["status"] for o in r.json()] == ["CANCELED"] * 3 + ["FILLED"]
        r = await http.get("/api/v3/myTrades?" + signed_query("symbol=BTCUSDT", wall), headers=H)
        assert len(r.json()) >= 1 and r.json()[0]["isBuyer"] is True
        r = await http.get("/api/v3/account?" + signed_query("", wall), headers=H)
        balances = {b["asset"]: b for b in r.json()["balances"]}
        assert balances["USDT"]["locked"] == "0.00000000"
        assert balances["BTC"]["free"] > "1.00000000"
        p = _limit_params(cid="t") + "&newOrderRespType=FULL"
        r = await http.post("/api/v3/order/test?" + signed_query(p, wall), headers=H)
        assert r.json() == {}
        r = await http.get("/api/v3/openOrders?" + signed_query("", wall), headers=H)
        assert r.json() == []  # order/test placed nothing


async def test_market_data_endpoints(sim: ExchangeSim, http: httpx2.AsyncClient) -> None:
    with trio.fail_after(10):
        info = (await http.get('/api/v3/exchangeInfo?symbols=["ETHUSDT"]')).json()
        assert [s["symbol"] for s in info["symbols"]] == ["ETHUSDT"]
        sym = info["symbols"][0]
        assert {f["filterType"] for f in sym["filters"]} >= {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL"}
        assert sym["isSpotTradingAllowed"] and "MARKET" in sym["orderTypes"]
        assert info["rateLimits"][0]["limit"] == 6000
        rows = (await http.get("/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=5")).json()
        assert len(rows) == 5 and rows[-1][0] == sim.now_ms()  # the open bar is the last row
        start = sim.start_ms - 3600_000
        rows = (
            await http.get(f"/api/v3/klines?symbol=BTCUSDT&interval=5m&startTime={start}&limit=3")
        ).json()
        assert [r[0] for r in rows] == [start, start + 300_000, start + 600_000]
        price = (await http.get("/api/v3/ticker/price?symbol=BTCUSDT")).json()
        assert price["symbol"] == "BTCUSDT" and float(price["price"]) > 0
        depth = (await http.get("/api/v3/depth?symbol=BTCUSDT&limit=5")).json()
        assert len(depth["bids"]) == 5 and depth["bids"][0][0] < depth["asks"][0][0]
        avg = (await http.get("/api/v3/avgPrice?symbol=BTCUSDT")).json()
        assert avg["mins"] == 5


async def test_keep_alive_pipelining_and_malformed_http(sim: ExchangeSim) -> None:
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", sim.server.port)
        two = (
            b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /api/v3/time HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        await stream.send_all(two)
        data = b""
        while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"}"):
            data += await stream.receive_some()
        first, second = data.index(b"{}"), data.index(b"serverTime")
        assert first < second
        await stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")
        answer = b""
        while chunk := await stream.receive_some():
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 400")
        await stream.aclose()
        r = await httpx2.AsyncClient().get(sim.base_url + "/api/v3/ping")
        assert r.status_code == 200  # the server lives on


async def test_a_body_over_the_cap_is_refused(sim: ExchangeSim, http: httpx2.AsyncClient) -> None:
    with trio.fail_after(10):
        r = await http.post("/api/v3/order", content=b"x" * (MAX_BODY + 1))
    assert r.status_code == 413 and r.json()["code"] == -1000


async def test_an_endpoint_bug_is_a_logged_500_not_a_dead_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(call: Call) -> Any:
        raise ZeroDivisionError("a bug")

    api = RestApi(
        [Route("GET", "/api/v3/bug", lambda p: 1, False, broken)],
        {}, WeightLedger(), Faults(), lambda: 0,
    )  # fmt: skip
    answer = await api(HttpRequest("GET", "/api/v3/bug", "", {}, b"", "127.0.0.1"))
    assert answer is not None and answer.status == 500
    assert json.loads(answer.body)["code"] == -1000
    assert "a bug" in caplog.text
