"""``load_bars``: one call from a bar file to a checked :class:`BarSeries`.

The rules this module keeps:

* The symbol and interval are, in order of precedence: the arguments; Binance's file name
  (``BTCUSDT-1m-2024-01.csv``, also the CSV inside a zip, then the zip's own name); and for
  the interval only, the file itself (Binance's close-time column, else the most common step
  between rows). A symbol that cannot be told is an error asking for ``symbol=``.
* What the file was (format, time unit, inferred interval) is logged at debug level; what was
  repaired at info level, one line per repair.
"""

from __future__ import annotations

import collections
import gc
import itertools
import logging
import re
from pathlib import Path
from typing import Final

from trading.core.bars import Interval, IntervalError
from trading.data.checks import build_series
from trading.data.readers import RawBars, read_bar_file
from trading.data.series import BarFileError, BarSeries

__all__ = ["interval_text", "load_bars", "name_parts"]

logger = logging.getLogger(__name__)

_NAME_RE: Final = re.compile(r"^([A-Z0-9]{2,30})-(\d+[smhdwM])(?:[-_.]|$)")
_UNIT_TEXT: Final = ((604_800, "w"), (86_400, "d"), (3_600, "h"), (60, "m"), (1, "s"))


def name_parts(name: str) -> tuple[str | None, str | None]:
    """(symbol, interval text) from a Binance-style file name, each None when absent."""
    match = _NAME_RE.match(Path(name).name)
    if match is None:
        return None, None
    return match.group(1), match.group(2)


def load_bars(
    path: str | Path,
    *,
    symbol: str | None = None,
    interval: str | Interval | None = None,
    repair: bool = False,
) -> BarSeries:
    """Read a Binance kline CSV (or its zip), a plain OHLCV CSV with a header, or a Parquet
    file, and check it (sorted, no duplicates, on the grid, no gaps; see ``trading.data``).

    ``repair=True`` drops identical duplicate rows and fills gaps with flat bars, each listed
    in the result's ``repairs``. Raises :class:`BarFileError` naming the file and the line;
    ``ImportError`` for Parquet without pyarrow; ``IntervalError`` for a bad ``interval``.

    Blocking file IO and CPU (about 2 s for 500,000 rows): from async code run it in a thread,
    ``await trio.to_thread.run_sync(load_bars, path)``. It cannot be stopped part way; with
    ``abandon_on_cancel=True`` a cancelled caller moves on and the thread finishes the read.
    """
    was_enabled = gc.isenabled()
    # Half a million rows allocate millions of objects, none of them cyclic garbage: the
    # collector's passes over them cost a third of the load time, for nothing.
    gc.disable()
    try:
        return _load(path, symbol, interval, repair)
    finally:
        if was_enabled:
            gc.enable()


def _load(
    path: str | Path, symbol: str | None, interval: str | Interval | None, repair: bool
) -> BarSeries:
    raw = read_bar_file(path)
    display = raw.display
    named_symbol, named_interval = name_parts(raw.name)
    if named_symbol is None and raw.name != Path(path).name:
        named_symbol, named_interval = name_parts(Path(path).name)
    chosen_symbol = symbol or named_symbol
    if not chosen_symbol:
        raise BarFileError(
            display,
            "cannot tell the symbol: pass symbol=... or name the file like BTCUSDT-1m-2024-01.csv",
        )
    chosen = _interval(raw, interval, named_interval)
    logger.debug(
        "%s: %s %s, %d rows, times in %s", display, chosen_symbol, chosen, len(raw.times), raw.unit
    )
    return build_series(raw, chosen_symbol, chosen, repair=repair)


def _interval(raw: RawBars, given: str | Interval | None, named: str | None) -> Interval:
    display = raw.display
    if given is not None:
        return Interval.parse(given)
    if named is not None:
        try:
            return Interval.parse(named)
        except IntervalError:
            raise BarFileError(
                display,
                f"the file name says {named} bars; trio-trade bars are s, m, h, d or w "
                "(months vary in length): pass interval=...",
            ) from None
    units = _close_time_step(raw) if raw.span is not None else _common_step(raw)
    if units % raw.scale:
        raise BarFileError(
            display, f"bars are {units} {raw.unit} apart, not a whole number of seconds"
        )
    seconds = units // raw.scale
    interval = Interval.parse(interval_text(seconds))
    logger.debug("%s: interval %s read from the data", display, interval)
    return interval


def _common_step(raw: RawBars) -> int:
    """The most common positive step between rows: one bad row cannot change it."""
    times = raw.times
    steps = collections.Counter(b - a for a, b in itertools.pairwise(times) if b > a)
    if not steps:
        raise BarFileError(
            raw.display, "cannot tell the bar interval from a single row: pass interval=..."
        )
    return steps.most_common(1)[0][0]


def _close_time_step(raw: RawBars) -> int:
    """The bar length most rows' close times say (the first row's unless most disagree)."""
    assert raw.span is not None
    if len(raw.odd_spans) * 2 <= len(raw.times):
        return raw.span
    return collections.Counter(span for _, span in raw.odd_spans).most_common(1)[0][0]


def interval_text(seconds: int) -> str:
    """The shortest spelling of a whole number of seconds: ``3600`` -> ``1h``."""
    for size, unit in _UNIT_TEXT:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: every whole number of seconds has a unit")
