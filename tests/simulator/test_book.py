"""The synthetic book: its documented shape, and taker walks that never overspend."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from trading.simulator import DEFAULT_SYMBOLS, Book, BookShape, PricePath
from trading.simulator.book import walk

T0 = 1_735_689_600_000


def test_shape_best_ask_is_the_path_price_and_the_spread_is_one_tick() -> None:
    path = PricePath()
    book = Book(path)
    for symbol, rules in DEFAULT_SYMBOLS.items():
        bids, asks = book.levels(symbol, T0 + 4_321)
        assert len(asks) == 20 and len(bids) == 20
        assert asks[0][0] == path.price(symbol, T0 + 4_321)
        assert bids[0][0] == asks[0][0] - rules.tick_size
        assert all(a[0] < b[0] for a, b in itertools.pairwise(asks))
        assert all(a[0] > b[0] for a, b in itertools.pairwise(bids))
        for price, qty in bids + asks:
            assert price % rules.tick_size == 0 and price > 0
            assert qty >= rules.min_qty and qty % rules.step_size == 0


def test_levels_are_deterministic_and_change_with_the_step() -> None:
    a, b = Book(PricePath(seed=1)), Book(PricePath(seed=1))
    assert a.levels("ETHUSDT", T0) == b.levels("ETHUSDT", T0)
    assert a.levels("ETHUSDT", T0)[1] != a.levels("ETHUSDT", T0 + 1000)[1]


def test_depth_is_about_the_documented_notional() -> None:
    book = Book(PricePath())
    _, asks = book.levels("BTCUSDT", T0)
    top = asks[0][0] * asks[0][1]
    assert Decimal(12_500) <= top <= Decimal(37_500)  # 25,000 USDT x (0.5 .. 1.5)
    deep = BookShape(notional_multiple=50_000)
    assert Book(PricePath(), deep).levels("BTCUSDT", T0)[1][0][1] > asks[0][1]


def test_resting_depth_is_a_share_of_the_top_level() -> None:
    book = Book(PricePath())
    _, asks = book.levels("BTCUSDT", T0)
    depth = book.resting_depth("BTCUSDT", T0)
    assert 0 < depth <= asks[0][1] / 4


LEVELS = ((Decimal("100.00"), Decimal("1.0")), (Decimal("100.50"), Decimal("2.0")))


def test_walk_by_quantity_takes_levels_in_order() -> None:
    step = Decimal("0.1")
    assert walk(LEVELS, buy=True, step=step, quantity=Decimal("2.5")) == [
        (Decimal("100.00"), Decimal("1.0")),
        (Decimal("100.50"), Decimal("1.5")),
    ]
    assert walk(LEVELS, buy=True, step=step, quantity=Decimal("9")) == list(LEVELS)
    assert walk(LEVELS, buy=True, step=step, quantity=Decimal("9"), limit=Decimal("100.49")) == [
        LEVELS[0]
    ]


@given(
    budget=st.decimals(min_value=0, max_value=1000, places=2),
    step=st.sampled_from([Decimal("0.1"), Decimal("0.001"), Decimal("1")]),
)
def test_walk_by_quote_never_spends_more_than_the_budget(budget: Decimal, step: Decimal) -> None:
    fills = walk(LEVELS, buy=True, step=step, quote=budget)
    spent = sum((p * q for p, q in fills), Decimal(0))
    assert spent <= budget
    assert all(q > 0 and q % step == 0 for _, q in fills)
    # and it spends all it can: one more step at the next price would break the budget
    taken = sum((q for _, q in fills), Decimal(0))
    if taken < sum(q for _, q in LEVELS):
        next_price = next(p for p, q in LEVELS if sum(q2 for p2, q2 in fills if p2 == p) < q)
        assert spent + step * next_price > budget


def test_walk_by_quote_survives_division_rounding() -> None:
    # 2.999...9 (30 nines) / 3 rounds up to 1 at Decimal's 28 digits: one step would overspend.
    budget = Decimal("2." + "9" * 30)
    assert walk(((Decimal(3), Decimal(5)),), buy=True, step=Decimal(1), quote=budget) == []
