"""Binance's public kline files: headerless, 12 columns, ms before 2025 and µs after, zipped."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest

from tests.data.helpers import T2024, binance_rows, csv_text, write, zipped
from trading.data import BarFileError, exact, load_bars, sample_path


def test_the_bundled_sample_loads_with_symbol_interval_and_unit_from_the_file() -> None:
    series = load_bars(sample_path())
    assert (series.symbol, series.interval.text, series.time_unit) == ("BTCUSDT", "1m", "us")
    assert len(series) == 8_640 and series.repairs == ()
    assert series.start == 1_735_689_600.0
    assert series.end == series.start + 8_640 * 60
    times = [bar.open_time for bar in series]
    assert times == [series.start + 60 * i for i in range(8_640)]


def test_prices_are_the_file_text_exactly(tmp_path: Path) -> None:
    rows = binance_rows(300)
    for row in rows[::7]:  # Binance writes 8 decimals; trailing zeros do not change a value
        row[1:5] = [f"{Decimal(x):.8f}" for x in row[1:5]]
    series = load_bars(write(tmp_path / "BTCUSDT-1m-2024-01.csv", csv_text(rows)))
    for bar, row in zip(series, rows, strict=True):
        got = [exact(bar.open), exact(bar.high), exact(bar.low), exact(bar.close)]
        assert got == [Decimal(x) for x in row[1:5]]


@pytest.mark.parametrize("unit", ["ms", "us"])
def test_milliseconds_and_microseconds_are_told_apart_per_file(
    tmp_path: Path, unit: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "ETHUSDT-1m-2024-01.csv", csv_text(binance_rows(50, unit=unit)))
    with caplog.at_level(logging.DEBUG, logger="trading.data"):
        series = load_bars(path)
    assert series.time_unit == unit
    assert series.start == T2024 and series.bars[1].open_time == T2024 + 60
    named = {"ms": "milliseconds", "us": "microseconds"}[unit]
    assert any(named in r.getMessage() for r in caplog.records)


def test_ms_and_us_files_of_the_same_bars_load_equal(tmp_path: Path) -> None:
    ms = load_bars(write(tmp_path / "BTCUSDT-1m-a.csv", csv_text(binance_rows(40, unit="ms"))))
    us = load_bars(write(tmp_path / "BTCUSDT-1m-b.csv", csv_text(binance_rows(40, unit="us"))))
    assert list(ms.bars) == list(us.bars)


def test_seconds_are_refused_in_binance_layout(tmp_path: Path) -> None:
    rows = binance_rows(3, unit="ms")
    for row in rows:
        row[0], row[6] = str(int(row[0]) // 1000), str(int(row[6]) // 1000)
    with pytest.raises(BarFileError, match=r"line 1: open time '1704067200' is in seconds"):
        load_bars(write(tmp_path / "BTCUSDT-1m-x.csv", csv_text(rows)))


def test_a_row_in_another_unit_is_named(tmp_path: Path) -> None:
    rows = binance_rows(10, unit="us")
    rows[6][0] = str(int(rows[6][0]) // 1000)
    with pytest.raises(BarFileError, match=r"line 7: time .* looks like milliseconds") as error:
        load_bars(write(tmp_path / "BTCUSDT-1m-x.csv", csv_text(rows)))
    assert error.value.line == 7


def test_a_zip_of_one_csv_loads_like_the_csv(tmp_path: Path) -> None:
    text = csv_text(binance_rows(30, unit="ms"))
    plain = load_bars(write(tmp_path / "BTCUSDT-1m-2024-01.csv", text))
    archive = zipped(tmp_path / "BTCUSDT-1m-2024-01.zip", "BTCUSDT-1m-2024-01.csv", text)
    assert list(load_bars(archive).bars) == list(plain.bars)
    # The symbol and interval come from the zip's name when the member's says nothing.
    renamed = zipped(tmp_path / "SOLUSDT-1m-2024-01.zip", "data.csv", text)
    assert load_bars(renamed).symbol == "SOLUSDT"


def test_format_is_read_from_the_content_not_the_name(tmp_path: Path) -> None:
    text = csv_text(binance_rows(5))
    archive = zipped(tmp_path / "BTCUSDT-1m-2024-01.csv", "BTCUSDT-1m-2024-01.csv", text)
    assert len(load_bars(archive)) == 5


def test_a_zip_with_two_files_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-1m-2024-01.zip"
    zipped(path, "a.csv", "x")
    import zipfile

    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("b.csv", "y")
    with pytest.raises(BarFileError, match=r"exactly one CSV file; it holds 'a.csv', 'b.csv'"):
        load_bars(path)


def test_a_broken_zip_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path / "BTCUSDT-1m-2024-01.zip", "PK\x03\x04 not really a zip")
    with pytest.raises(BarFileError, match=r"not a readable zip archive"):
        load_bars(path)


def test_the_interval_comes_from_the_close_times_when_the_name_has_none(tmp_path: Path) -> None:
    rows = binance_rows(4)
    for i, row in enumerate(rows):  # five-minute bars
        start = T2024 * 1_000_000 + i * 300_000_000
        row[0], row[6] = str(start), str(start + 300_000_000 - 1)
    series = load_bars(write(tmp_path / "klines.csv", csv_text(rows)), symbol="BTCUSDT")
    assert series.interval.text == "5m"


def test_close_times_that_disagree_with_the_interval_are_named(tmp_path: Path) -> None:
    rows = binance_rows(6)
    rows[3][6] = str(int(rows[3][6]) + 60_000_000)
    with pytest.raises(BarFileError, match=r"line 4: its close time says a bar of 120s, not 1m"):
        load_bars(write(tmp_path / "BTCUSDT-1m-x.csv", csv_text(rows)))
    # The name says 5m but the close times say 1m.
    with pytest.raises(BarFileError, match=r"line 1: its close time says a bar of 60s, not 5m"):
        load_bars(write(tmp_path / "BTCUSDT-5m-x.csv", csv_text(binance_rows(3))))


def test_monthly_files_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(BarFileError, match=r"says 1M bars"):
        load_bars(write(tmp_path / "BTCUSDT-1M-2024.csv", csv_text(binance_rows(3))))


def test_a_headerless_file_of_another_width_asks_for_a_header(tmp_path: Path) -> None:
    text = csv_text([row[:6] for row in binance_rows(3)])
    with pytest.raises(BarFileError, match=r"line 1: has no header and 6 columns.*needs a header"):
        load_bars(write(tmp_path / "BTCUSDT-1m-x.csv", text))


def test_a_short_row_is_named(tmp_path: Path) -> None:
    rows = binance_rows(5)
    rows[2] = rows[2][:11]
    with pytest.raises(BarFileError, match=r"line 3: has 11 columns; Binance's kline layout"):
        load_bars(write(tmp_path / "BTCUSDT-1m-x.csv", csv_text(rows)))


def test_a_corrupt_member_is_an_error_not_a_crash(tmp_path: Path) -> None:
    text = csv_text(binance_rows(2_000))
    path = zipped(tmp_path / "BTCUSDT-1m-2024-01.zip", "BTCUSDT-1m-2024-01.csv", text)
    data = path.read_bytes()
    early = 30 + len("BTCUSDT-1m-2024-01.csv") + 48  # inside the first deflate block
    path.write_bytes(data[:early] + b"\xff" * 4 + data[early + 4 :])
    with pytest.raises(BarFileError, match=r"zip:BTCUSDT-1m-2024-01.csv: cannot be extracted"):
        load_bars(path)
    # Damage further in may decompress to garbage first: then a row is named, still an answer.
    middle = len(data) // 2
    path.write_bytes(data[:middle] + bytes(64) + data[middle + 64 :])
    with pytest.raises(BarFileError, match=r"zip:BTCUSDT-1m-2024-01.csv( line \d+)?: "):
        load_bars(path)
