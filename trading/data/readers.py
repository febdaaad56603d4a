"""Bar files to columns: format detection and per-row parsing, nothing about order or gaps.

The rules this module keeps:

* The format is read from the content, not the name: ``PK`` opens a zip (one CSV inside),
  ``PAR1`` a Parquet file, anything else is CSV text; a CSV whose first row starts with a whole
  number is Binance's headerless kline layout (exactly 12 columns), otherwise its first row is
  a header naming ``time``/``timestamp``/``open_time``/``date``, ``open``, ``high``, ``low``,
  ``close``, ``volume`` (any case; other columns are ignored).
* Epoch timestamps are whole numbers; the first row decides the file's unit by magnitude
  (seconds < 1e11 <= milliseconds < 1e14 <= microseconds < 1e17) and every row must agree.
  Binance's layout refuses seconds; its spot files are in ms before 2025 and in µs after.
* Every error names the row (the file's 1-based line; for Parquet the 1-based row) and the
  value, via :class:`~trading.data.series.BarFileError`. Parsing is linear in the file, one pass;
  values are taken from the text as written (see :func:`~trading.data.series.exact`).
* Text is UTF-8; bytes that are not stay in their field (surrogate escapes), so the row that
  holds them is the one named, as "not a number" or "not a timestamp". Numbers are read as
  Python's ``float`` and ``int`` read them. Blank lines are skipped. Nothing is checked here
  that needs two rows: that is ``trading.data.checks``.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Final

import attrs

from trading.data.fields import (
    LIMIT,
    PRICE_NAMES,
    SHORT,
    TIME_NAMES,
    UNIT_NAMES,
    band,
    check_texts,
    epoch,
    epoch_unit,
    explain,
    iso_to_us,
    looks_like_epoch,
)
from trading.data.series import BarFileError, quote

__all__ = ["PRICE_NAMES", "TIME_NAMES", "RawBars", "parse_text_rows", "read_bar_file"]

logger = logging.getLogger(__name__)

_USED_NAMES: Final = frozenset(TIME_NAMES + PRICE_NAMES)
_BINANCE_COLUMNS: Final = 12


@attrs.define
class RawBars:
    """The file's rows as parallel columns, times in the file's own unit (``scale`` per second).

    ``span`` is the bar length in that unit when the file says it (Binance's close-time column,
    first row), else None; ``odd_spans`` lists the rows whose close time says another length,
    as (line, length): which side is wrong is decided once the interval is known. ``name`` is
    the file name the symbol and interval may be read from.
    """

    display: str
    name: str
    unit: str
    scale: int
    lines: list[int] = attrs.Factory(list)
    times: list[int] = attrs.Factory(list)
    opens: list[float] = attrs.Factory(list)
    highs: list[float] = attrs.Factory(list)
    lows: list[float] = attrs.Factory(list)
    closes: list[float] = attrs.Factory(list)
    volumes: list[float] = attrs.Factory(list)
    span: int | None = None
    odd_spans: list[tuple[int, int]] = attrs.Factory(list)


def read_bar_file(path: str | Path) -> RawBars:
    """Read any supported bar file into columns; every problem is a BarFileError naming it."""
    path = Path(path)
    display = str(path)
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as error:
        raise BarFileError(display, f"cannot be read: {error.strerror or error}") from error
    if not magic:
        raise BarFileError(display, "the file is empty")
    if magic == b"PAR1":
        from trading.data.parquet import read_parquet

        return read_parquet(path, display)
    if magic.startswith(b"PK"):
        return _read_zip(path, display)
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as text:
        return _read_csv(text, display, path.name)


def _read_zip(path: Path, display: str) -> RawBars:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise BarFileError(display, f"not a readable zip archive: {error}") from error
    with archive:
        members = [
            info
            for info in archive.infolist()
            if not info.is_dir()
            and not Path(info.filename).name.startswith(".")
            and not info.filename.startswith("__MACOSX/")
        ]
        if len(members) != 1:
            names = ", ".join(quote(m.filename) for m in members[:5]) or "nothing"
            raise BarFileError(
                display, f"a bar archive must hold exactly one CSV file; it holds {names}"
            )
        member = members[0]
        inner = f"{display}:{member.filename}"
        try:
            with archive.open(member) as raw:
                text = io.TextIOWrapper(
                    raw, encoding="utf-8-sig", errors="surrogateescape", newline=""
                )
                return _read_csv(text, inner, Path(member.filename).name)
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            RuntimeError,
            NotImplementedError,
            OSError,
        ) as error:  # corrupt, truncated, encrypted or an unknown compression
            raise BarFileError(inner, f"cannot be extracted: {error}") from error


# ---------------------------------------------------------------------------------- CSV


def _read_csv(text: IO[str], display: str, name: str) -> RawBars:
    reader = csv.reader(text)
    try:
        return _parse_csv(reader, display, name)
    except csv.Error as error:
        raise BarFileError(display, f"is not readable CSV: {error}", reader.line_num) from error


def _first_row(rows: Iterator[list[str]]) -> list[str] | None:
    for row in rows:
        if row:
            return row
    return None


def _parse_csv(reader: Any, display: str, name: str) -> RawBars:
    first = _first_row(reader)
    if first is None:
        raise BarFileError(display, "the file has no rows")
    if first[0].strip().isdigit():
        if len(first) != _BINANCE_COLUMNS:
            raise BarFileError(
                display,
                f"has no header and {len(first)} columns: a headerless file must be Binance's "
                "kline layout (12 columns: open time, open, high, low, close, volume, close "
                "time, ...); a plain OHLCV CSV needs a header row such as "
                "time,open,high,low,close,volume",
                reader.line_num,
            )
        return _parse_rows(reader, display, name, (0, 1, 2, 3, 4, 5), first, binance=True)
    columns = _header_columns(first, display, reader.line_num)
    first_data = _first_row(reader)
    if first_data is None:
        raise BarFileError(display, "the file has a header but no rows")
    return _parse_rows(reader, display, name, columns, first_data, binance=False)


def parse_text_rows(rows: Any, display: str, name: str, columns: tuple[int, ...]) -> RawBars:
    """Rows of text (an iterator with csv.reader's ``line_num``) whose columns are known."""
    first = _first_row(rows)
    if first is None:
        raise BarFileError(display, "the file has no rows")
    return _parse_rows(rows, display, name, columns, first, binance=False)


def _header_columns(header: list[str], display: str, line: int) -> tuple[int, ...]:
    names = [cell.strip().lower() for cell in header]
    found: dict[str, int] = {}
    for index, cell in enumerate(names):
        if cell in found and cell in _USED_NAMES:
            raise BarFileError(display, f"the header names column {quote(cell)} twice", line)
        found.setdefault(cell, index)
    time_index = next((found[n] for n in TIME_NAMES if n in found), None)
    missing = [n for n in PRICE_NAMES if n not in found]
    if time_index is None:
        missing.insert(0, "time (or timestamp, open_time, date)")
    if missing:
        shown = ", ".join(quote(n) for n in names[:12])
        raise BarFileError(
            display, f"missing column(s) {', '.join(missing)}; the header has {shown}", line
        )
    assert time_index is not None
    return (time_index, *(found[n] for n in PRICE_NAMES))


def _parse_rows(
    reader: Any,
    display: str,
    name: str,
    columns: tuple[int, ...],
    first: list[str],
    *,
    binance: bool,
) -> RawBars:
    """The hot loop: one pass, fast path for well-formed rows, a slow path that names the fault."""
    ti, oi, hi, li, ci, vi = columns
    width = _BINANCE_COLUMNS if binance else max(columns) + 1
    time_text = first[ti].strip() if len(first) > ti else ""
    parse_time: Callable[[str], int]
    if looks_like_epoch(time_text):
        parse_time = int
        value = epoch(time_text, display, reader.line_num)
        unit, scale = epoch_unit(value)
        if binance and unit == "s":
            raise BarFileError(
                display,
                f"open time {quote(time_text)} is in seconds: Binance's kline files are in "
                "milliseconds (before 2025) or microseconds (spot, from 2025)",
                reader.line_num,
            )
        low, high = band(unit)
    else:
        parse_time, unit, scale, low, high = iso_to_us, "iso", 1_000_000, -LIMIT, LIMIT
    logger.debug("%s: timestamps in %s", display, UNIT_NAMES.get(unit, "ISO 8601"))
    raw = RawBars(display=display, name=name, unit=unit, scale=scale)
    if binance:
        raw.span = _binance_span(first, display, reader.line_num)
    span = raw.span
    lines, times = raw.lines, raw.times
    opens, highs, lows, closes, volumes = raw.opens, raw.highs, raw.lows, raw.closes, raw.volumes
    for row in itertools.chain((first,), reader):
        if not row:
            continue
        line = reader.line_num
        try:
            if len(row) != width and (binance or len(row) < width):
                raise ValueError
            t = parse_time(row[ti])
            po, ph, pl, pc = row[oi], row[hi], row[li], row[ci]
            o, h, lo, c, v = float(po), float(ph), float(pl), float(pc), float(row[vi])
            if not low <= t < high:
                raise ValueError
            if binance and int(row[6]) - t + 1 != span:
                raise ValueError
            if len(po) > SHORT or len(ph) > SHORT or len(pl) > SHORT or len(pc) > SHORT:
                check_texts(row, columns[1:5], display, line)
        except (ValueError, IndexError, OverflowError):
            t, o, h, lo, c, v = explain(row, columns, width, parse_time, unit, raw, line,
                                         binance=binance)  # fmt: skip
        lines.append(line)
        times.append(t)
        opens.append(o)
        highs.append(h)
        lows.append(lo)
        closes.append(c)
        volumes.append(v)
    return raw


def _binance_span(first: list[str], display: str, line: int) -> int | None:
    """The bar length in the file's unit, from the first row's open and close times (Binance's
    close time is the last instant of the bar: open + length - 1)."""
    try:
        span = int(first[6]) - int(first[0]) + 1
    except ValueError:
        return None  # the row's own check names the bad field
    if span <= 0:
        raise BarFileError(
            display, f"close time {quote(first[6])} is not after open time {quote(first[0])}", line
        )
    return span
