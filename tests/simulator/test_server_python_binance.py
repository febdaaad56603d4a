"""python-binance's ``Client``, unchanged, against exchange-sim (sync, in a thread).

Only configuration: ``ping=False`` (its constructor pings the real exchange otherwise) and
``API_URL`` pointed at the simulator. It sends POST and DELETE parameters in a form body.
"""

from __future__ import annotations

import pytest

from tests.simulator.server_helpers import KEY, SECRET
from tests.simulator.test_server_ccxt import in_thread, real_sim
from trading.simulator.sim import ExchangeSim

binance_client = pytest.importorskip("binance.client")
binance_exceptions = pytest.importorskip("binance.exceptions")

__all__ = ["real_sim"]


async def test_python_binance_trades_against_the_sim(real_sim: ExchangeSim) -> None:
    client = binance_client.Client(KEY, SECRET, ping=False)
    client.API_URL = real_sim.base_url + "/api"
    assert (await in_thread(client.get_server_time))["serverTime"] > 0
    info = await in_thread(lambda: client.get_symbol_info("BTCUSDT"))
    assert info["filters"][0]["tickSize"] == "0.01000000"
    klines = await in_thread(lambda: client.get_klines(symbol="BTCUSDT", interval="1m", limit=3))
    assert len(klines) == 3
    account = await in_thread(client.get_account)
    assert {b["asset"] for b in account["balances"]} >= {"USDT", "BTC"}
    market = await in_thread(lambda: client.order_market_buy(symbol="BTCUSDT", quantity="0.001"))
    assert market["status"] == "FILLED"
    limit = await in_thread(
        lambda: client.order_limit_buy(
            symbol="BTCUSDT", quantity="0.001", price="50000.00", newClientOrderId="pb-1"
        )
    )
    assert limit["status"] == "NEW"
    got = await in_thread(lambda: client.get_order(symbol="BTCUSDT", origClientOrderId="pb-1"))
    assert got["orderId"] == limit["orderId"]
    assert [o["clientOrderId"] for o in await in_thread(client.get_open_orders)] == ["pb-1"]
    canceled = await in_thread(
        lambda: client.cancel_order(symbol="BTCUSDT", orderId=limit["orderId"])
    )
    assert canceled["status"] == "CANCELED"
    trades = await in_thread(lambda: client.get_my_trades(symbol="BTCUSDT"))
    assert [t["orderId"] for t in trades] == [market["orderId"]] * len(trades)
    with pytest.raises(binance_exceptions.BinanceAPIException) as caught:
        await in_thread(lambda: client.get_order(symbol="BTCUSDT", orderId=999))
    assert caught.value.code == -2013
