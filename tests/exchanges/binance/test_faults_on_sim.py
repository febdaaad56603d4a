"""What the network and the exchange do on a bad day, through the whole live path: exchange-sim's
fault switches under a Runner's engine on the Binance adapter.

Whatever a fault does, an order ends in a state the exchange agrees with, is placed at most once,
and a fill is booked once; errors name what happened.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal

import attrs
import pytest
import trio

import trading
from trading.core.records import OrderState, Side
from trading.exchanges.binance.venue import Venue
from trading.testing import ExchangeSim, SimConfig

from .sim_helpers import live_runner, serving

pytestmark = pytest.mark.timeout(120)

KEY, SECRET = "fault-key", "fault-secret"
ORDER = ("method", "POST"), ("path", "/api/v3/order")


@attrs.define
class Skew:
    """The exchange's wall clock, which a test can move."""

    seconds: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.seconds


@attrs.define
class World:
    sim: ExchangeSim
    venue: Venue
    runner: trading.Runner
    skew: Skew

    def placed(self, client_order_id: str) -> int:
        """How many orders the exchange holds under this client id (more than 1: a duplicate)."""
        records = {**self.sim.endpoints.orders}
        records.update({o.order_id: o for o in self.sim.engine.open_orders()})
        return sum(1 for r in records.values() if r.client_order_id == client_order_id)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    skew = Skew()
    config = SimConfig(
        api_key=KEY, api_secret=SECRET, stepped=True, ping_interval=None, wall_clock=skew
    )
    async with serving(config) as sim, live_runner(sim) as (venue, runner):
        # "Not found" is believed after 1 s instead of 5 (the default, for real networks): the
        # outcomes are the same, the lost-order cases just wait less.
        assert runner.engine is not None
        runner.engine.not_found_grace = 1.0
        yield World(sim, venue, runner, skew)


async def buy(world: World, quantity: str = "0.01") -> trading.Order:
    assert world.runner.engine is not None
    account = world.runner.engine.account("faults")
    with trio.fail_after(60):
        return await account.submit(Side.BUY, quantity, "BTCUSDT")


@pytest.mark.parametrize(
    ("arm", "placed"),
    [
        (lambda f: f.accept_then_drop(**dict(ORDER)), 1),  # placed; the answer lost
        (lambda f: f.push_before_answer(**dict(ORDER)), 1),  # the fill is pushed first
        (lambda f: f.delay(0.3, **dict(ORDER)), 1),
    ],
    ids=["accept-then-drop", "push-before-answer", "delay"],
)
async def test_an_order_that_was_placed_ends_filled_once(
    world: World, arm: object, placed: int
) -> None:
    assert callable(arm)
    arm(world.sim.faults)
    order = await buy(world)
    assert order.state is OrderState.FILLED
    assert world.placed(order.client_order_id) == placed
    trades = [t for t in world.sim.engine.trades("BTCUSDT") if t.order_id]
    booked = {f.trade_id for f in order.fills}
    assert booked == {str(t.id) for t in trades}  # every trade once, none invented
    assert order.filled_quantity == Decimal("0.01")


@pytest.mark.parametrize(
    "arm",
    [
        lambda f: f.server_error(503, **dict(ORDER)),
        lambda f: f.drop(**dict(ORDER)),
        lambda f: f.rate_limit(1, **dict(ORDER)),
        lambda f: f.ban(2, **dict(ORDER)),
    ],
    ids=["5xx", "dropped", "429", "418"],
)
async def test_an_order_the_exchange_never_processed_ends_rejected_and_is_never_resent(
    world: World, arm: object
) -> None:
    assert callable(arm)
    arm(world.sim.faults)
    lost = await buy(world)
    assert lost.state is OrderState.REJECTED
    assert lost.reject_reason == "never reached the exchange"
    assert world.sim.endpoints.orders == {}  # nothing placed, nothing re-sent
    # and the next order goes through (a ban is waited out, not fatal)
    order = await buy(world)
    assert order.state is OrderState.FILLED
    assert world.placed(order.client_order_id) == 1


async def test_a_clock_that_drifted_is_resynced_and_the_order_placed_once(world: World) -> None:
    world.skew.seconds = 30.0  # the exchange's clock jumped: every timestamp is now too old
    order = await buy(world)
    assert order.state is OrderState.FILLED
    assert world.placed(order.client_order_id) == 1


async def test_malformed_frames_on_both_streams_are_skipped(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.sim.faults.malformed("user", count=3)
    world.sim.faults.malformed("market", count=3)
    order = await buy(world)
    assert order.state is OrderState.FILLED
    assert world.placed(order.client_order_id) == 1
    await world.sim.advance(60)
    with trio.fail_after(10):
        while world.venue.market.feed.mark("BTCUSDT") is None:  # noqa: ASYNC110
            await trio.sleep(0.01)


async def test_an_answer_and_its_push_both_lost_still_books_the_fill_once(world: World) -> None:
    """The order is placed, its REST answer is lost and the user stream drops the push: the
    engine reconciles by client id, and the trades are read with the order (GET /order alone
    reports only the cumulative fill), so the position is right."""
    world.sim.faults.accept_then_drop(**dict(ORDER))
    world.sim.faults.drop(stream="user")
    order = await buy(world)
    assert order.state is OrderState.FILLED
    assert world.placed(order.client_order_id) == 1
    trades = world.sim.engine.trades("BTCUSDT")
    assert {f.trade_id for f in order.fills} == {str(t.id) for t in trades}
    assert world.runner.engine is not None
    position = world.runner.engine.account("faults").position("BTCUSDT").quantity
    assert position == sum(t.qty - t.commission for t in trades)
