"""A replay is the live run: the same orders as ``trio-trade run``'s simulated venue fed the
same bars (a VirtualClock on trio's MockClock, the BarScheduler, the polling paper broker)."""

from __future__ import annotations

import sys
from pathlib import Path

import trio
import trio.testing

import trading
from tests.replay.helpers import order_rows
from trading.core.bars import Interval
from trading.core.orders import Order
from trading.replay import replay
from trading.serve import SIM_START

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "strategies"))
from sma_cross import SmaCross

M15 = Interval.parse("15m")
WARMUP = 30
BARS = 400  # about four days of 15-minute bars from the CLI's simulated start


async def live_run(last_close: float) -> tuple[list[Order], int]:
    clock = trading.VirtualClock(start=SIM_START)
    market, exchange = trading.simulated(clock, seed=7)  # what `trio-trade run` builds
    orders: list[Order] = []
    async with trading.Runner(clock=clock, market=market, exchange=exchange) as runner:
        assert runner.engine is not None
        runner.engine.on_sent = orders.append
        sr = await runner.add(SmaCross())
        await clock.sleep_until(last_close + 60)  # past the last close, before the next
        computes = sr.computes
    return orders, computes


def test_a_replay_gives_the_orders_of_a_live_run_on_the_same_bars() -> None:
    market = trading.SimulatedMarket(seed=7)
    end = SIM_START + (BARS - WARMUP - 1) * M15.seconds
    bars = market.bars("BTCUSDT", M15, end=end, limit=BARS)
    assert bars[WARMUP].close_time == SIM_START  # the live run's first compute, on start

    live, live_computes = trio.run(
        live_run, bars[-1].close_time, clock=trio.testing.MockClock(autojump_threshold=0)
    )
    replayed = replay(SmaCross, bars, warmup=WARMUP, progress=False)

    assert replayed.computes == live_computes == BARS - WARMUP
    assert len(live) >= 6  # a few round trips: the comparison means something
    assert order_rows(replayed.orders) == order_rows(tuple(live))
