"""Frame decoding: Binance's documented shapes in, our records out, and nothing but FrameError
for anything else an adversarial server could send."""

from __future__ import annotations

import contextlib
import copy
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.bars import Interval
from trading.core.records import OrderState, OrderType, Side
from trading.core.updates import ExchangeOrder
from trading.exchanges.binance.frames import (
    AccountUpdate,
    ApiReply,
    FrameError,
    KlineUpdate,
    ServerShutdown,
    StreamTerminated,
    SubscriptionReply,
    UserEventFrame,
    _decode_kline_carefully,
    decode_api_frame,
    decode_kline,
    decode_market_frame,
    decode_user_event,
    kline_stream_name,
)

# The documentation's kline example (web-socket-streams.md).
KLINE: dict[str, Any] = {
    "e": "kline",
    "E": 1672515782136,
    "s": "BNBBTC",
    "k": {
        "t": 1672515780000,
        "T": 1672515839999,
        "s": "BNBBTC",
        "i": "1m",
        "f": 100,
        "L": 200,
        "o": "0.0010",
        "c": "0.0020",
        "h": "0.0025",
        "l": "0.0015",
        "v": "1000",
        "n": 100,
        "x": False,
        "q": "1.0000",
        "V": "500",
        "Q": "0.500",
        "B": "123456",
    },
}


def combined(data: dict[str, Any], stream: str = "bnbbtc@kline_1m") -> str:
    return json.dumps({"stream": stream, "data": data})


def report(**overrides: Any) -> dict[str, Any]:
    """An executionReport as user-data-stream.md shows it (a NEW limit buy), with overrides."""
    event: dict[str, Any] = {
        "e": "executionReport",
        "E": 1499405658658,
        "s": "ETHBTC",
        "c": "mUvoqJxFIILMdfAW5iGSOW",
        "S": "BUY",
        "o": "LIMIT",
        "f": "GTC",
        "q": "1.00000000",
        "p": "0.10264410",
        "P": "0.00000000",
        "F": "0.00000000",
        "g": -1,
        "C": "",
        "x": "NEW",
        "X": "NEW",
        "r": "NONE",
        "i": 4293153,
        "l": "0.00000000",
        "z": "0.00000000",
        "L": "0.00000000",
        "n": "0",
        "N": None,
        "T": 1499405658657,
        "t": -1,
        "I": 8641984,
        "w": True,
        "m": False,
        "M": False,
        "O": 1499405658657,
        "Z": "0.00000000",
        "Y": "0.00000000",
        "Q": "0.00000000",
        "W": 1499405658657,
        "V": "NONE",
    }
    event.update(overrides)
    return event


# --- market frames -----------------------------------------------------------------------------


def test_documented_kline_decodes_to_a_float_bar() -> None:
    update = decode_market_frame(combined(KLINE))
    assert isinstance(update, KlineUpdate)
    assert update.symbol == "BNBBTC"
    assert update.interval == Interval.parse("1m")
    assert update.closed is False
    assert update.event_time_ms == 1672515782136
    bar = update.bar
    assert bar.open_time == 1672515780.0
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        0.001,
        0.0025,
        0.0015,
        0.002,
        1000.0,
    )
    assert bar.close_time == 1672515840.0


def test_raw_frames_decode_like_combined_ones_and_bytes_like_text() -> None:
    closed = copy.deepcopy(KLINE)
    closed["k"]["x"] = True
    raw = json.dumps(closed)
    assert decode_market_frame(raw) == decode_market_frame(combined(closed))
    assert decode_market_frame(raw.encode()) == decode_market_frame(raw)
    result = decode_market_frame(raw)
    assert isinstance(result, KlineUpdate) and result.closed


def test_server_shutdown_and_subscription_replies() -> None:
    assert decode_market_frame('{"e":"serverShutdown","E":1}') == ServerShutdown(1)
    assert decode_market_frame(combined({"e": "serverShutdown", "E": 5})) == ServerShutdown(5)
    assert decode_market_frame('{"result":null,"id":1}') == SubscriptionReply(1)
    uid = "0f8e4f4c-6a0b-4c8f-9d43-5e2f6b8f1b0a"
    reply = decode_market_frame(json.dumps({"result": None, "id": uid}))
    assert reply == SubscriptionReply(uid)
    assert isinstance(reply, SubscriptionReply) and isinstance(reply.id, str)
    error = decode_market_frame('{"code":2,"msg":"Invalid request: unknown stream","id":3}')
    assert error == SubscriptionReply(3, error="Invalid request: unknown stream (code 2)")
    nested = decode_market_frame('{"error":{"code":0,"msg":"Unknown property"},"id":"x"}')
    assert nested == SubscriptionReply("x", error="Unknown property (code 0)")


