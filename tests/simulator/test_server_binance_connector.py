"""Binance's own ``binance-connector`` (``binance.spot.Spot``), unchanged, against exchange-sim.

Only configuration: ``base_url``. It sends every parameter in the query string, POST and
DELETE included, numbers as ``str(float)``.
"""

from __future__ import annotations

import pytest

from tests.simulator.server_helpers import KEY, SECRET
from tests.simulator.test_server_ccxt import in_thread, real_sim
from trading.simulator.sim import ExchangeSim

spot = pytest.importorskip("binance.spot")
binance_error = pytest.importorskip("binance.error")

__all__ = ["real_sim"]


async def test_binance_connector_trades_against_the_sim(real_sim: ExchangeSim) -> None:
    client = spot.Spot(api_key=KEY, api_secret=SECRET, base_url=real_sim.base_url)
    assert (await in_thread(client.time))["serverTime"] > 0
    info = await in_thread(lambda: client.exchange_info(symbol="BTCUSDT"))
    assert info["symbols"][0]["symbol"] == "BTCUSDT"
    assert len(await in_thread(lambda: client.klines("BTCUSDT", "1m", limit=2))) == 2
    order = await in_thread(
        lambda: client.new_order(
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity=0.001,
            price=50000.0,
            newClientOrderId="bc-1",
        )
    )
    assert order["status"] == "NEW" and order["price"] == "50000.00000000"
    got = await in_thread(lambda: client.get_order("BTCUSDT", origClientOrderId="bc-1"))
    assert got["orderId"] == order["orderId"]
    canceled = await in_thread(lambda: client.cancel_order("BTCUSDT", orderId=order["orderId"]))
    assert canceled["status"] == "CANCELED"
    balances = {b["asset"] for b in (await in_thread(client.account))["balances"]}
    assert balances >= {"USDT", "BTC"}
    with pytest.raises(binance_error.ClientError) as caught:
        await in_thread(lambda: client.cancel_order("BTCUSDT", orderId=order["orderId"]))
    assert caught.value.error_code == -2011
