"""Bad rows are named; the two repairs are made only when asked, and reported."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.data.helpers import PLAIN_HEADER, T2024, binance_rows, csv_text, plain_rows, write
from trading.data import BarFileError, load_bars
from trading.data.checks import MAX_FILL


def _plain(tmp_path: Path, rows: list[list[str]], name: str = "BTCUSDT-1m-x.csv") -> Path:
    return write(tmp_path / name, csv_text(rows, PLAIN_HEADER))


ROW = ["1704067200", "100", "110", "90", "105", "3"]


@pytest.mark.parametrize(
    ("prices", "problem"),
    [
        (["100", "90", "110", "100", "1"], "high 90.0 is below low 110.0"),
        (
            ["111", "110", "90", "100", "1"],
            r"open 111.0 is outside the bar's range \[90.0, 110.0\]",
        ),
        (["100", "110", "90", "89.99", "1"], "close 89.99 is outside"),
        (["100", "110", "0", "100", "1"], "low 0.0 is not a positive price"),
        (["100", "110", "90", "100", "-1"], "volume -1.0 is negative"),
        (["nan", "110", "90", "100", "1"], "open nan is not a finite number"),
        (["100", "inf", "90", "100", "1"], "high inf is not a finite number"),
        (["100", "110", "90", "1O0", "1"], "close '1O0' is not a number"),
        (["100", "110", "90", "100", ""], "volume '' is not a number"),
    ],
)
def test_a_bad_price_row_is_named(tmp_path: Path, prices: list[str], problem: str) -> None:
    rows = [ROW, ["1704067260", *ROW[1:]], ["1704067320", *prices]]
    with pytest.raises(BarFileError, match=f"BTCUSDT-1m-x.csv line 4: {problem}") as error:
        load_bars(_plain(tmp_path, rows))
    assert error.value.line == 4


def test_a_price_finer_than_a_float_carries_is_refused(tmp_path: Path) -> None:
    rows = [ROW, ["1704067260", "100.000000000000001", "110", "90", "105", "3"]]
    with pytest.raises(BarFileError, match=r"line 3: open .* more significant digits"):
        load_bars(_plain(tmp_path, rows))
    # Long text that is exact (trailing zeros, leading zeros) is fine.
    rows[1][1] = "0000100.000000000000000"
    assert load_bars(_plain(tmp_path, rows)).bars[1].open == 100.0


def test_unsorted_duplicate_off_grid_and_gap_are_named(tmp_path: Path) -> None:
    t = [str(T2024 + 60 * i) for i in range(6)]
    cases = {
        "time .* is before line 4's .* rows must be sorted": [t[0], t[1], t[2], t[1]],
        "time .* repeats line 4 .it differs": [t[0], t[1], t[2], t[2]],
        "time .* is not on the 1m grid": [t[0], t[1], t[2], str(T2024 + 150)],
        r"gap: 2 1m bar\(s\) missing between line 4 .* pass repair=True": [t[0], t[1], t[2], t[5]],
    }
    for problem, times in cases.items():
        rows = [[time, *ROW[1:]] for time in times]
        rows[3][4] = "106"  # the last row differs from the one before
        with pytest.raises(BarFileError, match=f"line 5: {problem}"):
            load_bars(_plain(tmp_path, rows))


def test_the_first_row_off_the_grid_is_named(tmp_path: Path) -> None:
    with pytest.raises(BarFileError, match=r"line 2: time 2024-01-01T00:00:30Z is not on the 1m"):
        load_bars(_plain(tmp_path, [["1704067230", *ROW[1:]], ["1704067290", *ROW[1:]]]))


def test_repair_drops_identical_duplicates_and_fills_gaps(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = binance_rows(10)
    kept = [*rows[:3], rows[2], rows[2], *rows[3:5], *rows[8:]]  # two duplicates, 3 missing
    path = write(tmp_path / "BTCUSDT-1m-x.csv", csv_text(kept))
    with pytest.raises(BarFileError, match=r"line 4: .* repeats line 3 .pass repair=True"):
        load_bars(path)
    with caplog.at_level(logging.INFO, logger="trading.data"):
        series = load_bars(path, repair=True)
    assert [bar.open_time for bar in series] == [T2024 + 60 * i for i in range(10)]
    whole = load_bars(write(tmp_path / "BTCUSDT-1m-all.csv", csv_text(rows)))
    for i in (5, 6, 7):
        bar, previous = series.bars[i], whole.bars[4]
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (previous.close,) * 4 + (0,)
    assert [b for i, b in enumerate(series) if i not in (5, 6, 7)] == [
        b for i, b in enumerate(whole) if i not in (5, 6, 7)
    ]
    assert series.repairs == (
        "dropped line 4: an identical duplicate of line 3",
        "dropped line 5: an identical duplicate of line 4",
        "filled 3 missing bar(s) 2024-01-01T00:05:00Z .. 2024-01-01T00:07:00Z "
        f"(between lines 7 and 8) with flat bars at {whole.bars[4].close!r}",
    )
    logged = [r.getMessage() for r in caplog.records]
    assert all(any(note in line for line in logged) for note in series.repairs)
    assert any("3 repair(s) made" in line for line in logged)


def test_repair_does_not_guess(tmp_path: Path) -> None:
    rows = binance_rows(6)
    different = [*rows[:3], [*rows[2][:5], "1.000", *rows[2][6:]], *rows[3:]]
    with pytest.raises(BarFileError, match=r"line 4: .* repeats line 3 .it differs"):
        load_bars(write(tmp_path / "BTCUSDT-1m-a.csv", csv_text(different)), repair=True)
    unsorted = [rows[0], rows[2], rows[1], *rows[3:]]
    with pytest.raises(BarFileError, match=r"line 3: .* must be sorted"):
        load_bars(write(tmp_path / "BTCUSDT-1m-b.csv", csv_text(unsorted)), repair=True)


def test_repair_refuses_a_gap_too_long_to_be_an_outage(tmp_path: Path) -> None:
    far = T2024 + 60 * (MAX_FILL + 2)
    rows = [ROW, [str(far), *ROW[1:]]]
    with pytest.raises(BarFileError, match=f"line 3: gap: {MAX_FILL + 1} .* too long to fill"):
        load_bars(_plain(tmp_path, rows), repair=True)


def test_a_clean_file_reports_no_repairs(tmp_path: Path) -> None:
    path = write(tmp_path / "BTCUSDT-1m-x.csv", csv_text(binance_rows(10)))
    assert load_bars(path, repair=True).repairs == ()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "the file is empty"),
        (b"\n\n", "the file has no rows"),
        (b"time,open,high,low,close,volume\n", "has a header but no rows"),
        (
            b"time,open,high,low,close,volume\n1704067200,1,\xff,1,1,1\n",
            "line 2: high '.udcff' is not",
        ),
    ],
)
def test_empty_and_unreadable_files(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "BTCUSDT-1m-x.csv"
    path.write_bytes(content)
    with pytest.raises(BarFileError, match=problem):
        load_bars(path)


def test_a_missing_file_is_a_bar_file_error(tmp_path: Path) -> None:
    with pytest.raises(BarFileError, match=r"cannot be read"):
        load_bars(tmp_path / "nope.csv")


def test_a_huge_field_is_answered_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-1m-x.csv"
    path.write_text("time,open,high,low,close,volume\n" + '"' + "9" * 300_000 + '",1,1,1,1,1\n')
    with pytest.raises(BarFileError, match=r"line 2: is not readable CSV") as error:
        load_bars(path)
    assert len(str(error.value)) < 300


def test_an_offending_value_is_quoted_short(tmp_path: Path) -> None:
    rows = [ROW, ["1704067260", "x" * 5000, *ROW[2:]]]
    with pytest.raises(BarFileError) as error:
        load_bars(_plain(tmp_path, rows))
    assert len(str(error.value)) < 200 and "..." in str(error.value)


def test_blank_lines_are_skipped_and_line_numbers_stay_true(tmp_path: Path) -> None:
    text = "time,open,high,low,close,volume\n\n1704067200,1,1,1,1,1\n\n\n1704067260,1,2,1,1,1\n"
    series = load_bars(write(tmp_path / "XUSDT-1m.csv", text))
    assert len(series) == 2
    text = text.replace("1704067260,1,2,1,1,1", "1704067260,1,0.5,1,1,1")
    with pytest.raises(BarFileError, match=r"line 6: high 0.5 is below low 1.0"):
        load_bars(write(tmp_path / "XUSDT-1m.csv", text))


def test_plain_rows_with_too_few_columns_are_named(tmp_path: Path) -> None:
    rows = [*plain_rows(binance_rows(3))]
    rows[1] = rows[1][:4]
    with pytest.raises(BarFileError, match=r"line 3: has 4 columns; the header's time and prices"):
        load_bars(_plain(tmp_path, rows))


def test_the_garbage_collector_is_left_as_it_was(tmp_path: Path) -> None:
    import gc

    good = write(tmp_path / "BTCUSDT-1m-x.csv", csv_text(binance_rows(5)))
    bad = write(tmp_path / "BTCUSDT-1m-y.csv", "garbage\n")
    assert gc.isenabled()
    load_bars(good)
    assert gc.isenabled()
    with pytest.raises(BarFileError):
        load_bars(bad)
    assert gc.isenabled()
    gc.disable()
    try:
        load_bars(good)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_repair_fills_at_most_as_many_bars_as_rows_plus_max_fill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trading.data.checks as checks

    monkeypatch.setattr(checks, "MAX_FILL", 10)
    # Five rows, each 9 bars after the last: 8 to fill per gap; the second gap passes 5 + 10.
    rows = [[str(T2024 + 540 * i), *ROW[1:]] for i in range(5)]
    with pytest.raises(BarFileError, match=r"line 4: gap: 8 .* would outnumber its rows"):
        load_bars(_plain(tmp_path, rows), repair=True)
    assert len(load_bars(_plain(tmp_path, rows[:2]), repair=True)) == 10


@given(
    count=st.integers(3, 40),
    drops=st.sets(st.integers(1, 38), max_size=10),
    dups=st.sets(st.integers(0, 39), max_size=5),
)
def test_repair_restores_every_time_and_reports_each_change(
    count: int, drops: set[int], dups: set[int]
) -> None:
    rows = binance_rows(count)
    dropped = {i for i in drops if i < count - 1}
    kept: list[list[str]] = []
    for i, row in enumerate(rows):
        if i in dropped:
            continue
        kept.append(row)
        if i in dups:
            kept.append(list(row))
    with tempfile.TemporaryDirectory() as directory:
        whole = load_bars(write(Path(directory) / "BTCUSDT-1m-a.csv", csv_text(rows)))
        series = load_bars(write(Path(directory) / "BTCUSDT-1m-b.csv", csv_text(kept)), repair=True)
    assert [b.open_time for b in series] == [b.open_time for b in whole]
    for i, (got, want) in enumerate(zip(series, whole, strict=True)):
        if i in dropped:
            before = series.bars[i - 1]
            assert (got.open, got.high, got.low, got.close, got.volume) == (before.close,) * 4 + (
                0.0,
            )
        else:
            assert got == want
    gaps = sum(1 for i in dropped if i - 1 not in dropped)
    drops_reported = [r for r in series.repairs if r.startswith("dropped")]
    fills_reported = [r for r in series.repairs if r.startswith("filled")]
    assert len(drops_reported) == len({i for i in dups if i < count and i not in dropped})
    assert len(fills_reported) == gaps
