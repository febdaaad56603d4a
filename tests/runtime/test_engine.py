"""TradeEngine and accounts: rule 4 under every fault, refusals, risk, stop and flatten."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import attrs
import pytest
import trio
import trio.testing
from trio.testing import MockClock

import trading
from tests.conftest import EventLog
from trading.core import events as ev
from trading.core.orders import OrderState
from trading.exchanges.paper import PaperBroker
from trading.testing.exchange import (
    AcceptThenDelay,
    AcceptThenFail,
    AcceptThenHang,
    Delay,
    FailBefore,
    Fault,
    FaultyExchange,
    Hang,
    PassThrough,
)


class Prices:
    """A price source a test moves by hand (a real object, not a mock of ours)."""

    def __init__(self, **prices: float) -> None:
        self.prices = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0, **prices}

    def price(self, symbol: str, t: float) -> float:
        return self.prices[symbol]


@attrs.define
class Trader(trading.Strategy):
    """Runs the orders a test gives it, one list per compute, and keeps what came back."""

    interval = "15m"
    plan: list[list[tuple[str, str, str | None]]] = attrs.field(factory=list)
    results: list[object] = attrs.field(factory=list, init=False)

    async def next(self, ctx: trading.Context) -> None:
        if not self.plan:
            return
        for side, qty, price in self.plan.pop(0):
            try:
                order = await (ctx.buy if side == "buy" else ctx.sell)(qty, price=price)
                self.results.append(order)
            except trading.OrderRefused as exc:
                self.results.append(exc)


@pytest.fixture
def prices() -> Prices:
    return Prices()


@pytest.fixture
def broker(prices: Prices, vclock: trading.VirtualClock) -> PaperBroker:
    return PaperBroker(prices, vclock)


@pytest.fixture
def fx(broker: PaperBroker) -> FaultyExchange:
    return FaultyExchange(broker)


@pytest.fixture
async def trader_runner(
    vclock: trading.VirtualClock, events: EventLog, fx: FaultyExchange
) -> AsyncIterator[trading.Runner]:
    async with trading.Runner(clock=vclock, publish=events, exchange=fx) as runner:
        yield runner


_STATE_OF_EVENT = {
    ev.OrderSubmitted: OrderState.NEW,
    ev.OrderAccepted: OrderState.SUBMITTED,
    ev.OrderPartiallyFilled: OrderState.PARTIALLY_FILLED,
    ev.OrderFilled: OrderState.FILLED,
    ev.OrderCancelled: OrderState.CANCELLED,
    ev.OrderRejected: OrderState.REJECTED,
    ev.OrderUnknown: OrderState.UNKNOWN,
}


def order_states(events: EventLog) -> dict[str, tuple[OrderState, Decimal]]:
    """Each order's last state and filled quantity, as its events tell (what a recorder sees)."""
    out: dict[str, tuple[OrderState, Decimal]] = {}
    for event in events:
        if not isinstance(event, ev.OrderEvent):
            continue
        _, filled = out.get(event.client_order_id, (OrderState.NEW, Decimal(0)))
        if isinstance(event, ev.OrderReconciled):
            out[event.client_order_id] = (OrderState(event.state), event.filled_quantity)
            continue
        if isinstance(event, ev.OrderPartiallyFilled | ev.OrderCancelled):
            filled = event.filled_quantity
        out[event.client_order_id] = (_STATE_OF_EVENT[type(event)], filled)
    return out


def submits(fx: FaultyExchange) -> list[str]:
    return [cid for method, cid in fx.calls if method == "submit"]


async def test_market_buy_fills_and_publishes_events(
    clock: MockClock, trader_runner: trading.Runner, events: EventLog, fx: FaultyExchange
) -> None:
    sr = await trader_runner.add(Trader(plan=[[("buy", "0.01", None)]]), name="t")
    await trio.sleep(1)  # the compute on start ran
    assert isinstance(sr.strategy, Trader)
    (order,) = sr.strategy.results
    assert isinstance(order, trading.Order) and order.state is OrderState.FILLED
    assert order.client_order_id.startswith("tt-t-")
    kinds = [type(e).__name__ for e in events if isinstance(e, ev.OrderEvent)]
    assert kinds == ["OrderSubmitted", "OrderAccepted", "OrderFilled"]
    (position,) = events.of(ev.PositionSnapshot)
    assert position.quantity == Decimal("0.01")  # type: ignore[attr-defined]
    assert fx.placed[order.client_order_id] == 1
    status = (await trader_runner.send("status t"))[0].message
    assert "BTCUSDT 0.01 @ " in status and "pnl " in status


