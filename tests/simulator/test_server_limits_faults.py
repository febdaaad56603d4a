"""Request weight (headers, 429 then 418, the counts a test reads) and the fault switches."""

from __future__ import annotations

import json

import httpx2
import pytest
import trio
from websockets.trio.client import connect

from tests.simulator.server_helpers import (
    KEY,
    WallClock,
    http,
    make_config,
    sign,
    signed_query,
    sim,
    wall,
)
from trading.exchanges.binance.signing import ws_api_signature
from trading.simulator.faults import Fault, FaultError, Faults
from trading.simulator.rate_limits import WeightLedger
from trading.simulator.sim import ExchangeSim

__all__ = ["http", "sim", "wall"]

H = {"X-MBX-APIKEY": KEY}


async def test_weight_header_counts_each_endpoint(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock
) -> None:
    with trio.fail_after(10):
        seen = []
        for path in [
            "/api/v3/ping",
            "/api/v3/exchangeInfo",
            "/api/v3/klines?symbol=BTCUSDT&interval=1m",
        ]:
            seen.append(int((await http.get(path)).headers["x-mbx-used-weight-1m"]))
        assert seen == [1, 21, 23]  # per IP for unsigned calls
        r = await http.get("/api/v3/openOrders?" + signed_query("", wall), headers=H)
        assert r.headers["x-mbx-used-weight-1m"] == "80"  # per key; 80 without a symbol
        r = await http.get("/api/v3/openOrders?" + signed_query("symbol=BTCUSDT", wall), headers=H)
        assert r.headers["x-mbx-used-weight-1m"] == "86"
        assert (sim.weight_used(KEY).current, sim.weight_used(KEY).max_seen) == (86, 86)
        wall.t += 60  # a new minute starts from zero, the maximum stays
        r = await http.get("/api/v3/account?" + signed_query("", wall), headers=H)
        assert r.headers["x-mbx-used-weight-1m"] == "20"
        assert (sim.weight_used(KEY).current, sim.weight_used(KEY).max_seen) == (20, 86)


async def test_over_the_limit_429_then_418_for_a_client_that_keeps_going(
    nursery: trio.Nursery, wall: WallClock
) -> None:
    sim = await nursery.start(ExchangeSim(make_config(wall, weight_limit=50)).serve)
    async with httpx2.AsyncClient(base_url=sim.base_url) as http:
        with trio.fail_after(10):
            statuses = []
            for _ in range(3):
                r = await http.get("/api/v3/account?" + signed_query("", wall), headers=H)
                statuses.append(r.status_code)
            assert statuses == [200, 200, 429]
            assert r.json()["code"] == -1003 and r.headers["retry-after"] == "30"
            r = await http.get("/api/v3/account?" + signed_query("", wall), headers=H)
            assert r.status_code == 418 and int(r.headers["retry-after"]) == 120
            wall.t += 100  # the next minute: still banned, for what is left of the ban
            r = await http.get("/api/v3/ping", headers=H)
            assert r.status_code == 200  # unsigned calls count per IP, not per key
            r = await http.get("/api/v3/account?" + signed_query("", wall), headers=H)
            assert r.status_code == 418 and int(r.headers["retry-after"]) == 20
            assert sim.weight_used(KEY).max_seen == 80


def test_ledger_bans_double_and_a_waiting_client_is_forgiven() -> None:
    now = [600.0]
    ledger = WeightLedger(limit=10, now=lambda: now[0])
    assert ledger.charge("k", 10).status == 200
    assert ledger.charge("k", 1).status == 429
    now[0] += 60  # waited as told: no ban
    assert ledger.charge("k", 1).status == 200
    assert ledger.charge("k", 10).status == 429
    first = ledger.charge("k", 1)
    assert (first.status, first.retry_after) == (418, 120)
    now[0] += 121
    assert ledger.charge("k", 10).status == 200
    assert ledger.charge("k", 10).status == 429
    assert ledger.charge("k", 1).retry_after == 240


def test_faults_are_consumed_in_order_and_match_by_path_and_method() -> None:
    faults = Faults()
    faults.server_error(status=502, path="/api/v3/order", method="POST", count=2)
    faults.drop(path="/api/v3/order")
    assert faults.take("server_error", method="GET", path="/api/v3/order") is None
    assert faults.take("server_error", method="POST", path="/api/v3/time") is None
    assert faults.take("server_error", method="POST", path="/api/v3/order") is not None
    assert faults.take("server_error", method="POST", path="/api/v3/order") is not None
    assert faults.take("server_error", method="POST", path="/api/v3/order") is None
    assert faults.take("drop", method="DELETE", path="/api/v3/order") is not None
    assert faults.armed == []
    bad_ones: list[object] = [
        {"kind": "nope"}, {"kind": "drop", "count": 0}, {"kind": "malformed"},
        {"kind": "server_error", "status": 404}, {"kind": "drop", "colour": 1}, [1],
    ]  # fmt: skip
    for bad in bad_ones:
        with pytest.raises(FaultError):
            Fault.from_json(bad)


