"""The recorder's side of the runtime's TradeHistory port: what crash recovery reads back.

``trading.runtime.history`` defines the port and its records (the runtime depends on no
database); this module fills them from a Recorder's file with the read-only readers of
:mod:`trading.observers.queries` (so it never writes, and under WAL never waits for the
writer). Blocking: call it from a worker thread (``Recorder.recorded`` does).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trading.core.records import Fill, OrderState, OrderType, Side
from trading.observers.queries import read_fills, read_last_event_time, read_orders
from trading.runtime.history import Recorded, RecordedOrder

__all__ = ["read_recorded"]


def read_recorded(path: str | os.PathLike[str], strategy: str) -> Recorded:
    """What crash recovery needs of ``strategy`` (the ``TradeHistory`` port of
    ``trading.runtime.recovery``): its fills in booking order, each order's latest row across
    runs (first recorded at its earliest ``created_at``), and the time of its last event. A
    file that does not exist yet holds nothing (a first run). Errors as the other readers."""
    if not Path(path).is_file():
        return Recorded()
    fills = tuple(
        Fill(
            client_order_id=row["client_order_id"],
            symbol=row["symbol"],
            side=Side(row["side"]),
            quantity=row["quantity"],
            price=row["price"],
            fee=row["fee"],
            fee_asset=row["fee_asset"],
            time=row["time"],
            trade_id=row["trade_id"],
        )
        for row in read_fills(path, strategy)
    )
    latest: dict[str, dict[str, Any]] = {}
    first: dict[str, float] = {}
    for row in read_orders(path, strategy):  # oldest row first: the last one wins
        cid = row["client_order_id"]
        latest[cid] = row
        first[cid] = min(first.get(cid, row["created_at"]), row["created_at"])
    orders = tuple(
        RecordedOrder(
            client_order_id=cid,
            symbol=row["symbol"],
            side=Side(row["side"]),
            type=OrderType(row["type"]),
            quantity=row["quantity"],
            price=row["price"],
            state=OrderState(row["state"]),
            filled_quantity=row["filled_quantity"],
            created_at=first[cid],
        )
        for cid, row in latest.items()
    )
    return Recorded(fills=fills, orders=orders, last_time=read_last_event_time(path, strategy))
