"""Tests for positions, cash and PnL accounting (no event loop)."""

from __future__ import annotations

import copy
import decimal
import itertools
import pickle
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.ledger import (
    Portfolio,
    PortfolioError,
    PortfolioSnapshot,
    Position,
)
from trading.core.orders import Fill, Side

D = Decimal
SYMBOLS = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT")}
CASH = D("10000")
_trade_ids = itertools.count()


def fill(
    side: Side,
    quantity: Decimal | str | int,
    price: Decimal | str | int,
    fee: Decimal | str | int = 0,
    symbol: str = "BTCUSDT",
    **overrides: Any,
) -> Fill:
    fields: dict[str, Any] = {
        "client_order_id": "tt-test-000001-run1",
        "symbol": symbol,
        "side": side,
        "quantity": D(quantity),
        "price": D(price),
        "fee": D(fee),
        "fee_asset": "USDT",
        "time": 0.0,
        "trade_id": f"t{next(_trade_ids)}",
    }
    fields.update(overrides)
    return Fill(**fields)


def buy(quantity: Any, price: Any, fee: Any = 0, **kw: Any) -> Fill:
    return fill(Side.BUY, quantity, price, fee, **kw)


def sell(quantity: Any, price: Any, fee: Any = 0, **kw: Any) -> Fill:
    return fill(Side.SELL, quantity, price, fee, **kw)


def new_portfolio(cash: Decimal = CASH) -> Portfolio:
    return Portfolio(SYMBOLS, {"USDT": cash})


# ------------------------------------------------------------ hand-checked


def test_adding_averages_and_reducing_realises() -> None:
    book = new_portfolio()
    book.apply_fill(buy(1, 100))
    book.apply_fill(buy(1, 110))
    position = book.positions["BTCUSDT"]
    assert position.quantity == 2
    assert position.average_price == 105
    assert position.realised_pnl == 0
    assert book.balances == {"USDT": D("9790"), "BTC": D("2")}

    book.apply_fill(sell(1, 120))
    assert position.quantity == 1
    assert position.realised_pnl == 15
    assert position.average_price == 105  # reducing never moves the average
    assert position.unrealised_pnl(D("130")) == 25
    assert position.market_value(D("130")) == 130
    assert book.balances == {"USDT": D("9910"), "BTC": D("1")}


def test_crossing_long_to_short_closes_then_opens_at_the_fill_price() -> None:
    position = Position("BTCUSDT")
    position.apply_fill(buy(1, 100))
    position.apply_fill(sell(3, 120))
    assert position.realised_pnl == 20
    assert position.quantity == -2
    assert position.average_price == 120
    assert position.cost_basis == -240
    assert position.unrealised_pnl(D("110")) == 20  # short 2 from 120, now 110


def test_crossing_short_to_long() -> None:
    position = Position("BTCUSDT")
    position.apply_fill(sell(1, 100))
    position.apply_fill(buy(3, 90))
    assert position.realised_pnl == 10
    assert position.quantity == 2
    assert position.average_price == 90


def test_short_profits_when_price_falls_and_closes_flat() -> None:
    book = new_portfolio()
    book.apply_fill(sell(2, 100))
    position = book.positions["BTCUSDT"]
    assert position.quantity == -2
    assert position.average_price == 100  # positive for shorts too
    assert position.unrealised_pnl(D("80")) == 40
    assert position.unrealised_pnl(D("120")) == -40
    assert position.market_value(D("80")) == -160
    book.apply_fill(buy(1, 90))
    assert position.realised_pnl == 10
    book.apply_fill(buy(1, 110))
    assert position.realised_pnl == 0
    assert position.is_flat and position.average_price == 0 and position.cost_basis == 0
    assert book.balances == {"USDT": D("10000"), "BTC": D("0")}


def test_fees_are_kept_apart_and_debited_from_quote_cash() -> None:
    book = new_portfolio()
    book.apply_fill(buy(1, 100, fee="0.1"))
    book.apply_fill(sell(1, 110, fee="0.11"))
    position = book.positions["BTCUSDT"]
    assert position.realised_pnl == 10
    assert position.fees == D("0.21")
    assert position.net_realised_pnl == D("9.79")
    assert book.balances["USDT"] == D("10009.79")
    assert book.total_fees == D("0.21")


