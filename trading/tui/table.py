"""The status table as the terminal view draws it: the same rows and cells as ``ctl status``
(:mod:`trading.control.status_table`), laid out by Rich with colour for the state and the PnL.

The rules this module keeps:

* The cells are :func:`trading.control.status_table.cells` — one table everywhere; only the
  layout and colour are Rich's.
* Text from outside (strategy names, error messages, log lines) reaches the terminal as text,
  never as control sequences: :func:`printable` replaces control characters, and cells are Rich
  ``Text`` objects, so ``[bold]`` in an error message is shown, not interpreted as markup.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from trading.control.status_table import COLUMNS, StatusRow, cells

__all__ = ["printable", "render_rows"]

STATE_STYLES = {
    "computing": "green",
    "sleeping": "green",
    "starting": "cyan",
    "paused": "yellow",
    "stopping": "yellow",
    "restarting": "yellow",
    "failed": "bold red",
    "stopped": "dim",
}
# C0 controls (but tab) and DEL, and C1 controls: each would move the cursor, clear the screen
# or start an escape sequence in a terminal.
_CONTROLS = {c: "?" for c in [*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0)]}


def printable(text: str) -> str:
    """``text`` with every control character but tab shown as ``?``."""
    return text.translate(_CONTROLS)


def render_rows(rows: Sequence[StatusRow], width: int, *, dropped: int = 0) -> str:
    """The table, ``width`` columns wide at most, as text with ANSI colour sequences (and a
    line saying how many log lines the view dropped, when it did)."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False)
    for column in COLUMNS:
        table.add_column(column, overflow="ellipsis", no_wrap=column != "last error")
    for row in rows:
        text = [Text(printable(cell)) for cell in cells(row)]
        text[1].stylize(STATE_STYLES.get(row.state, ""))
        if row.pnl is not None and row.pnl:
            text[4].stylize("green" if row.pnl > 0 else "red")
        if row.last_error:
            text[5].stylize("red")
        table.add_row(*text)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=max(width, 20),
        force_terminal=True,
        color_system="standard",
        legacy_windows=False,
        highlight=False,
        emoji=False,
    )
    if rows:
        console.print(table)
    else:
        console.print(Text("no strategies", style="dim"))
    if dropped:
        console.print(Text(f"{dropped} log lines dropped: the view was not keeping up", "yellow"))
    return buffer.getvalue().rstrip("\n")
