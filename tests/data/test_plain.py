"""Plain OHLCV CSVs with a header: column names, time formats, and what is read from where."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.data.helpers import PLAIN_HEADER, T2024, binance_rows, csv_text, plain_rows, write
from trading.data import BarFileError, exact, load_bars


def _reference(tmp_path: Path) -> list[object]:
    path = write(tmp_path / "BTCUSDT-1m-ref.csv", csv_text(binance_rows(20)))
    return list(load_bars(path).bars)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "iso"])
def test_epoch_seconds_ms_us_and_iso_times_give_the_same_bars(tmp_path: Path, unit: str) -> None:
    text = csv_text(plain_rows(binance_rows(20), unit=unit), PLAIN_HEADER)
    series = load_bars(write(tmp_path / f"BTCUSDT-1m-{unit}.csv", text))
    assert list(series.bars) == _reference(tmp_path)
    assert series.time_unit == unit


@pytest.mark.parametrize(
    "header",
    [
        ["Timestamp", "Open", "High", "Low", "Close", "Volume"],
        ["open_time", "OPEN", "high", "low", "close", "volume"],
        ["Date", "open", "high", "low", "close", "volume"],
    ],
)
def test_column_names_are_case_insensitive_and_time_has_aliases(
    tmp_path: Path, header: list[str]
) -> None:
    text = csv_text(plain_rows(binance_rows(20)), header)
    assert list(load_bars(write(tmp_path / "BTCUSDT-1m-x.csv", text)).bars) == _reference(tmp_path)


def test_extra_columns_and_any_order_are_fine(tmp_path: Path) -> None:
    rows = plain_rows(binance_rows(20))
    shuffled = [[r[5], "x", r[4], r[0], r[3], r[2], r[1], "note"] for r in rows]
    header = ["volume", "symbol", "close", "time", "low", "high", "open", "comment"]
    series = load_bars(write(tmp_path / "BTCUSDT-1m-x.csv", csv_text(shuffled, header)))
    assert list(series.bars) == _reference(tmp_path)


def test_iso_times_with_offsets_and_without_zone_are_utc(tmp_path: Path) -> None:
    text = (
        "date,open,high,low,close,volume\n"
        "2024-01-01T01:00:00+01:00,1,2,0.5,1.5,10\n"
        "2024-01-01 00:01:00,1.5,2,1,1,3\n"
        "2024-01-01T00:02:00Z,1,1,1,1,0\n"
    )
    series = load_bars(write(tmp_path / "X.csv", text), symbol="XUSDT", interval="1m")
    assert [bar.open_time for bar in series] == [T2024, T2024 + 60, T2024 + 120]


def test_a_bad_iso_time_is_named(tmp_path: Path) -> None:
    text = "date,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,1,1,1,1\nlater,1,1,1,1,1\n"
    with pytest.raises(BarFileError, match=r"line 3: time 'later' is not an ISO 8601"):
        load_bars(write(tmp_path / "X.csv", text), symbol="X", interval="1m")


def test_whole_float_epochs_are_accepted_fractional_ones_are_not(tmp_path: Path) -> None:
    ok = "time,open,high,low,close,volume\n1704067200.0,1,1,1,1,1\n1704067260.0,1,1,1,1,1\n"
    assert len(load_bars(write(tmp_path / "X-1m.csv", ok), symbol="X")) == 2
    bad = "time,open,high,low,close,volume\n1704067200,1,1,1,1,1\n1704067260.5,1,1,1,1,1\n"
    with pytest.raises(BarFileError, match=r"line 3: time '1704067260.5' is not a whole-number"):
        load_bars(write(tmp_path / "Y.csv", bad), symbol="X", interval="1m")


def test_missing_columns_are_named_on_the_header_line(tmp_path: Path) -> None:
    text = "Time,Open,High,Close\n1704067200,1,1,1\n"
    with pytest.raises(BarFileError, match=r"line 1: missing column.s. low, volume") as error:
        load_bars(write(tmp_path / "BTCUSDT-1m-x.csv", text))
    assert "'time', 'open', 'high', 'close'" in str(error.value)
    with pytest.raises(BarFileError, match=r"missing column\(s\) time \(or timestamp"):
        load_bars(write(tmp_path / "BTCUSDT-1m-y.csv", "when,open,high,low,close,volume\n1,1"))


def test_a_header_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    text = "time,open,high,low,close,close,volume\n1704067200,1,1,1,1,1,1\n"
    with pytest.raises(BarFileError, match=r"line 1: the header names column 'close' twice"):
        load_bars(write(tmp_path / "BTCUSDT-1m-x.csv", text))


def test_the_symbol_must_be_known(tmp_path: Path) -> None:
    text = csv_text(plain_rows(binance_rows(3)), PLAIN_HEADER)
    with pytest.raises(BarFileError, match=r"cannot tell the symbol: pass symbol="):
        load_bars(write(tmp_path / "prices.csv", text), interval="1m")
    assert load_bars(tmp_path / "prices.csv", symbol="ETHUSDT", interval="1m").symbol == "ETHUSDT"


def test_arguments_win_over_the_file_name(tmp_path: Path) -> None:
    text = csv_text(plain_rows(binance_rows(3)), PLAIN_HEADER)
    series = load_bars(write(tmp_path / "BTCUSDT-1m-x.csv", text), symbol="ETHBTC")
    assert series.symbol == "ETHBTC" and all(bar.symbol == "ETHBTC" for bar in series)


def test_the_interval_is_the_most_common_step_so_one_bad_row_cannot_change_it(
    tmp_path: Path,
) -> None:
    rows = plain_rows(binance_rows(8))
    rows[4][0] = str(int(rows[3][0]) + 30)  # one row half a minute after the one before
    with pytest.raises(BarFileError, match=r"line 6: time .* is not on the 1m grid"):
        load_bars(write(tmp_path / "prices.csv", csv_text(rows, PLAIN_HEADER)), symbol="X")


def test_a_single_row_needs_an_interval(tmp_path: Path) -> None:
    text = csv_text(plain_rows(binance_rows(1)), PLAIN_HEADER)
    with pytest.raises(BarFileError, match=r"cannot tell the bar interval from a single row"):
        load_bars(write(tmp_path / "prices.csv", text), symbol="X")
    assert len(load_bars(tmp_path / "prices.csv", symbol="X", interval="1m")) == 1


def test_hourly_and_daily_intervals_are_inferred(tmp_path: Path) -> None:
    for seconds, text in ((3600, "1h"), (86_400, "1d"), (4 * 3600, "4h"), (604_800, "1w")):
        rows = [[str(T2024 - T2024 % seconds + i * seconds), "1", "1", "1", "1", "0"]
                for i in range(3)]  # fmt: skip
        series = load_bars(write(tmp_path / "p.csv", csv_text(rows, PLAIN_HEADER)), symbol="X")
        assert series.interval.text == text


def test_windows_line_ends_and_a_byte_order_mark_are_fine(tmp_path: Path) -> None:
    text = csv_text(plain_rows(binance_rows(20)), PLAIN_HEADER).replace("\n", "\r\n")
    path = tmp_path / "BTCUSDT-1m-x.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert list(load_bars(path).bars) == _reference(tmp_path)


prices = st.decimals(
    min_value=Decimal("0.00000001"), max_value=Decimal("9999999.99999999"), places=8
)


@given(st.lists(prices, min_size=1, max_size=20))
def test_every_price_of_up_to_15_digits_comes_back_exactly(values: list[Decimal]) -> None:
    rows = [[str(T2024 + 60 * i), *([str(v)] * 4), "1"] for i, v in enumerate(values)]
    with tempfile.TemporaryDirectory() as directory:
        path = write(Path(directory) / "BTCUSDT-1m-x.csv", csv_text(rows, PLAIN_HEADER))
        series = load_bars(path)
    assert [exact(bar.close) for bar in series] == values
    assert [exact(bar.open) for bar in series] == values


def test_unnamed_and_repeated_extra_columns_are_ignored(tmp_path: Path) -> None:
    rows = [[*r, "", "", "x", "y"] for r in plain_rows(binance_rows(20))]
    header = [*PLAIN_HEADER, "", "", "note", "note"]
    series = load_bars(write(tmp_path / "BTCUSDT-1m-x.csv", csv_text(rows, header)))
    assert list(series.bars) == _reference(tmp_path)
