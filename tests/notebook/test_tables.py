"""The notebook's journal of orders and fills, and its tables (no event loop needed)."""

from __future__ import annotations

import sys
from decimal import Decimal

import pytest

from trading.core import events as ev
from trading.notebook.journal import ORDER_COLUMNS, Journal
from trading.notebook.tables import html_table, table


def fill(cid: str, trade: str, *, last: bool) -> ev.OrderPartiallyFilled:
    kind = ev.OrderFilled if last else ev.OrderPartiallyFilled
    return kind(
        time=1.0,
        strategy="s",
        client_order_id=cid,
        symbol="BTCUSDT",
        side="buy",
        order_type="market",
        quantity=Decimal("0.02"),
        price=None,
        trade_id=trade,
        fill_quantity=Decimal("0.01"),
        fill_price=Decimal("100"),
        fee=Decimal("0.1"),
        fee_asset="USDT",
        filled_quantity=Decimal("0.02") if last else Decimal("0.01"),
    )


def submitted(cid: str) -> ev.OrderSubmitted:
    return ev.OrderSubmitted(
        time=0.5,
        strategy="s",
        client_order_id=cid,
        symbol="BTCUSDT",
        side="buy",
        order_type="market",
        quantity=Decimal("0.02"),
        price=None,
    )


def test_an_orders_row_follows_its_events_and_each_fill_is_a_row() -> None:
    journal = Journal()
    journal(ev.StrategyStateChanged(time=0.0, strategy="s", old="a", new="b"))  # not an order
    journal(submitted("a"))
    [row] = journal.orders()
    assert row["state"] == "SUBMITTED" and row["filled_quantity"] is None
    journal(fill("a", "1", last=False))
    journal(fill("a", "2", last=True))
    [row] = journal.orders()
    assert (row["state"], row["filled_quantity"]) == ("FILLED", Decimal("0.02"))
    assert [f["trade_id"] for f in journal.fills()] == ["1", "2"]
    assert set(row) == set(ORDER_COLUMNS)
    # Copies: changing a row read out changes nothing inside.
    row["state"] = "mine"
    assert journal.orders()[0]["state"] == "FILLED"


def test_the_journal_is_bounded_and_counts_what_it_dropped() -> None:
    journal = Journal(limit=3)
    for n in range(5):
        journal(submitted(f"o{n}"))
        journal(fill(f"o{n}", str(n), last=True))
    assert [o["client_order_id"] for o in journal.orders()] == ["o2", "o3", "o4"]
    assert [f["trade_id"] for f in journal.fills()] == ["2", "3", "4"]
    assert (journal.dropped_orders, journal.dropped_fills) == (2, 2)
    with pytest.raises(ValueError):
        Journal(limit=0)


def test_a_rejection_keeps_its_reason() -> None:
    journal = Journal()
    journal(submitted("r"))
    journal(
        ev.OrderRejected(
            time=1.0,
            strategy="s",
            client_order_id="r",
            symbol="BTCUSDT",
            side="buy",
            order_type="market",
            quantity=Decimal("0.02"),
            price=None,
            reason="insufficient balance",
            sent=True,
        )
    )
    [row] = journal.orders()
    assert (row["state"], row["reason"]) == ("REJECTED", "insufficient balance")


def test_without_pandas_a_table_is_the_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"time": 1.0, "strategy": "s"}]
    assert list(table(rows, ("time", "strategy")).columns) == ["time", "strategy"]
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    assert table(rows, ("time", "strategy")) == rows


def test_the_html_table_is_escaped() -> None:
    cells = [("s", "failed", "-", "flat", "-", "<script>alert(1)</script>")]
    html = html_table(cells, caption="a & b")
    assert "<script>" not in html and "&lt;script&gt;" in html and "a &amp; b" in html
