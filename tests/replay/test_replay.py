"""trading.replay: the same code as live, deterministic, commanded bar for bar."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest
import trio

import trading
from tests.replay.helpers import T0, Closes, Flipper, flat, order_rows, walk
from trading.core.orders import OrderState, Side
from trading.replay import replay, replay_async

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "strategies"))
from sma_cross import SmaCross


def test_two_replays_of_the_same_data_give_identical_orders() -> None:
    bars = walk(3_000, seed=3)
    first = replay(SmaCross, bars, progress=False)
    second = replay(SmaCross, bars, progress=False)
    assert len(first.orders) > 20
    assert [o.client_order_id for o in first.orders] == [o.client_order_id for o in second.orders]
    assert order_rows(first.orders) == order_rows(second.orders)
    assert first.fills == second.fills
    assert first.equity == second.equity


def test_every_bar_after_the_warmup_is_computed_once_at_its_close() -> None:
    Closes.seen = []
    bars = walk(2_500)
    result = replay(Closes, bars, warmup=10, progress=False)
    assert Closes.seen == [bar.close_time for bar in bars[10:]]
    assert result.computes == len(bars) - 10 == result.bars_replayed
    assert result.error is None


def test_a_strategy_reads_no_bar_before_it_closed() -> None:
    seen: list[tuple[float, float]] = []

    class Peek(trading.Strategy):
        interval = "1m"

        async def next(self, ctx: trading.Context) -> None:
            bars = await ctx.history(limit=3)
            seen.append((ctx.now, bars[-1].close_time))

    replay(Peek, walk(50), warmup=5, progress=False)
    assert seen and all(now == last_close for now, last_close in seen)


def test_market_orders_fill_at_the_close_with_slippage_against_the_trader() -> None:
    bars = flat([100.0] * 10)
    result = replay(Flipper, bars, params={"quantity": "1"}, warmup=2, progress=False)
    buys = [f for f in result.fills if f.side is Side.BUY]
    sells = [f for f in result.fills if f.side is Side.SELL]
    assert buys and sells
    assert {f.price for f in buys} == {Decimal("100.05")}  # 100 * 1.0005, rounded up
    assert {f.price for f in sells} == {Decimal("99.95")}
    assert all(f.fee == f.price * f.quantity * Decimal("0.001") for f in result.fills)
    assert [f.time for f in result.fills] == [b.close_time for b in bars[2:]]


def test_a_resting_limit_fills_only_when_a_later_bar_reaches_it() -> None:
    placed: list[trading.Order] = []

    class LimitBuyer(trading.Strategy):
        interval = "1m"

        async def next(self, ctx: trading.Context) -> None:
            if not placed:
                placed.append(await ctx.buy("1", price="95"))

    # bar 1 dips to 90 before the order exists (bar 2 is its first compute); bar 5 reaches 95.5
    # (not enough), bar 7 reaches 94.
    bars = flat([100.0] * 10, lows={1: 90.0, 5: 95.5, 7: 94.0})
    result = replay(LimitBuyer, bars, warmup=2, progress=False)
    (order,) = result.orders
    assert order.state is OrderState.FILLED
    (fill,) = result.fills
    assert fill.price == Decimal("95") and fill.time == bars[7].close_time
    assert fill.fee == Decimal("95") * Decimal("0.001")


def test_open_orders_are_cancelled_when_the_replay_ends() -> None:
    class Rester(trading.Strategy):
        interval = "1m"

        async def next(self, ctx: trading.Context) -> None:
            if not ctx.open_orders():
                await ctx.buy("1", price="50")

    result = replay(Rester, flat([100.0] * 5), warmup=1, progress=False)
    assert [o.state for o in result.orders] == [OrderState.CANCELLED]
    assert result.balances["USDT"] == Decimal(10_000)


def test_the_equity_curve_has_one_point_per_bar_valued_at_its_close() -> None:
    bars = flat([100.0, 100.0, 100.0, 110.0, 120.0, 120.0])

    class BuyOnce(trading.Strategy):
        interval = "1m"

        async def next(self, ctx: trading.Context) -> None:
            if ctx.computes == 0:
                await ctx.buy("10")

    result = replay(BuyOnce, bars, warmup=1, progress=False)
    (fill,) = result.fills
    cash = Decimal(10_000) - fill.price * 10 - fill.fee
    assert result.equity == [
        (bars[1].close_time, cash + 1000),
        (bars[2].close_time, cash + 1000),
        (bars[3].close_time, cash + 1100),
        (bars[4].close_time, cash + 1200),
        (bars[5].close_time, cash + 1200),
    ]
    assert result.final_equity == cash + 1200


def test_a_failing_strategy_ends_the_replay_and_says_why() -> None:
    class Breaks(trading.Strategy):
        interval = "1m"

        async def next(self, ctx: trading.Context) -> None:
            if ctx.computes == 3:
                raise ZeroDivisionError("bad maths")

    result = replay(Breaks, walk(100), warmup=0, progress=False)
    assert result.error == "next: ZeroDivisionError: bad maths"
    assert result.computes == 3
    assert "FAILED" in result.summary()


def test_the_data_picks_the_strategy_s_symbol_and_interval() -> None:
    bars = walk(300, symbol="ETHUSDT", price=3_000.0)
    result = replay(SmaCross, bars, progress=False)  # sma_cross is BTCUSDT 15m
    assert result.symbol == "ETHUSDT" and str(result.interval) == "1m"
    assert result.orders and {o.symbol for o in result.orders} == {"ETHUSDT"}
    with pytest.raises(ValueError, match="does not resample"):
        replay(SmaCross, bars, interval="15m", progress=False)


@pytest.mark.parametrize(
    ("bars", "message"),
    [
        ([], "no bars"),
        (walk(3)[::-1], "bar 1 .* earlier than"),
        ([*walk(3), walk(3)[2]], "bar 3 .* a duplicate"),
        ([*walk(2), *walk(2, symbol="ETHUSDT")], "bar 2 is ETHUSDT"),
    ],
)
def test_unusable_bars_are_refused_naming_the_bar(bars: list[trading.Bar], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replay(Flipper, bars, warmup=0, progress=False)


@pytest.mark.parametrize(
    ("commands", "message"),
    [
        ([(1,)], "command 0 must be a"),
        ([(1, "")], "command 0: the text"),
        ([("x", "pause flipper")], "not a bar index or a time"),
        ([(99, "pause flipper")], "bar 99 is outside"),
        ([(float("nan"), "pause flipper")], "not finite"),
    ],
)
def test_bad_command_schedules_are_refused(commands: list[object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replay(Flipper, walk(10), warmup=0, commands=commands, progress=False)  # type: ignore[arg-type]


def test_bad_rates_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match="fee_rate 'cheap' is not a number"):
        replay(Flipper, walk(10), fee_rate="cheap", progress=False)
    with pytest.raises(ValueError, match="slippage"):
        replay(Flipper, walk(10), slippage=-0.1, progress=False)
    result = replay(
        Flipper, flat([100.0] * 3), params={"quantity": 1}, fee_rate=0.002, warmup=1, progress=False
    )
    assert result.fills[0].fee == Decimal("0.2001")  # 100.05 * 0.002, no float noise


def test_bad_parameters_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match="fast"):
        replay(SmaCross, walk(50), params={"fast": "many"}, progress=False)
    with pytest.raises(ValueError, match="sma_cross"):
        replay(SmaCross, walk(50), params={"nonsense": 1}, progress=False)


def test_the_progress_hook_sees_the_replay_through_and_a_broken_one_is_dropped() -> None:
    calls: list[tuple[int, int]] = []
    replay(Flipper, walk(1_000), warmup=0, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (1_000, 1_000)
    assert len(calls) >= 50 and calls == sorted(calls)

    def broken(done: int, total: int) -> None:
        raise RuntimeError("widget gone")

    result = replay(Flipper, walk(1_000), warmup=0, progress=broken)
    assert result.computes == 1_000


def _tasks(task: trio.lowlevel.Task | None = None) -> int:
    task = task or trio.lowlevel.current_root_task()
    return 1 + sum(_tasks(t) for n in task.child_nurseries for t in n.child_tasks)


async def test_replay_async_runs_inside_a_trio_run() -> None:
    before = _tasks()
    result = await replay_async(Flipper, walk(200), warmup=0, progress=False)
    assert result.computes == 200
    assert _tasks() == before


@pytest.mark.parametrize("after", [0.0, 0.01])
async def test_a_cancelled_replay_ends_its_runner_and_leaves_no_task(after: float) -> None:
    # 0: cancelled before the Runner started (it used to wait forever for its shielded host);
    # 0.01: cancelled mid-replay, whatever phase it is in.
    before = _tasks()
    with trio.fail_after(30):
        with trio.move_on_after(after) as scope:
            await replay_async(Flipper, walk(200_000), warmup=0, progress=False)
    assert scope.cancelled_caught
    assert _tasks() == before


def test_start_time_is_the_first_compute() -> None:
    Closes.seen = []
    replay(Closes, walk(20), warmup=4, progress=False)
    assert Closes.seen[0] == T0 + 60 * 5


def test_a_resting_sell_limit_fills_when_a_later_bar_s_high_reaches_it() -> None:
    class TakeProfit(trading.Strategy):
        interval = "1m"

        async def next(self, ctx: trading.Context) -> None:
            if ctx.computes == 0:
                await ctx.buy("1")
                await ctx.sell("1", price="105")

    closes = [100.0] * 8
    bars = [
        trading.Bar(
            "BTCUSDT",
            b.interval,
            b.open_time,
            b.open,
            106.0 if i == 5 else b.high,
            b.low,
            b.close,
            b.volume,
        )
        for i, b in enumerate(flat(closes))
    ]
    result = replay(TakeProfit, bars, warmup=1, progress=False)
    buy, sell = result.fills
    assert (buy.side, buy.price, buy.time) == (Side.BUY, Decimal("100.05"), bars[1].close_time)
    assert (sell.side, sell.price, sell.time) == (Side.SELL, Decimal("105"), bars[5].close_time)
    assert result.positions["BTCUSDT"].quantity == 0


def test_an_instance_keeps_its_parameters_on_the_data_s_series() -> None:
    bars = walk(600, seed=9)
    by_class = replay(SmaCross, bars, params={"fast": 3, "slow": 12}, progress=False)
    by_instance = replay(SmaCross(fast=3, slow=12), bars, progress=False)
    by_text = replay(SmaCross, bars, params={"fast": "3", "slow": "12"}, progress=False)
    assert by_class.orders and order_rows(by_class.orders) == order_rows(by_instance.orders)
    assert order_rows(by_text.orders) == order_rows(by_class.orders)
    default = replay(SmaCross, bars, progress=False)
    assert order_rows(default.orders) != order_rows(by_class.orders)


def test_a_strategy_that_does_not_compute_on_start_still_computes_every_replayed_bar() -> None:
    seen: list[float] = []

    class Later(trading.Strategy):
        interval = "1m"
        compute_on_start = False

        async def next(self, ctx: trading.Context) -> None:
            seen.append(ctx.now)

    bars = walk(40)
    result = replay(Later, bars, warmup=5, commands=[(5, "pause later")], progress=False)
    assert seen == []  # the pause at bar 5 landed before its (scheduled) compute
    result = replay(Later, bars, warmup=5, progress=False)
    assert seen == [b.close_time for b in bars[5:]] and result.computes == 35


async def test_a_long_replay_lets_other_tasks_run_every_checkpoint() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.sleep(0.0005)

    Closes.seen = []  # no orders: nothing but the clock's checkpoints yields
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        result = await replay_async(
            Closes, walk(20_000), warmup=0, checkpoint_every=100, progress=False
        )
        nursery.cancel_scope.cancel()
    assert result.computes == 20_000
    assert ticks >= 50  # about one per 100 bars (3 when the clock never yields)


def test_per_order_events_are_counted_and_kept_only_when_asked() -> None:
    bars = flat([100.0] * 6)
    lean = replay(Flipper, bars, params={"quantity": "1"}, warmup=1, progress=False)
    full = replay(
        Flipper, bars, params={"quantity": "1"}, warmup=1, progress=False, keep_events=True
    )
    assert lean.event_counts == full.event_counts
    assert lean.event_counts["OrderFilled"] == len(lean.fills) == 5
    kinds = {type(e).__name__ for e in lean.events}
    assert "OrderFilled" not in kinds and "PositionSnapshot" not in kinds
    assert "StrategyStateChanged" in kinds
    assert sum(1 for e in full.events if type(e).__name__ == "OrderFilled") == 5
