"""The Recorder's SQLite schema: creating it, checking it, migrating older versions.

The rules this module keeps:

* Every table has ``id INTEGER PRIMARY KEY`` (the order rows were written in, across runs) and a
  ``run`` column; the natural keys are unique per run: (run, seq) for events, positions and
  commands, (run, client order id) for orders, (run, symbol, trade id) for fills.
* Creating, checking and migrating happen in one ``BEGIN IMMEDIATE`` transaction, so two runs
  opening one new file at once do not both create it, and a failed migration changes nothing.
* A version 1 file (no run column) is migrated in place; its rows become run ``schema-1``.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

__all__ = ["LEGACY_RUN", "SCHEMA_VERSION", "RecorderError", "check_schema", "open_database"]

log = logging.getLogger(__name__)


class RecorderError(RuntimeError):
    """The database cannot be used by this Recorder (foreign file, newer schema, closed)."""


SCHEMA_VERSION = 2
LEGACY_RUN = "schema-1"  # the run id given to the rows of a migrated version 1 database

# The columns each table had in version 1, in order: what a migration copies.
_V1_COLUMNS = {
    "events": "seq, time, strategy, kind, payload",
    "orders": "client_order_id, strategy, symbol, side, type, quantity, price, state, "
    "filled_quantity, average_price, exchange_order_id, reason, created_at, updated_at, seq",
    "fills": "trade_id, client_order_id, strategy, symbol, side, quantity, price, fee, "
    "fee_asset, time, seq",
    "positions": "seq, time, strategy, symbol, quantity, average_price, mark_price, "
    "realised_pnl, unrealised_pnl, fees",
    "commands": "seq, time, strategy, command, source, ok, message",
}
_V1_ORDER = {"orders": "created_at, seq"}  # v1 listed orders so; the rest by seq
_V1_INDEXES = ("orders_by_strategy", "fills_by_order", "positions_latest")

_TABLES = """
CREATE TABLE runs (id INTEGER PRIMARY KEY, run TEXT NOT NULL UNIQUE, started_at REAL NOT NULL);
CREATE TABLE events (
    id INTEGER PRIMARY KEY, run TEXT NOT NULL, seq INTEGER NOT NULL, time REAL NOT NULL,
    strategy TEXT NOT NULL, kind TEXT NOT NULL,
    payload TEXT NOT NULL,  -- JSON of the event's own fields, Decimals as strings
    UNIQUE (run, seq)
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY, run TEXT NOT NULL,
    client_order_id TEXT NOT NULL, strategy TEXT NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, type TEXT NOT NULL, quantity TEXT NOT NULL, price TEXT,
    state TEXT NOT NULL, filled_quantity TEXT NOT NULL, average_price TEXT,
    exchange_order_id TEXT, reason TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    seq INTEGER NOT NULL,  -- the event that last changed the row: replays never move it back
    UNIQUE (run, client_order_id)
);
CREATE INDEX orders_by_strategy ON orders (strategy, id);
CREATE TABLE fills (
    id INTEGER PRIMARY KEY, run TEXT NOT NULL,
    trade_id TEXT NOT NULL, client_order_id TEXT NOT NULL, strategy TEXT NOT NULL,
    symbol TEXT NOT NULL, side TEXT NOT NULL, quantity TEXT NOT NULL, price TEXT NOT NULL,
    fee TEXT NOT NULL, fee_asset TEXT NOT NULL, time REAL NOT NULL, seq INTEGER NOT NULL,
    UNIQUE (run, symbol, trade_id)
);
CREATE INDEX fills_by_order ON fills (run, client_order_id);
CREATE TABLE positions (
    id INTEGER PRIMARY KEY, run TEXT NOT NULL, seq INTEGER NOT NULL,
    time REAL NOT NULL, strategy TEXT NOT NULL, symbol TEXT NOT NULL,
    quantity TEXT NOT NULL, average_price TEXT NOT NULL, mark_price TEXT NOT NULL,
    realised_pnl TEXT NOT NULL, unrealised_pnl TEXT NOT NULL, fees TEXT NOT NULL,
    UNIQUE (run, seq)
);
CREATE INDEX positions_latest ON positions (strategy, symbol, id);
CREATE TABLE commands (
    id INTEGER PRIMARY KEY, run TEXT NOT NULL, seq INTEGER NOT NULL,
    time REAL NOT NULL, strategy TEXT NOT NULL, command TEXT NOT NULL,
    source TEXT NOT NULL, ok INTEGER NOT NULL, message TEXT NOT NULL,
    UNIQUE (run, seq)
);
"""
_SCHEMA = "CREATE TABLE meta (version INTEGER NOT NULL);" + _TABLES


def open_database(path: Path) -> sqlite3.Connection:
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


def _execute_script(conn: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):  # no ';' inside the statements or comments
        if statement.strip():
            conn.execute(statement)


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema in a new file, migrate a version 1 file, or check an existing one."""
    # Look, create and migrate in one write transaction: two runs opening a new file at once
    # must not both try to create the schema, and a failed migration leaves the file as it was.
    conn.execute("BEGIN IMMEDIATE")
    try:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if not tables:
            _execute_script(conn, _SCHEMA)
            conn.execute("INSERT INTO meta (version) VALUES (?)", (SCHEMA_VERSION,))
        elif "meta" not in tables:
            raise RecorderError(f"{path} is not a trio-trade database (no meta table)")
        else:
            row = conn.execute("SELECT version FROM meta").fetchone()
            found = None if row is None else row[0]
            if found == 1:
                _migrate_v1(conn)
                log.info("%s: migrated from schema 1 (its rows are run %s)", path, LEGACY_RUN)
            elif found != SCHEMA_VERSION:
                raise RecorderError(
                    f"{path} has schema version {found}; "
                    f"this trio-trade writes version {SCHEMA_VERSION}"
                )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Version 1 -> 2 inside the caller's transaction: the same rows, keyed by run."""
    for index in _V1_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    for table in _V1_COLUMNS:
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_v1")
    _execute_script(conn, _TABLES)
    for table, columns in _V1_COLUMNS.items():
        order = _V1_ORDER.get(table, "seq")
        conn.execute(
            f"INSERT INTO {table} (run, {columns}) "
            f"SELECT ?, {columns} FROM {table}_v1 ORDER BY {order}",
            (LEGACY_RUN,),
        )
        conn.execute(f"DROP TABLE {table}_v1")
    started = conn.execute("SELECT MIN(time) FROM events").fetchone()[0]
    conn.execute("INSERT INTO runs (run, started_at) VALUES (?, ?)", (LEGACY_RUN, started or 0.0))
    conn.execute("UPDATE meta SET version = ?", (SCHEMA_VERSION,))