def test_non_terminating_average_still_balances_exactly() -> None:
    book = new_portfolio()
    book.apply_fill(buy(1, 100))
    book.apply_fill(buy(2, 101))
    position = book.positions["BTCUSDT"]
    assert position.cost_basis == 302
    assert abs(position.average_price - D(302) / 3) < D("1e-17")
    book.apply_fill(sell(1, 102))
    mark = D("103")
    pnl = position.realised_pnl + position.unrealised_pnl(mark) - position.fees
    assert pnl == (book.balances["USDT"] - D("10000")) + position.quantity * mark
    assert abs(position.realised_pnl - (D(102) - D(302) / 3)) < D("1e-17")


def test_position_refuses_another_symbols_fill() -> None:
    position = Position("BTCUSDT")
    with pytest.raises(PortfolioError, match="ETHUSDT"):
        position.apply_fill(buy(1, 100, symbol="ETHUSDT"))
    assert position == Position("BTCUSDT")


# ---------------------------------------------------------- portfolio rules


def test_unknown_symbol_raises_and_changes_nothing() -> None:
    book = new_portfolio()
    before = copy.deepcopy(book)
    with pytest.raises(PortfolioError, match="DOGEUSDT") as info:
        book.apply_fill(buy(1, 100, symbol="DOGEUSDT"))
    assert isinstance(info.value, ValueError)
    assert book == before


def test_duplicate_trade_is_booked_once() -> None:
    book = new_portfolio()
    first = buy(1, 100, fee=1)
    assert book.apply_fill(first) is True
    after_first = copy.deepcopy(book)
    assert book.apply_fill(first) is False
    assert book == after_first
    with pytest.raises(PortfolioError, match="resent"):
        book.apply_fill(buy(2, 100, fee=1, trade_id=first.trade_id))
    # The same trade id on another symbol is a different trade.
    assert book.apply_fill(buy(1, 10, symbol="ETHUSDT", trade_id=first.trade_id)) is True


def test_constructor_copies_its_inputs() -> None:
    balances = {"USDT": D("100")}
    book = Portfolio(SYMBOLS, balances)
    book.apply_fill(buy(1, 10))
    assert balances == {"USDT": D("100")}


def test_equity_values_balances_at_marks() -> None:
    book = Portfolio(SYMBOLS, {"USDT": D("10000"), "ETH": D("2")})
    book.apply_fill(buy(1, 100, fee=1))
    marks = {"BTCUSDT": D("150"), "ETHUSDT": D("10")}
    assert book.equity(marks) == D("10000") - 101 + 150 + 20
    with pytest.raises(PortfolioError, match="ETHUSDT"):
        book.equity({"BTCUSDT": D("150")})
    with pytest.raises(PortfolioError, match="in EUR"):
        book.equity(marks, in_asset="EUR")


def test_totals_and_snapshot() -> None:
    book = new_portfolio()
    book.apply_fill(buy(2, 100, fee=1))
    book.apply_fill(sell(1, 110, fee=1))
    book.apply_fill(sell(1, 50, symbol="ETHUSDT"))
    marks = {"BTCUSDT": D("120"), "ETHUSDT": D("40")}
    assert book.total_realised_pnl == 10
    assert book.total_unrealised_pnl(marks) == 20 + 10
    snap = book.snapshot(marks)
    assert isinstance(snap, PortfolioSnapshot)
    assert [p.symbol for p in snap.positions] == ["BTCUSDT", "ETHUSDT"]
    btc = snap.positions[0]
    assert (btc.quantity, btc.average_price, btc.mark_price) == (D(1), D(100), D(120))
    assert (btc.unrealised_pnl, btc.realised_pnl, btc.fees) == (D(20), D(10), D(2))
    assert snap.realised_pnl == 10 and snap.unrealised_pnl == 30 and snap.fees == 2
    assert snap.net_pnl == 38
    assert snap.equity == book.equity(marks) == D("10000") - 201 + 109 + 50 + 120 - 40
    assert snap.equity - D("10000") == snap.net_pnl  # started all cash, one quote asset

    # Frozen and detached: later fills don't reach into an old snapshot.
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snap.equity = D(0)  # type: ignore[misc]
    assert snap.balances == (("BTC", D("1")), ("ETH", D("-1")), ("USDT", D("9958")))
    book.apply_fill(buy(1, 100))
    assert snap.balance("BTC") == 1 and snap.balance("XRP") == 0
    # Records cross channels and process boundaries.
    assert pickle.loads(pickle.dumps(snap)) == snap
    assert hash(snap) == hash(copy.deepcopy(snap))


