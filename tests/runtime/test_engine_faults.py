"""The order path under faults (rule 4, contracts C1-C3): any exception, pushes before answers,
answers lost after pushes, stale and bad reports, the not-found grace, bounded cancels."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import pytest
import trio
from hypothesis import example, given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

import trading
from tests.conftest import T0, EventLog
from tests.runtime.conftest import Prices, buy, kinds, start_engine
from tests.runtime.test_engine import order_states
from trading.core import events as ev
from trading.core.orders import Order, OrderState, Side
from trading.exchanges.base import ExchangeError, ExchangeOrder
from trading.exchanges.paper import PaperBroker
from trading.runtime.account import Account
from trading.runtime.engine import TradeEngine
from trading.testing import (
    AcceptThenDelay,
    AcceptThenFail,
    AcceptThenHang,
    AcceptThenRaise,
    Delay,
    FailBefore,
    Fault,
    Hang,
    NotFound,
    PassThrough,
    PushThenAnswer,
    PushThenFail,
    RaiseBefore,
)
from trading.testing.exchange import FaultyExchange

S = OrderState
D = Decimal


# ------------------------------------------------------------------ point 1: any exception

ERRORS: list[Exception] = [
    ConnectionResetError(104, "Connection reset by peer"),
    OSError("network unreachable"),
    TimeoutError("read timed out"),  # what HTTP clients' timeouts derive from
    ValueError("Expecting value: line 1 column 1 (char 0)"),  # a decoder on a broken body
    ExchangeError("502 Bad Gateway"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
async def test_any_exception_after_the_order_was_placed_is_reconciled_and_booked(
    clock: MockClock, account: Account, fx: FaultyExchange, events: EventLog, error: Exception
) -> None:
    fx.script("submit", AcceptThenRaise(error))
    order = await buy(account)
    assert order.state is S.FILLED and fx.placed[order.client_order_id] == 1
    assert account.position("BTCUSDT").quantity == D("0.01")  # its fill is booked, once
    assert kinds(events, order.client_order_id)[:2] == ["OrderSubmitted", "OrderUnknown"]
    assert "OrderReconciled" in kinds(events, order.client_order_id)


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
async def test_any_exception_before_the_order_was_placed_ends_rejected_not_new(
    clock: MockClock, account: Account, fx: FaultyExchange, error: Exception
) -> None:
    fx.script("submit", RaiseBefore(error))
    order = await buy(account)
    assert order.state is S.REJECTED and order.reject_reason == "never reached the exchange"
    assert fx.placed[order.client_order_id] == 0


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
async def test_any_exception_from_a_cancel_is_reconciled(
    clock: MockClock, account: Account, fx: FaultyExchange, error: Exception
) -> None:
    placed = await buy(account, price="50000")
    unsent = await buy(account, price="49000")
    fx.script("cancel", AcceptThenRaise(error), RaiseBefore(error))
    await account.cancel(placed)  # the cancel happened, its answer was lost
    await account.cancel(unsent)  # the cancel never left
    assert placed.state is S.CANCELLED
    assert unsent.state is S.SUBMITTED and account.open_orders() == [unsent]


# ---------------------------------------------------------- point 2: pushes and stale reports


async def test_fill_pushed_before_the_answer_is_booked_once(
    clock: MockClock, account: Account, fx: FaultyExchange, events: EventLog
) -> None:
    fx.script("submit", PushThenAnswer())
    order = await buy(account)
    assert order.state is S.FILLED
    assert kinds(events, order.client_order_id) == [
        "OrderSubmitted",
        "OrderAccepted",
        "OrderFilled",
    ]
    assert account.position("BTCUSDT").quantity == D("0.01")


async def test_answer_lost_after_the_push_returns_the_order_filled(
    clock: MockClock, account: Account, fx: FaultyExchange, events: EventLog
) -> None:
    fx.script("submit", PushThenFail())
    order = await buy(account)
    assert order.state is S.FILLED  # ctx.buy returns it filled
    assert "OrderUnknown" not in kinds(events, order.client_order_id)
    assert account.position("BTCUSDT").quantity == D("0.01")
    assert [m for m, _ in fx.calls] == ["submit"]  # the stream told all: nothing to ask


def _evolve(report: ExchangeOrder, **changes: Any) -> ExchangeOrder:
    fields = {a.name: getattr(report, a.name) for a in ExchangeOrder.__attrs_attrs__}
    return ExchangeOrder(**{**fields, **changes})


async def test_stale_duplicate_and_bad_pushes_are_dropped_and_never_raise(
    clock: MockClock, engine: TradeEngine, account: Account, fx: FaultyExchange, broker: PaperBroker
) -> None:
    resting = await buy(account, price="50000")
    filled = await buy(account)
    snapshot = await broker.query("BTCUSDT", filled.client_order_id)
    assert snapshot is not None
    older = _evolve(snapshot, state=S.SUBMITTED, fills=(), filled_quantity=D(0))
    bad: list[Any] = [
        older,  # a REST snapshot older than the fill
        snapshot,  # a duplicate
        _evolve(snapshot, state=S.CANCELLED),  # a cancel ack after the fill
        _evolve(snapshot, symbol="ETHUSDT"),  # not this order
        _evolve(snapshot, client_order_id="someone-else"),  # not ours
        _evolve(snapshot, state=S.NEW),  # not a state a report can have
        _evolve(snapshot, client_order_id=resting.client_order_id, state=S.REJECTED),
        _evolve(snapshot, client_order_id=resting.client_order_id, quantity=D(5)),
        object(),  # not a report at all
    ]
    for report in bad:
        fx.push(cast(ExchangeOrder, report))
    assert filled.state is S.FILLED and len(filled.fills) == 1
    assert resting.state is S.SUBMITTED
    assert account.position("BTCUSDT").quantity == D("0.01")
    again = await buy(account)  # the engine goes on
    assert again.state is S.FILLED


# ---------------------------------------------------------------- point 3: the not-found grace


async def test_order_found_only_on_the_second_lookup_is_not_lost(
    clock: MockClock, account: Account, fx: FaultyExchange
) -> None:
    fx.script("submit", AcceptThenFail())
    fx.script("query", NotFound())
    order = await buy(account)
    assert order.state is S.FILLED and fx.pending("query") == ()
    assert [m for m, _ in fx.calls] == ["submit", "query", "query"]


async def test_grace_counts_real_time_not_a_fast_strategy_clock(
    clock: MockClock, nursery: trio.Nursery, fx: FaultyExchange, events: EventLog
) -> None:
    fast = trading.VirtualClock(start=T0, speed=10_000)  # a day of bars in 9 s
    engine = await start_engine(nursery, fx, fast, events)
    fx.script("submit", AcceptThenFail())
    fx.script("query", NotFound(), NotFound(), NotFound())  # 0, 0.25, 0.75 s after the attempt
    order = await buy(engine.account("t"))
    assert order.state is S.FILLED and fx.placed[order.client_order_id] == 1


async def test_grace_starts_when_the_submit_attempt_ended(
    clock: MockClock, account: Account, fx: FaultyExchange
) -> None:
    fx.script("submit", AcceptThenHang())  # placed; no answer for the whole call_timeout (10 s)
    fx.script("query", NotFound())  # 10 s after sending, but 0 s after the attempt ended
    start = trio.current_time()
    order = await buy(account)
    assert order.state is S.FILLED
    assert trio.current_time() - start == pytest.approx(10.25)


async def test_not_found_past_the_grace_is_rejected_after_repeated_lookups(
    clock: MockClock, account: Account, fx: FaultyExchange
) -> None:
    fx.script("submit", Hang())  # never reached the exchange
    start = trio.current_time()
    order = await buy(account)
    assert order.state is S.REJECTED and order.reject_reason == "never reached the exchange"
    assert trio.current_time() - start == pytest.approx(10 + 5)  # call_timeout + grace
    assert [m for m, _ in fx.calls].count("query") >= 4


# ------------------------------------------- every fault, generated: known, booked once, no dup

SUBMIT_FAULTS = st.one_of(
    st.sampled_from(
        [
            PassThrough(),
            Delay(3),
            Delay(30),
            Hang(),
            FailBefore(),
            AcceptThenHang(),
            AcceptThenFail(),
            AcceptThenDelay(30),
            PushThenAnswer(),
            PushThenFail(),
        ]
    ),
    st.builds(RaiseBefore, st.sampled_from(ERRORS)),
    st.builds(AcceptThenRaise, st.sampled_from(ERRORS)),
)
QUERY_FAULTS = st.lists(
    st.sampled_from([PassThrough(), NotFound(), FailBefore(), RaiseBefore(ValueError("x"))]),
    max_size=4,
)


@settings(max_examples=100)
@example(faults=[PushThenFail(), PushThenAnswer()], queries=[], resting=False)
@example(faults=[AcceptThenHang(), Hang()], queries=[NotFound(), NotFound()], resting=True)
@given(
    faults=st.lists(SUBMIT_FAULTS, min_size=1, max_size=4),
    queries=QUERY_FAULTS,
    resting=st.booleans(),
)
def test_whatever_a_submit_meets_the_order_ends_known_booked_once_never_duplicated(
    faults: list[Fault], queries: list[Fault], resting: bool
) -> None:
    async def main() -> None:
        vclock = trading.VirtualClock(start=T0)
        broker = PaperBroker(Prices(), vclock)
        fx = FaultyExchange(broker)
        fx.script("submit", *faults)
        fx.script("query", *queries)
        events = EventLog()
        async with trio.open_nursery() as nursery:
            engine = await start_engine(nursery, fx, vclock, events)
            account = engine.account("t")
            for _ in faults:
                try:
                    order = await buy(account, price="60100" if resting else None)
                except (trading.OrderRefused, trading.OrderUnresolved):
                    continue  # judged below, by its events
                assert order.state is not S.NEW
            await trio.sleep(600)  # the background reconciler finishes what is left
            expected = D(0)
            for cid, (state, filled) in order_states(events).items():
                assert fx.placed[cid] <= 1
                at_exchange = await broker.query("BTCUSDT", cid)
                if at_exchange is None:
                    assert state is S.REJECTED
                else:
                    assert (state, filled) == (at_exchange.state, at_exchange.filled_quantity)
                    expected += at_exchange.filled_quantity
            assert account.position("BTCUSDT").quantity == expected  # every fill, once
            assert engine.orders == {} or all(
                o.state is S.SUBMITTED for o in account.orders.values()
            )
            nursery.cancel_scope.cancel()

    trio.run(main, clock=MockClock(autojump_threshold=0))


async def test_stopping_the_engine_does_not_wait_for_background_reconciliation(
    clock: MockClock, fx: FaultyExchange, vclock: trading.VirtualClock, events: EventLog
) -> None:
    fx.script("submit", AcceptThenHang())
    fx.script("query", *[Hang()] * 5)
    async with trio.open_nursery() as nursery:
        engine = await start_engine(nursery, fx, vclock, events)
        with (
            trio.CancelScope(shield=True, deadline=trio.current_time() + 1),
            pytest.raises(trading.OrderUnresolved),
        ):
            await buy(engine.account("t"))
        await trio.sleep(5)  # the background reconciler is inside a query that hangs
        assert engine.orders
        start = trio.current_time()
        nursery.cancel_scope.cancel()
    assert trio.current_time() == start


async def test_trades_pushed_after_the_order_finished_are_still_booked(
    clock: MockClock, account: Account, fx: FaultyExchange, events: EventLog
) -> None:
    order = await buy(account, price="50000")
    assert order.exchange_order_id is not None
    half = D("0.005")
    trade = trading.Fill(
        client_order_id=order.client_order_id,
        symbol="BTCUSDT",
        side=Side.BUY,
        quantity=half,
        price=D(50000),
        fee=D("0.25"),
        fee_asset="USDT",
        time=T0,
        trade_id="late-1",
    )
    spec = order.spec
    eid = order.exchange_order_id
    # The cancel's answer knows a trade happened; the trade itself is pushed later.
    fx.push(
        ExchangeOrder.of(
            spec,
            exchange_order_id=eid,
            state=S.CANCELLED,
            filled_quantity=half,
            average_price=D(50000),
        )
    )
    assert order.state is S.CANCELLED and account.open_orders() == []
    assert account.position("BTCUSDT").quantity == 0  # not booked yet: no trade to book
    partial = ExchangeOrder.of(
        spec,
        exchange_order_id=eid,
        state=S.PARTIALLY_FILLED,
        filled_quantity=half,
        average_price=D(50000),
        fills=(trade,),
    )
    fx.push(partial)
    fx.push(partial)  # and again
    assert account.position("BTCUSDT").quantity == half and order.fees == D("0.25")
    last = [e for e in events if isinstance(e, ev.OrderEvent)][-1]
    assert isinstance(last, ev.OrderReconciled) and last.state == "cancelled"
    assert order.state is S.CANCELLED


async def test_ctx_buy_returns_the_order_filled_when_its_answer_is_lost_after_the_push(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog, fx: FaultyExchange
) -> None:
    got: list[Order] = []

    class Buys(trading.Strategy):
        async def next(self, ctx: trading.Context) -> None:
            if not got:
                got.append(await ctx.buy("0.01"))

    fx.script("submit", PushThenFail())
    async with trading.Runner(clock=vclock, publish=events, exchange=fx) as runner:
        sr = await runner.add(Buys(), name="t")
        await trio.sleep(1)
        assert sr.state is trading.StrategyState.SLEEPING  # no failure, no restart
    (order,) = got
    assert order.state is S.FILLED and fx.placed[order.client_order_id] == 1
