"""ExchangeSim's in-process API (the contract the other parts build on) and real-time mode."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import trio
from websockets.trio.client import connect

from trading.testing import ExchangeSim, SimConfig


def test_config_refuses_bad_values_by_name() -> None:
    with pytest.raises(ValueError, match="DOGEBTC"):
        SimConfig(symbols=("DOGEBTC",))
    with pytest.raises(ValueError, match="speed"):
        SimConfig(speed=0)
    with pytest.raises(ValueError, match="USDT"):
        SimConfig(balances={"USDT": Decimal(-1)})
    assert "secret" not in repr(SimConfig(api_secret="very-secret")).replace("api_secret", "")
    assert "very-secret" not in repr(SimConfig(api_secret="very-secret"))


async def test_real_time_mode_runs_the_market_by_itself(nursery: trio.Nursery) -> None:
    config = SimConfig(symbols=("btcusdt",), speed=600.0, start_ms=1_735_689_600_000)
    sim: ExchangeSim = await nursery.start(ExchangeSim(config).serve)
    assert sim.base_url.startswith("http://127.0.0.1:") and sim.ws_url.startswith("ws://127.0.0.1:")
    assert sim.base_url.rsplit(":", 1)[1] == sim.ws_url.rsplit(":", 1)[1]
    with pytest.raises(RuntimeError, match="stepped"):
        await sim.advance(1)
    first = sim.now_ms()
    async with connect(sim.ws_url + "/ws/btcusdt@kline_1m") as ws:
        with trio.fail_after(20):
            while True:
                frame = json.loads(await ws.recv())
                if frame["k"]["x"]:
                    break
    assert frame["k"]["T"] < sim.now_ms() and sim.now_ms() > first
    assert sim.weight_used(config.api_key).current == 0