def test_snapshot_needs_marks_only_for_open_positions() -> None:
    book = new_portfolio()
    book.apply_fill(buy(1, 100))
    book.apply_fill(sell(1, 90))
    snap = book.snapshot({})
    assert snap.positions[0].mark_price is None
    assert snap.realised_pnl == -10 and snap.equity == D("9990")
    book.apply_fill(buy(1, 100))
    with pytest.raises(PortfolioError, match="BTCUSDT"):
        book.snapshot({})


def test_totals_refuse_mixed_quote_currencies() -> None:
    book = Portfolio({"BTCUSDT": ("BTC", "USDT"), "ETHBTC": ("ETH", "BTC")}, {"USDT": D(1000)})
    book.apply_fill(buy(1, 100))
    book.apply_fill(buy(1, "0.05", symbol="ETHBTC"))
    with pytest.raises(PortfolioError, match="quote"):
        _ = book.total_realised_pnl


def test_bad_construction_is_refused() -> None:
    with pytest.raises(PortfolioError):
        Portfolio({"BTCUSDT": ("BTC", "BTC")})
    with pytest.raises(PortfolioError):
        Portfolio(SYMBOLS, {"USDT": 10.0})  # type: ignore[dict-item]
    with pytest.raises(PortfolioError):
        Position("BTCUSDT", quantity=D(0), cost_basis=D(5))


def test_values_too_precise_to_book_exactly_raise_instead_of_rounding() -> None:
    book = new_portfolio()
    before = copy.deepcopy(book)
    with pytest.raises(PortfolioError, match="exactly"):
        book.apply_fill(buy(D("1." + "1" * 60), D("1." + "3" * 60)))
    assert book == before


# --------------------------------------------------------------- properties

quantities = st.decimals(min_value=D("0.0001"), max_value=D("1000"), places=4)
prices = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2)
fees = st.decimals(min_value=D("0"), max_value=D("10"), places=4)
fills = st.lists(
    st.tuples(st.sampled_from(list(Side)), quantities, prices, fees), min_size=1, max_size=25
)


@given(
    fills,
    prices,
    st.decimals(min_value=D("0"), max_value=D("1000000"), places=2),
)
def test_pnl_equals_cash_change_plus_position_value(
    sequence: list[tuple[Side, Decimal, Decimal, Decimal]], mark: Decimal, cash: Decimal
) -> None:
    book = new_portfolio(cash)
    signed_total = D(0)
    # The test's own arithmetic must not round either, or equality means nothing.
    exact = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.InvalidOperation])
    for side, quantity, price, fee in sequence:
        assert book.apply_fill(fill(side, quantity, price, fee)) is True
        position = book.positions["BTCUSDT"]
        with decimal.localcontext(exact):
            signed_total += quantity * side.sign
            pnl = position.realised_pnl + position.unrealised_pnl(mark) - position.fees
            assert pnl == (book.balances["USDT"] - cash) + position.quantity * mark
        assert position.quantity == signed_total
        assert book.balances["BTC"] == signed_total
        if position.is_flat:
            assert position.cost_basis == 0 and position.unrealised_pnl(mark) == 0


