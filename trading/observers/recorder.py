"""Recorder: the run's durable record in SQLite (the DatabaseManager), fed losslessly by the bus.

The rules this module keeps:

* One connection, opened in ``__init__`` (so a bad path or a foreign database fails before the
  run starts), used by one thread at a time (``self._lock``), written only from worker threads.
* One transaction per batch the bus hands over: batching is what makes the recorder keep up
  with the trading loop (one fsync-free WAL append per batch instead of per event).
* A batch is written under a shield and the thread is never abandoned, so when ``handle``
  returns the batch is committed or has raised; there is no half-known batch. ``on_commit``
  (the "acknowledged" signal) is called only after the commit.
* Every row is keyed by the run that wrote it: each Recorder has a ``run_id`` (its own random
  one unless given) and every table has a ``run`` column. ``seq`` is the bus's seq within that
  run. So repeated and concurrent runs into one file keep every row: nothing of one run can be
  taken for a duplicate of another's (same strategy, same seq, same trade id).
* Every write is idempotent within its run (``INSERT OR IGNORE`` keyed by (run, seq) or
  (run, symbol, trade id), order upserts keyed by (run, client order id) that only move forward
  by seq), so the bus may retry a batch that failed halfway.
* Every table has an ``id INTEGER PRIMARY KEY``: the order rows were first written in, across
  runs. Readers list orders by it, that is in the order they were placed.
* Decimals are stored as TEXT, exactly as ``str(Decimal)`` prints them; never as REAL.
* A database of the previous schema (version 1, no run column) is migrated in place when a
  Recorder opens it, in one transaction; its rows get the run id ``schema-1``.
  ``on_commit`` reports the bus's seq. One Recorder serves one bus.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import trio

from trading.core.events import (
    CommandHandled,
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderEvent,
    OrderFilled,
    OrderPartiallyFilled,
    OrderReconciled,
    OrderRejected,
    OrderSubmitted,
    OrderUnknown,
    PositionSnapshot,
)
from trading.core.orders import OrderState
from trading.observers.history import read_recorded
from trading.observers.schema import SCHEMA_VERSION, RecorderError, check_schema, open_database
from trading.runtime.history import Recorded

__all__ = ["SCHEMA_VERSION", "Recorder", "RecorderError"]

log = logging.getLogger(__name__)

_INSERT_EVENT = "INSERT OR IGNORE INTO events (run, seq, time, strategy, kind, payload) VALUES "
_INSERT_EVENT += "(?, ?, ?, ?, ?, ?)"
_INSERT_FILL = """
INSERT OR IGNORE INTO fills (run, trade_id, client_order_id, strategy, symbol, side, quantity,
    price, fee, fee_asset, time, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_POSITION = """
INSERT OR IGNORE INTO positions (run, seq, time, strategy, symbol, quantity, average_price,
    mark_price, realised_pnl, unrealised_pnl, fees) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_COMMAND = """
INSERT OR IGNORE INTO commands (run, seq, time, strategy, command, source, ok, message)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""

# ?9 (filled) is NULL for events that do not carry it: a new row starts at 0, an existing row
# keeps its value. The WHERE makes a replayed older event a no-op.
_UPSERT_ORDER = """
INSERT INTO orders (client_order_id, strategy, symbol, side, type, quantity, price, state,
    filled_quantity, exchange_order_id, reason, created_at, updated_at, seq, run)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, COALESCE(?9, '0'), ?10, ?11, ?12, ?12, ?13, ?14)
ON CONFLICT (run, client_order_id) DO UPDATE SET
    state = ?8,
    filled_quantity = COALESCE(?9, filled_quantity),
    exchange_order_id = COALESCE(?10, exchange_order_id),
    reason = COALESCE(?11, reason),
    updated_at = ?12,
    seq = ?13
WHERE ?13 > orders.seq
"""

_STATE_OF: dict[type[OrderEvent], str] = {
    OrderSubmitted: OrderState.NEW.value,  # in flight: the exchange has not acknowledged it yet
    OrderAccepted: OrderState.SUBMITTED.value,
    OrderPartiallyFilled: OrderState.PARTIALLY_FILLED.value,
    OrderFilled: OrderState.FILLED.value,
    OrderCancelled: OrderState.CANCELLED.value,
    OrderRejected: OrderState.REJECTED.value,
    OrderUnknown: OrderState.UNKNOWN.value,
}

_SKIP_IN_PAYLOAD = frozenset({"time", "strategy"})  # already columns of their own
_payload_fields: dict[type[Event], tuple[str, ...]] = {}

Row = tuple[Any, ...]


class Recorder:
    """Lossless SQLite observer. ``Recorder(path, on_commit=...)`` opens (or creates) the file
    at once; attach it to the bus; the bus calls ``aclose`` at shutdown. ``run_id`` keys this
    run's rows (default: a fresh random one, so two Recorders never share it)."""

    lossless = True
    buffer = 8_192
    max_batch = 5_000

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        on_commit: Callable[[int], object] | None = None,
        name: str = "recorder",
        run_id: str | None = None,
    ) -> None:
        self.name = name
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        self.run_id = run_id or f"{stamp}-{secrets.token_hex(3)}"
        self.path = Path(path)
        self.on_commit = on_commit
        self.last_seq = 0  # the bus seq of the last committed event
        self.batches = 0
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = open_database(self.path)
        try:
            check_schema(self._conn, self.path)
            self._conn.execute(
                "INSERT OR IGNORE INTO runs (run, started_at) VALUES (?, ?)",
                (self.run_id, time.time()),
            )
        except BaseException:
            self._conn.close()
            raise

    async def handle(self, batch: Sequence[tuple[int, Event]]) -> None:
        items = list(batch)
        if not items:
            return
        # Shielded and not abandonable: we learn whether the batch committed, even when
        # cancelled; the caller's cancellation is raised at its next checkpoint instead.
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self.write, items)
        last = items[-1][0]
        self.last_seq = max(self.last_seq, last)
        self.batches += 1
        log.debug("recorded events up to #%d", last)
        if self.on_commit is not None:
            try:
                self.on_commit(last)
            except Exception:
                log.exception("recorder on_commit callback raised (events are recorded)")

    async def recorded(self, strategy: str) -> Recorded:
        """What crash recovery needs of ``strategy`` (the runtime's ``TradeHistory`` port),
        read over a read-only connection of its own in a worker thread (under WAL it never
        waits for the writer). Cancelling it abandons the read, which changes nothing."""
        return await trio.to_thread.run_sync(
            read_recorded, self.path, strategy, abandon_on_cancel=True
        )

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self.close)

    def close(self) -> None:
        """Close the connection (blocking; the last close checkpoints the WAL into the file)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def write(self, batch: Sequence[tuple[int, Event]]) -> None:
        """Record ``batch`` in one transaction. Blocking: call from a worker thread (``handle``
        does), or directly outside trio. Safe to repeat with the same batch."""
        run = self.run_id
        events: list[Row] = []
        orders: list[Row] = []
        fills: list[Row] = []
        positions: list[Row] = []
        commands: list[Row] = []
        for seq, event in batch:
            kind = type(event).__name__
            events.append((run, seq, event.time, event.strategy, kind, _payload(event)))
            if isinstance(event, OrderEvent):
                orders.append((*_order_row(seq, event), run))
                if isinstance(event, OrderPartiallyFilled):
                    fills.append((run, *_fill_row(seq, event)))
            elif isinstance(event, PositionSnapshot):
                positions.append((run, *_position_row(seq, event)))
            elif isinstance(event, CommandHandled):
                commands.append(
                    (
                        run,
                        seq,
                        event.time,
                        event.strategy,
                        event.command,
                        event.source,
                        int(event.ok),
                        event.message,
                    )
                )
        with self._lock:
            conn = self._conn
            if conn is None:
                raise RecorderError(f"recorder for {self.path} is closed")
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_INSERT_EVENT, events)
                if orders:
                    conn.executemany(_UPSERT_ORDER, orders)
                if fills:
                    conn.executemany(_INSERT_FILL, fills)
                    _update_average_prices(conn, run, {row[2] for row in fills})
                if positions:
                    conn.executemany(_INSERT_POSITION, positions)
                if commands:
                    conn.executemany(_INSERT_COMMAND, commands)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise


def _payload(event: Event) -> str:
    cls = type(event)
    names = _payload_fields.get(cls)
    if names is None:
        names = tuple(f.name for f in attrs.fields(cls) if f.name not in _SKIP_IN_PAYLOAD)
        _payload_fields[cls] = names
    # default=str writes Decimals exactly, and never lets an odd field fail the whole batch.
    return json.dumps(
        {name: getattr(event, name) for name in names}, default=str, separators=(",", ":")
    )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _order_row(seq: int, event: OrderEvent) -> Row:
    filled: Decimal | None = None
    exchange_id: str | None = None
    reason: str | None = None
    if isinstance(event, OrderPartiallyFilled | OrderCancelled | OrderReconciled):
        filled = event.filled_quantity
    if isinstance(event, OrderAccepted):
        exchange_id = event.exchange_order_id
    elif isinstance(event, OrderCancelled | OrderRejected | OrderUnknown):
        reason = event.reason or None
    if isinstance(event, OrderReconciled):
        state = event.state
    else:
        state = _STATE_OF.get(type(event), type(event).__name__.removeprefix("Order").lower())
    return (
        event.client_order_id,
        event.strategy,
        event.symbol,
        event.side,
        event.order_type,
        str(event.quantity),
        _text(event.price),
        state,
        _text(filled),
        exchange_id,
        reason,
        event.time,
        seq,
    )


def _fill_row(seq: int, event: OrderPartiallyFilled) -> Row:
    return (
        event.trade_id,
        event.client_order_id,
        event.strategy,
        event.symbol,
        event.side,
        str(event.fill_quantity),
        str(event.fill_price),
        str(event.fee),
        event.fee_asset,
        event.time,
        seq,
    )


def _position_row(seq: int, event: PositionSnapshot) -> Row:
    return (
        seq,
        event.time,
        event.strategy,
        event.symbol,
        str(event.quantity),
        str(event.average_price),
        str(event.mark_price),
        str(event.realised_pnl),
        str(event.unrealised_pnl),
        str(event.fees),
    )


def _update_average_prices(conn: sqlite3.Connection, run: str, order_ids: set[str]) -> None:
    """Average fill price from the fills table, in Decimal: exact, and the same on a replay."""
    updates: list[tuple[str, str, str]] = []
    for order_id in order_ids:
        quantity = notional = Decimal(0)
        for qty_text, price_text in conn.execute(
            "SELECT quantity, price FROM fills WHERE run = ? AND client_order_id = ?",
            (run, order_id),
        ):
            qty = Decimal(qty_text)
            quantity += qty
            notional += qty * Decimal(price_text)
        if quantity:
            updates.append((str(notional / quantity), run, order_id))
    conn.executemany(
        "UPDATE orders SET average_price = ? WHERE run = ? AND client_order_id = ?", updates
    )