def test_known_unused_events_are_none_and_unknown_ones_are_errors() -> None:
    assert decode_market_frame(combined({"e": "trade", "E": 1})) is None
    with pytest.raises(FrameError, match="unexpected event type 'surprise'"):
        decode_market_frame('{"e":"surprise"}')


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("k", "o"), 1.5, "field 'o' must be a string, not a number"),
        (("k", "o"), "abc", "field 'o' is not a number"),
        (("k", "h"), "NaN", "field 'h' must be finite"),
        (("k", "c"), "inf", "field 'c' must be finite"),
        (("k", "t"), "1672515780000", "field 't' must be an integer, not a string"),
        (("k", "t"), True, "field 't' must be an integer, not a bool"),
        (("k", "x"), "true", "field 'x' must be a bool, not a string"),
        (("k", "i"), "1M", "unsupported interval '1M'"),
        (("k", "i"), "0m", "unsupported interval '0m'"),
        (("E",), None, "field 'E' must be an integer, not null"),
        (("k",), [], "kline 'k' must be a JSON object, not a list"),
    ],
)
def test_wrong_types_are_frame_errors_naming_the_field(
    path: tuple[str, ...], value: object, message: str
) -> None:
    frame = copy.deepcopy(KLINE)
    target = frame
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(FrameError, match=message):
        decode_market_frame(combined(frame))


@pytest.mark.parametrize("field", ["t", "s", "i", "o", "h", "l", "c", "v", "x"])
def test_missing_kline_fields_are_named(field: str) -> None:
    frame = copy.deepcopy(KLINE)
    del frame["k"][field]
    with pytest.raises(FrameError, match=f"missing field '{field}'"):
        decode_market_frame(combined(frame))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "not JSON"),
        ("{", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
        ("1" * 5000, "not JSON"),  # longer than Python's int-conversion limit
        ("[]", "frame must be a JSON object, not a list"),
        ('"kline"', "frame must be a JSON object, not a string"),
        ('{"stream":"x","data":7}', "frame 'data' must be a JSON object"),
        ('{"stream":1,"data":{}}', "field 'stream' must be a string"),
        ("{}", "missing field 'e'"),
        ('{"e":7}', "field 'e' must be a string"),
        ('{"result":null,"id":[1]}', "field 'id' must be an integer or a string"),
    ],
)
def test_malformed_frames_are_frame_errors(raw: str | bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        decode_market_frame(raw)


def test_stream_names_are_lower_case() -> None:
    assert kline_stream_name("BTCUSDT", Interval.parse("15m")) == "btcusdt@kline_15m"


# --- the never-anything-but-FrameError properties ----------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["kline", "serverShutdown", "executionReport", "1m", "NaN", "-1", "0"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from([*list("eEskitxohlcvpqSXCzZLNnTrIBafdl"), "stream", "data", "id"])
            | st.text(max_size=4),
            inner,
            max_size=6,
        )
    ),
    max_leaves=20,
)


#: Values that are nearly right: the right type, a wrong value.
TRICKY = ["0", "-1", "-0", "1E+999999", "1E-999999", "NaN", "sNaN", "Infinity", "1e5", " 1", "", 0]


def _decoders_only_raise_frame_error(raw: str | bytes) -> None:
    for decode in (decode_market_frame, decode_api_frame):
        with contextlib.suppress(FrameError):
            decode(raw)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_nothing_but_frame_error(raw: bytes) -> None:
    _decoders_only_raise_frame_error(raw)


@given(json_values)
def test_arbitrary_json_raises_nothing_but_frame_error(value: object) -> None:
    _decoders_only_raise_frame_error(json.dumps(value))
    if isinstance(value, dict):
        with contextlib.suppress(FrameError):
            decode_user_event(value)


