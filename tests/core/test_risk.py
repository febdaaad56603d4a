"""Pre-trade risk checks: pure functions, tested without an event loop."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.risk import RiskLimits, check_order, daily_loss_breached, reduces_exposure

D = Decimal


@pytest.mark.parametrize(
    ("position", "orders", "reduces"),
    [
        (D("0.03"), [D("-0.01")], True),  # partial exit
        (D("0.03"), [D("-0.03")], True),  # to flat
        (D("0.03"), [D("-0.05")], False),  # through zero: goes short
        (D("0.03"), [D("0.01")], False),  # adds
        (D("-2"), [D("1")], True),  # short covering
        (D("-2"), [D("-1")], False),
        (D("0"), [D("0.01")], False),  # anything from flat adds exposure
        (D("0.03"), [D("-0.02"), D("-0.02")], False),  # two exits together flip it
    ],
)
def test_reduces_exposure(position: Decimal, orders: list[Decimal], reduces: bool) -> None:
    assert reduces_exposure(position, orders) is reduces


@given(
    position=st.decimals(min_value=-100, max_value=100, places=3),
    quantity=st.decimals(min_value=-100, max_value=100, places=3),
)
def test_reducing_never_grows_or_flips(position: Decimal, quantity: Decimal) -> None:
    after = position + quantity
    if reduces_exposure(position, [quantity]):
        assert abs(after) <= abs(position)
        assert after == 0 or (after > 0) == (position > 0)


def test_limits_in_order_of_checking() -> None:
    limits = RiskLimits(max_order_notional=D("1000"), max_open_orders=2)
    common = {"position": D(0), "pending": [], "signed_quantity": D("0.01")}
    assert (
        check_order(limits, notional=D("999"), open_orders=1, reduce_only=False, **common) is None
    )
    too_big = check_order(limits, notional=D("1001"), open_orders=0, reduce_only=False, **common)
    assert too_big is not None and too_big.startswith("max_order_notional")
    too_many = check_order(limits, notional=D("10"), open_orders=2, reduce_only=False, **common)
    assert too_many == "max_open_orders: already 2 open (limit 2)"
    entry = check_order(limits, notional=D("10"), open_orders=0, reduce_only=True, **common)
    assert entry is not None and entry.startswith("reduce-only is on")


def test_daily_loss() -> None:
    limits = RiskLimits(max_daily_loss=D("100"))
    assert not daily_loss_breached(limits, D("-100"))
    assert daily_loss_breached(limits, D("-100.01"))
    assert not daily_loss_breached(RiskLimits(), D("-1e9"))


@pytest.mark.parametrize(
    "kwargs", [{"max_order_notional": D(0)}, {"max_open_orders": -1}, {"max_daily_loss": D("-5")}]
)
def test_bad_limits_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be a positive number or None"):
        RiskLimits(**kwargs)  # type: ignore[arg-type]
