"""Reports arriving in any order and more than once (trading.core.updates; no event loop)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.ids import new_client_order_id
from trading.core.ledger import Portfolio
from trading.core.orders import Fill, Order, OrderState, OrderType, Side
from trading.core.updates import Applied, ExchangeOrder, apply_update

D = Decimal
S = OrderState
CID = new_client_order_id("t", 1, "run1")
QTY = D(10)


def new_order(side: Side = Side.BUY, state: OrderState = S.NEW) -> Order:
    order = Order(
        client_order_id=CID,
        strategy="t",
        symbol="BTCUSDT",
        side=side,
        type=OrderType.LIMIT,
        quantity=QTY,
        price=D(100),
        created_at=0.0,
    )
    if state is S.UNKNOWN:
        order.mark_unknown(0.5)
    return order


HUNDRED = D(100)


def fill(n: int, quantity: Decimal, price: Decimal = HUNDRED, side: Side = Side.BUY) -> Fill:
    return Fill(
        client_order_id=CID,
        symbol="BTCUSDT",
        side=side,
        quantity=quantity,
        price=price,
        fee=quantity * price / 1000,
        fee_asset="USDT",
        time=float(n),
        trade_id=f"T{n}",
    )


def report(state: OrderState, fills: tuple[Fill, ...] = (), **kw: Any) -> ExchangeOrder:
    fields: dict[str, Any] = {
        "client_order_id": CID,
        "exchange_order_id": "X1",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "type": OrderType.LIMIT,
        "quantity": QTY,
        "price": D(100),
        "state": state,
    }
    filled = sum((f.quantity for f in fills), D(0))
    if filled:
        fields["filled_quantity"] = filled
        fields["average_price"] = sum((f.quantity * f.price for f in fills), D(0)) / filled
    fields.update(fills=fills, **kw)
    return ExchangeOrder(**fields)


# ------------------------------------------------------------------ the property


@st.composite
def histories(draw: st.DrawFn) -> tuple[Side, list[ExchangeOrder], OrderState, Decimal]:
    """A valid sequence of reports about one order, in the order the exchange sent them, with
    the exchange's final truth. Each fill is pushed once with its trade; snapshots (all trades
    so far) and bare snapshots (only the cumulative figure, as a REST lookup gives) are sprinkled
    in between."""
    side = draw(st.sampled_from(Side))
    if draw(st.integers(0, 9)) == 0:
        return side, [report(S.REJECTED, side=side, reason="no")], S.REJECTED, D(0)
    sizes = draw(st.lists(st.integers(1, 4), max_size=5))
    prices = draw(st.lists(st.integers(90, 110), min_size=len(sizes), max_size=len(sizes)))
    fills: list[Fill] = []
    total = D(0)
    for n, (size, price) in enumerate(zip(sizes, prices, strict=True)):
        quantity = min(D(size), QTY - total)
        if quantity <= 0:
            break
        fills.append(fill(n, quantity, D(price), side))
        total += quantity
    if total == QTY:
        end = S.FILLED
    else:
        end = draw(st.sampled_from([S.PARTIALLY_FILLED, S.CANCELLED, S.EXPIRED]))
        if end is S.PARTIALLY_FILLED and not fills:
            end = S.SUBMITTED
    seq = [report(S.SUBMITTED, side=side)]
    for i, f in enumerate(fills):
        so_far = tuple(fills[: i + 1])
        state = S.FILLED if i == len(fills) - 1 and end is S.FILLED else S.PARTIALLY_FILLED
        snapshot = report(state, so_far, side=side)
        seq.append(ExchangeOrder(**{**_fields(snapshot), "fills": (f,)}))  # a push: its trade
        kind = draw(st.sampled_from(["none", "snapshot", "bare"]))
        if kind != "none":
            seq.append(snapshot if kind == "snapshot" else _bare(snapshot))
    if end in (S.CANCELLED, S.EXPIRED):
        seq.append(report(end, tuple(fills), side=side))
    return side, seq, end, total


def _fields(r: ExchangeOrder) -> dict[str, Any]:
    return {a.name: getattr(r, a.name) for a in ExchangeOrder.__attrs_attrs__}


def _bare(r: ExchangeOrder) -> ExchangeOrder:
    return ExchangeOrder(**{**_fields(r), "fills": ()})


def run(side: Side, start: OrderState, reports: list[ExchangeOrder]) -> tuple[Any, ...]:
    order = new_order(side, start)
    book = Portfolio(symbols={"BTCUSDT": ("BTC", "USDT")})
    for n, r in enumerate(reports):
        applied = apply_update(order, r, float(n))
        for f in applied.fills:
            book.apply_fill(f)
    position = book.position("BTCUSDT")
    return (
        order.state,
        order.filled_quantity,
        order.average_fill_price,
        order.fees,
        sorted(f.trade_id for f in order.fills),
        (position.quantity, position.cost_basis, position.fees, book.balances),
    )


@given(history=histories(), start=st.sampled_from([S.NEW, S.UNKNOWN]), data=st.data())
def test_any_permutation_with_duplicates_ends_where_the_sequence_in_order_ends(
    history: tuple[Side, list[ExchangeOrder], OrderState, Decimal],
    start: OrderState,
    data: st.DataObject,
) -> None:
    side, reports, end, total = history
    in_order = run(side, start, reports)
    assert in_order[0] is end and in_order[1] == total  # in order, it is the exchange's truth
    shuffled = data.draw(st.permutations(reports))
    extra = data.draw(st.lists(st.sampled_from(reports), max_size=4))
    mixed = list(shuffled)
    for r in extra:
        mixed.insert(data.draw(st.integers(0, len(mixed))), r)
    assert run(side, start, mixed) == in_order


# ------------------------------------------------------------------ the cases by name


def test_stale_snapshot_after_a_pushed_partial_fill_is_dropped() -> None:
    order = new_order()
    first = fill(1, D(4))
    apply_update(order, report(S.PARTIALLY_FILLED, (first,)), 1.0)
    applied = apply_update(order, report(S.SUBMITTED), 2.0)  # the REST answer, older
    assert not applied.changed and "stale" in applied.dropped[0]
    assert order.state is S.PARTIALLY_FILLED and order.filled_quantity == 4


def test_push_before_the_answer_then_the_answer_changes_nothing() -> None:
    order = new_order()
    done = report(S.FILLED, (fill(1, QTY),))
    pushed = apply_update(order, done, 1.0)
    assert pushed.accepted and pushed.fills and pushed.state is S.FILLED
    assert apply_update(order, done, 2.0) == Applied()
    assert order.state is S.FILLED and len(order.fills) == 1


def test_cancel_ack_after_the_fill_is_dropped() -> None:
    order = new_order()
    apply_update(order, report(S.FILLED, (fill(1, QTY),)), 1.0)
    applied = apply_update(order, report(S.CANCELLED), 2.0)
    assert applied.state is None and applied.dropped
    assert order.state is S.FILLED


def test_late_fill_of_a_cancelled_order_is_booked() -> None:
    order = new_order()
    apply_update(order, report(S.SUBMITTED), 1.0)
    apply_update(order, report(S.CANCELLED, filled_quantity=D(3), average_price=D(100)), 2.0)
    late = apply_update(order, report(S.PARTIALLY_FILLED, (fill(1, D(3)),)), 3.0)
    assert late.fills and order.state is S.CANCELLED and order.filled_quantity == 3


@pytest.mark.parametrize(
    "bad",
    [
        report(S.FILLED, symbol="ETHUSDT"),
        report(S.FILLED, side=Side.SELL),
        report(S.FILLED, client_order_id="someone-else"),
        report(S.NEW),
        report(S.UNKNOWN),
        report(S.REJECTED, (fill(1, D(1)),)),
        report(S.FILLED, filled_quantity=D(4), average_price=D(100)),  # filled, but only 4?
        report(S.PARTIALLY_FILLED, (fill(1, D(6)), fill(2, D(6)))),  # overfill
        report(S.PARTIALLY_FILLED, filled_quantity=D(11), average_price=D(100)),
        report(S.PARTIALLY_FILLED, filled_quantity=D(2), average_price=None),
    ],
)
def test_impossible_reports_are_dropped_never_raised(bad: ExchangeOrder) -> None:
    order = new_order()
    apply_update(order, report(S.SUBMITTED), 1.0)
    applied = apply_update(order, bad, 2.0)
    assert applied.dropped
    assert order.filled_quantity <= QTY and order.state is not S.FILLED


def test_resent_trade_with_other_numbers_is_dropped() -> None:
    order = new_order()
    apply_update(order, report(S.PARTIALLY_FILLED, (fill(1, D(2)),)), 1.0)
    liar = fill(1, D(3))
    lie = report(S.PARTIALLY_FILLED, (liar,), filled_quantity=D(2), average_price=D(100))
    applied = apply_update(order, lie, 2.0)
    assert applied.dropped and order.filled_quantity == 2
