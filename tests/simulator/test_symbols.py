"""Listed symbols, their Binance filters, and the filter checks' exact codes and messages."""

from __future__ import annotations

from decimal import Decimal

from trading.simulator import DEFAULT_SYMBOLS, SimError, SymbolRules
from trading.simulator.symbols import check_lot_size, check_notional, check_price

D = Decimal
BTC = DEFAULT_SYMBOLS["BTCUSDT"]


def test_defaults_are_binances_filters() -> None:
    assert (BTC.tick_size, BTC.step_size, BTC.min_qty, BTC.min_notional) == (
        D("0.01"),
        D("0.00001"),
        D("0.00001"),
        D(5),
    )
    eth = DEFAULT_SYMBOLS["ETHUSDT"]
    assert (eth.base, eth.quote, eth.tick_size, eth.step_size) == (
        "ETH",
        "USDT",
        D("0.01"),
        D("0.0001"),
    )
    assert {"BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "ETHBTC"} <= set(DEFAULT_SYMBOLS)
    for symbol, rules in DEFAULT_SYMBOLS.items():
        assert symbol == rules.base + rules.quote
        assert rules.min_qty % rules.step_size == 0


def test_filters_json_is_the_exchange_info_shape() -> None:
    price, lot, notional = BTC.filters_json()
    assert price == {
        "filterType": "PRICE_FILTER",
        "minPrice": "0.01000000",
        "maxPrice": "1000000.00000000",
        "tickSize": "0.01000000",
    }
    assert lot == {
        "filterType": "LOT_SIZE",
        "minQty": "0.00001000",
        "maxQty": "9000.00000000",
        "stepSize": "0.00001000",
    }
    assert notional["filterType"] == "NOTIONAL" and notional["minNotional"] == "5.00000000"
    assert notional["applyMinToMarket"] is True and notional["applyMaxToMarket"] is False


def codes(check: object, *args: object, **kwargs: object) -> str | None:
    try:
        check(*args, **kwargs)  # type: ignore[operator]
    except SimError as error:
        assert error.code == -1013
        return error.msg
    return None


def test_price_filter() -> None:
    assert codes(check_price, BTC, D("60000.01")) is None
    assert codes(check_price, BTC, D("60000.015")) == "Filter failure: PRICE_FILTER"
    assert codes(check_price, BTC, D("0.001")) == "Filter failure: PRICE_FILTER"
    assert codes(check_price, BTC, D("1000000.01")) == "Filter failure: PRICE_FILTER"
    assert codes(check_price, BTC, D("-1")) == "Invalid price."
    no_bounds = SymbolRules("XY", "X", "Y", D("0.5"), D(1), D(1), D(10), D(1))
    assert codes(check_price, no_bounds, D("99999999.5")) is None  # 0 turns a bound off


def test_lot_size_counts_steps_from_the_minimum() -> None:
    odd = SymbolRules("XY", "X", "Y", D("0.01"), D("0.5"), D("0.3"), D(10), D(1))
    assert codes(check_lot_size, odd, D("0.8")) is None
    assert codes(check_lot_size, odd, D("1.0")) == "Filter failure: LOT_SIZE"
    assert codes(check_lot_size, odd, D("0.2")) == "Filter failure: LOT_SIZE"
    assert codes(check_lot_size, odd, D("10.3")) == "Filter failure: LOT_SIZE"
    assert codes(check_lot_size, odd, D(0)) == "Invalid quantity."


def test_notional_min_for_all_max_for_limits_only() -> None:
    assert codes(check_notional, BTC, D("4.99"), market=True) == "Filter failure: NOTIONAL"
    assert codes(check_notional, BTC, D(5), market=False) is None
    assert codes(check_notional, BTC, D(10**8), market=True) is None
    assert codes(check_notional, BTC, D(10**8), market=False) == "Filter failure: NOTIONAL"


def test_sim_error_carries_binances_body() -> None:
    error = SimError(-1121, "Invalid symbol.")
    assert error.to_json() == {"code": -1121, "msg": "Invalid symbol."}
    assert (error.http_status, str(error)) == (400, "Invalid symbol. (code -1121)")


def test_numbers_past_decimal_precision_fail_the_filter_instead_of_raising() -> None:
    unbounded = SymbolRules("XY", "X", "Y", D("0.01"), D("0.001"), D("0.001"), D("1E+2000"), D(1))
    assert codes(check_price, unbounded, D("1E+1000")) == "Filter failure: PRICE_FILTER"
    assert codes(check_lot_size, unbounded, D("1E+1000")) == "Filter failure: LOT_SIZE"
