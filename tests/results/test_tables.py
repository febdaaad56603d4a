"""DataFrames and the figure, and the clear errors without the notebook extra."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest

from tests.results.helpers import D, curve, fill
from trading.core.orders import Order, OrderType, Side
from trading.results import (
    drawdowns,
    equity_frame,
    fills_frame,
    orders_frame,
    plot_equity,
    positions_frame,
    trades_frame,
)

pd = pytest.importorskip("pandas")


def test_fills_frame_is_in_time_order_with_utc_times() -> None:
    fills = [fill("sell", "1", "110", 120, fee="0.1"), fill("buy", "1", "100", 60)]
    frame = fills_frame(fills)
    assert list(frame["side"]) == ["buy", "sell"]
    assert isinstance(frame["time"].dtype, pd.DatetimeTZDtype) and str(frame["time"].dt.tz) == "UTC"
    assert frame["time"].iloc[0] == pd.Timestamp("1970-01-01T00:01:00Z")
    assert list(frame["notional"]) == [100.0, 110.0]
    assert frame["price"].dtype == "float64"
    exact = fills_frame(fills, exact=True)
    assert exact["fee"].iloc[1] == D("0.1") and isinstance(exact["fee"].iloc[1], Decimal)


def test_every_table_has_its_columns_when_empty() -> None:
    assert list(fills_frame([]).columns)[:3] == ["time", "symbol", "side"]
    assert len(orders_frame([])) == 0 and "state" in orders_frame([]).columns
    assert "net_pnl" in positions_frame([]).columns
    assert "pnl" in trades_frame([]).columns
    assert list(equity_frame([], D(1)).columns) == [
        "equity", "returns", "peak", "drawdown", "drawdown_amount",
    ]  # fmt: skip


def test_orders_frame() -> None:
    order = Order(
        client_order_id="abc-1",
        strategy="sma_cross",
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=D("0.5"),
        price=D("100.25"),
        created_at=1_735_689_600.0,
    )
    frame = orders_frame([order])
    row = frame.iloc[0]
    assert (row["strategy"], row["side"], row["type"], row["state"]) == (
        "sma_cross", "buy", "limit", "new",
    )  # fmt: skip
    assert row["price"] == 100.25 and row["created_at"] == pd.Timestamp("2025-01-01", tz="UTC")


def test_positions_frame_marks_and_pnl() -> None:
    fills = [
        fill("buy", "2", "100", 1, fee="0.2"),
        fill("sell", "1", "110", 2, fee="0.11"),
        fill("buy", "10", "5", 3, symbol="ETHUSDT"),
    ]
    frame = positions_frame(fills, {"BTCUSDT": D(120)}, exact=True).set_index("symbol")
    btc = frame.loc["BTCUSDT"]
    assert (btc["quantity"], btc["average_price"], btc["realised_pnl"]) == (D(1), D(100), D(10))
    assert (btc["unrealised_pnl"], btc["fees"], btc["net_pnl"]) == (D(20), D("0.31"), D("29.69"))
    assert frame.loc["ETHUSDT"]["mark_price"] is None


def test_positions_frame_takes_positions_as_they_are() -> None:
    from trading.core.positions import Position

    held = Position("BTCUSDT", quantity=D(2), cost_basis=D(200), realised_pnl=D(5), fees=D(1))
    frame = positions_frame({"BTCUSDT": held}, {"BTCUSDT": D(110)}, exact=True)
    row = frame.iloc[0]
    assert (row["average_price"], row["unrealised_pnl"], row["net_pnl"]) == (D(100), D(20), D(24))
    assert positions_frame([held]).iloc[0]["quantity"] == 2.0


def test_trades_frame_lists_round_trips() -> None:
    fills = [fill("buy", "1", "100", 60), fill("sell", "1", "90", 120), fill("buy", "1", "1", 180)]
    frame = trades_frame(fills)
    assert list(frame["pnl"]) == [-10.0, 0.0]
    assert frame["closed_at"].isna().tolist() == [False, True]


def test_equity_frame_matches_the_statistics() -> None:
    equity = curve("110", "99", "121", "60.5")
    frame = equity_frame(equity, D(100))
    assert frame.index[0] == pd.Timestamp("1970-01-02", tz="UTC")
    assert list(frame["drawdown"]) == drawdowns(equity, D(100))
    assert list(frame["peak"]) == [110.0, 110.0, 121.0, 121.0]
    assert list(frame["drawdown_amount"]) == [0.0, -11.0, 0.0, -60.5]
    assert frame["returns"].tolist() == pytest.approx([0.1, -0.1, 2 / 9, -0.5])


def test_plot_equity_returns_a_figure_with_equity_and_drawdown() -> None:
    pytest.importorskip("matplotlib")
    equity = curve("110", "99", "121", "60.5")
    figure = plot_equity(equity, D(100), title="sma_cross")
    top, bottom = figure.axes
    assert list(top.lines[0].get_ydata()) == [110.0, 99.0, 121.0, 60.5]
    assert list(bottom.lines[0].get_ydata()) == pytest.approx([0.0, -10.0, 0.0, -50.0])
    assert figure.get_suptitle() == "sma_cross"
    figure.savefig(__import__("io").BytesIO(), format="png")  # renders headless (Agg)


@pytest.mark.parametrize("module", ["pandas", "matplotlib"])
def test_without_the_notebook_extra_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, module, None)
    call = (lambda: fills_frame([])) if module == "pandas" else (lambda: plot_equity([], D(1)))
    with pytest.raises(ImportError, match=r"pip install 'trio-trade\[notebook\]'"):
        call()


def test_the_statistics_need_no_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    from trading.results import summarise

    assert summarise(curve("2"), D(1), [fill("buy", "1", "1", 1)]).total_return == 1.0


def test_the_figure_is_made_without_pyplot() -> None:
    pytest.importorskip("matplotlib")
    code = (
        "import sys\n"
        "from decimal import Decimal as D\n"
        "from trading.results import plot_equity\n"
        "plot_equity([(60.0, D(2)), (120.0, D(1))], D(1))\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_bars_frame_from_a_loaded_series() -> None:
    from trading.data import load_bars, sample_path
    from trading.results import bars_frame

    series = load_bars(sample_path())
    frame = bars_frame(series)
    assert len(frame) == 8_640 and list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.index[0] == pd.Timestamp("2025-01-01", tz="UTC")
    assert frame["close"].iloc[-1] == series.bars[-1].close
    assert list(bars_frame([]).columns) == ["open", "high", "low", "close", "volume"]