@given(fills)
def test_realised_pnl_moves_only_when_reducing_and_by_the_average_cost_rule(
    sequence: list[tuple[Side, Decimal, Decimal, Decimal]],
) -> None:
    position = Position("BTCUSDT")
    tolerance = D("1e-12")
    for side, quantity, price, fee in sequence:
        before = copy.deepcopy(position)
        position.apply_fill(fill(side, quantity, price, fee))
        held = before.quantity
        if held == 0 or (held > 0) == (side is Side.BUY):
            # Opening or adding: nothing realised, average is the weighted mean.
            assert position.realised_pnl == before.realised_pnl
            expected_avg = (abs(held) * before.average_price + quantity * price) / (
                abs(held) + quantity
            )
            assert abs(position.average_price - expected_avg) < tolerance
        else:
            closed = min(quantity, abs(held))
            direction = 1 if held > 0 else -1
            expected = (price - before.average_price) * closed * direction
            assert abs((position.realised_pnl - before.realised_pnl) - expected) < tolerance
            if quantity > abs(held):
                assert position.average_price == price  # crossed: new side at fill price
            elif quantity < abs(held):
                assert abs(position.average_price - before.average_price) < tolerance
        assert position.fees == before.fees + fee


# ------------------------------------------------- fees as Binance charges them


def test_a_buy_charged_in_the_base_asset_holds_what_the_account_holds() -> None:
    book = new_portfolio()
    book.apply_fill(buy("1", "100", "0.001", fee_asset="BTC"))
    position = book.positions["BTCUSDT"]
    assert book.balances["BTC"] == D("0.999")  # what Binance credits
    assert position.quantity == D("0.999")  # the position is what the account holds
    assert book.balances["USDT"] == CASH - 100  # the whole price was paid
    assert position.fees == D("0.1")  # 0.001 BTC at the fill's price
    assert book.fees_paid == {"BTC": D("0.001")}
    # selling all of it closes the position exactly
    book.apply_fill(sell("0.999", "110", "0.1099"))
    assert book.positions["BTCUSDT"].is_flat
    assert book.balances["BTC"] == 0
    assert book.fees_paid == {"BTC": D("0.001"), "USDT": D("0.1099")}


def test_a_fee_in_a_third_asset_leaves_the_position_and_the_quote_alone() -> None:
    book = Portfolio(
        {**SYMBOLS, "BNBUSDT": ("BNB", "USDT")}, {"USDT": CASH, "BNB": D("1")}
    )
    book.apply_fill(buy("1", "100", "0.0002", fee_asset="BNB"))
    assert book.positions["BTCUSDT"].quantity == 1
    assert book.balances == {"USDT": CASH - 100, "BTC": D(1), "BNB": D("0.9998")}
    assert book.positions["BTCUSDT"].fees == 0  # no price for BNB in the fill
    assert book.fees_paid == {"BNB": D("0.0002")}


def test_a_resent_trade_with_another_fee_asset_is_refused() -> None:
    book = new_portfolio()
    first = buy("1", "100", "0.001", fee_asset="BTC")
    book.apply_fill(first)
    with pytest.raises(PortfolioError, match="resent with different numbers"):
        book.apply_fill(attrs.evolve(first, fee_asset="USDT"))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(Side)),
            quantities,
            prices,
            st.decimals(min_value=D("0"), max_value=D("0.0001"), places=8),
            st.sampled_from(["USDT", "BTC", "BNB"]),
        ),
        min_size=1,
        max_size=20,
    ),
    prices,
)
def test_balances_and_pnl_stay_exact_whatever_asset_each_fee_is_charged_in(
    sequence: list[tuple[Side, Decimal, Decimal, Decimal, str]], mark: Decimal
) -> None:
    book = Portfolio({**SYMBOLS, "BNBUSDT": ("BNB", "USDT")}, {"USDT": CASH, "BNB": D(5)})
    exact = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.InvalidOperation])
    btc = D(0)
    bnb_fees = D(0)
    for side, quantity, price, fee, asset in sequence:
        book.apply_fill(fill(side, quantity, price, fee, fee_asset=asset))
        position = book.positions["BTCUSDT"]
        with decimal.localcontext(exact):
            btc += quantity * side.sign - (fee if asset == "BTC" else 0)
            bnb_fees += fee if asset == "BNB" else 0
            # the position is exactly what the account holds of the base asset
            assert position.quantity == btc == book.balances["BTC"]
            assert book.balances["BNB"] == 5 - bnb_fees
            # and PnL still equals the cash change plus the value held
            pnl = position.realised_pnl + position.unrealised_pnl(mark) - position.fees
            assert pnl == (book.balances["USDT"] - CASH) + position.quantity * mark
