"""The wind-down (points 4 and 5): one deadline for on_stop, orders and flush; the same path when
the Runner is torn down by an exception or an outside cancellation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import pytest
import trio
from trio.testing import MockClock

import trading
from tests.conftest import EventLog
from trading.core import events as ev
from trading.core.orders import OrderState
from trading.exchanges.paper import PaperBroker
from trading.exchanges.sim import SimulatedMarket
from trading.runtime.strategy import inspect_strategy
from trading.testing.exchange import FaultyExchange, Hang


@attrs.define
class Resting(trading.Strategy):
    """Places resting limit buys at its first compute; on_stop takes `stop_work` seconds."""

    interval = "15m"
    prices: tuple[str, ...] = ("50000",)
    stop_work: float = 0.0
    orders: list[trading.Order] = attrs.field(factory=list, init=False)
    stops: int = attrs.field(default=0, init=False)

    async def next(self, ctx: trading.Context) -> None:
        if not self.orders:
            for price in self.prices:
                self.orders.append(await ctx.buy("0.01", price=price))

    async def on_stop(self, ctx: trading.Context) -> None:
        await trio.sleep(self.stop_work)
        self.stops += 1


class Prices:
    def price(self, symbol: str, t: float) -> float:
        return 60_000.0


@pytest.fixture
def broker(vclock: trading.VirtualClock) -> PaperBroker:
    return PaperBroker(Prices(), vclock)


@pytest.fixture
def fx(broker: PaperBroker) -> FaultyExchange:
    return FaultyExchange(broker)


@pytest.fixture
async def paper(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog, fx: FaultyExchange
) -> AsyncIterator[trading.Runner]:
    async with trading.Runner(clock=vclock, publish=events, exchange=fx, stop_timeout=1) as r:
        yield r


async def test_on_stop_and_flush_share_one_deadline(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog
) -> None:
    """0.4 s of on_stop leaves 0.6 s for a flush that would take 100 s: the stop takes 1 s."""
    flushed: list[float] = []

    async def slow_flush() -> None:
        await trio.sleep(100)
        flushed.append(trio.current_time())

    strategy = Resting(prices=(), stop_work=0.4)
    sr = trading.StrategyRunner(
        strategy,
        inspect_strategy(Resting, name="r"),
        clock=vclock,
        market=SimulatedMarket(),
        publish=events,
        stop_timeout=1,
        flush=slow_flush,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(sr.run)
        start = trio.current_time()
        result = await sr.send(trading.Command("stop", "r"))
    assert trio.current_time() - start == pytest.approx(1.0)
    assert not result.ok and strategy.stops == 1 and flushed == []
    assert result.message == (
        "stopped; flushing observers timed out: stop_timeout 1s covers the whole stop"
    )


async def test_an_on_stop_that_hangs_still_leaves_time_to_cancel_the_orders(
    clock: MockClock, paper: trading.Runner, broker: PaperBroker
) -> None:
    """on_stop may take half of stop_timeout: a hanging one must not leave orders resting."""
    sr = await paper.add(Resting(stop_work=5), name="r")
    await trio.sleep(1)
    assert isinstance(sr.strategy, Resting)
    (order,) = sr.strategy.orders
    start = trio.current_time()
    (result,) = await paper.send("stop r")
    assert trio.current_time() - start == pytest.approx(0.5)
    assert not result.ok
    assert result.message == (
        "stopped; on_stop timed out after 0.5s (half of stop_timeout 1s; the rest is kept for "
        f"the orders); cancelled 1 open order(s): {order.client_order_id}"
    )
    assert order.state is OrderState.CANCELLED
    assert await broker.open_orders() == []


async def test_stop_with_a_hanging_cancel_replies_within_stop_timeout_naming_the_order(
    clock: MockClock, paper: trading.Runner, fx: FaultyExchange
) -> None:
    sr = await paper.add(Resting(prices=("50000", "49000"), stop_work=0.9), name="r")
    await trio.sleep(1)
    assert isinstance(sr.strategy, Resting)
    first, _ = sr.strategy.orders
    fx.script("cancel", Hang())  # the first cancel never comes back
    start = trio.current_time()
    (result,) = await paper.send("stop r")
    assert trio.current_time() - start <= 1.0 + 1e-6
    assert not result.ok
    assert first.client_order_id in result.message
    assert "cancelled 2" not in result.message  # never claims what did not happen
    assert first.state not in (OrderState.CANCELLED, OrderState.EXPIRED)


async def test_an_exception_leaving_the_runner_winds_orders_down(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog, broker: PaperBroker
) -> None:
    strategy = Resting(prices=("50000", "49000"))
    # (whether it comes out bare or in a group is the Runner's business, not this test's)
    with pytest.raises(BaseException, match=r"operator code bug|nursery"):
        async with trading.Runner(clock=vclock, publish=events, exchange=broker) as runner:
            await runner.add(strategy, name="r")
            await trio.sleep(1)
            raise RuntimeError("operator code bug")
    await _wound_down(strategy, broker, events)


async def test_a_strategy_runner_cancelled_from_outside_winds_orders_down(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog, broker: PaperBroker
) -> None:
    strategy = Resting(prices=("50000", "49000"))
    async with trading.Runner(clock=vclock, publish=events, exchange=broker) as runner:
        sr = await runner.add(strategy, name="r")
        await trio.sleep(1)
        runner.nursery.cancel_scope.cancel()  # the strategies' nursery, torn down from outside
        await sr.finished.wait()
        await _wound_down(strategy, broker, events)


async def test_an_outside_cancellation_winds_orders_down(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog, broker: PaperBroker
) -> None:
    strategy = Resting(prices=("50000", "49000"))
    with trio.move_on_after(100):
        async with trading.Runner(clock=vclock, publish=events, exchange=broker) as runner:
            await runner.add(strategy, name="r")
            await trio.sleep_forever()
    await _wound_down(strategy, broker, events)


async def _wound_down(strategy: Resting, broker: PaperBroker, events: EventLog) -> None:
    assert strategy.stops == 1
    assert len(strategy.orders) == 2
    for order in strategy.orders:
        assert order.state is OrderState.CANCELLED
        at_exchange = await broker.query("BTCUSDT", order.client_order_id)
        assert at_exchange is not None and at_exchange.state is OrderState.CANCELLED
    changes = [(e.old, e.new) for e in events.of(ev.StrategyStateChanged, "r")]  # type: ignore[attr-defined]
    assert changes[-2:] == [("sleeping", "stopping"), ("stopping", "stopped")]