@pytest.mark.parametrize(
    ("quantity", "symbol", "reason"),
    [
        ("0", "BTCUSDT", "quantity"),
        ("-1", "BTCUSDT", "quantity"),
        ("abc", "BTCUSDT", "quantity 'abc' is not a number"),
        ("0.01", "DOGEUSDT", "unknown symbol 'DOGEUSDT'"),
        ("1", "BTCUSDT", "insufficient balance: buying 1 BTC needs about"),
        ("0.000001", "BTCUSDT", "rounds down to 0"),
        ("0.00001", "BTCUSDT", "below the minimum notional"),
    ],
)
async def test_refused_orders_never_reach_the_exchange(
    clock: MockClock,
    trader_runner: trading.Runner,
    events: EventLog,
    fx: FaultyExchange,
    quantity: str,
    symbol: str,
    reason: str,
) -> None:
    @attrs.define
    class Bad(trading.Strategy):
        error: list[str] = attrs.field(factory=list, init=False)

        async def next(self, ctx: trading.Context) -> None:
            try:
                await ctx.buy(quantity, symbol)
            except trading.OrderRefused as exc:
                self.error.append(exc.reason)

    sr = await trader_runner.add(Bad(), name="b")

    await trio.sleep(1)  # the compute on start ran
    assert isinstance(sr.strategy, Bad)
    (error,) = sr.strategy.error
    assert reason in error
    assert submits(fx) == []
    (rejected,) = events.of(ev.OrderRejected)
    assert rejected.sent is False and reason in rejected.reason  # type: ignore[attr-defined]
    assert sr.state is trading.StrategyState.SLEEPING  # a refusal is not a strategy failure


async def test_exchange_rejection_is_reported_to_the_strategy(
    clock: MockClock, trader_runner: trading.Runner, events: EventLog, fx: FaultyExchange
) -> None:
    from trading.testing.exchange import Reject

    fx.script("submit", Reject("-2010", "Market is closed."))
    sr = await trader_runner.add(Trader(plan=[[("buy", "0.01", None)]]), name="t")
    await trio.sleep(1)  # the compute on start ran
    assert isinstance(sr.strategy, Trader)
    (error,) = sr.strategy.results
    assert isinstance(error, trading.OrderRefused) and "Market is closed." in error.reason
    (rejected,) = events.of(ev.OrderRejected)
    assert rejected.sent is True  # type: ignore[attr-defined]


FAULTS: list[Fault] = [
    PassThrough(),
    Delay(3),
    Delay(30),  # slower than the engine's 10 s deadline, but answers
    Hang(),
    FailBefore(),
    AcceptThenHang(),
    AcceptThenFail(),
    AcceptThenDelay(30),
]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: type(f).__name__ + str(attrs.asdict(f)))
@pytest.mark.parametrize("point", ["validate", "submit:before", "submit:after", "reconcile"])
async def test_stop_at_every_await_point_of_a_submission_loses_and_duplicates_nothing(
    clock: MockClock,
    vclock: trading.VirtualClock,
    events: EventLog,
    broker: PaperBroker,
    fault: Fault,
    point: str,
) -> None:
    runner_box: list[trading.Runner] = []
    replies: list[trading.CommandResult] = []
    fired: list[str] = []

    async def stop_now() -> None:
        replies.extend(await runner_box[0].send("stop t"))

    async def fire(where: str) -> None:
        if not fired:
            fired.append(where)
            runner_box[0].nursery.start_soon(stop_now)
            # Let the stop travel all the way (command, receiver, cancel) while we are here.
            await trio.testing.wait_all_tasks_blocked()

    async def land_stop(label: str) -> None:
        if label == point or (point == "reconcile" and label == "query:before"):
            await fire(label)

    fx = FaultyExchange(broker, on_await=land_stop)
    fx.script("submit", fault)

    @attrs.define
    class OneBuy(trading.Strategy):
        async def next(self, ctx: trading.Context) -> None:
            if point == "validate":
                await fire("validate")
            await ctx.buy("0.01")
            await fire("after the buy")  # this fault never reaches `point`: stop anyway
            await trio.sleep_forever()  # only a stop ends this compute

    async with trading.Runner(clock=vclock, publish=events, exchange=fx) as runner:
        runner_box.append(runner)
        with trio.fail_after(3600):
            sr = await runner.add(OneBuy(), name="t")
            await sr.finished.wait()
        assert runner.engine is not None
        still_open = dict(runner.engine.orders)

    assert [r.message.split(";")[0] for r in replies] == ["stopped"]
    orders = order_states(events)  # finished orders leave the engine: their events tell
    for cid, (state, filled) in orders.items():
        assert state is not OrderState.UNKNOWN, cid
        if cid in still_open:
            assert still_open[cid].state is state
        assert fx.placed[cid] <= 1  # never duplicated
        at_exchange = await broker.query("BTCUSDT", cid)
        if at_exchange is None:
            assert state is OrderState.REJECTED  # never reached it: nothing lost
        else:
            assert state is at_exchange.state  # we know what the exchange knows
            assert filled == at_exchange.filled_quantity
    if point == "validate":
        assert orders == {} and fx.calls == []
    else:
        assert len(orders) == 1


