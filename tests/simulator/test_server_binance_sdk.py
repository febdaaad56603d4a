"""Binance's current official SDK (``binance-sdk-spot``), unchanged, against exchange-sim.

Only configuration: ``ConfigurationRestAPI(base_path=sim.base_url)``. It sends every parameter
in the query string, POST and DELETE included, numbers as ``str(float)``.
"""

from __future__ import annotations

import pytest

from tests.simulator.server_helpers import KEY, SECRET
from tests.simulator.test_server_ccxt import in_thread, real_sim
from trading.simulator.sim import ExchangeSim

configuration = pytest.importorskip("binance_common.configuration")
errors = pytest.importorskip("binance_common.errors")
spot = pytest.importorskip("binance_sdk_spot.spot")

__all__ = ["real_sim"]


async def test_binance_sdk_spot_trades_against_the_sim(real_sim: ExchangeSim) -> None:
    config = configuration.ConfigurationRestAPI(
        api_key=KEY, api_secret=SECRET, base_path=real_sim.base_url
    )
    api = spot.Spot(config_rest_api=config).rest_api
    assert (await in_thread(lambda: api.time().data())).server_time > 0
    rows = await in_thread(lambda: api.klines("BTCUSDT", "1m", limit=2).data())
    assert len(rows) == 2
    order = await in_thread(
        lambda: api.new_order(
            symbol="BTCUSDT", side="BUY", type="LIMIT", time_in_force="GTC",
            quantity=0.001, price=50000.0, new_client_order_id="sdk-1",
        ).data()
    )  # fmt: skip
    assert order.status == "NEW" and order.price == "50000.00000000"
    got = await in_thread(lambda: api.get_order("BTCUSDT", orig_client_order_id="sdk-1").data())
    assert got.order_id == order.order_id
    canceled = await in_thread(lambda: api.delete_order("BTCUSDT", order_id=order.order_id).data())
    assert canceled.status == "CANCELED"
    balances = {b.asset for b in (await in_thread(lambda: api.get_account().data())).balances}
    assert balances >= {"USDT", "BTC"}
    with pytest.raises(errors.BadRequestError, match="-2013"):
        await in_thread(lambda: api.get_order("BTCUSDT", order_id=999))
