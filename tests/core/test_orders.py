"""Tests for the order state machine, fills and client order ids (no event loop)."""

from __future__ import annotations

import copy
import itertools
import re
from collections import deque
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.ids import new_client_order_id, parse_client_order_id, strategy_of
from trading.core.orders import (
    TRANSITIONS,
    Fill,
    IllegalTransition,
    InvalidFill,
    Order,
    OrderError,
    OrderRefused,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
    can_transition,
)

D = Decimal
S = OrderState

# Written out here, not imported, so the test does not trust the module's copy.
BINANCE_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")

CID = new_client_order_id("test", 1, "run1")
QTY = D("10")
PRICE = D("100")
_trade_ids = itertools.count()


def make_order(**overrides: Any) -> Order:
    fields: dict[str, Any] = {
        "client_order_id": CID,
        "strategy": "test",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "type": OrderType.LIMIT,
        "quantity": QTY,
        "price": D("100"),
        "created_at": 1000.0,
    }
    fields.update(overrides)
    return Order(**fields)


def make_fill(order: Order, quantity: Decimal, price: Decimal = PRICE, **overrides: Any) -> Fill:
    fields: dict[str, Any] = {
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side,
        "quantity": quantity,
        "price": price,
        "fee": D("0.01"),
        "fee_asset": "USDT",
        "time": 1001.0,
        "trade_id": f"t{next(_trade_ids)}",
    }
    fields.update(overrides)
    return Fill(**fields)


# ------------------------------------------------------------------ the table


def test_table_is_exactly_the_specified_one() -> None:
    # A pinned copy of the spec: if TRANSITIONS drifts, this fails.
    expected = {
        S.NEW: {S.SUBMITTED, S.REJECTED, S.UNKNOWN},
        S.SUBMITTED: {S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED, S.UNKNOWN},
        S.PARTIALLY_FILLED: {S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED, S.UNKNOWN},
        S.UNKNOWN: {S.SUBMITTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED},
        S.FILLED: set(),
        S.CANCELLED: set(),
        S.REJECTED: set(),
        S.EXPIRED: set(),
    }
    assert {state: set(targets) for state, targets in TRANSITIONS.items()} == expected


def test_table_covers_every_state_and_cannot_be_edited() -> None:
    assert set(TRANSITIONS) == set(OrderState)
    with pytest.raises(TypeError):
        TRANSITIONS[S.FILLED] = frozenset({S.NEW})  # type: ignore[index]


@pytest.mark.parametrize("state", list(OrderState))
def test_final_means_no_way_out(state: OrderState) -> None:
    assert state.is_final == (not TRANSITIONS[state])


def test_final_states_and_unknown() -> None:
    assert {s for s in OrderState if s.is_final} == {S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED}
    assert not S.UNKNOWN.is_final
    assert S.PARTIALLY_FILLED.value == "partially_filled"
    assert Side.BUY.value == "buy" and Side.SELL.value == "sell"


def state_of(order: Order) -> OrderState:
    """Read state through a call so mypy doesn't keep an earlier narrowing."""
    return order.state


