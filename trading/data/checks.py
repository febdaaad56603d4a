"""Columns to a BarSeries: the checks that make a series replayable, and the two repairs.

The rules this module keeps:

* Each row: ``0 < low <= open, close <= high`` and ``0 <= volume``, all finite.
* Between rows: open times strictly increase by exactly one interval. A time that goes back is
  an unsorted file; the same time twice is a duplicate; a time off the interval's grid (Unix
  epoch aligned, as ``Interval`` is) is an error; a step of several intervals is a gap.
* Without ``repair`` every one of these is a :class:`BarFileError` naming the row. With
  ``repair``, exactly two things are mended and each is reported (``BarSeries.repairs`` and a
  log line): a duplicate row identical to the one before it is dropped, and a gap is filled
  with flat bars (open = high = low = close = the previous close, volume 0). A duplicate that
  differs, an unsorted or off-grid time, and a gap longer than :data:`MAX_FILL` bars are errors
  still: guessing there would be silent garbage. Filling is bounded in all too: at most as many
  bars as the file has rows, plus :data:`MAX_FILL`, so no file can make the loader exhaust
  memory.
* The first row that breaks a rule is the one reported, so a file with one bad row is blamed on
  that row.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Final

from trading.core.bars import Bar, Interval
from trading.data.readers import RawBars
from trading.data.series import BarFileError, BarSeries

__all__ = ["MAX_FILL", "build_series", "iso"]

logger = logging.getLogger(__name__)

#: The longest gap ``repair=True`` fills, in bars: a longer one is more likely a bad timestamp
#: than an exchange outage, and filling it could exhaust memory.
MAX_FILL: Final = 100_000
_INF: Final = math.inf


def iso(seconds: float) -> str:
    """An epoch time as ISO 8601 UTC, for messages."""
    text = dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()
    return text.replace("+00:00", "Z")


def build_series(
    raw: RawBars, symbol: str, interval: Interval, *, repair: bool = False
) -> BarSeries:
    """Check every row and build the bars; see the module rules for what is an error."""
    display, scale = raw.display, raw.scale
    step = interval.seconds * scale
    lines, times = raw.lines, raw.times
    opens, highs, lows, closes, volumes = raw.opens, raw.highs, raw.lows, raw.closes, raw.volumes
    _check_close_times(raw, step, interval)
    if times[0] % step:
        raise BarFileError(
            display, f"time {_when(times[0], scale)} is not on the {interval.text} grid", lines[0]
        )
    bars: list[Bar] = []
    append = bars.append
    repairs: list[str] = []
    previous = times[0] - step
    budget = len(times) + MAX_FILL  # flat bars repair may still add
    rows = zip(times, opens, highs, lows, closes, volumes, strict=True)
    for i, (t, o, h, lo, c, v) in enumerate(rows):
        if not (0 < lo <= o <= h and lo <= c <= h and 0 <= v < _INF and h < _INF):
            _bad_prices(display, lines[i], o, h, lo, c, v)
        if t - previous != step:
            filled = _step(raw, i, previous, step, interval, bars, repairs, budget, repair=repair)
            if filled < 0:
                continue
            budget -= filled
        append(Bar(symbol, interval, t / scale, o, h, lo, c, v))
        previous = t
    for note in repairs:
        logger.info("%s: %s", display, note)
    if repairs:
        logger.warning("%s: %d repair(s) made; see BarSeries.repairs", display, len(repairs))
    return BarSeries(
        symbol=symbol,
        interval=interval,
        bars=tuple(bars),
        repairs=tuple(repairs),
        source=display,
        time_unit=raw.unit,
    )


def _step(
    raw: RawBars,
    i: int,
    previous: int,
    step: int,
    interval: Interval,
    bars: list[Bar],
    repairs: list[str],
    budget: int,
    *,
    repair: bool,
) -> int:
    """A row that is not exactly one interval after the previous one: raise, or repair and say
    how many bars were filled before it (-1: the row is dropped)."""
    display, scale, line, t = raw.display, raw.scale, raw.lines[i], raw.times[i]
    before = raw.lines[i - 1]
    if t < previous:
        raise BarFileError(
            display,
            f"time {_when(t, scale)} is before line {before}'s {_when(previous, scale)}: "
            "rows must be sorted by time",
            line,
        )
    if t == previous:
        same = _row(raw, i) == _row(raw, i - 1)
        if not repair or not same:
            hint = (
                "it differs from that row, so it cannot be dropped"
                if not same
                else "pass repair=True to drop identical duplicates"
            )
            raise BarFileError(
                display, f"time {_when(t, scale)} repeats line {before} ({hint})", line
            )
        repairs.append(f"dropped line {line}: an identical duplicate of line {before}")
        return -1
    if t % step:
        raise BarFileError(
            display, f"time {_when(t, scale)} is not on the {interval.text} grid", line
        )
    missing = (t - previous) // step - 1
    if not repair or missing > min(MAX_FILL, budget):
        if not repair:
            hint = "pass repair=True to fill gaps with flat bars"
        elif missing > MAX_FILL:
            hint = f"more than {MAX_FILL} bars, too long to fill"
        else:
            hint = "the file's gaps, filled, would outnumber its rows: too many to fill"
        raise BarFileError(
            display,
            f"gap: {missing} {interval.text} bar(s) missing between line {before} "
            f"({_when(previous, scale)}) and this row ({_when(t, scale)}); {hint}",
            line,
        )
    last = bars[-1]
    price, symbol = last.close, last.symbol
    for k in range(1, missing + 1):
        open_time = (previous + k * step) / scale
        bars.append(Bar(symbol, interval, open_time, price, price, price, price, 0.0))
    first, end = _when(previous + step, scale), _when(t - step, scale)
    repairs.append(
        f"filled {missing} missing bar(s) {first} .. {end} (between lines {before} and {line}) "
        f"with flat bars at {price!r}"
    )
    return missing


def _check_close_times(raw: RawBars, step: int, interval: Interval) -> None:
    """Binance's close time is open + length - 1: the first row whose close time says another
    length than the interval is to blame."""
    if raw.span is None:
        return
    odd: tuple[int, int] | None = (raw.lines[0], raw.span)
    if raw.span == step:
        odd = next(((line, span) for line, span in raw.odd_spans if span != step), None)
    if odd is None:
        return
    line, span = odd
    raise BarFileError(
        raw.display,
        f"its close time says a bar of {_length(span, raw.scale)}, not {interval.text} "
        "(Binance's close time is the open time + the interval - 1)",
        line,
    )


def _row(raw: RawBars, i: int) -> tuple[float, ...]:
    return (raw.opens[i], raw.highs[i], raw.lows[i], raw.closes[i], raw.volumes[i])


def _when(units: int, scale: int) -> str:
    return iso(units / scale)


def _length(units: int, scale: int) -> str:
    seconds = units / scale
    return f"{seconds:g}s"


def _bad_prices(display: str, line: int, o: float, h: float, lo: float, c: float, v: float) -> None:
    for name, value in (("open", o), ("high", h), ("low", lo), ("close", c), ("volume", v)):
        if not math.isfinite(value):
            raise BarFileError(display, f"{name} {value!r} is not a finite number", line)
    for name, value in (("open", o), ("high", h), ("low", lo), ("close", c)):
        if value <= 0:
            raise BarFileError(display, f"{name} {value!r} is not a positive price", line)
    if v < 0:
        raise BarFileError(display, f"volume {v!r} is negative", line)
    if h < lo:
        raise BarFileError(display, f"high {h!r} is below low {lo!r}", line)
    for name, value in (("open", o), ("close", c)):
        if not lo <= value <= h:
            raise BarFileError(
                display, f"{name} {value!r} is outside the bar's range [{lo!r}, {h!r}]", line
            )
    raise AssertionError("unreachable: the row passed every check")
