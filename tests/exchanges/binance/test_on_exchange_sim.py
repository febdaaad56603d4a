"""The whole live path against exchange-sim on 127.0.0.1: closed klines drive the strategy, orders
go over signed REST, fills come back on the WebSocket-API user stream, and what the database
recorded equals what the exchange says.

The simulator runs stepped (market time moves only by ``sim.advance``), so these tests are
deterministic without a mock clock (which must not be used with real sockets). Every wait is
bounded.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest
import trio

import trading
from trading.core.bars import Bar
from trading.exchanges.binance.market import BinanceMarket
from trading.exchanges.binance.rest import BinanceRest, Credentials
from trading.exchanges.binance.stream import KlineStream
from trading.exchanges.binance.venue import open_binance
from trading.observers.queries import read_fills, read_orders
from trading.observers.recorder import Recorder
from trading.testing import ExchangeSim, SimConfig

from .sim_helpers import QUICK, live_runner, serving

pytestmark = pytest.mark.timeout(120)

KEY, SECRET = "test-key", "test-secret"


class Tape(trading.Strategy):
    """Records the bar each compute is for; buys at its 2nd compute, sells at its 4th."""

    interval = "1m"
    symbols = ("BTCUSDT",)
    compute_on_start = False
    seen: ClassVar[list[Bar]] = []
    computed: ClassVar[trio.Event]
    orders: ClassVar[list[trading.Order]] = []
    trade = True

    async def next(self, ctx: trading.Context) -> None:
        bars = await ctx.history(limit=1)
        type(self).seen.append(bars[-1])
        done, type(self).computed = type(self).computed, trio.Event()
        done.set()
        if not self.trade:
            return
        n = len(type(self).seen)
        if n == 2:
            type(self).orders.append(await ctx.buy("0.01"))
        elif n == 4:
            type(self).orders.append(await ctx.sell(ctx.position().quantity))


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSim]:
    config = SimConfig(api_key=KEY, api_secret=SECRET, stepped=True, ping_interval=None)
    async with serving(config) as sim:
        yield sim


async def computes(count: int, seconds: float = 10.0) -> None:
    """Until the strategy has computed ``count`` times (bounded)."""
    with trio.fail_after(seconds):
        while len(Tape.seen) < count:
            await Tape.computed.wait()


async def filled(order: trading.Order, seconds: float = 10.0) -> None:
    with trio.fail_after(seconds):
        while order.state is not trading.OrderState.FILLED:  # noqa: ASYNC110 (no event to wait on)
            await trio.sleep(0.005)


async def step_bars(sim: ExchangeSim, count: int) -> None:
    """Close ``count`` one-minute bars on the exchange, each time until the strategy computed."""
    for _ in range(count):
        expected = len(Tape.seen) + 1
        await sim.advance(60)
        await computes(expected)


@pytest.fixture(autouse=True)
def fresh_tape() -> None:
    Tape.seen = []
    Tape.computed = trio.Event()
    Tape.orders = []
    Tape.trade = True


async def test_a_live_run_trades_and_the_database_equals_the_exchange(
    sim: ExchangeSim, tmp_path: Path
) -> None:
    db = tmp_path / "run.db"
    async with open_binance(
        base_url=sim.base_url,
        symbols=["BTCUSDT"],
        live=True,
        credentials=Credentials(KEY, SECRET),
    ) as venue:
        assert venue.live
        async with trading.Runner(
            clock=venue.clock,
            market=venue.market,
            exchange=venue.exchange,
            observers=[Recorder(db, run_id="e2e")],
            run_id="e2e",
        ) as runner:
            await runner.add(Tape(), name="tape")
            await step_bars(sim, 5)
            # bars came in order, once each, one minute apart
            opens = [bar.open_time for bar in Tape.seen]
            assert opens == sorted(set(opens)) and len(opens) == 5
            assert all(b - a == 60 for a, b in itertools.pairwise(opens))
            buy, sell = Tape.orders
            await filled(sell)
            assert buy.state is trading.OrderState.FILLED
            await runner.stop_all()
    # what the database holds is what the exchange did
    engine = sim.engine
    ours = {row["client_order_id"]: row for row in read_orders(db)}
    assert set(ours) == {buy.client_order_id, sell.client_order_id}
    for cid, row in ours.items():
        theirs = engine.get("BTCUSDT", client_order_id=cid)
        assert row["state"] == "filled"
        assert Decimal(row["filled_quantity"]) == theirs.executed_qty
    trades = engine.trades("BTCUSDT")
    fills = read_fills(db)
    assert sorted(f["trade_id"] for f in fills) == sorted(str(t.id) for t in trades)
    assert sum(Decimal(f["quantity"]) for f in fills) == sum(t.qty for t in trades)
    assert sum(Decimal(f["fee"]) for f in fills) == sum(t.commission for t in trades)
    # and the exchange's balances moved by exactly those trades
    start = SimConfig().balances
    btc_free, btc_locked = engine.balances()["BTC"]
    bought = sum(t.qty - t.commission for t in trades if t.is_buyer and t.commission_asset == "BTC")
    sold = sum(t.qty for t in trades if not t.is_buyer)
    assert btc_free + btc_locked == start["BTC"] + bought - sold


async def test_a_hundred_dropped_connections_lose_no_bar_and_repeat_none(
    sim: ExchangeSim,
) -> None:
    Tape.trade = False
    async with (
        open_binance(base_url=sim.base_url, symbols=["BTCUSDT"], backoff=QUICK) as venue,
        trading.Runner(clock=venue.clock, market=venue.market) as runner,
    ):
        await runner.add(Tape(), name="tape")
        for i in range(100):
            expected = len(Tape.seen) + 1
            await sim.advance(60)
            if i % 3 == 0:
                await trio.sleep(0.01)  # sometimes the close got out before the drop
            await sim.drop_stream_connections()
            await computes(expected, 20)
        await runner.stop_all()
    opens = [bar.open_time for bar in Tape.seen]
    assert len(opens) == 100
    assert opens == [opens[0] + 60 * i for i in range(100)]
    # each bar is the exchange's own
    for bar in Tape.seen[:5] + Tape.seen[-5:]:
        row = sim.prices.kline("BTCUSDT", trading.Interval.parse("1m"), int(bar.open_time * 1000))
        assert Decimal(repr(bar.close)) == Decimal(row.close)


async def test_balances_follow_the_user_stream_without_a_request_per_order(
    sim: ExchangeSim,
) -> None:
    async with live_runner(sim) as (venue, runner):
        assert runner.engine is not None
        account = runner.engine.account("balances")
        order = await account.submit(trading.Side.BUY, "0.01", "BTCUSDT")
        assert order.state is trading.OrderState.FILLED
        truth = {asset: free for asset, (free, _) in sim.engine.balances().items()}
        with trio.fail_after(5):
            while (await venue.exchange.balances()).get("BTC") != truth["BTC"]:  # noqa: ASYNC110
                await trio.sleep(0.01)
        used = sim.weight_used(KEY).current
        for _ in range(20):
            await venue.exchange.balances()
        assert sim.weight_used(KEY).current == used  # the cache, not 20 × 20 weight
        mine = await venue.exchange.balances()
        assert {a: mine[a] for a in ("BTC", "USDT")} == {a: truth[a] for a in ("BTC", "USDT")}


async def test_partial_fills_and_base_asset_fees_keep_the_position_exact() -> None:
    """A limit buy larger than the book near its price takes several levels, rests, and fills
    in parts; Binance charges the buyer's commission in BTC, so the position must be what the
    account really holds, to the last satoshi."""
    config = SimConfig(
        api_key=KEY,
        api_secret=SECRET,
        stepped=True,
        ping_interval=None,
        balances={"USDT": Decimal(500_000), "BTC": Decimal(0)},
    )
    async with serving(config) as sim, live_runner(sim) as (venue, runner):
        assert runner.engine is not None
        account = runner.engine.account("partial")
        price = (await venue.exchange.last_price("BTCUSDT")) * Decimal("1.0001")
        order = await account.submit(trading.Side.BUY, "3", "BTCUSDT", price=price)
        # it took the levels up to its price and rests for the rest
        assert order.state is trading.OrderState.PARTIALLY_FILLED
        for _ in range(40):  # the market moves: more of it may fill, in parts
            await sim.advance(30)
            await trio.sleep(0.01)
            if order.state is trading.OrderState.FILLED:
                break
        if order.state is not trading.OrderState.FILLED:
            await account.cancel(order)
        trades = sim.engine.trades("BTCUSDT", limit=1000)
        assert len(trades) >= 2  # several levels: several trades, several fills
        assert {f.trade_id for f in order.fills} == {str(t.id) for t in trades}
        held = sum(sim.engine.balances()["BTC"])
        assert all(t.commission_asset == "BTC" for t in trades)
        assert held == sum(t.qty for t in trades) - sum(t.commission for t in trades)
        assert order.filled_quantity == sum(t.qty for t in trades)
        assert account.position("BTCUSDT").quantity == held  # exact, fees included
        assert account.book.fees_paid == {"BTC": sum(t.commission for t in trades)}


async def test_a_stream_that_never_connects_fails_the_start_clearly(sim: ExchangeSim) -> None:
    rest = BinanceRest(sim.base_url)
    market = BinanceMarket(
        rest, KlineStream("ws://127.0.0.1:9", backoff=QUICK), symbols=["BTCUSDT"],
        connect_timeout=0.5,
    )  # fmt: skip
    with pytest.RaisesGroup(
        pytest.RaisesExc(ConnectionError, match=r"no market stream connection within 0.5 s"),
        flatten_subgroups=True,
    ):
        async with trio.open_nursery() as nursery:
            await nursery.start(market.run)
    await rest.aclose()