def _reachable_from_new() -> set[OrderState]:
    seen, todo = {S.NEW}, deque([S.NEW])
    while todo:
        for nxt in TRANSITIONS[todo.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


REACHABLE = _reachable_from_new()


def drive(order: Order, state: OrderState) -> Order:
    """Bring a fresh order to ``state`` along legal moves only."""
    if state is S.NEW:
        return order
    if state is S.REJECTED:
        order.mark_rejected("no", 1001.0)
    elif state is S.UNKNOWN:
        order.mark_unknown(1001.0)
    else:
        order.mark_submitted("ex-1", 1001.0)
        if state is S.PARTIALLY_FILLED:
            order.apply_fill(make_fill(order, D("5")))
        elif state is S.FILLED:
            order.apply_fill(make_fill(order, QTY))
        elif state is S.CANCELLED:
            order.mark_cancelled(1002.0)
        elif state is S.EXPIRED:
            order.mark_expired(1002.0)
    assert order.state is state
    return order


def trigger(order: Order, target: OrderState) -> None:
    """Fire the event whose natural outcome is ``target``."""
    if target is S.SUBMITTED:
        order.mark_submitted("ex-2", 2000.0)
    elif target is S.PARTIALLY_FILLED:
        order.apply_fill(make_fill(order, D("1")))
    elif target is S.FILLED:
        order.apply_fill(make_fill(order, order.remaining_quantity or D("1")))
    elif target is S.CANCELLED:
        order.mark_cancelled(2000.0)
    elif target is S.REJECTED:
        order.mark_rejected("nope", 2000.0)
    elif target is S.EXPIRED:
        order.mark_expired(2000.0)
    elif target is S.UNKNOWN:
        order.mark_unknown(2000.0)
    else:  # pragma: no cover - NEW has no event
        raise AssertionError(target)


PAIRS = list(itertools.product(OrderState, OrderState))
EVENT_PAIRS = [(a, b) for a, b in PAIRS if b is not S.NEW]


@pytest.mark.parametrize(("source", "target"), EVENT_PAIRS)
def test_every_event_transition(source: OrderState, target: OrderState) -> None:
    order = drive(make_order(), source)
    before = copy.deepcopy(order)
    if target in TRANSITIONS[source]:
        trigger(order, target)
        assert order.state is target
        assert order.updated_at >= before.updated_at
    else:
        with pytest.raises(IllegalTransition) as info:
            trigger(order, target)
        assert info.value.from_state is source
        assert order == before  # a refused event changes nothing


def _reported_filled(order: Order, target: OrderState) -> Decimal:
    if target in (S.NEW, S.SUBMITTED, S.REJECTED):
        return D(0)
    if target is S.PARTIALLY_FILLED:
        return order.filled_quantity + 1 if order.filled_quantity else D("5")
    if target is S.FILLED:
        return order.quantity
    return order.filled_quantity


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_every_reconcile_transition(source: OrderState, target: OrderState) -> None:
    order = drive(make_order(), source)
    before = copy.deepcopy(order)
    filled = _reported_filled(order, target)
    assert can_transition(source, target) == (target in TRANSITIONS[source])
    if target in TRANSITIONS[source]:
        order.reconcile(target, filled, D("101"), 3000.0)
        assert order.state is target
        assert order.filled_quantity == filled
        assert order.updated_at == 3000.0
    else:
        with pytest.raises(IllegalTransition) as info:
            order.reconcile(target, filled, D("101"), 3000.0)
        error = info.value
        assert (error.client_order_id, error.from_state, error.to_state) == (CID, source, target)
        message = str(error)
        assert CID in message and source.value in message and target.value in message
        assert order == before


# ------------------------------------------------------ random event sequences

MARK_EVENTS = {
    "submit": S.SUBMITTED,
    "cancel": S.CANCELLED,
    "reject": S.REJECTED,
    "expire": S.EXPIRED,
    "unknown": S.UNKNOWN,
}

# Round sizes make exact completion (FILLED) likely; arbitrary ones probe overfills.
quantities = st.one_of(
    st.sampled_from([D("2.5"), D("5"), D("10")]),
    st.decimals(min_value=D("0.01"), max_value=D("12"), places=2),
)
prices = st.decimals(min_value=D("90"), max_value=D("110"), places=2)
fill_events = st.tuples(st.just("fill"), quantities, prices, st.integers(0, 6))
events = st.one_of(
    st.tuples(st.sampled_from(sorted(MARK_EVENTS))),
    fill_events,
    fill_events,  # weighted: fills are the interesting part
    st.tuples(st.just("reconcile"), st.sampled_from(list(OrderState)), quantities, prices),
)


@given(st.booleans(), st.lists(events, max_size=30))
def test_random_event_sequences_keep_the_rules(
    acknowledged: bool, sequence: list[tuple[Any, ...]]
) -> None:
    order = make_order()
    if acknowledged:
        order.mark_submitted("ex", 2.0)
    sent: dict[int, Fill] = {}  # trade-id slot -> fill, so slots repeat as true resends
    reconciled = False
    for event in sequence:
        before = copy.deepcopy(order)
        kind = event[0]
        duplicate = False
        if kind in MARK_EVENTS:
            target = MARK_EVENTS[kind]
            call: Any = {
                "submit": lambda: order.mark_submitted("ex", 5.0),
                "cancel": lambda: order.mark_cancelled(5.0),
                "reject": lambda: order.mark_rejected("r", 5.0),
                "expire": lambda: order.mark_expired(5.0),
                "unknown": lambda: order.mark_unknown(5.0),
            }[kind]
        elif kind == "fill":
            _, quantity, price, slot = event
            if slot not in sent:
                sent[slot] = make_fill(order, quantity, price, trade_id=f"slot{slot}")
            fill = sent[slot]
            duplicate = any(f.trade_id == fill.trade_id for f in before.fills)
            total = before.filled_quantity + fill.quantity
            target = S.FILLED if total >= order.quantity else S.PARTIALLY_FILLED

            def call(fill: Fill = fill) -> None:
                order.apply_fill(fill)
        else:
            _, target, reported, price = event
            reported = order.quantity if target is S.FILLED else min(reported, order.quantity)

            def call(
                target: OrderState = target, reported: Decimal = reported, price: Decimal = price
            ) -> None:
                order.reconcile(target, reported, price, 5.0)

        try:
            call()
        except IllegalTransition as error:
            assert not duplicate
            assert error.from_state is before.state and error.to_state is target
            assert target not in TRANSITIONS[before.state]
            assert order == before
            continue
        except InvalidFill:
            assert not duplicate
            assert target in TRANSITIONS[before.state]  # legality is judged first
            assert order == before
            continue

        if duplicate:
            assert order == before  # exchanges resend; counting twice would be a bug
        if before.state.is_final:
            assert order == before  # final states never change
        if order != before:
            assert order.state in TRANSITIONS[before.state]
        assert order.state in REACHABLE
        assert before.filled_quantity <= order.filled_quantity <= order.quantity
        reconciled = reconciled or kind == "reconcile"
        if not reconciled:
            fills = order.fills
            assert order.filled_quantity == sum((f.quantity for f in fills), D(0))
            assert order.fees == sum((f.fee for f in fills), D(0))
            if fills:
                vwap = sum((f.quantity * f.price for f in fills), D(0)) / order.filled_quantity
                assert order.average_fill_price == vwap
            else:
                assert order.average_fill_price is None
        if order.state is S.FILLED:
            assert order.filled_quantity == order.quantity
        if order.state is S.PARTIALLY_FILLED:
            assert 0 < order.filled_quantity < order.quantity


# ------------------------------------------------------------------------ fills


def test_fills_accumulate_vwap_and_fees() -> None:
    order = drive(make_order(), S.SUBMITTED)
    order.apply_fill(make_fill(order, D("2"), D("100"), fee=D("0.2")))
    assert state_of(order) is S.PARTIALLY_FILLED
    order.apply_fill(make_fill(order, D("8"), D("105"), fee=D("0.8"), time=5000.0))
    assert state_of(order) is S.FILLED
    assert order.filled_quantity == D("10")
    assert order.average_fill_price == D("104")  # (200 + 840) / 10
    assert order.fees == D("1.0")
    assert order.remaining_quantity == 0
    assert not order.is_open
    assert order.updated_at == 5000.0


def test_duplicate_fill_is_a_no_op_even_after_the_order_is_filled() -> None:
    order = drive(make_order(), S.SUBMITTED)
    first = make_fill(order, D("4"))
    order.apply_fill(first)
    snapshot = copy.deepcopy(order)
    order.apply_fill(first)
    assert order == snapshot
    assert order.filled_quantity == D("4") and len(order.fills) == 1
    last = make_fill(order, D("6"))
    order.apply_fill(last)
    assert order.state is S.FILLED
    done = copy.deepcopy(order)
    order.apply_fill(last)  # a resend after completion is not an illegal transition
    order.apply_fill(first)
    assert order == done


def test_same_trade_id_with_different_numbers_is_refused() -> None:
    order = drive(make_order(), S.SUBMITTED)
    order.apply_fill(make_fill(order, D("4"), trade_id="T"))
    with pytest.raises(InvalidFill, match="resent"):
        order.apply_fill(make_fill(order, D("5"), trade_id="T"))
    assert order.filled_quantity == D("4")


def test_overfill_is_refused_and_changes_nothing() -> None:
    order = drive(make_order(), S.PARTIALLY_FILLED)
    before = copy.deepcopy(order)
    with pytest.raises(InvalidFill, match="would fill"):
        order.apply_fill(make_fill(order, order.remaining_quantity + D("0.01")))
    assert order == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("client_order_id", new_client_order_id("other", 2, "run1")),
        ("symbol", "ETHUSDT"),
        ("side", Side.SELL),
    ],
)
def test_fill_for_another_order_is_refused(field: str, value: Any) -> None:
    order = drive(make_order(), S.SUBMITTED)
    before = copy.deepcopy(order)
    with pytest.raises(InvalidFill, match=field.split("_")[0]):
        order.apply_fill(make_fill(order, D("1"), **{field: value}))
    assert order == before


