"""Parquet files (pyarrow), and the clear error without it."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

from tests.data.helpers import T2024, binance_rows, csv_text, write
from trading.data import BarFileError, load_bars

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _columns(count: int) -> dict[str, list[object]]:
    rows = binance_rows(count)
    return {
        "open": [float(r[1]) for r in rows],
        "high": [float(r[2]) for r in rows],
        "low": [float(r[3]) for r in rows],
        "close": [float(r[4]) for r in rows],
        "volume": [float(r[5]) for r in rows],
    }


def _reference(tmp_path: Path, count: int) -> list[object]:
    path = write(tmp_path / "BTCUSDT-1m-ref.csv", csv_text(binance_rows(count)))
    return list(load_bars(path).bars)


@pytest.mark.parametrize("kind", ["int-ms", "int-s", "timestamp-ms", "timestamp-ns", "iso-text"])
def test_parquet_time_columns_of_every_kind(tmp_path: Path, kind: str) -> None:
    columns: dict[str, object] = dict(_columns(12))
    seconds = [T2024 + 60 * i for i in range(12)]
    if kind == "int-ms":
        columns["open_time"] = [s * 1000 for s in seconds]
    elif kind == "int-s":
        columns["Time"] = seconds
    elif kind.startswith("timestamp"):
        unit = kind.split("-")[1]
        moments = [dt.datetime.fromtimestamp(s, dt.UTC) for s in seconds]
        columns["timestamp"] = pa.array(moments, type=pa.timestamp(unit, tz="UTC"))
    else:
        columns["date"] = [dt.datetime.fromtimestamp(s, dt.UTC).isoformat() for s in seconds]
    path = tmp_path / "BTCUSDT-1m-2024-01.parquet"
    pq.write_table(pa.table(columns), path)
    assert list(load_bars(path).bars) == _reference(tmp_path, 12)


def test_parquet_errors_name_the_row(tmp_path: Path) -> None:
    columns: dict[str, object] = dict(_columns(6))
    columns["time"] = [T2024 + 60 * i for i in (0, 1, 2, 4, 5, 6)]
    path = tmp_path / "BTCUSDT-1m-2024-01.parquet"
    pq.write_table(pa.table(columns), path)
    with pytest.raises(BarFileError, match=r"parquet line 4: gap: 1 1m bar"):
        load_bars(path)
    assert len(load_bars(path, repair=True)) == 7


def test_parquet_missing_columns_and_empty_tables(tmp_path: Path) -> None:
    columns: dict[str, object] = dict(_columns(3))
    del columns["volume"]
    columns["time"] = [T2024, T2024 + 60, T2024 + 120]
    path = tmp_path / "BTCUSDT-1m-a.parquet"
    pq.write_table(pa.table(columns), path)
    with pytest.raises(BarFileError, match=r"missing column.s. volume"):
        load_bars(path)
    empty = pa.table({n: pa.array([], pa.float64()) for n in ("time", *_columns(1))})
    pq.write_table(empty, tmp_path / "BTCUSDT-1m-b.parquet")
    with pytest.raises(BarFileError, match=r"has no rows"):
        load_bars(tmp_path / "BTCUSDT-1m-b.parquet")


def test_a_truncated_parquet_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "BTCUSDT-1m-c.parquet", "PAR1 and nothing else")
    with pytest.raises(BarFileError, match=r"not a readable Parquet file"):
        load_bars(path)


def test_without_pyarrow_the_error_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    columns: dict[str, object] = dict(_columns(2))
    columns["time"] = [T2024, T2024 + 60]
    path = tmp_path / "BTCUSDT-1m-2024-01.parquet"
    pq.write_table(pa.table(columns), path)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"needs pyarrow: pip install pyarrow"):
        load_bars(path)