async def _place(http: httpx2.AsyncClient, wall: WallClock, cid: str) -> httpx2.Response:
    p = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=1000.00"
    p += f"&newClientOrderId={cid}"
    return await http.post("/api/v3/order", content=signed_query(p, wall), headers={
        **H, "Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip


def _open_ids(sim: ExchangeSim) -> list[str]:
    return [o.client_order_id for o in sim.engine.open_orders()]


async def test_refusing_faults_change_nothing(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock
) -> None:
    with trio.fail_after(10):
        sim.faults.server_error(status=503, path="/api/v3/order", method="POST")
        r = await _place(http, wall, "a")
        assert r.status_code == 503 and "x-mbx-used-weight-1m" in r.headers
        sim.faults.rate_limit(retry_after=7, path="/api/v3/order")
        r = await _place(http, wall, "a")
        assert (r.status_code, r.headers["retry-after"], r.json()["code"]) == (429, "7", -1003)
        sim.faults.ban(retry_after=99)
        r = await _place(http, wall, "a")
        assert (r.status_code, r.headers["retry-after"]) == (418, "99")
        sim.faults.drop(path="/api/v3/order")
        with pytest.raises(httpx2.TransportError):
            await _place(http, wall, "a")
        assert _open_ids(sim) == []
        sim.faults.delay(0.05, path="/api/v3/order")
        assert (await _place(http, wall, "a")).status_code == 200
        assert _open_ids(sim) == ["a"]


async def test_accept_then_drop_places_the_order(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock
) -> None:
    with trio.fail_after(10):
        r = await http.post(
            "/_sim/faults", json={"kind": "accept_then_drop", "path": "/api/v3/order"}
        )
        assert r.json()["armed"][0]["kind"] == "accept_then_drop"
        with pytest.raises(httpx2.TransportError):
            await _place(http, wall, "placed-anyway")
        assert _open_ids(sim) == ["placed-anyway"]
        q = signed_query("symbol=BTCUSDT&origClientOrderId=placed-anyway", wall)
        assert (await http.get("/api/v3/order?" + q, headers=H)).json()["status"] == "NEW"
        assert (await http.get("/_sim/faults")).json() == {"armed": []}


async def _subscribe(ws: object, wall: WallClock) -> int:
    params: dict[str, object] = {"apiKey": KEY, "timestamp": wall.ms()}
    params["signature"] = ws_api_signature("test-secret-abcdef", params)
    await ws.send(
        json.dumps({"id": "s", "method": "userDataStream.subscribe.signature", "params": params})
    )  # type: ignore[attr-defined]
    reply = json.loads(await ws.recv())  # type: ignore[attr-defined]
    assert reply["status"] == 200, reply
    sub_id: int = reply["result"]["subscriptionId"]
    return sub_id


@pytest.mark.parametrize("push_first", [True, False])
async def test_push_before_answer(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock, push_first: bool
) -> None:
    order: list[str] = []
    async with connect(sim.ws_url + "/ws-api/v3") as ws:
        await _subscribe(ws, wall)
        if push_first:
            sim.faults.push_before_answer(path="/api/v3/order", method="POST")

        async def rest() -> None:
            await _place(http, wall, "pushed")
            order.append("rest")

        async def push() -> None:
            frame = json.loads(await ws.recv())
            assert frame["event"]["e"] == "executionReport" and frame["event"]["c"] == "pushed"
            order.append("push")

        with trio.fail_after(10):
            async with trio.open_nursery() as n:
                n.start_soon(rest)
                n.start_soon(push)
    if push_first:
        assert order == ["push", "rest"]
    else:  # without the fault either may come first; both come
        assert sorted(order) == ["push", "rest"]


async def test_malformed_frames_on_the_user_stream_are_inserted(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock
) -> None:
    async with connect(sim.ws_url + "/ws-api/v3") as ws:
        await _subscribe(ws, wall)
        await http.post("/_sim/faults", json={"kind": "malformed", "stream": "user"})
        with trio.fail_after(10):
            await _place(http, wall, "m")
            with pytest.raises(ValueError):
                json.loads(await ws.recv())
            assert json.loads(await ws.recv())["event"]["e"] == "executionReport"


def test_sign_helper_matches_the_docs() -> None:
    payload = (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
        "&recvWindow=5000&timestamp=1499827319559"
    )
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    assert (
        sign(payload, secret) == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )
