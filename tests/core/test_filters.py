"""Filters round toward the safe side and refuse, naming the filter, before anything is sent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.filters import (
    FilterError,
    apply_filters,
    round_price,
    round_quantity,
)
from trading.core.records import OrderRefused, OrderSpec, OrderType, Side
from trading.exchanges.base import SymbolInfo

D = Decimal
BTC = SymbolInfo("BTCUSDT", "BTC", "USDT", D("0.01"), D("0.00001"), D("0.00001"), D("5"))


def spec(qty: str, price: str | None = None, side: Side = Side.BUY) -> OrderSpec:
    kind = OrderType.MARKET if price is None else OrderType.LIMIT
    return OrderSpec(
        client_order_id="c1", symbol="BTCUSDT", side=side, type=kind, quantity=D(qty),
        price=None if price is None else D(price),
    )


def test_quantity_rounds_down_to_the_step() -> None:
    assert round_quantity(D("0.123456789"), BTC) == D("0.12345")
    assert round_quantity(D("0.12345"), BTC) == D("0.12345")


def test_price_rounds_toward_the_less_aggressive_side() -> None:
    assert round_price(D("100.005"), Side.BUY, BTC) == D("100.00")
    assert round_price(D("100.005"), Side.SELL, BTC) == D("100.01")
    assert round_price(D("100.01"), Side.SELL, BTC) == D("100.01")


def test_zero_rules_are_off() -> None:
    free = SymbolInfo("X", "A", "B")
    assert round_quantity(D("0.123456789"), free) == D("0.123456789")
    out = apply_filters(spec("0.000000001", "0.0000001"), free)
    assert out.quantity == D("0.000000001")


def test_apply_filters_returns_the_rounded_spec() -> None:
    out = apply_filters(spec("0.123456789", "30000.019", Side.SELL), BTC)
    assert out.quantity == D("0.12345") and out.price == D("30000.02")
    assert out.client_order_id == "c1"


def test_below_min_quantity_names_lot_size() -> None:
    with pytest.raises(FilterError) as info:
        apply_filters(spec("0.000009", "30000"), BTC)
    exc = info.value
    assert exc.filter == "LOT_SIZE" and exc.limit == D("0.00001")
    assert "LOT_SIZE" in str(exc) and "0.000009" in str(exc)
    assert isinstance(exc, OrderRefused)  # never sent: the engine refuses it


def test_below_min_notional_names_notional() -> None:
    with pytest.raises(FilterError) as info:
        apply_filters(spec("0.0001", "30000"), BTC)  # 3 USDT < 5
    assert info.value.filter == "NOTIONAL"
    assert info.value.value == D("3.00000") and info.value.limit == D("5")
    assert "NOTIONAL" in str(info.value)


def test_min_notional_is_checked_after_rounding() -> None:
    # 0.000169 x 30000 = 5.07 before rounding, 0.00016 x 30000 = 4.8 after
    with pytest.raises(FilterError, match="NOTIONAL"):
        apply_filters(spec("0.000169", "30000"), BTC)


def test_market_orders_use_the_reference_price_for_notional() -> None:
    with pytest.raises(FilterError, match="NOTIONAL"):
        apply_filters(spec("0.0001"), BTC, reference_price=D("30000"))
    assert apply_filters(spec("0.001"), BTC, reference_price=D("30000")).quantity == D("0.00100")
    # without a reference the exchange judges the notional
    assert apply_filters(spec("0.0001"), BTC).quantity == D("0.00010")


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-1", "0", "sNaN"])
def test_non_finite_or_non_positive_input_is_a_filter_error(bad: str) -> None:
    with pytest.raises(FilterError, match="LOT_SIZE"):
        apply_filters(spec(bad, "30000"), BTC)
    with pytest.raises(FilterError, match="PRICE_FILTER"):
        apply_filters(spec("1", bad), BTC)
    with pytest.raises(FilterError, match="NOTIONAL"):
        apply_filters(spec("1"), BTC, reference_price=D(bad))


def test_limit_without_price_is_refused() -> None:
    bad = OrderSpec(client_order_id="c", symbol="BTCUSDT", side=Side.BUY, type=OrderType.LIMIT,
                    quantity=D(1))
    with pytest.raises(FilterError, match="PRICE_FILTER"):
        apply_filters(bad, BTC)


def test_a_buy_price_below_one_tick_is_refused() -> None:
    with pytest.raises(FilterError, match="PRICE_FILTER"):
        apply_filters(spec("1", "0.004"), BTC)


def test_digits_beyond_exact_rounding_are_refused_not_rounded_up() -> None:
    with pytest.raises(FilterError):
        round_quantity(D("1E+70") + D("0.1"), SymbolInfo("X", "A", "B", step_size=D("1E-10")))


steps = st.sampled_from([D("1"), D("0.1"), D("0.001"), D("0.00001"), D("0.00000001"), D("5"),
                         D("0.25"), D("1E-12")])
amounts = st.decimals(min_value=D("1E-9"), max_value=D("1E+9"), allow_nan=False,
                      allow_infinity=False, places=12).filter(lambda d: d > 0)


@given(amount=amounts, step=steps)
def test_rounding_never_goes_the_aggressive_way_and_lands_on_the_grid(
    amount: Decimal, step: Decimal
) -> None:
    info = SymbolInfo("X", "A", "B", tick_size=step, step_size=step)
    qty = round_quantity(amount, info)
    assert qty <= amount and amount - qty < step and qty % step == 0
    buy = round_price(amount, Side.BUY, info)
    sell = round_price(amount, Side.SELL, info)
    assert buy <= amount <= sell
    assert amount - buy < step and sell - amount < step
    assert buy % step == 0 and sell % step == 0
    assert "E" not in format(qty, "f")