def test_fill_on_unknown_order_proves_it_exists() -> None:
    order = drive(make_order(), S.UNKNOWN)
    order.apply_fill(make_fill(order, D("3")))
    assert state_of(order) is S.PARTIALLY_FILLED
    order.mark_unknown(1.0)
    order.apply_fill(make_fill(order, D("7")))
    assert state_of(order) is S.FILLED


def test_fill_on_new_order_needs_an_ack_first() -> None:
    order = make_order()
    with pytest.raises(IllegalTransition):
        order.apply_fill(make_fill(order, D("1")))
    assert order.filled_quantity == 0 and order.fills == []


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("quantity", D(0), "quantity"),
        ("quantity", D("-1"), "quantity"),
        ("price", D(0), "price"),
        ("price", D("-5"), "price"),
        ("trade_id", "", "trade_id"),
        ("fee", D("NaN"), "fee"),
    ],
)
def test_fill_validation(field: str, value: Any, needle: str) -> None:
    order = make_order()
    fields: dict[str, Any] = {"quantity": D("1"), field: value}
    with pytest.raises(InvalidFill, match=needle):
        make_fill(order, **fields)


# ---------------------------------------------------------------- reconcile


def test_reconcile_adopts_fills_we_missed() -> None:
    order = drive(make_order(), S.PARTIALLY_FILLED)  # 5 @ 100 seen locally
    order.mark_unknown(10.0)
    order.reconcile(S.FILLED, D("10"), D("102"), 11.0)
    assert order.state is S.FILLED
    assert order.filled_quantity == D("10")
    assert order.average_fill_price == D("102")


