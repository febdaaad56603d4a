"""Third-party clients, unchanged, against exchange-sim: ccxt's binance (sync, in a thread).

Only configuration is changed: the REST URLs and the options that keep ccxt on spot (the
documented recipe in ``trading.simulator.cli.CCXT_HINT``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import trio

from tests.simulator.server_helpers import KEY, SECRET, START_MS
from trading.simulator.sim import ExchangeSim, SimConfig

ccxt = pytest.importorskip("ccxt")

T = TypeVar("T")


def ccxt_binance(sim: ExchangeSim) -> Any:
    exchange = ccxt.binance(
        {
            "apiKey": KEY,
            "secret": SECRET,
            "enableRateLimit": False,
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
        }
    )
    api = sim.base_url + "/api/v3"
    exchange.urls["api"]["public"] = api
    exchange.urls["api"]["private"] = api
    return exchange


async def in_thread(fn: Callable[[], T]) -> T:
    with trio.fail_after(30):
        return await trio.to_thread.run_sync(fn)


@pytest.fixture
async def real_sim(nursery: trio.Nursery) -> ExchangeSim:
    # ccxt signs with the machine's clock: the simulator checks timestamps against it too.
    config = SimConfig(
        api_key=KEY, api_secret=SECRET, balances={"USDT": Decimal(10000), "BTC": Decimal(1)},
        symbols=("BTCUSDT", "ETHUSDT"), start_ms=START_MS, stepped=True, wall_clock=time.time,
    )  # fmt: skip
    started: ExchangeSim = await nursery.start(ExchangeSim(config).serve)
    return started


async def test_ccxt_binance_trades_against_the_sim(real_sim: ExchangeSim) -> None:
    sim = real_sim
    ex = ccxt_binance(sim)
    markets = await in_thread(ex.load_markets)
    assert "BTC/USDT" in markets and markets["BTC/USDT"]["precision"]["price"] == 0.01
    ohlcv = await in_thread(lambda: ex.fetch_ohlcv("BTC/USDT", "1m", limit=10))
    assert len(ohlcv) == 10 and ohlcv[-1][0] == sim.now_ms()
    since = await in_thread(
        lambda: ex.fetch_ohlcv("BTC/USDT", "1h", since=START_MS - 7200_000, limit=2)
    )
    assert [row[0] for row in since] == [START_MS - 7200_000, START_MS - 3600_000]
    balance = await in_thread(ex.fetch_balance)
    assert balance["USDT"]["free"] == 10000 and balance["BTC"]["total"] == 1

    market = await in_thread(lambda: ex.create_order("BTC/USDT", "market", "buy", 0.01))
    assert market["status"] == "closed" and market["filled"] == 0.01 and market["trades"]
    limit = await in_thread(
        lambda: ex.create_order("BTC/USDT", "limit", "buy", 0.01, 50000, {"clientOrderId": "cc-1"})
    )
    assert limit["status"] == "open" and limit["clientOrderId"] == "cc-1"
    fetched = await in_thread(lambda: ex.fetch_order(limit["id"], "BTC/USDT"))
    assert fetched["status"] == "open" and fetched["price"] == 50000
    open_orders = await in_thread(lambda: ex.fetch_open_orders("BTC/USDT"))
    assert [o["id"] for o in open_orders] == [limit["id"]]
    canceled = await in_thread(lambda: ex.cancel_order(limit["id"], "BTC/USDT"))
    assert canceled["status"] == "canceled"
    assert await in_thread(lambda: ex.fetch_open_orders("BTC/USDT")) == []
    trades = await in_thread(lambda: ex.fetch_my_trades("BTC/USDT"))
    assert len(trades) >= 1 and trades[0]["order"] == market["id"]
    assert trades[0]["fee"]["currency"] == "BTC"

    # A resting sell that the market reaches, seen by ccxt afterwards.
    ticker = await in_thread(lambda: ex.fetch_ticker("BTC/USDT"))
    price = ticker["last"]
    assert ticker["bid"] < ticker["ask"] and ticker["low"] <= price <= ticker["high"]
    sell = await in_thread(
        lambda: ex.create_order("BTC/USDT", "limit", "sell", 0.01, round(price + 5, 2))
    )
    for _ in range(60):
        await sim.advance(60)
        if not sim.engine.open_orders():
            break
    done = await in_thread(lambda: ex.fetch_order(sell["id"], "BTC/USDT"))
    assert done["status"] == "closed" and done["filled"] == 0.01


async def test_ccxt_sees_binance_errors_as_its_own_exceptions(real_sim: ExchangeSim) -> None:
    ex = ccxt_binance(real_sim)
    await in_thread(ex.load_markets)
    with pytest.raises(ccxt.InsufficientFunds):
        await in_thread(lambda: ex.create_order("BTC/USDT", "limit", "buy", 1, 50000))
    with pytest.raises(ccxt.OrderNotFound):
        await in_thread(lambda: ex.fetch_order("12345", "BTC/USDT"))
    with pytest.raises(ccxt.OrderNotFound):
        await in_thread(lambda: ex.cancel_order("12345", "BTC/USDT"))
    ex.secret = "wrong"
    with pytest.raises(ccxt.AuthenticationError):
        await in_thread(ex.fetch_balance)
    real_sim.faults.rate_limit(retry_after=3, path="/api/v3/account")
    ex.secret = SECRET
    with pytest.raises(ccxt.DDoSProtection):
        await in_thread(ex.fetch_balance)
