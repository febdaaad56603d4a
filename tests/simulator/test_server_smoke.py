from __future__ import annotations

import httpx2
import trio

from tests.simulator.server_helpers import KEY, WallClock, http, signed_query, sim, wall
from trading.simulator.sim import ExchangeSim

__all__ = ["http", "sim", "wall"]


async def test_ping_time_and_a_market_order(
    sim: ExchangeSim, http: httpx2.AsyncClient, wall: WallClock
) -> None:
    with trio.fail_after(10):
        r = await http.get("/api/v3/ping")
        assert r.status_code == 200 and r.json() == {}
        r = await http.get("/api/v3/time")
        assert r.json() == {"serverTime": wall.ms()}
        r = await http.get("/api/v3/exchangeInfo")
        print(r.json()["symbols"][0])
        r = await http.get("/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=3")
        print(r.json())
        q = signed_query("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01", wall)
        r = await http.post("/api/v3/order?" + q, headers={"X-MBX-APIKEY": KEY})
        print(r.status_code, r.headers, r.json())
        assert r.status_code == 200
