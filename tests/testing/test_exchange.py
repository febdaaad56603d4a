"""The faulty exchange double does exactly what each fault says, so engine tests can trust it."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing

from tests.conftest import T0
from trading.core.orders import OrderState, OrderType, Side
from trading.exchanges.base import Exchange, ExchangeError, ExchangeRejected, OrderRequest
from trading.exchanges.paper import PaperBroker
from trading.exchanges.sim import SimulatedMarket
from trading.runtime.clock import VirtualClock
from trading.testing.exchange import (
    AWAIT_POINTS,
    AcceptThenDelay,
    AcceptThenFail,
    AcceptThenHang,
    Delay,
    FailBefore,
    FaultyExchange,
    Hang,
    PassThrough,
    Reject,
)


def buy(cid: str, order_type: OrderType = OrderType.MARKET) -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        symbol="BTCUSDT",
        side=Side.BUY,
        type=order_type,
        quantity=Decimal("0.01"),
        price=Decimal(50000) if order_type is OrderType.LIMIT else None,
    )


@pytest.fixture
def broker() -> PaperBroker:
    return PaperBroker(SimulatedMarket(), VirtualClock(start=T0))


def test_is_an_exchange(broker: PaperBroker) -> None:
    exchange: Exchange = FaultyExchange(broker)
    assert exchange.symbol_info() is broker.symbol_info()


async def test_no_fault_passes_through(clock: trio.testing.MockClock, broker: PaperBroker) -> None:
    fx = FaultyExchange(broker)
    report = await fx.submit(buy("a"))
    assert report.state is OrderState.FILLED
    assert await fx.query("BTCUSDT", "a") == report
    assert await fx.balances() == await broker.balances()
    assert await fx.last_price("BTCUSDT") == await broker.last_price("BTCUSDT")
    assert fx.calls == [("submit", "a"), ("query", "a")]
    assert fx.placed == {"a": 1}
    assert fx.forwarded == {("submit", "a"): 1, ("query", "a"): 1}


async def test_delay_answers_late(clock: trio.testing.MockClock, broker: PaperBroker) -> None:
    fx = FaultyExchange(broker)
    fx.script("submit", Delay(7))
    start = trio.current_time()
    report = await fx.submit(buy("d"))
    assert trio.current_time() - start == 7
    assert report.state is OrderState.FILLED and fx.placed["d"] == 1


async def test_hang_never_forwards_and_is_cancellable(
    clock: trio.testing.MockClock, broker: PaperBroker
) -> None:
    fx = FaultyExchange(broker)
    fx.script("submit", Hang())
    with trio.move_on_after(30) as scope:
        await fx.submit(buy("h"))
    assert scope.cancelled_caught
    assert fx.placed["h"] == 0
    assert await broker.query("BTCUSDT", "h") is None
    assert fx.calls == [("submit", "h")]


async def test_accept_then_hang_leaves_the_order_placed(
    clock: trio.testing.MockClock, broker: PaperBroker
) -> None:
    fx = FaultyExchange(broker)
    fx.script("submit", AcceptThenHang())
    with trio.move_on_after(30) as scope:
        await fx.submit(buy("ah", OrderType.LIMIT))
    assert scope.cancelled_caught
    assert fx.placed["ah"] == 1
    placed = await broker.query("BTCUSDT", "ah")
    assert placed is not None and placed.state is OrderState.SUBMITTED


async def test_accept_then_delay_answers_after_placing(
    clock: trio.testing.MockClock, broker: PaperBroker
) -> None:
    fx = FaultyExchange(broker)
    fx.script("submit", AcceptThenDelay(5))
    seen: list[OrderState | None] = []

    async def watch() -> None:
        await trio.sleep(1)
        order = await broker.query("BTCUSDT", "ad")
        seen.append(None if order is None else order.state)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await fx.submit(buy("ad"))
    assert seen == [OrderState.FILLED]  # placed long before the caller heard of it


async def test_accept_then_fail_places_but_hides_the_outcome(
    clock: trio.testing.MockClock, broker: PaperBroker
) -> None:
    fx = FaultyExchange(broker)
    fx.script("submit", AcceptThenFail())
    with pytest.raises(ExchangeError, match="connection reset"):
        await fx.submit(buy("af"))
    assert fx.placed["af"] == 1
    found = await fx.query("BTCUSDT", "af")
    assert found is not None and found.state is OrderState.FILLED


async def test_fail_before_places_nothing(
    clock: trio.testing.MockClock, broker: PaperBroker
) -> None:
    fx = FaultyExchange(broker)
    fx.script("submit", FailBefore())
    with pytest.raises(ExchangeError):
        await fx.submit(buy("fb"))
    assert fx.placed["fb"] == 0 and await broker.query("BTCUSDT", "fb") is None


async def test_reject_places_nothing(clock: trio.testing.MockClock, broker: PaperBroker) -> None:
    fx = FaultyExchange(broker)
    fx.script("submit", Reject("-2010", "Market is closed."))
    with pytest.raises(ExchangeRejected) as info:
        await fx.submit(buy("rj"))
    assert (info.value.code, info.value.reason) == ("-2010", "Market is closed.")
    assert fx.placed["rj"] == 0 and await broker.query("BTCUSDT", "rj") is None


async def test_inner_rejections_are_not_counted_as_placed(
    clock: trio.testing.MockClock, broker: PaperBroker
) -> None:
    fx = FaultyExchange(broker)
    await fx.submit(buy("a", OrderType.LIMIT))
    with pytest.raises(ExchangeRejected) as info:
        await fx.submit(buy("a", OrderType.LIMIT))  # a duplicate among open orders
    assert info.value.code == "-2010"
    assert fx.placed["a"] == 1
    assert fx.calls == [("submit", "a"), ("submit", "a")]


async def test_faults_play_in_order_then_pass_through(
    clock: trio.testing.MockClock, broker: PaperBroker
) -> None:
    fx = FaultyExchange(broker)
    fx.script("submit", FailBefore(), PassThrough(), AcceptThenFail())
    assert fx.pending("submit") == (FailBefore(), PassThrough(), AcceptThenFail())
    with pytest.raises(ExchangeError):
        await fx.submit(buy("o1"))
    await fx.submit(buy("o2"))
    with pytest.raises(ExchangeError):
        await fx.submit(buy("o3"))
    await fx.submit(buy("o4"))
    assert fx.pending("submit") == ()
    assert fx.placed == {"o2": 1, "o3": 1, "o4": 1}
    assert [cid for _, cid in fx.calls] == ["o1", "o2", "o3", "o4"]
    with pytest.raises(ValueError):
        fx.script("balances", Hang())  # type: ignore[arg-type]


async def test_cancel_and_query_faults(clock: trio.testing.MockClock, broker: PaperBroker) -> None:
    fx = FaultyExchange(broker)
    await fx.submit(buy("c", OrderType.LIMIT))
    fx.script("cancel", AcceptThenFail())
    with pytest.raises(ExchangeError):
        await fx.cancel("BTCUSDT", "c")
    cancelled = await broker.query("BTCUSDT", "c")
    assert cancelled is not None and cancelled.state is OrderState.CANCELLED
    fx.script("query", Hang())
    with trio.move_on_after(5) as scope:
        await fx.query("BTCUSDT", "c")
    assert scope.cancelled_caught
    assert fx.calls == [("submit", "c"), ("cancel", "c"), ("query", "c")]
    assert fx.forwarded[("cancel", "c")] == 1 and fx.forwarded[("query", "c")] == 0


@pytest.mark.parametrize(
    ("label", "placed"), list(zip(AWAIT_POINTS["submit"], (0, 1), strict=True))
)
async def test_a_stop_can_land_at_each_await_point(
    clock: trio.testing.MockClock, broker: PaperBroker, label: str, placed: int
) -> None:
    """Unshielded, a stop before forwarding loses nothing and one after loses the reply only."""
    labels: list[str] = []
    stop = trio.CancelScope()

    async def on_await(at: str) -> None:
        labels.append(at)
        if at == label:
            stop.cancel(reason="command: stop")
        await trio.lowlevel.checkpoint()

    fx = FaultyExchange(broker, on_await=on_await)
    with stop:
        await fx.submit(buy("s"))
    assert stop.cancelled_caught
    assert labels[-1] == label
    assert fx.placed["s"] == placed


async def test_rule_four_pattern_reconciles_a_lost_reply(
    clock: trio.testing.MockClock, broker: PaperBroker
) -> None:
    """The shape the TradeEngine uses: shielded, under its own deadline, then ask by client id."""
    stop = trio.CancelScope()

    async def on_await(at: str) -> None:
        if at == "submit:before":
            stop.cancel(reason="command: stop")  # the stop lands mid-submission
        await trio.lowlevel.checkpoint()

    fx = FaultyExchange(broker, on_await=on_await)
    fx.script("submit", AcceptThenHang())
    outcome = None
    with stop:
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            outcome = await fx.submit(buy("r4"))
        assert outcome is None  # deadline passed: the order is UNKNOWN
        with trio.CancelScope(shield=True):
            found = await fx.query("BTCUSDT", "r4")
        await trio.lowlevel.checkpoint()  # the stop is delivered only now
    assert stop.cancelled_caught
    assert found is not None and found.state is OrderState.FILLED
    assert fx.placed["r4"] == 1
