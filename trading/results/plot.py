"""The equity and drawdown figure, with matplotlib.

The rules this module keeps:

* matplotlib is imported inside the function (without it: an ImportError naming
  ``pip install 'trio-trade[notebook]'``), and the figure is a ``matplotlib.figure.Figure``
  made without pyplot: no global figure list to leak from a loop of replays, no GUI backend
  chosen, safe off the main thread. In Jupyter, a cell that returns it shows it once
  ``%matplotlib inline`` is on (or pyplot has been imported).
* Pure: the curve in, a new figure out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from trading.results.stats import EquityPoint, drawdowns
from trading.results.tables import NOTEBOOK_EXTRA

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_equity"]


def plot_equity(
    equity: Sequence[EquityPoint],
    starting_equity: Decimal,
    *,
    title: str | None = None,
    label: str = "equity",
) -> Figure:
    """Equity on top, drawdown (percent, shaded) below, sharing the time axis."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(f"plots need matplotlib: {NOTEBOOK_EXTRA}") from error
    times = [dt.datetime.fromtimestamp(time, dt.UTC) for time, _ in equity]
    values = [float(value) for _, value in equity]
    depth = [100.0 * d for d in drawdowns(equity, starting_equity)]
    figure = Figure(figsize=(10, 6), layout="constrained")
    top, bottom = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}, squeeze=True
    )
    top.plot(times, values, linewidth=1.0, label=label)
    top.axhline(float(starting_equity), color="grey", linewidth=0.6, linestyle="--")
    top.set_ylabel("equity")
    top.legend(loc="upper left")
    top.grid(True, alpha=0.3)
    bottom.fill_between(times, depth, 0.0, color="tab:red", alpha=0.35, linewidth=0)
    bottom.plot(times, depth, color="tab:red", linewidth=0.8)
    bottom.set_ylabel("drawdown %")
    bottom.set_ylim(min([*depth, -1.0]) * 1.05, 0.5)
    bottom.grid(True, alpha=0.3)
    if title:
        figure.suptitle(title)
    return figure
