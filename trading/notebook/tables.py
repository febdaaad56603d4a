"""A run's state as tables: the status table, orders, fills and positions.

The rules this module keeps:

* :func:`snapshot` reads plain data only and awaits nothing, so called where no trio task runs
  at the same moment (inside the trio run, or between guest ticks on the host thread) it is
  one consistent picture; it returns copies, never live objects of the run.
* Rows become a pandas DataFrame when pandas is importable (``pip install -e '.[notebook]'``)
  and stay a list of dicts otherwise: the runner never needs pandas.
* The status table is the one every operator view shows
  (:func:`trading.control.status_table.status_rows`): a notebook does not disagree with
  ``trio-trade ctl status``.
"""

from __future__ import annotations

import html
import importlib
from collections.abc import Sequence
from typing import Any

import attrs

from trading.control.status_table import COLUMNS, cells, render_text, status_rows
from trading.notebook.journal import FILL_COLUMNS, ORDER_COLUMNS, Journal
from trading.runtime.runner import Runner

__all__ = [
    "POSITION_COLUMNS",
    "STATUS_COLUMNS",
    "RunView",
    "Snapshot",
    "html_table",
    "snapshot",
    "table",
]

STATUS_COLUMNS = ("strategy", "state", "next_wake", "position", "pnl", "last_error")
POSITION_COLUMNS = (
    "strategy",
    "symbol",
    "quantity",
    "average_price",
    "realised_pnl",
    "fees",
)

TIME_COLUMNS = frozenset({"time", "next_wake"})


@attrs.frozen(slots=True)
class Snapshot:
    """One consistent picture of a run, as plain rows."""

    status: tuple[dict[str, Any], ...]
    orders: tuple[dict[str, Any], ...]
    fills: tuple[dict[str, Any], ...]
    positions: tuple[dict[str, Any], ...]
    text: str  # the status table as `trio-trade ctl status` prints it
    cells: tuple[tuple[str, ...], ...]  # the status table's cells, for HTML


def snapshot(runner: Runner, journal: Journal) -> Snapshot:
    """Read the run's state now; see the module docstring for where this is safe."""
    rows = status_rows(runner)
    positions = []
    engine = runner.engine
    for name in runner.names():
        if engine is None or not engine.has_account(name):
            continue
        for symbol, position in sorted(engine.account(name).book.positions.items()):
            positions.append(
                {
                    "strategy": name,
                    "symbol": symbol,
                    "quantity": position.quantity,
                    "average_price": position.average_price,
                    "realised_pnl": position.realised_pnl,
                    "fees": position.fees,
                }
            )
    return Snapshot(
        status=tuple(attrs.asdict(row) for row in rows),
        orders=tuple(journal.orders()),
        fills=tuple(journal.fills()),
        positions=tuple(positions),
        text=render_text(rows),
        cells=tuple(cells(row) for row in rows),
    )


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Any:
    """A DataFrame with ``columns`` (in that order; times as UTC timestamps) when pandas is
    importable, else the rows as they are (times in epoch seconds)."""
    try:
        # Imported by name: pandas is optional and ships no type information.
        pd: Any = importlib.import_module("pandas")
    except ImportError:
        return [dict(row) for row in rows]
    frame = pd.DataFrame(list(rows), columns=list(columns))
    for column in TIME_COLUMNS.intersection(columns):  # epoch seconds -> UTC timestamps
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame


def html_table(cells_: Sequence[Sequence[str]], *, caption: str = "") -> str:
    """The status table as HTML (escaped), for ``_repr_html_``."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells_
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class RunView:
    """The tables of a run, for a handle that can take a :class:`Snapshot`."""

    names: tuple[str, ...]

    def snapshot(self) -> Snapshot:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        raise NotImplementedError

    def status(self) -> Any:
        """The status table (one row per strategy): a DataFrame, or a list of dicts."""
        return table(self.snapshot().status, STATUS_COLUMNS)

    def orders(self) -> Any:
        """Every order of the run (the last ``history`` of them), its latest state."""
        return table(self.snapshot().orders, ORDER_COLUMNS)

    def fills(self) -> Any:
        """Every fill of the run (the last ``history`` of them), oldest first."""
        return table(self.snapshot().fills, FILL_COLUMNS)

    def positions(self) -> Any:
        """Each strategy's position per symbol it traded, from its own fills."""
        return table(self.snapshot().positions, POSITION_COLUMNS)

    def _caption(self) -> str:
        state = "running" if self.running else "stopped"
        return f"{type(self).__name__} ({state}): {', '.join(self.names) or 'no strategies'}"

    def __repr__(self) -> str:
        try:
            text = self.snapshot().text
        except Exception as exc:  # a repr must not raise: say why there is no table
            text = f"(no status: {type(exc).__name__}: {exc})"
        return f"{self._caption()}\n{text}"

    def _repr_html_(self) -> str:
        try:
            return html_table(self.snapshot().cells, caption=self._caption())
        except Exception as exc:
            return f"<pre>{html.escape(repr(self))}</pre><!-- {type(exc).__name__} -->"
