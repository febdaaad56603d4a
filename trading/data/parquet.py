"""Parquet bar files, read with pyarrow when it is installed.

The rules this module keeps:

* The columns are those of a plain OHLCV CSV (``time``/``timestamp``/``open_time``/``date``,
  ``open``, ``high``, ``low``, ``close``, ``volume``; any case). A timestamp or date column
  keeps its own unit; an integer one is judged by magnitude like a CSV's; strings are read as
  a CSV's text would be. Rows are then checked exactly like a CSV's, and an error's "line" is
  the 1-based row.
* Float prices are taken by their shortest text (``repr``), the value the writer meant.
* Without pyarrow, reading one raises ImportError naming ``pip install pyarrow``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from trading.data.readers import PRICE_NAMES, TIME_NAMES, RawBars, parse_text_rows
from trading.data.series import BarFileError

__all__ = ["read_parquet"]

_TIMESTAMP_SCALE = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


class _Rows:
    """Rows of text with csv.reader's ``line_num``, so the CSV row parser reads them unchanged."""

    def __init__(self, columns: list[list[str]]) -> None:
        self._rows = zip(*columns, strict=True)
        self.line_num = 0

    def __iter__(self) -> _Rows:
        return self

    def __next__(self) -> list[str]:
        row = list(next(self._rows))
        self.line_num += 1
        return row


def read_parquet(path: Path, display: str) -> RawBars:
    """All rows of a Parquet file as columns; blocking IO."""
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]
    except ImportError as error:
        raise ImportError(
            f"{display} is a Parquet file; reading it needs pyarrow: pip install pyarrow"
        ) from error
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises its own ArrowInvalid, OSError, ...
        raise BarFileError(display, f"not a readable Parquet file: {error}") from error
    by_name = {str(name).strip().lower(): str(name) for name in table.column_names}
    time_name = next((by_name[n] for n in TIME_NAMES if n in by_name), None)
    missing = [n for n in PRICE_NAMES if n not in by_name]
    if time_name is None:
        missing.insert(0, "time (or timestamp, open_time, date)")
    if missing:
        raise BarFileError(
            display,
            f"missing column(s) {', '.join(missing)}; it has {', '.join(table.column_names[:12])}",
        )
    if table.num_rows == 0:
        raise BarFileError(display, "the file has no rows")
    times = _time_texts(table.column(time_name), display)
    prices = [_texts(table.column(by_name[n]).to_pylist()) for n in PRICE_NAMES]
    rows = _Rows([times, *prices])
    return parse_text_rows(rows, display, path.name, (0, 1, 2, 3, 4, 5))


def _time_texts(column: Any, display: str) -> list[str]:
    """Timestamps as epoch text: timestamp columns in µs (their own unit, exactly), dates in
    seconds, anything else as its text."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    kind = column.type
    if pa.types.is_timestamp(kind):
        scale = _TIMESTAMP_SCALE[kind.unit]
        values = column.cast(pa.int64()).to_pylist()
        return [_microseconds(v, scale) for v in values]
    if pa.types.is_date(kind):
        days = column.cast(pa.date32()).cast(pa.int32()).to_pylist()
        return ["" if d is None else str(d * 86_400) for d in days]
    return _texts(column.to_pylist())


def _microseconds(value: int | None, scale: int) -> str:
    if value is None:
        return ""
    if scale > 1_000_000:
        whole, rest = divmod(value, scale // 1_000_000)
        return str(whole) if rest == 0 else f"{whole}.{rest}"  # not whole: the parser says so
    return str(value * (1_000_000 // scale))


def _texts(values: list[Any]) -> list[str]:
    out: list[str] = []
    for value in values:
        if value is None:
            out.append("")
        elif isinstance(value, float):
            out.append(repr(value))
        elif isinstance(value, Decimal):
            out.append(str(value))
        else:
            out.append(str(value))
    return out
