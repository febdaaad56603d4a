"""Recorder: the run's durable record in SQLite (the DatabaseManager), fed losslessly by the bus.

The rules this module keeps:

* One connection, opened in ``__init__`` (so a bad path or a foreign database fails before the
  run starts), used by one thread at a time (``self._lock``), written only from worker threads.
* One transaction per batch the bus hands over: batching is what makes the recorder keep up
  with the trading loop (one fsync-free WAL append per batch instead of per event).
* A batch is written under a shield and the thread is never abandoned, so when ``handle``
  returns the batch is committed or has raised; there is no half-known batch. ``on_commit``
  (the "acknowledged" signal) is called only after the commit.
* Every write is idempotent (``INSERT OR IGNORE`` keyed by seq or trade id, order upserts that
  only move forward by seq), so the bus may retry a batch that failed halfway.
* Decimals are stored as TEXT, exactly as ``str(Decimal)`` prints them; never as REAL.
* ``events.seq`` is the database's own sequence: it continues across runs. A recorder adds the
  number of events already recorded when it opened to the bus's seq, so a second run into the
  same file appends instead of colliding with (and being ignored as) the first run's rows.
  ``on_commit`` reports the bus's seq. One Recorder serves one bus.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
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

__all__ = ["SCHEMA_VERSION", "Recorder", "RecorderError"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (version INTEGER NOT NULL);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY, time REAL NOT NULL, strategy TEXT NOT NULL, kind TEXT NOT NULL,
    payload TEXT NOT NULL  -- JSON of the event's own fields, Decimals as strings
);
CREATE TABLE orders (
    client_order_id TEXT PRIMARY KEY, strategy TEXT NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, type TEXT NOT NULL, quantity TEXT NOT NULL, price TEXT,
    state TEXT NOT NULL, filled_quantity TEXT NOT NULL, average_price TEXT,
    exchange_order_id TEXT, reason TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    seq INTEGER NOT NULL  -- the event that last changed the row: replays never move it back
);
CREATE INDEX orders_by_strategy ON orders (strategy, created_at);
CREATE TABLE fills (
    trade_id TEXT NOT NULL, client_order_id TEXT NOT NULL, strategy TEXT NOT NULL,
    symbol TEXT NOT NULL, side TEXT NOT NULL, quantity TEXT NOT NULL, price TEXT NOT NULL,
    fee TEXT NOT NULL, fee_asset TEXT NOT NULL, time REAL NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (symbol, trade_id)
);
CREATE INDEX fills_by_order ON fills (client_order_id);
CREATE TABLE positions (
    seq INTEGER PRIMARY KEY, time REAL NOT NULL, strategy TEXT NOT NULL, symbol TEXT NOT NULL,
    quantity TEXT NOT NULL, average_price TEXT NOT NULL, mark_price TEXT NOT NULL,
    realised_pnl TEXT NOT NULL, unrealised_pnl TEXT NOT NULL, fees TEXT NOT NULL
);
CREATE INDEX positions_latest ON positions (strategy, symbol, seq);
CREATE TABLE commands (
    seq INTEGER PRIMARY KEY, time REAL NOT NULL, strategy TEXT NOT NULL, command TEXT NOT NULL,
    source TEXT NOT NULL, ok INTEGER NOT NULL, message TEXT NOT NULL
);
"""

