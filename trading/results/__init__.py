"""A run's results: summary statistics (plain Python), tables (pandas) and plots (matplotlib).

``summarise(equity, starting_equity, fills, interval=...)`` needs nothing beyond the runner;
the ``*_frame`` tables and ``plot_equity`` need the notebook extra
(``pip install 'trio-trade[notebook]'``) and import it only when called.
"""

from trading.results.plot import plot_equity
from trading.results.stats import (
    EquityPoint,
    Summary,
    drawdowns,
    max_drawdown,
    periods_per_year,
    returns,
    sharpe,
    sortino,
    summarise,
)
from trading.results.tables import (
    bars_frame,
    equity_frame,
    fills_frame,
    orders_frame,
    positions_frame,
    trades_frame,
)
from trading.results.trips import RoundTrip, round_trips

__all__ = [
    "EquityPoint",
    "RoundTrip",
    "Summary",
    "bars_frame",
    "drawdowns",
    "equity_frame",
    "fills_frame",
    "max_drawdown",
    "orders_frame",
    "periods_per_year",
    "plot_equity",
    "positions_frame",
    "returns",
    "round_trips",
    "sharpe",
    "sortino",
    "summarise",
    "trades_frame",
]