async def test_lost_reply_is_reconciled_before_the_strategy_goes_on(
    clock: MockClock, trader_runner: trading.Runner, events: EventLog, fx: FaultyExchange
) -> None:
    fx.script("submit", AcceptThenHang())
    sr = await trader_runner.add(Trader(plan=[[("buy", "0.01", None)]]), name="t")
    await trio.sleep(60)  # the compute on start ran, reconciling included
    assert isinstance(sr.strategy, Trader)
    (order,) = sr.strategy.results
    assert isinstance(order, trading.Order) and order.state is OrderState.FILLED
    kinds = [type(e).__name__ for e in events if isinstance(e, ev.OrderEvent)]
    assert kinds[:2] == ["OrderSubmitted", "OrderUnknown"] and "OrderReconciled" in kinds
    assert sr.strategy.results and fx.placed[order.client_order_id] == 1
    assert trader_runner["t"].account is not None
    assert trader_runner["t"].account.position("BTCUSDT").quantity == Decimal("0.01")


async def test_order_that_never_arrived_is_rejected_after_the_grace_period(
    clock: MockClock, trader_runner: trading.Runner, events: EventLog, fx: FaultyExchange
) -> None:
    fx.script("submit", Hang())
    sr = await trader_runner.add(Trader(plan=[[("buy", "0.01", None)]]), name="t")
    await trio.sleep(60)  # the compute on start ran, reconciling included
    assert isinstance(sr.strategy, Trader)
    (order,) = sr.strategy.results
    assert isinstance(order, trading.Order)
    assert (
        order.state is OrderState.REJECTED and order.reject_reason == "never reached the exchange"
    )
    assert fx.placed[order.client_order_id] == 0


async def test_stop_cancels_resting_orders_and_says_so(
    clock: MockClock, trader_runner: trading.Runner, fx: FaultyExchange, broker: PaperBroker
) -> None:
    plan = [[("buy", "0.01", "50000"), ("buy", "0.02", "49000")]]
    sr = await trader_runner.add(Trader(plan=plan), name="t")
    await trio.sleep(1)  # the compute on start ran
    assert isinstance(sr.strategy, Trader)
    orders = sr.strategy.results
    assert all(isinstance(o, trading.Order) and o.state is OrderState.SUBMITTED for o in orders)
    (result,) = await trader_runner.send("stop t")
    assert result.ok
    assert "cancelled 2 open order(s)" in result.message
    for order in orders:
        assert isinstance(order, trading.Order) and order.state is OrderState.CANCELLED
        at_exchange = await broker.query("BTCUSDT", order.client_order_id)
        assert at_exchange is not None and at_exchange.state is OrderState.CANCELLED
    assert broker.locked == {}


async def test_resting_limit_fills_when_the_price_crosses(
    clock: MockClock, trader_runner: trading.Runner, events: EventLog, prices: Prices
) -> None:
    sr = await trader_runner.add(Trader(plan=[[("buy", "0.01", "59000")]]), name="t")
    await trio.sleep(1)  # the compute on start ran
    assert isinstance(sr.strategy, Trader)
    (order,) = sr.strategy.results
    assert isinstance(order, trading.Order) and order.state is OrderState.SUBMITTED
    prices.prices["BTCUSDT"] = 58_900.0
    await trio.sleep(61)  # the broker checks resting orders every minute
    assert order.state is OrderState.FILLED and order.average_fill_price == Decimal("59000")
    assert [type(e).__name__ for e in events.of(ev.OrderFilled)] == ["OrderFilled"]


async def test_max_order_notional_and_max_open_orders_refuse_before_sending(
    clock: MockClock, trader_runner: trading.Runner, events: EventLog, fx: FaultyExchange
) -> None:
    @attrs.define
    class Limited(Trader):
        risk = trading.RiskLimits(max_order_notional=Decimal("1000"), max_open_orders=1)

    plan = [[("buy", "0.02", None), ("buy", "0.01", "50000"), ("buy", "0.01", "50000")]]
    sr = await trader_runner.add(Limited(plan=plan), name="l")
    await trio.sleep(1)  # the compute on start ran
    assert isinstance(sr.strategy, Limited)
    too_big, resting, one_too_many = sr.strategy.results
    assert isinstance(too_big, trading.OrderRefused)
    assert too_big.reason.startswith("max_order_notional: order worth 1200.00")
    assert isinstance(resting, trading.Order) and resting.state is OrderState.SUBMITTED
    assert isinstance(one_too_many, trading.OrderRefused)
    assert one_too_many.reason == "max_open_orders: already 1 open (limit 1)"
    assert len(submits(fx)) == 1
    assert [e.rule for e in events.of(ev.RiskBreached)] == [  # type: ignore[attr-defined]
        "max_order_notional",
        "max_open_orders",
    ]


