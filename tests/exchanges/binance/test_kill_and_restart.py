"""``kill -9`` of a live ``trio-trade run`` with an open order, then a restart: the restarted run
adopts the order and the position, re-sends nothing, and can still cancel what it adopted.

The run is the real CLI in a child process, on ``--exchange binance --live`` against exchange-sim
served by this test on 127.0.0.1 (stepped: the test closes the bars).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from trading.testing import ExchangeSim, SimConfig

from .sim_helpers import serving

pytestmark = pytest.mark.timeout(120)

KEY, SECRET = "kill-key", "kill-secret"

STRATEGY = textwrap.dedent(
    '''
    """Buys once, then rests a limit buy far below the market."""
    import trading


    class Keeper(trading.Strategy):
        interval = "1m"
        symbols = ("BTCUSDT",)
        compute_on_start = False

        async def next(self, ctx: trading.Context) -> None:
            if ctx.computes == 0 and not ctx.account.open_orders():
                if ctx.position().quantity == 0:
                    await ctx.buy("0.01")
                last = (await ctx.history(limit=1))[-1].close
                await ctx.buy("0.01", price=round(last * 0.5, 2))
    '''
)


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSim]:
    config = SimConfig(api_key=KEY, api_secret=SECRET, stepped=True, ping_interval=None)
    async with serving(config) as sim:
        yield sim


def start_run(sim: ExchangeSim, tmp: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BINANCE_API_KEY": KEY, "BINANCE_API_SECRET": SECRET}
    args = [
        sys.executable, "-m", "trading", "run", "keeper",
        "--strategies-dir", str(tmp / "strategies"),
        "--exchange", "binance", "--live", "--base-url", sim.base_url,
        "--db", str(tmp / "run.db"),
    ]  # fmt: skip
    return subprocess.Popen(
        args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def ours(sim: ExchangeSim) -> list[str]:
    """Every order the strategy ever placed at the exchange, by client id."""
    known = {**sim.endpoints.orders, **{o.order_id: o for o in sim.engine.open_orders()}}
    return [
        known[i].client_order_id
        for i in sorted(known)
        if known[i].client_order_id.startswith("tt-keeper-")
    ]


async def until(sim: ExchangeSim, predicate: object, seconds: float = 30.0) -> None:
    """Close bars on the exchange until ``predicate()`` holds (bounded)."""
    assert callable(predicate)
    with trio.fail_after(seconds):
        while not predicate():
            await sim.advance(60)
            await trio.sleep(0.2)


async def test_kill_9_with_an_open_order_then_restart_adopts_it_and_duplicates_nothing(
    sim: ExchangeSim, tmp_path: Path
) -> None:
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "keeper.py").write_text(STRATEGY)
    first = start_run(sim, tmp_path)
    try:
        await until(sim, lambda: len(sim.engine.open_orders("BTCUSDT")) == 1)
        placed = ours(sim)
        assert len(placed) == 2  # the market buy and the resting limit
        resting = sim.engine.open_orders("BTCUSDT")[0].client_order_id
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    assert len(sim.engine.open_orders("BTCUSDT")) == 1  # the crash left it resting

    second = start_run(sim, tmp_path)
    try:
        # the restarted strategy computes a few bars: with the order adopted it places nothing
        for _ in range(3):
            await sim.advance(60)
            await trio.sleep(0.5)
        assert second.poll() is None, second.stderr.read().decode() if second.stderr else ""
        assert ours(sim) == placed  # nothing re-sent, nothing new
        assert second.stdin is not None
        second.stdin.write(b"stop keeper\n")
        second.stdin.flush()
        await trio.to_thread.run_sync(second.wait, 30)
    finally:
        if second.poll() is None:
            second.kill()
    err = second.stderr.read().decode() if second.stderr else ""
    assert "recovered" in err and "adopted 1 open order" in err, err
    assert "positions BTCUSDT 0.00999" in err or "positions BTCUSDT 0.01" in err, err
    # the adopted order was cancelled by the stop: it was tracked again, not forgotten
    order = sim.engine.get("BTCUSDT", client_order_id=resting)
    assert order.status == "CANCELED"
    assert sim.engine.open_orders("BTCUSDT") == []
    assert ours(sim) == placed
    btc_free, btc_locked = sim.engine.balances()["BTC"]
    assert btc_free + btc_locked > SimConfig().balances["BTC"]
    assert Decimal(0) == btc_locked
