"""The sample generator and the bundled file it made."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import pytest

from trading.data import exact, load_bars, sample_path, write_sample
from trading.data.sample import SAMPLE_NAME, sample_csv, sample_rows


def test_the_generator_reproduces_the_bundled_file_byte_for_byte() -> None:
    bundled = sample_path()
    assert bundled.name == SAMPLE_NAME
    assert sample_csv().encode("ascii") == bundled.read_bytes()
    assert bundled.stat().st_size < 1_000_000


def test_the_same_seed_gives_the_same_bars_and_another_seed_others(tmp_path: Path) -> None:
    a = write_sample(tmp_path / "BTCUSDT-1m-a.csv", 500, seed=1)
    b = write_sample(tmp_path / "BTCUSDT-1m-b.csv", 500, seed=1)
    c = write_sample(tmp_path / "BTCUSDT-1m-c.csv", 500, seed=2)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_sample_prices_are_on_the_cent_grid_and_look_like_btc() -> None:
    series = load_bars(sample_path())
    for bar in series.bars[::97]:
        for price in (bar.open, bar.high, bar.low, bar.close):
            assert exact(price) == exact(price).quantize(Decimal("0.01"))
            assert 50_000 < price < 150_000
    bars = series.bars
    moves = [abs(b.close - a.close) / a.close for a, b in itertools.pairwise(bars)]
    assert 0.0001 < sum(moves) / len(moves) < 0.001  # a quiet-market minute, as BTC's


def test_rows_follow_binance_layout() -> None:
    row = next(sample_rows(1, start=1_735_689_600))
    assert len(row) == 12 and row[0] == "1735689600000000" and row[6] == "1735689659999999"


def test_start_must_be_on_a_minute() -> None:
    with pytest.raises(ValueError, match=r"not on a minute"):
        next(sample_rows(1, start=1_735_689_601))