async def test_daily_loss_kill_switch_pauses_and_refuses(
    clock: MockClock, trader_runner: trading.Runner, events: EventLog, prices: Prices
) -> None:
    @attrs.define
    class Risky(Trader):
        risk = trading.RiskLimits(max_daily_loss=Decimal("100"))

    plan = [[("buy", "0.1", None)], [], [("buy", "0.01", None)]]
    sr = await trader_runner.add(Risky(plan=plan), name="r")
    await trio.sleep(1)  # the compute on start ran
    prices.prices["BTCUSDT"] = 58_000.0  # -200 on 0.1 BTC, marked before the next compute
    await trio.sleep(15 * 60 + 1)
    assert sr.state is trading.StrategyState.PAUSED
    (breach,) = events.of(ev.RiskBreached)
    assert breach.rule == "max_daily_loss" and "strategy paused" in breach.action  # type: ignore[attr-defined]
    status = (await trader_runner.send("status r"))[0].message
    assert status.startswith("paused") and "halted" in status
    assert sr.account is not None
    with pytest.raises(trading.OrderRefused, match="trading is halted: daily loss"):
        await sr.account.submit(trading.Side.BUY, "0.01", "BTCUSDT")


async def test_reduce_only_lets_exits_through_and_refuses_entries(
    clock: MockClock, trader_runner: trading.Runner
) -> None:
    plan: list[list[tuple[str, str, str | None]]] = [
        [("buy", "0.03", None)],
        [("buy", "0.01", None), ("sell", "0.05", None), ("sell", "0.01", None)],
    ]
    sr = await trader_runner.add(Trader(plan=plan), name="t")
    await trio.sleep(1)  # the compute on start ran
    (reply,) = await trader_runner.send("reduce-only t on")
    assert reply.ok and reply.message.startswith("reduce-only on")
    await trio.sleep(15 * 60 + 1)
    assert isinstance(sr.strategy, Trader)
    _, more, flip, exit_ = sr.strategy.results
    assert isinstance(more, trading.OrderRefused) and more.reason.startswith("reduce-only is on")
    assert isinstance(flip, trading.OrderRefused)  # selling 0.05 of 0.03 would go short
    assert isinstance(exit_, trading.Order) and exit_.state is OrderState.FILLED
    assert sr.account is not None and sr.account.position("BTCUSDT").quantity == Decimal("0.02")
    assert sr.state is trading.StrategyState.SLEEPING  # next() kept running
    assert "reduce-only" in (await trader_runner.send("status t"))[0].message
    (off,) = await trader_runner.send("reduce-only t off")
    assert off.message == "reduce-only off"


async def test_flatten_closes_positions_cancels_orders_and_pauses(
    clock: MockClock, trader_runner: trading.Runner
) -> None:
    plan = [[("buy", "0.03", None), ("buy", "0.01", "50000")]]
    sr = await trader_runner.add(Trader(plan=plan), name="t")
    await trio.sleep(1)  # the compute on start ran
    (reply,) = await trader_runner.send("flatten t")
    assert reply.ok and reply.message.startswith("flattened BTCUSDT 0.03 (filled)")
    assert reply.message.endswith("; paused")
    assert sr.state is trading.StrategyState.PAUSED
    assert sr.account is not None
    assert sr.account.position("BTCUSDT").quantity == 0 and sr.account.open_orders() == []


async def test_an_order_is_rounded_to_the_symbols_grid_before_it_is_sent(
    clock: MockClock, trader_runner: trading.Runner, fx: FaultyExchange, broker: PaperBroker
) -> None:
    """A quantity computed as cash / price is rounded down to the step, a limit buy's price
    down to the tick (never more than asked), and that is what the exchange receives."""
    account = trader_runner.engine.account("rounding")  # type: ignore[union-attr]
    order = await account.submit(trading.Side.BUY, "0.0923456789", "BTCUSDT", price="100.129")
    info = fx.symbol_info()["BTCUSDT"]
    assert order.quantity % info.step_size == 0 and order.quantity <= Decimal("0.0923456789")
    assert order.price is not None and order.price % info.tick_size == 0
    assert order.price <= Decimal("100.129")
    sent = await broker.query("BTCUSDT", order.client_order_id)
    assert sent is not None
    assert (sent.quantity, sent.price) == (order.quantity, order.price)
