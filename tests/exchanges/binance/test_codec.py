"""Decoding Binance's REST answers: the documented shapes, and one clear error for anything else."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.core.bars import Interval
from trading.core.records import OrderSpec, OrderState, OrderType, Side
from trading.exchanges.binance import codec
from trading.exchanges.binance.codec import DecodeError

D = Decimal

FULL = {
    "symbol": "BTCUSDT",
    "orderId": 28,
    "orderListId": -1,
    "clientOrderId": "ours-1",
    "transactTime": 1507725176595,
    "price": "0.00000000",
    "origQty": "10.00000000",
    "executedQty": "10.00000000",
    "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "10.00000000",
    "status": "FILLED",
    "timeInForce": "GTC",
    "type": "MARKET",
    "side": "SELL",
    "workingTime": 1507725176595,
    "selfTradePreventionMode": "NONE",
    "fills": [
        {
            "price": "4000.00000000",
            "qty": "1.00000000",
            "commission": "4.00000000",
            "commissionAsset": "USDT",
            "tradeId": 56,
        },
        {
            "price": "3999.00000000",
            "qty": "5.00000000",
            "commission": "0.00500000",
            "commissionAsset": "BNB",
            "tradeId": 57,
        },
        {
            "price": "3998.00000000",
            "qty": "4.00000000",
            "commission": "0.004",
            "commissionAsset": "BTC",
            "tradeId": 58,
        },
    ],
}
FULL["cummulativeQuoteQty"] = "39987.00000000"  # 4000 + 5 x 3999 + 4 x 3998

CANCEL = {
    "symbol": "LTCBTC",
    "origClientOrderId": "myOrder1",
    "orderId": 4,
    "orderListId": -1,
    "clientOrderId": "cancelMyOrder1",
    "transactTime": 1684804350068,
    "price": "2.00000000",
    "origQty": "1.00000000",
    "executedQty": "0.00000000",
    "cummulativeQuoteQty": "0.00000000",
    "status": "CANCELED",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "selfTradePreventionMode": "NONE",
}

QUERIED = {
    "symbol": "LTCBTC",
    "orderId": 1,
    "orderListId": -1,
    "clientOrderId": "myOrder1",
    "price": "0.1",
    "origQty": "1.0",
    "executedQty": "0.4",
    "cummulativeQuoteQty": "0.04",
    "status": "PARTIALLY_FILLED",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "stopPrice": "0.0",
    "icebergQty": "0.0",
    "time": 1499827319559,
    "updateTime": 1499827319559,
    "isWorking": True,
    "workingTime": 1499827319559,
    "origQuoteOrderQty": "0.000000",
    "selfTradePreventionMode": "NONE",
}

EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": 1565246363776,
    "rateLimits": [],
    "exchangeFilters": [],
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "baseAsset": "BTC",
            "quoteAsset": "USDT",
            "orderTypes": ["LIMIT", "MARKET"],
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "0.01",
                    "maxPrice": "1000000.00",
                    "tickSize": "0.01000000",
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": "0.00001000",
                    "maxQty": "9000.00000000",
                    "stepSize": "0.00001000",
                },
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "5.00000000",
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "SOMETHING_NEW", "whatever": [1, 2]},
            ],
        },
        {
            "symbol": "OLDBTC",
            "status": "TRADING",
            "baseAsset": "OLD",
            "quoteAsset": "BTC",
            "filters": [{"filterType": "MIN_NOTIONAL", "minNotional": "0.0001"}],
        },
    ],
}

KLINE = [
    1499040000000,
    "0.01634790",
    "0.80000000",
    "0.01575800",
    "0.01577100",
    "148976.11427815",
    1499644799999,
    "2434.19055334",
    308,
    "1756.87402397",
    "28.46694368",
    "0",
]

ACCOUNT = {
    "makerCommission": 15,
    "canTrade": True,
    "accountType": "SPOT",
    "balances": [
        {"asset": "BTC", "free": "4723846.89208129", "locked": "0.00000000"},
        {"asset": "USDT", "free": "10.5", "locked": "2"},
    ],
    "permissions": ["SPOT"],
    "uid": 354937868,
}

MY_TRADE = {
    "symbol": "BNBBTC",
    "id": 28457,
    "orderId": 100234,
    "orderListId": -1,
    "price": "4.00000100",
    "qty": "12.00000000",
    "quoteQty": "48.000012",
    "commission": "10.10000000",
    "commissionAsset": "BNB",
    "time": 1499865549590,
    "isBuyer": True,
    "isMaker": False,
    "isBestMatch": True,
}


def test_full_answer_with_fills_fee_as_charged() -> None:
    order = codec.decode_order(FULL)
    assert order.client_order_id == "ours-1" and order.exchange_order_id == "28"
    assert order.state is OrderState.FILLED
    assert order.side is Side.SELL and order.type is OrderType.MARKET
    assert order.price is None  # a market order's "0.00000000"
    assert order.quantity == D(10) and order.filled_quantity == D(10)
    assert order.average_price == D("3998.7")
    assert [f.trade_id for f in order.fills] == ["56", "57", "58"]
    assert [(f.fee, f.fee_asset) for f in order.fills] == [
        (D("4"), "USDT"),
        (D("0.005"), "BNB"),
        (D("0.004"), "BTC"),
    ]
    assert all(f.time == 1507725176.595 for f in order.fills)
    assert all(f.client_order_id == "ours-1" and f.symbol == "BTCUSDT" for f in order.fills)


def test_cancel_answer_uses_the_original_client_order_id() -> None:
    order = codec.decode_order(CANCEL)
    assert order.client_order_id == "myOrder1"  # not "cancelMyOrder1"
    assert order.state is OrderState.CANCELLED
    assert order.price == D(2) and order.average_price is None and order.fills == ()


def test_queried_order_partially_filled_has_an_average_price() -> None:
    order = codec.decode_order(QUERIED)
    assert order.state is OrderState.PARTIALLY_FILLED
    assert order.filled_quantity == D("0.4") and order.average_price == D("0.1")


def test_negative_quote_quantity_means_no_average() -> None:
    order = codec.decode_order({**QUERIED, "cummulativeQuoteQty": "-1.00000000"})
    assert order.average_price is None


def test_ack_answer_takes_the_rest_from_the_spec() -> None:
    spec = OrderSpec(
        client_order_id="ours-2",
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=D(1),
        price=D(100),
    )
    ack = {
        "symbol": "BTCUSDT",
        "orderId": 29,
        "orderListId": -1,
        "clientOrderId": "ours-2",
        "transactTime": 1507725176595,
    }
    order = codec.decode_order(ack, spec)
    assert order.state is OrderState.SUBMITTED and order.exchange_order_id == "29"
    assert order.price == D(100) and order.side is Side.BUY
    with pytest.raises(DecodeError, match="status"):
        codec.decode_order(ack)  # without the spec an ACK says too little


def test_expired_order_carries_a_reason() -> None:
    order = codec.decode_order({**QUERIED, "status": "EXPIRED"})
    assert order.state is OrderState.EXPIRED and order.reason == "EXPIRED"


def test_open_orders_is_a_list_of_orders() -> None:
    orders = codec.decode_orders([QUERIED, CANCEL])
    assert [o.client_order_id for o in orders] == ["myOrder1", "myOrder1"]


def test_open_orders_leave_out_types_we_do_not_model_and_say_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = {**QUERIED, "clientOrderId": "by-hand", "type": "STOP_LOSS_LIMIT"}
    with pytest.raises(codec.UnsupportedOrder, match="STOP_LOSS_LIMIT"):
        codec.decode_order(stop)
    orders = codec.decode_orders([stop, QUERIED])
    assert [o.client_order_id for o in orders] == ["myOrder1"]
    assert "by-hand" in caplog.text and "STOP_LOSS_LIMIT" in caplog.text
    with pytest.raises(DecodeError, match="origQty"):  # malformed is still an error
        codec.decode_orders([{**QUERIED, "origQty": "x"}])


def test_exchange_info_reads_the_three_filters_and_ignores_the_rest() -> None:
    info = codec.decode_exchange_info(EXCHANGE_INFO)
    btc = info["BTCUSDT"]
    assert (btc.base, btc.quote) == ("BTC", "USDT")
    assert btc.tick_size == D("0.01") and btc.step_size == D("0.00001")
    assert btc.min_quantity == D("0.00001") and btc.min_notional == D(5)
    assert info["OLDBTC"].min_notional == D("0.0001") and info["OLDBTC"].tick_size == 0


def test_kline_row_becomes_a_bar_and_its_close_time() -> None:
    kline = codec.decode_kline(KLINE, "BNBBTC", Interval.parse("1w"))
    assert kline.close_time_ms == 1499644799999
    bar = kline.bar
    assert bar.open_time == 1499040000.0 and bar.symbol == "BNBBTC"
    assert (bar.open, bar.high, bar.low, bar.close) == (0.0163479, 0.8, 0.015758, 0.015771)
    assert bar.volume == 148976.11427815
    assert codec.decode_klines([KLINE, KLINE], "BNBBTC", Interval.parse("1w"))[1] == kline


def test_account_balances() -> None:
    balances = codec.decode_account(ACCOUNT)
    assert balances["USDT"] == codec.AccountBalance("USDT", D("10.5"), D(2))


def test_my_trades_and_their_fill() -> None:
    (trade,) = codec.decode_my_trades([MY_TRADE])
    assert trade.trade_id == "28457" and trade.order_id == "100234"
    assert trade.side is Side.BUY and not trade.maker
    assert trade.time == 1499865549.59
    fill = trade.to_fill("ours-9")
    assert fill.fee == D("10.1") and fill.fee_asset == "BNB" and fill.trade_id == "28457"
    assert fill.client_order_id == "ours-9" and fill.quantity == D(12)


def test_server_time() -> None:
    assert codec.decode_server_time({"serverTime": 1499827319559}) == 1499827319559


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda d: d.pop("executedQty"), "executedQty"),
        (lambda d: d.update(executedQty="1,5"), "executedQty"),
        (lambda d: d.update(executedQty=1.5), "executedQty"),
        (lambda d: d.update(origQty="1e999"), "origQty"),
        (lambda d: d.update(origQty="NaN"), "origQty"),
        (lambda d: d.update(origQty=" 1"), "origQty"),
        (lambda d: d.update(origQty="1_000"), "origQty"),
        (lambda d: d.update(origQty="-1"), "origQty"),
        (lambda d: d.update(status="HALF_DONE"), "status"),
        (lambda d: d.update(side="sell"), "side"),
        (lambda d: d.update(orderId="28"), "orderId"),
        (lambda d: d.update(orderId=True), "orderId"),
        (lambda d: d.update(transactTime=10**400), "transactTime"),
        (lambda d: d["fills"][1].pop("tradeId"), "tradeId"),
        (lambda d: d["fills"][0].update(qty="0"), "fills[0]"),
        (lambda d: d.update(fills={}), "fills"),
        (lambda d: d.update(clientOrderId=None), "clientOrderId"),
    ],
)
def test_malformed_order_fields_are_named(
    mutate: Callable[[dict[str, Any]], object], named: str
) -> None:
    data = copy.deepcopy(FULL)
    mutate(data)
    with pytest.raises(DecodeError) as info:
        codec.decode_order(data)
    assert named in str(info.value)
    assert "ours-1" in str(info.value) or named == "clientOrderId"


def test_malformed_filter_is_named() -> None:
    data = copy.deepcopy(EXCHANGE_INFO)
    data["symbols"][0]["filters"][0]["tickSize"] = "0.01x"
    with pytest.raises(DecodeError, match=r"BTCUSDT.*PRICE_FILTER.*tickSize"):
        codec.decode_exchange_info(data)


def test_short_kline_row_is_named() -> None:
    with pytest.raises(DecodeError, match="7 columns"):
        codec.decode_kline(KLINE[:5], "X", Interval.parse("1m"))


# ---------------------------------------------------------------- any JSON at all

KEYS = [
    *FULL,
    "filters",
    "filterType",
    "symbols",
    "balances",
    "qty",
    "serverTime",
    "tickSize",
    "id",
    "isBuyer",
    "isMaker",
    "quoteQty",
    "origClientOrderId",
    "asset",
    "free",
    "locked",
    "baseAsset",
    "quoteAsset",
    "minQty",
    "stepSize",
    "minNotional",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "1.5",
            "0",
            "-1",
            "1e5",
            "NEW",
            "FILLED",
            "BUY",
            "LIMIT",
            "MARKET",
            "PRICE_FILTER",
            "LOT_SIZE",
            "NOTIONAL",
            "1E+99",
            "9" * 70,
        ]
    ),
    lambda inner: (
        st.lists(inner, max_size=8) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=12)
    ),
    max_leaves=30,
)

DECODERS: list[Callable[[Any], object]] = [
    codec.decode_order,
    codec.decode_orders,
    codec.decode_exchange_info,
    codec.decode_account,
    codec.decode_trade,
    codec.decode_my_trades,
    codec.decode_server_time,
    lambda v: codec.decode_kline(v, "X", Interval.parse("1m")),
    lambda v: codec.decode_klines(v, "X", Interval.parse("1m")),
]


def only_decode_errors(decoder: Callable[[Any], object], value: object) -> None:
    try:
        decoder(value)
    except DecodeError as exc:
        assert str(exc)


@given(value=json_values)
def test_arbitrary_json_raises_nothing_but_decode_error(value: object) -> None:
    for decoder in DECODERS:
        only_decode_errors(decoder, value)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


DOCS: list[tuple[Callable[[Any], object], Any]] = [
    (codec.decode_order, FULL),
    (codec.decode_order, QUERIED),
    (codec.decode_order, CANCEL),
    (codec.decode_exchange_info, EXCHANGE_INFO),
    (codec.decode_account, ACCOUNT),
    (codec.decode_trade, MY_TRADE),
    (DECODERS[7], KLINE),
]


@pytest.mark.parametrize("which", range(len(DOCS)))
@settings(max_examples=150)
@given(data=st.data(), replacement=json_values)
def test_any_field_replaced_by_any_json_raises_nothing_but_decode_error(
    which: int, data: st.DataObject, replacement: object
) -> None:
    decoder, doc = DOCS[which]
    doc = copy.deepcopy(doc)
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    target = doc
    for step in path[:-1]:
        target = target[step]
    if data.draw(st.booleans()) and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = replacement
    only_decode_errors(decoder, doc)


def test_valid_documents_survive_a_json_round_trip() -> None:
    for decoder, doc in DOCS:
        decoder(json.loads(json.dumps(doc)))