@given(st.data())
def test_any_field_of_a_valid_frame_replaced_raises_nothing_but_frame_error(
    data: st.DataObject,
) -> None:
    for frame in (copy.deepcopy(KLINE), report(x="TRADE", X="FILLED", l="1", L="2", z="1")):
        target = frame["k"] if "k" in frame and data.draw(st.booleans()) else frame
        key = data.draw(st.sampled_from(sorted(target)))
        if data.draw(st.booleans()):
            del target[key]
        else:
            target[key] = data.draw(st.sampled_from(TRICKY) | json_values)
        _decoders_only_raise_frame_error(json.dumps(frame))
        with contextlib.suppress(FrameError):
            decode_user_event(frame)


odd_numbers = st.sampled_from(TRICKY) | st.decimals().map(str) | json_values


@given(st.fixed_dictionaries({key: odd_numbers for key in "qplLnzZ"}))
def test_trade_reports_with_odd_numbers_raise_nothing_but_frame_error(
    numbers: dict[str, Any],
) -> None:
    with contextlib.suppress(FrameError):
        decode_user_event(report(x="TRADE", X="PARTIALLY_FILLED", t=5, **numbers))


prices = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(10**9), places=8)


@given(
    st.sampled_from(["1s", "1m", "15m", "1h", "4h", "1d", "1w"]),
    st.integers(min_value=0, max_value=2**45),
    prices,
    prices,
    prices,
    prices,
    st.booleans(),
)
def test_kline_round_trip(
    interval: str, t: int, o: Decimal, h: Decimal, c: Decimal, v: Decimal, x: bool
) -> None:
    frame = copy.deepcopy(KLINE)
    frame["k"].update(i=interval, t=t, o=str(o), h=str(h), l=str(o), c=str(c), v=str(v), x=x)
    update = decode_market_frame(combined(frame))
    assert isinstance(update, KlineUpdate)
    assert update.bar.open_time == t / 1000
    assert update.interval.text == interval
    assert (update.bar.open, update.bar.high, update.bar.close) == (float(o), float(h), float(c))
    assert update.closed is x


# --- user data events ---------------------------------------------------------------------------


def test_new_limit_order_report() -> None:
    order = decode_user_event(report())
    assert order == ExchangeOrder(
        client_order_id="mUvoqJxFIILMdfAW5iGSOW",
        exchange_order_id="4293153",
        symbol="ETHBTC",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("1.00000000"),
        price=Decimal("0.10264410"),
        state=OrderState.SUBMITTED,
    )


def test_trade_report_carries_one_fill_with_the_fee_as_charged_in_the_base_asset() -> None:
    order = decode_user_event(
        report(
            x="TRADE",
            X="PARTIALLY_FILLED",
            l="0.40000000",
            L="0.10000000",
            z="0.40000000",
            Z="0.04000000",
            n="0.00040000",
            N="ETH",
            t=77,
            T=1499405658700,
        )
    )
    assert isinstance(order, ExchangeOrder)
    assert order.state is OrderState.PARTIALLY_FILLED
    assert order.filled_quantity == Decimal("0.4")
    assert order.average_price == Decimal("0.1")
    (fill,) = order.fills
    assert fill.quantity == Decimal("0.4") and fill.price == Decimal("0.1")
    assert fill.fee == Decimal("0.0004") and fill.fee_asset == "ETH"  # not converted
    assert fill.trade_id == "77" and fill.time == 1499405658.7
    assert fill.client_order_id == order.client_order_id == "mUvoqJxFIILMdfAW5iGSOW"


def test_cancel_report_names_the_original_client_order_id() -> None:
    order = decode_user_event(report(x="CANCELED", X="CANCELED", c="cancel-req-1", C="mine-1"))
    assert isinstance(order, ExchangeOrder)
    assert order.client_order_id == "mine-1" and order.state is OrderState.CANCELLED
    assert order.fills == ()
    # An empty C (as on expiries) keeps c.
    other = decode_user_event(report(x="CANCELED", X="CANCELED", c="mine-2", C=""))
    assert isinstance(other, ExchangeOrder) and other.client_order_id == "mine-2"


