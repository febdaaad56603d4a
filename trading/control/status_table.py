"""The status table: one row per strategy, the same everywhere an operator looks.

``trio-trade ctl status``, Telegram's ``/status`` and the live terminal view all show these rows,
so they never disagree about what runs. A row is plain data (:class:`StatusRow`), read from the
runner without awaiting anything: building the table interrupts no strategy. :func:`render_text`
lays it out in fixed-width columns (for a terminal, a pipe, or a Telegram ``<pre>`` block);
the terminal view renders the same rows with Rich.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs

from trading.runtime.runner import Runner

__all__ = ["COLUMNS", "StatusRow", "render_text", "row_json", "status_rows"]

COLUMNS = ("strategy", "state", "next wake", "position", "pnl", "last error")
ERROR_WIDTH = 60  # characters of the last error a table shows; the full text is in the audit


@attrs.frozen
class StatusRow:
    strategy: str
    state: str
    next_wake: float | None  # strategy-clock seconds (epoch for wall clocks), None when idle
    position: str  # "BTCUSDT 0.01" per symbol held, "flat" when nothing is held
    pnl: Decimal | None  # realised + unrealised - fees; None before the engine knows it
    last_error: str | None


def status_rows(runner: Runner) -> list[StatusRow]:
    """One row per strategy, in the order they were added."""
    engine = runner.engine
    rows = []
    for status in runner.status():
        name = status["name"]
        position, pnl = "flat", None
        if engine is not None and engine.has_account(name):
            account = engine.account(name)
            held = [
                f"{symbol} {p.quantity.normalize():f}"
                for symbol, p in sorted(account.book.positions.items())
                if p.quantity
            ]
            position = ", ".join(held) or "flat"
            pnl = account.pnl()
        rows.append(
            StatusRow(
                strategy=name,
                state=status["state"],
                next_wake=status["next_close"],
                position=position,
                pnl=pnl,
                last_error=status["last_error"],
            )
        )
    return rows


def format_time(when: float | None) -> str:
    """``HH:MM:SS`` UTC for an epoch time, ``-`` for none."""
    if when is None:
        return "-"
    return dt.datetime.fromtimestamp(when, dt.UTC).strftime("%H:%M:%S")


def format_pnl(pnl: Decimal | None) -> str:
    return "-" if pnl is None else f"{pnl:+.2f}"


def cells(row: StatusRow) -> tuple[str, ...]:
    """The row as the text of each of :data:`COLUMNS`."""
    error = row.last_error or "-"
    error = error.splitlines()[-1] if error.strip() else "-"
    if len(error) > ERROR_WIDTH:
        error = error[: ERROR_WIDTH - 1] + "…"
    return (
        row.strategy,
        row.state,
        format_time(row.next_wake),
        row.position,
        format_pnl(row.pnl),
        error,
    )


def render_text(rows: Sequence[StatusRow]) -> str:
    """A fixed-width table with a header line; "no strategies" when there are none."""
    if not rows:
        return "no strategies"
    table = [COLUMNS, *(cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    )


def row_json(row: StatusRow) -> dict[str, Any]:
    """The row for JSON (``ctl status --json``): numbers stay numbers, the PnL a string."""
    return {
        "strategy": row.strategy,
        "state": row.state,
        "next_wake": row.next_wake,
        "position": row.position,
        "pnl": None if row.pnl is None else str(row.pnl),
        "last_error": row.last_error,
    }