def test_fills_after_a_reconcile_build_on_the_reported_average() -> None:
    order = drive(make_order(), S.PARTIALLY_FILLED)  # 5 @ 100 seen locally
    order.mark_unknown(10.0)
    order.reconcile(S.PARTIALLY_FILLED, D("6"), D("102"), 11.0)
    order.apply_fill(make_fill(order, D("4"), D("110")))
    assert order.state is S.FILLED
    assert order.average_fill_price == D("105.2")  # (6 * 102 + 4 * 110) / 10


def test_reconcile_keeps_our_average_when_nothing_was_missed() -> None:
    order = drive(make_order(), S.PARTIALLY_FILLED)
    order.mark_unknown(10.0)
    order.reconcile(S.CANCELLED, D("5"), D("999"), 11.0)
    assert order.state is S.CANCELLED
    assert order.average_fill_price == D("100")


@pytest.mark.parametrize(
    ("state", "filled", "average"),
    [
        (S.CANCELLED, D("4"), D("100")),  # stale: we already saw 5
        (S.FILLED, D("9"), D("100")),  # filled must mean all of it
        (S.SUBMITTED, D("5"), D("100")),  # submitted with fills is a contradiction
        (S.PARTIALLY_FILLED, D("11"), D("100")),  # beyond the order quantity
        (S.PARTIALLY_FILLED, D("7"), None),  # new fills without a price
    ],
)
def test_reconcile_refuses_impossible_reports(
    state: OrderState, filled: Decimal, average: Decimal | None
) -> None:
    order = drive(make_order(), S.PARTIALLY_FILLED)
    order.mark_unknown(10.0)
    before = copy.deepcopy(order)
    with pytest.raises(InvalidFill):
        order.reconcile(state, filled, average, 11.0)
    assert order == before


def test_reconciled_rejection_records_a_reason() -> None:
    order = drive(make_order(), S.UNKNOWN)
    order.reconcile(S.REJECTED, D(0), None, 5.0)
    assert order.reject_reason


def test_rejection_and_submission_refuse_an_unknown_order_with_fills() -> None:
    order = drive(make_order(), S.PARTIALLY_FILLED)
    order.mark_unknown(10.0)
    with pytest.raises(InvalidFill):
        order.mark_rejected("late", 11.0)
    with pytest.raises(InvalidFill):
        order.mark_submitted("x", 11.0)
    assert order.state is S.UNKNOWN


# --------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        ({"quantity": D(0)}, ("quantity", "> 0")),
        ({"quantity": D("-1")}, ("quantity", "> 0")),
        ({"quantity": D("NaN")}, ("quantity",)),
        ({"quantity": 1.5}, ("quantity", "Decimal")),
        ({"price": None}, ("limit", "price")),
        ({"price": D(0)}, ("price", "> 0")),
        ({"price": D("-3")}, ("price", "> 0")),
        ({"type": OrderType.MARKET, "price": D("100")}, ("market", "price")),
        ({"client_order_id": "has space"}, ("client_order_id",)),
        ({"client_order_id": "x" * 37}, ("client_order_id",)),
        ({"symbol": ""}, ("symbol",)),
        ({"side": "buy"}, ("side",)),
    ],
)
def test_invalid_orders_are_rejected_with_a_reason(
    overrides: dict[str, Any], needles: tuple[str, ...]
) -> None:
    with pytest.raises(OrderRefused) as info:
        make_order(**overrides)
    assert info.value.reason == str(info.value)
    for needle in needles:
        assert needle in info.value.reason
    assert isinstance(info.value, OrderError)


