"""Property: a valid file with one row corrupted anywhere, in any way, is blamed on that row."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.data.helpers import PLAIN_HEADER, binance_rows, csv_text, plain_rows
from trading.data import BarFileError, load_bars

LAYOUTS = ("binance-us", "binance-ms", "plain-s", "plain-ms", "plain-iso")
# Corruptions that need a row before the corrupted one (they are judged against it).
NEEDS_PREVIOUS = {"time_back", "time_repeat", "time_forward", "time_unit"}
KINDS = (
    "junk",
    "high_below_low",
    "open_above_high",
    "close_below_low",
    "negative_volume",
    "too_precise",
    "time_back",
    "time_repeat",
    "time_off_grid",
    "time_forward",
    "time_unit",
    "short_row",
    "close_time",
)
_NOT_CSV = ',"\r\n'


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


junk = st.text(st.characters(blacklist_characters=_NOT_CSV), max_size=12).filter(
    lambda s: not _is_number(s)
)


def _cents(text: str) -> Decimal:
    return Decimal(text)


@st.composite
def corrupted_files(draw: st.DrawFn) -> tuple[str, str, int, str]:
    """(file name, text, 1-based line of the bad row, what was done). Files not named like
    Binance's have their interval read from the data (the most common step): at least 6 rows,
    so that one bad row cannot outvote the others."""
    layout = draw(st.sampled_from(LAYOUTS))
    named = draw(st.booleans())
    count = draw(st.integers(3 if named else 6, 30))
    unit = layout.split("-")[1]
    source = binance_rows(count, unit="ms" if unit == "ms" else "us")
    binance = layout.startswith("binance")
    rows = source if binance else plain_rows(binance_rows(count), unit=unit)
    kinds = [k for k in KINDS if binance or k != "close_time"]
    if unit == "iso":
        kinds = [k for k in kinds if k != "time_unit"]
    kind = draw(st.sampled_from(kinds))
    first = 1 if kind in NEEDS_PREVIOUS else 0
    k = draw(st.integers(first, count - 1))
    row, before = rows[k], rows[k - 1]
    price = draw(st.sampled_from([1, 2, 3, 4]))
    step = {"us": 60_000_000, "ms": 60_000, "s": 60, "iso": 60}[unit]
    low, high = _cents(row[3]), _cents(row[2])
    if kind == "junk":
        row[draw(st.sampled_from([0, 1, 2, 3, 4, 5]))] = draw(junk)
    elif kind == "high_below_low":
        row[2] = str(low - Decimal("0.01"))
    elif kind == "open_above_high":
        row[1] = str(high + Decimal("0.01"))
    elif kind == "close_below_low":
        row[4] = str(low - Decimal(draw(st.sampled_from(["0.01", "1", "5000"]))))
    elif kind == "negative_volume":
        row[5] = "-" + row[5]
    elif kind == "too_precise":
        row[price] = row[price] + "0000000000000001"
    elif kind == "short_row":
        del row[draw(st.integers(0, len(row) - 1))]
    elif kind == "close_time":
        row[6] = str(int(row[6]) + draw(st.sampled_from([-1, 1, step, -step])))
    elif kind == "time_unit":
        row[0] = str(int(row[0]) // 1000) if unit in ("us", "ms") else str(int(row[0]) * 1000)
    else:
        if unit == "iso":
            import datetime as dt

            now = dt.datetime.fromisoformat(row[0])
            ago = dt.datetime.fromisoformat(before[0])
        else:
            now, ago = int(row[0]), int(before[0])  # type: ignore[assignment]
        shift = {
            "time_back": lambda: ago - (now - ago) * draw(st.integers(1, 40)),
            "time_repeat": lambda: ago,
            "time_off_grid": lambda: now + _offset(draw, unit),
            "time_forward": lambda: now + (now - ago) * draw(st.integers(1, 40)),
        }[kind]()
        if unit == "iso":
            row[0] = shift.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            row[0] = str(shift)
            if binance:  # keep the close time consistent: the time itself is what is wrong
                row[6] = str(int(shift) + step - 1)
    header = None if binance else PLAIN_HEADER
    name = "BTCUSDT-1m-2024-01.csv" if named else "prices.csv"
    return name, csv_text(rows, header), k + 1 + (not binance), kind


def _offset(draw: st.DrawFn, unit: str) -> Any:
    import datetime as dt

    seconds = draw(st.integers(1, 59))
    if unit == "iso":
        return dt.timedelta(seconds=seconds)
    scale = {"us": 1_000_000, "ms": 1_000, "s": 1}[unit]
    return draw(st.sampled_from([seconds * scale, 1]))


@given(corrupted_files())
def test_one_corrupted_row_is_the_row_named(case: tuple[str, str, int, str]) -> None:
    name, text, line, kind = case
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_text(text)
        try:
            load_bars(path, symbol="BTCUSDT")
        except BarFileError as error:
            assert error.line == line, (kind, str(error))
            assert f"line {line}:" in str(error)
        else:
            raise AssertionError(f"{kind} at line {line} was accepted")