# ?9 (filled) is NULL for events that do not carry it: a new row starts at 0, an existing row
# keeps its value. The WHERE makes a replayed older event a no-op.
_UPSERT_ORDER = """
INSERT INTO orders (client_order_id, strategy, symbol, side, type, quantity, price, state,
    filled_quantity, exchange_order_id, reason, created_at, updated_at, seq)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, COALESCE(?9, '0'), ?10, ?11, ?12, ?12, ?13)
ON CONFLICT (client_order_id) DO UPDATE SET
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


class RecorderError(RuntimeError):
    """The database cannot be used by this Recorder (foreign file, newer schema, closed)."""


class Recorder:
    """Lossless SQLite observer. ``Recorder(path, on_commit=...)`` opens (or creates) the file
    at once; attach it to the bus; the bus calls ``aclose`` at shutdown."""

    lossless = True
    buffer = 8_192
    max_batch = 5_000

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        on_commit: Callable[[int], object] | None = None,
        name: str = "recorder",
    ) -> None:
        self.name = name
        self.path = Path(path)
        self.on_commit = on_commit
        self.last_seq = 0  # the bus seq of the last committed event
        self.batches = 0
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = _open(self.path)
        try:
            self._base = _check_schema(self._conn, self.path)
        except BaseException:
            self._conn.close()
            raise

    @property
    def seq_offset(self) -> int:
        """What is added to a bus seq to get ``events.seq`` (events recorded before this run)."""
        return self._base

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
        base = self._base
        events: list[Row] = []
        orders: list[Row] = []
        fills: list[Row] = []
        positions: list[Row] = []
        commands: list[Row] = []
        for bus_seq, event in batch:
            seq = base + bus_seq
            events.append((seq, event.time, event.strategy, type(event).__name__, _payload(event)))
            if isinstance(event, OrderEvent):
                orders.append(_order_row(seq, event))
                if isinstance(event, OrderPartiallyFilled):
                    fills.append(_fill_row(seq, event))
            elif isinstance(event, PositionSnapshot):
                positions.append(_position_row(seq, event))
            elif isinstance(event, CommandHandled):
                commands.append(
                    (
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
                conn.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?)", events)
                if orders:
                    conn.executemany(_UPSERT_ORDER, orders)
                if fills:
                    conn.executemany(
                        "INSERT OR IGNORE INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        fills,
                    )
                    _update_average_prices(conn, {row[1] for row in fills})
                if positions:
                    conn.executemany(
                        "INSERT OR IGNORE INTO positions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        positions,
                    )
                if commands:
                    conn.executemany(
                        "INSERT OR IGNORE INTO commands VALUES (?, ?, ?, ?, ?, ?, ?)", commands
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise RecorderError(f"{path}: cannot switch to WAL mode (journal_mode is {mode})")
        # In WAL mode, NORMAL skips the fsync at commit but a commit is still written to the
        # WAL file before COMMIT returns. A killed process (SIGKILL, crash) leaves those writes
        # in the OS page cache, which the kernel persists: every acknowledged batch survives.
        # Only an OS crash or power loss can lose the last commits (FULL would cover that, at
        # one fsync per batch).
        conn.execute("PRAGMA synchronous=NORMAL")
        # CLI readers never block the writer under WAL; this covers checkpoints and a second
        # writer (another run pointed at the same file) waiting briefly instead of failing.
        conn.execute("PRAGMA busy_timeout=5000")
    except BaseException:
        conn.close()
        raise
    return conn


def _check_schema(conn: sqlite3.Connection, path: Path) -> int:
    """Create the schema in a new file, or check an existing one; return the seq offset."""
    # Look and create in one write transaction: two runs opening a new file at once must not
    # both try to create the schema.
    conn.execute("BEGIN IMMEDIATE")
    try:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if not tables:
            for statement in _SCHEMA.split(";"):  # no ';' inside the statements or comments
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO meta (version) VALUES (?)", (SCHEMA_VERSION,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    if not tables:
        return 0
    if "meta" not in tables:
        raise RecorderError(f"{path} is not a trio-trade database (no meta table)")
    row = conn.execute("SELECT version FROM meta").fetchone()
    if row is None or row[0] != SCHEMA_VERSION:
        found = None if row is None else row[0]
        raise RecorderError(
            f"{path} has schema version {found}; this trio-trade writes version {SCHEMA_VERSION}"
        )
    last: int = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
    return last


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


def _update_average_prices(conn: sqlite3.Connection, order_ids: set[str]) -> None:
    """Average fill price from the fills table, in Decimal: exact, and the same on a replay."""
    updates: list[tuple[str, str]] = []
    for order_id in order_ids:
        quantity = notional = Decimal(0)
        for qty_text, price_text in conn.execute(
            "SELECT quantity, price FROM fills WHERE client_order_id = ?", (order_id,)
        ):
            qty = Decimal(qty_text)
            quantity += qty
            notional += qty * Decimal(price_text)
        if quantity:
            updates.append((str(notional / quantity), order_id))
    conn.executemany("UPDATE orders SET average_price = ? WHERE client_order_id = ?", updates)
