"""The README's results example (kept in step with it by hand until the README has it)."""

from __future__ import annotations

from decimal import Decimal

from trading.data import exact, load_bars, sample_path
from trading.results import summarise


def test_buy_and_hold_over_the_bundled_sample() -> None:
    bars = load_bars(sample_path())  # BTCUSDT, 1m, 8,640 bars from 2025-01-01
    start = Decimal("100000")
    first = exact(bars.bars[0].open)
    equity = [(b.close_time, start + exact(b.close) - first) for b in bars]  # 1 BTC held
    summary = summarise(equity, start, interval=bars.interval)
    assert summary.bars == 8_640 and summary.interval == "1m"
    assert summary.end_equity == start + exact(bars.bars[-1].close) - first
    assert -1 < summary.max_drawdown < 0 and summary.sharpe is not None
    assert "max drawdown" in str(summary)