def test_valid_market_order_and_notional() -> None:
    market = make_order(type=OrderType.MARKET, price=None, time_in_force=TimeInForce.IOC)
    assert market.notional is None
    limit = make_order(quantity=D("0.5"), price=D("30000"))
    assert limit.notional == D("15000")
    assert limit.state is S.NEW and limit.is_open
    assert limit.updated_at == limit.created_at
    assert limit.remaining_quantity == D("0.5")


def test_identity_fields_are_frozen_but_lifecycle_fields_evolve() -> None:
    order = make_order()
    for field, value in [("quantity", D(1)), ("price", D(1)), ("side", Side.SELL)]:
        with pytest.raises(attrs.exceptions.FrozenAttributeError):
            setattr(order, field, value)
    order.mark_submitted("ex", 2.0)
    assert order.exchange_order_id == "ex"


def test_restored_order_continues_its_average() -> None:
    order = make_order(
        state=S.PARTIALLY_FILLED, filled_quantity=D("5"), average_fill_price=D("100")
    )
    order.apply_fill(make_fill(order, D("5"), D("110")))
    assert order.average_fill_price == D("105")
    with pytest.raises(OrderRefused, match="average_fill_price"):
        make_order(state=S.PARTIALLY_FILLED, filled_quantity=D("5"))


# ----------------------------------------------------------- client order ids


def test_ids_are_unique_over_ten_thousand_seqs_even_when_truncated() -> None:
    for strategy in ("sma_cross", "a" * 60):
        ids = [new_client_order_id(strategy, seq, "k3x9") for seq in range(10_000)]
        assert len(set(ids)) == 10_000
        assert all(BINANCE_ID.fullmatch(i) for i in ids)


def test_ids_from_two_runs_do_not_collide() -> None:
    first = {new_client_order_id("s", seq, "aaaa") for seq in range(1000)}
    second = {new_client_order_id("s", seq, "bbbb") for seq in range(1000)}
    assert not first & second


def test_id_layout_example() -> None:
    assert new_client_order_id("sma_cross", 17, "k3x9") == "tt-sma_cross-000017-k3x9"
    assert new_client_order_id("sma_cross", 17, "k3x9", prefix="bot") == (
        "bot-sma_cross-000017-k3x9"
    )


@given(
    strategy=st.text(),
    seq=st.integers(min_value=0, max_value=10**15),
    run=st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True),
)
def test_ids_always_satisfy_binance(strategy: str, seq: int, run: str) -> None:
    client_id = new_client_order_id(strategy, seq, run)
    assert BINANCE_ID.fullmatch(client_id)
    parts = parse_client_order_id(client_id)
    assert parts is not None
    assert (parts.seq, parts.run, parts.prefix) == (seq, run, "tt")
    recovered = strategy_of(client_id)
    assert recovered  # never empty, even for an empty or all-unicode name
    assert len(recovered) <= max(len(strategy), 1)


@given(
    strategy=st.from_regex(r"[A-Za-z0-9_.:/-]{1,21}", fullmatch=True),
    seq=st.integers(min_value=0, max_value=999_999),
    run=st.from_regex(r"[a-z0-9]{4}", fullmatch=True),
)
def test_strategy_round_trips_for_normal_names(strategy: str, seq: int, run: str) -> None:
    assert strategy_of(new_client_order_id(strategy, seq, run)) == strategy


def test_strategy_names_are_sanitised_and_truncated() -> None:
    assert strategy_of(new_client_order_id("mean rev/ü", 1, "r1")) == "mean_rev/_"
    assert strategy_of(new_client_order_id("a-000001-abcd", 2, "r1")) == "a-000001-abcd"
    long_id = new_client_order_id("x" * 50, 3, "abcd")
    assert len(long_id) == 36
    assert strategy_of(long_id) == "x" * 21
    assert strategy_of(new_client_order_id("", 4, "abcd")) == "_"


@pytest.mark.parametrize("foreign", ["", "web_abc123", "x-ABCD1234", "and_1-2-3", "tt-s-12-ab"])
def test_strategy_of_foreign_ids_is_none(foreign: str) -> None:
    assert strategy_of(foreign) is None


@pytest.mark.parametrize(
    ("seq", "run", "prefix"),
    [
        (-1, "abcd", "tt"),
        (1, "", "tt"),
        (1, "ab-c", "tt"),
        (1, "abcd", "t-t"),
        (10**30, "abcd", "tt"),
    ],
)
def test_bad_id_inputs_raise(seq: int, run: str, prefix: str) -> None:
    with pytest.raises(ValueError):
        new_client_order_id("s", seq, run, prefix=prefix)
