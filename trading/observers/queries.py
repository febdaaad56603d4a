"""Read-side helpers for the CLI: orders, fills and positions from a Recorder's database.

Every reader opens the file read-only (``mode=ro``), so pointing ``trio-trade orders`` at a live
run's database can neither write to it nor create an empty file by mistake; under WAL a reader
never blocks the recorder. Decimal columns come back as :class:`~decimal.Decimal`, exactly as
recorded. Blocking: call from a thread (``trio.to_thread.run_sync``) inside trio code.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = [
    "FILL_COLUMNS",
    "ORDER_COLUMNS",
    "POSITION_COLUMNS",
    "format_table",
    "read_fills",
    "read_orders",
    "read_positions",
]

ORDER_COLUMNS = (
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
    """Every order (latest state), oldest first; only ``strategy``'s if given."""
    where, params = _strategy_filter(strategy)
    return _query(
        path,
        f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders{where} ORDER BY created_at, seq",
        params,
    )


def read_fills(
    path: str | os.PathLike[str], strategy: str | None = None, symbol: str | None = None
) -> list[dict[str, Any]]:
    """Every fill, in the order they were recorded."""
    clauses, params = [], []
    if strategy is not None:
        clauses.append("strategy = ?")
        params.append(strategy)
    if symbol is not None:
        clauses.append("symbol = ?")
        params.append(symbol)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return _query(
        path, f"SELECT {', '.join(FILL_COLUMNS)} FROM fills{where} ORDER BY seq", tuple(params)
    )


def read_positions(
    path: str | os.PathLike[str], strategy: str | None = None, latest: bool = True
) -> list[dict[str, Any]]:
    """Position snapshots; with ``latest`` only the last one per strategy and symbol."""
    where, params = _strategy_filter(strategy)
    columns = ", ".join(POSITION_COLUMNS)
    if latest:
        sql = (
            f"SELECT {columns} FROM positions WHERE seq IN "
            f"(SELECT MAX(seq) FROM positions{where} GROUP BY strategy, symbol) "
            "ORDER BY strategy, symbol"
        )
    else:
        sql = f"SELECT {columns} FROM positions{where} ORDER BY seq"
    return _query(path, sql, params)


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
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"no trading database at {file}: run with recording on (the Recorder creates it)"
        )
    try:
        conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise OSError(f"cannot open the trading database at {file}: {exc}") from exc
    try:
        cursor = conn.execute(sql, params)
        names = [description[0] for description in cursor.description]
        return [
            {
                name: Decimal(value) if name in _DECIMAL_COLUMNS and value is not None else value
                for name, value in zip(names, row, strict=True)
            }
            for row in cursor
        ]
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{file} is not a readable trio-trade database: {exc}") from exc
    finally:
        conn.close()