def test_market_order_has_no_price_and_rejection_keeps_the_reason() -> None:
    order = decode_user_event(report(o="MARKET", p="0.00000000"))
    assert isinstance(order, ExchangeOrder) and order.price is None
    assert order.type is OrderType.MARKET
    rejected = decode_user_event(report(x="REJECTED", X="REJECTED", r="INSUFFICIENT_BALANCES"))
    assert isinstance(rejected, ExchangeOrder)
    assert rejected.state is OrderState.REJECTED and rejected.reason == "INSUFFICIENT_BALANCES"
    expired = decode_user_event(report(x="EXPIRED", X="EXPIRED"))
    assert isinstance(expired, ExchangeOrder) and expired.state is OrderState.EXPIRED
    assert expired.reason == ""


def test_orders_of_types_we_never_place_are_not_ours() -> None:
    assert decode_user_event(report(o="STOP_LOSS_LIMIT")) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"X": "WEIRD"}, "unknown order status 'WEIRD'"),
        ({"S": "HOLD"}, "unknown side 'HOLD'"),
        ({"q": 1}, "field 'q' must be a string"),
        ({"i": "4293153"}, "field 'i' must be an integer"),
        ({"x": "TRADE", "l": "0", "L": "1"}, "quantity must be a finite Decimal > 0"),
        ({"x": "TRADE", "l": "1", "L": "1", "t": None}, "field 't' must be an integer"),
        ({"z": "1E-999999", "Z": "1E+999999"}, "quantities out of range"),
        ({"p": "sNaN"}, "field 'p' must be finite"),
    ],
)
def test_bad_execution_reports_are_frame_errors(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(FrameError, match=message):
        decode_user_event(report(**overrides))


def test_account_position_and_other_user_events() -> None:
    update = decode_user_event(
        {
            "e": "outboundAccountPosition",
            "E": 1564034571105,
            "u": 1564034571073,
            "B": [{"a": "ETH", "f": "10000.000000", "l": "0.000000"}],
        }
    )
    assert update == AccountUpdate(
        {"ETH": (Decimal("10000"), Decimal("0"))}, event_time_ms=1564034571105
    )
    assert decode_user_event({"e": "balanceUpdate", "a": "BTC", "d": "100", "T": 1}) is None
    assert decode_user_event({"e": "listStatus", "E": 1}) is None
    assert decode_user_event({"e": "eventStreamTerminated", "E": 9}) == StreamTerminated(9)
    with pytest.raises(FrameError, match="unexpected user event type 'nope'"):
        decode_user_event({"e": "nope"})
    with pytest.raises(FrameError, match="field 'B' must be a list"):
        decode_user_event({"e": "outboundAccountPosition", "E": 1, "B": {}})


def test_api_frames() -> None:
    ok = decode_api_frame('{"id":"a-b","status":200,"result":{"subscriptionId":0}}')
    assert ok == ApiReply("a-b", 200, result={"subscriptionId": 0}) and ok.ok
    bad = decode_api_frame(
        '{"id":"a-b","status":400,"error":{"code":-1022,"msg":"Signature for this request is '
        'not valid."}}'
    )
    assert isinstance(bad, ApiReply) and not bad.ok
    assert (bad.error_code, bad.error_msg) == (-1022, "Signature for this request is not valid.")
    event = decode_api_frame('{"subscriptionId":0,"event":{"e":"balanceUpdate"}}')
    assert event == UserEventFrame(0, {"e": "balanceUpdate"})
    with pytest.raises(FrameError, match="neither an API answer"):
        decode_api_frame('{"id":1}')
    with pytest.raises(FrameError, match="field 'subscriptionId' must be an integer"):
        decode_api_frame('{"subscriptionId":"0","event":{}}')


@given(st.data())
def test_the_fast_kline_path_agrees_with_the_careful_one(data: st.DataObject) -> None:
    frame = copy.deepcopy(KLINE)
    target = frame["k"] if data.draw(st.booleans()) else frame
    key = data.draw(st.sampled_from(sorted(target)))
    target[key] = data.draw(st.sampled_from(TRICKY) | json_values)
    try:
        careful: KlineUpdate | str = _decode_kline_carefully(frame)
    except FrameError as exc:
        careful = str(exc)
    try:
        fast: KlineUpdate | str = decode_kline(frame)
    except FrameError as exc:
        fast = str(exc)
    assert fast == careful
