"""ccxt.pro's binance, unchanged, on exchange-sim's streams: ``watch_ohlcv`` on the market
stream and ``watch_orders`` on the WebSocket API's user data stream (``subscribe.signature``).

ccxt.pro runs on asyncio, so it runs in a thread with its own event loop while the test's Trio
loop serves and moves the stepped market.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trio

from tests.simulator.server_helpers import KEY, SECRET
from tests.simulator.test_server_ccxt import real_sim
from trading.simulator.sim import ExchangeSim

ccxt_pro = pytest.importorskip("ccxt.pro")

__all__ = ["real_sim"]


def pro_binance(sim: ExchangeSim) -> Any:
    exchange = ccxt_pro.binance(
        {
            "apiKey": KEY,
            "secret": SECRET,
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
        }
    )
    api = exchange.urls["api"]
    api["public"] = api["private"] = sim.base_url + "/api/v3"
    api["ws"]["spot"] = sim.ws_url + "/ws"
    api["ws"]["ws-api"]["spot"] = sim.ws_url + "/ws-api/v3"
    return exchange


async def _pro_session(sim: ExchangeSim) -> dict[str, Any]:
    exchange = pro_binance(sim)
    try:
        await exchange.load_markets()
        candles = await asyncio.wait_for(exchange.watch_ohlcv("BTC/USDT", "1m"), 10)
        watching = asyncio.ensure_future(exchange.watch_orders("BTC/USDT"))
        await asyncio.sleep(0.5)  # let the user-stream subscription settle
        order = await exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 50000)
        orders = await asyncio.wait_for(watching, 10)
        return {"candles": candles, "order": order, "orders": orders}
    finally:
        await exchange.close()


async def test_ccxt_pro_watches_klines_and_orders(real_sim: ExchangeSim) -> None:
    sim = real_sim
    result: dict[str, Any] = {}

    def in_asyncio() -> None:
        result.update(asyncio.run(_pro_session(sim)))

    async with trio.open_nursery() as nursery:

        async def market() -> None:
            while True:  # the stepped market moves while ccxt.pro watches
                await sim.advance(1)
                await trio.sleep(0.05)

        nursery.start_soon(market)
        with trio.fail_after(30):
            await trio.to_thread.run_sync(in_asyncio)
        nursery.cancel_scope.cancel()
    assert result["candles"] and result["candles"][-1][0] % 60_000 == 0
    assert [o["id"] for o in result["orders"]] == [result["order"]["id"]]
    assert result["orders"][0]["status"] == "open"
