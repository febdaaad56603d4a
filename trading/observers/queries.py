"""Read-side helpers for the CLI: orders, fills and positions from a Recorder's database.

Every reader opens the file read-only (``mode=ro``), so pointing ``trio-trade orders`` at a live
run's database can neither write to it nor create an empty file by mistake; under WAL a reader
never blocks the recorder. A file that is missing, foreign, of another schema version or cannot
be read raises an error whose message names the file and the reason (the CLI prints it, exit 2).
Decimal columns come back as :class:`~decimal.Decimal`, exactly as recorded. Blocking: call from a
thread (``trio.to_thread.run_sync``) inside trio code.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from trading.observers.schema import SCHEMA_VERSION

__all__ = [
    "COMMAND_COLUMNS",
    "EVENT_COLUMNS",
    "FILL_COLUMNS",
    "ORDER_COLUMNS",
    "POSITION_COLUMNS",
    "format_table",
    "read_commands",
    "read_events",
    "read_fills",
    "read_last_event_time",
    "read_orders",
    "read_positions",
]

ORDER_COLUMNS = (
    "run",
    "client_order_id",
    "strategy",
    "symbol",
    "side",
    "type",
    "quantity",
    "price",
    "state",
    "filled_quantity",
    "average_price",
    "exchange_order_id",
    "reason",
    "created_at",
    "updated_at",
)
FILL_COLUMNS = (
    "time",
    "strategy",
    "symbol",
    "side",
    "quantity",
    "price",
    "fee",
    "fee_asset",
    "trade_id",
    "client_order_id",
)
POSITION_COLUMNS = (
    "time",
    "strategy",
    "symbol",
    "quantity",
    "average_price",
    "mark_price",
    "realised_pnl",
    "unrealised_pnl",
    "fees",
)
_DECIMAL_COLUMNS = frozenset(
    {
        "quantity",
        "price",
        "filled_quantity",
        "average_price",
        "fee",
        "mark_price",
        "realised_pnl",
        "unrealised_pnl",
        "fees",
    }
)


def read_orders(path: str | os.PathLike[str], strategy: str | None = None) -> list[dict[str, Any]]:
    """Every order (latest state) in the order they were placed, across runs (not by the
    strategy's clock, which two runs may share, nor by client order id); only ``strategy``'s
    if given."""
    where, params = _strategy_filter(strategy)
    return _query(path, f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders{where} ORDER BY id", params)


def read_fills(
    path: str | os.PathLike[str], strategy: str | None = None, symbol: str | None = None
) -> list[dict[str, Any]]:
    """Every fill, in the order they were recorded (across runs)."""
    clauses, params = [], []
    if strategy is not None:
        clauses.append("strategy = ?")
        params.append(strategy)
    if symbol is not None:
        clauses.append("symbol = ?")
        params.append(symbol)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return _query(
        path, f"SELECT {', '.join(FILL_COLUMNS)} FROM fills{where} ORDER BY id", tuple(params)
    )


def read_positions(
    path: str | os.PathLike[str], strategy: str | None = None, latest: bool = True
) -> list[dict[str, Any]]:
    """Position snapshots; with ``latest`` only the last one per strategy and symbol."""
    where, params = _strategy_filter(strategy)
    columns = ", ".join(POSITION_COLUMNS)
    if latest:
        sql = (
            f"SELECT {columns} FROM positions WHERE id IN "
            f"(SELECT MAX(id) FROM positions{where} GROUP BY strategy, symbol) "
            "ORDER BY strategy, symbol"
        )
    else:
        sql = f"SELECT {columns} FROM positions{where} ORDER BY id"
    return _query(path, sql, params)


EVENT_COLUMNS = ("run", "time", "strategy", "kind", "payload")
COMMAND_COLUMNS = ("run", "time", "strategy", "command", "source", "ok", "message")


def read_events(
    path: str | os.PathLike[str],
    strategy: str | None = None,
    kind: str | None = None,
    since: float | None = None,
) -> list[dict[str, Any]]:
    """The audit trail: every recorded event, in the order recorded (across runs); ``payload``
    is the event's own fields as JSON text."""
    clauses, params = [], []
    for clause, value in (("strategy = ?", strategy), ("kind = ?", kind), ("time >= ?", since)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events{where} ORDER BY id"
    return _query(path, sql, tuple(params))


def read_commands(
    path: str | os.PathLike[str], strategy: str | None = None
) -> list[dict[str, Any]]:
    """Every command handled, with who sent it and the reply, in the order recorded."""
    where, params = _strategy_filter(strategy)
    sql = f"SELECT {', '.join(COMMAND_COLUMNS)} FROM commands{where} ORDER BY id"
    return _query(path, sql, params)


def read_last_event_time(path: str | os.PathLike[str], strategy: str) -> float | None:
    """The time of ``strategy``'s last recorded event (any run), None if it has none."""
    rows = _query(path, "SELECT MAX(time) AS time FROM events WHERE strategy = ?", (strategy,))
    return rows[0]["time"] if rows else None


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned text table: numbers right-aligned, text left, None blank."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    numeric = [
        bool(rows) and all(_is_number(row.get(column)) for row in rows) for column in columns
    ]
    widths = [
        max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(list(columns)), "  ".join("-" * width for width in widths)]
    out.extend(line(values) for values in cells)
    return "\n".join(out)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _is_number(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _strategy_filter(strategy: str | None) -> tuple[str, tuple[Any, ...]]:
    return ("", ()) if strategy is None else (" WHERE strategy = ?", (strategy,))


def _query(path: str | os.PathLike[str], sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Run ``sql`` on the trading database at ``path``. Every failure is one sentence naming
    the file: FileNotFoundError (no such file), OSError (cannot be opened or read), ValueError
    (not a trio-trade database, or another schema version)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"no trading database at {file}: run with recording on (the Recorder creates it)"
        )
    conn = _connect(file)
    try:
        _check_version(conn, file)
        cursor = conn.execute(sql, params)
        names = [description[0] for description in cursor.description]
        return [
            {
                name: Decimal(value) if name in _DECIMAL_COLUMNS and value is not None else value
                for name, value in zip(names, row, strict=True)
            }
            for row in cursor
        ]
    except sqlite3.OperationalError as exc:  # locked past the timeout, I/O error
        raise OSError(f"cannot read the trading database at {file}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{file} is not a readable trio-trade database: {exc}") from None
    finally:
        conn.close()


def _connect(file: Path) -> sqlite3.Connection:
    """A read-only connection that has read the schema (so a foreign file fails here).

    A WAL database in a folder this process cannot write (or a read-only file) cannot be opened
    read-only the usual way: SQLite must create the ``-shm`` index beside it. When no
    write-ahead log holds records beyond the file, the file alone is the whole database and is
    read as immutable; otherwise the error says what to do.
    """
    uri = file.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise OSError(f"cannot open the trading database at {file}: {exc}") from None
    try:
        conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        wal = Path(f"{file}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise OSError(
                f"cannot read the trading database at {file}: {exc} (its write-ahead log "
                f"{wal.name} holds records not yet in the file and SQLite cannot open it here; "
                "make the folder writable, or copy the database with its -wal and -shm files "
                "to a writable folder)"
            ) from None
        try:
            conn = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True)
            conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.Error as again:
            raise OSError(f"cannot read the trading database at {file}: {again}") from None
        return conn
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ValueError(f"{file} is not a trio-trade database: {exc}") from None


def _check_version(conn: sqlite3.Connection, file: Path) -> None:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" not in tables:
        raise ValueError(f"{file} is not a trio-trade database (no meta table)")
    row = conn.execute("SELECT version FROM meta").fetchone()
    found = None if row is None else row[0]
    if found == 1:
        raise ValueError(
            f"{file} was recorded by an older trio-trade (schema 1); recording into it once "
            f"(trio-trade run NAME --db {file}) upgrades it to schema {SCHEMA_VERSION}"
        )
    if found != SCHEMA_VERSION:
        raise ValueError(
            f"{file} has schema version {found}; this trio-trade reads version {SCHEMA_VERSION}"
        )
