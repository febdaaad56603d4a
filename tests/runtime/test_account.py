"""The account side of the order path: a bounded, truthful shutdown (C1, C2), deadlines that
reach through shields, the daily-loss kill switch's day, what the engine and the account keep
(point 8), releasing a strategy (C6), and the layout (no account <-> engine import)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
from trio.testing import MockClock

import trading
from tests.conftest import EventLog
from tests.runtime.conftest import Prices, buy
from trading.core import events as ev
from trading.core.orders import OrderState, Side
from trading.exchanges.paper import PaperBroker
from trading.runtime.account import Account
from trading.runtime.engine import TradeEngine
from trading.testing import AcceptThenHang, Hang, Reject
from trading.testing.exchange import FaultyExchange

S = OrderState
D = Decimal


# ------------------------------------------------------- C1/C2: bounded, truthful shutdown


async def test_hanging_cancel_under_a_one_second_stop_deadline(
    clock: MockClock, account: Account, fx: FaultyExchange
) -> None:
    order = await buy(account, price="50000")
    fx.script("cancel", Hang())
    fx.script("query", Hang())
    start = trio.current_time()
    with trio.CancelScope(shield=True, deadline=start + 1):  # what a stop's wind-down opens
        lines = await account.shutdown()
    assert trio.current_time() - start == pytest.approx(1)
    cid = order.client_order_id
    assert lines == [
        f"could not cancel {cid} (unknown: no answer before the deadline; still reconciling)"
    ]
    assert not any(line.startswith("cancelled") for line in lines)


async def test_refused_cancel_is_reported_as_still_resting(
    clock: MockClock, account: Account, fx: FaultyExchange
) -> None:
    kept = await buy(account, price="50000")
    gone = await buy(account, price="49000")
    fx.script("cancel", Reject("-2011", "Unknown order sent."))
    lines = await account.shutdown()
    assert lines == [
        f"cancelled 1 open order(s): {gone.client_order_id}",
        f"could not cancel {kept.client_order_id} (still resting, submitted)",
    ]


async def test_stop_with_a_hanging_cancel_returns_within_stop_timeout(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog, fx: FaultyExchange
) -> None:
    class Rests(trading.Strategy):
        async def next(self, ctx: trading.Context) -> None:
            if not ctx.open_orders():
                await ctx.buy("0.01", price="50000")

    async with trading.Runner(clock=vclock, publish=events, exchange=fx, stop_timeout=1) as r:
        await r.add(Rests(), name="t")
        await trio.sleep(1)
        fx.script("cancel", Hang())
        fx.script("query", Hang())
        start = trio.current_time()
        (reply,) = await r.send("stop t")
        elapsed = trio.current_time() - start
    assert elapsed <= 1.5  # not call_timeout + reconcile_timeout (40 s)
    assert "could not cancel tt-t-" in reply.message and "cancelled 1" not in reply.message


# ---------------------------------------------------------- point 20: the kill switch's day


async def test_daily_loss_counts_the_first_fills_fee(
    clock: MockClock, account: Account, events: EventLog
) -> None:
    account.limits = trading.RiskLimits(max_daily_loss=D(5))
    order = await buy(account, "0.1")  # fee 0.1% of ~6003 USDT = ~6.00 USDT, at an unmoved mark
    assert order.fees > 5
    assert account.halted is not None and "daily loss 6.00" in account.halted
    (breach,) = events.of(ev.RiskBreached)
    assert breach.rule == "max_daily_loss"  # type: ignore[attr-defined]


# ------------------------------------------------------ point 8 and C6: what the engine keeps


async def test_finished_orders_leave_the_engine_and_the_account(
    clock: MockClock, engine: TradeEngine, account: Account
) -> None:
    for _ in range(5):
        await buy(account)
    resting = [await buy(account, price=p) for p in ("50000", "49000")]
    assert list(engine.orders) == [o.client_order_id for o in resting]
    assert account.open_orders() == resting and list(account.orders.values()) == resting
    await account.cancel(resting[0])
    assert account.open_orders() == [resting[1]] and list(engine.orders) == [
        resting[1].client_order_id
    ]
    assert await account.cancel(resting[0]) is resting[0]  # a finished order: nothing to do


async def test_release_forgets_a_strategy_once_its_orders_are_resolved(
    clock: MockClock, engine: TradeEngine, broker: PaperBroker
) -> None:
    account = engine.account("gone")
    account.on_kill = lambda reason: None
    resting = await account.submit(Side.BUY, "0.01", "BTCUSDT", "50000")
    engine.release("gone")
    assert account.on_kill is None
    assert engine.account("other") is not account
    # Its open order still needs it: a fill of that order reaches its books.
    prices = broker._prices
    assert isinstance(prices, Prices)
    prices.prices["BTCUSDT"] = 49_000.0
    await trio.sleep(61)
    assert resting.state is S.FILLED and account.position("BTCUSDT").quantity == D("0.01")
    assert "gone" not in engine._accounts  # now it is forgotten
    engine.release("never-existed")  # harmless


async def test_a_hanging_submit_never_outlives_the_callers_deadline(
    clock: MockClock, account: Account, fx: FaultyExchange
) -> None:
    fx.script("submit", AcceptThenHang())
    fx.script("query", Hang())
    start = trio.current_time()
    with (
        trio.CancelScope(shield=True, deadline=start + 1),
        pytest.raises(trading.OrderUnresolved),
    ):
        await buy(account)
    assert trio.current_time() - start == pytest.approx(1)
    (order,) = account.open_orders()
    assert order.state is S.UNKNOWN  # reported, and chased in the background
    await trio.sleep(60)
    assert order.state is S.FILLED and account.open_orders() == []


async def test_no_order_is_sent_once_the_deadline_has_passed(
    clock: MockClock, account: Account, fx: FaultyExchange
) -> None:
    with (
        trio.CancelScope(shield=True, deadline=trio.current_time()),
        pytest.raises(trading.OrderRefused, match="no time left"),
    ):
        await buy(account)
    assert fx.calls == []


def test_order_unresolved_is_an_order_error_exported_flat() -> None:
    assert issubclass(trading.OrderUnresolved, trading.OrderError)


def test_the_account_routes_through_a_port_not_the_engine() -> None:
    """Layout: no account.py <-> engine.py cycle, not even for type checking."""
    import ast
    import inspect

    import trading.runtime.account as account_module

    tree = ast.parse(inspect.getsource(account_module))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "trading.runtime.engine" not in imported
    assert "trading.runtime.routing" in imported
