"""One field of a bar row: epoch and ISO times, prices, and the slow path that names a fault.

The rules this module keeps:

* An epoch timestamp is a whole number in [0, 1e17); its magnitude says its unit (seconds
  < 1e11 <= milliseconds < 1e14 <= microseconds), and a row in another unit than the file's
  first is an error naming both units.
* A price is what Python's ``float`` reads, finite, with at most 15 significant digits (checked
  exactly only for texts longer than 15 characters: a shorter one cannot hold more), so
  ``trading.data.series.exact`` recovers it.
* :func:`explain` is only called for a row the fast path in ``trading.data.readers`` refused:
  it parses field by field, accepts what the fast path was merely too strict about
  (``1704067200.0``), and otherwise raises a BarFileError naming the row and the field.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Final

from trading.data.series import BarFileError, quote

if TYPE_CHECKING:
    from trading.data.readers import RawBars

__all__ = [
    "LIMIT",
    "PRICE_NAMES",
    "SHORT",
    "TIME_NAMES",
    "UNIT_NAMES",
    "band",
    "epoch",
    "epoch_unit",
    "explain",
    "iso_to_us",
    "looks_like_epoch",
]

TIME_NAMES: Final = ("time", "timestamp", "open_time", "date", "datetime")
PRICE_NAMES: Final = ("open", "high", "low", "close", "volume")
# The magnitude bands of epoch timestamps: (unit, units per second, lower bound).
_UNITS: Final = (("us", 1_000_000, 10**14), ("ms", 1_000, 10**11), ("s", 1, 0))
UNIT_NAMES: Final = {"s": "seconds", "ms": "milliseconds", "us": "microseconds"}
LIMIT: Final = 10**17
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND: Final = dt.timedelta(microseconds=1)
# A float carries 15 significant decimal digits round trip; a price text no longer than this
# cannot hold more, so only longer ones pay for the exact check.
SHORT: Final = 15


def epoch_unit(value: int) -> tuple[str, int]:
    """The unit an epoch timestamp is in, judged by its magnitude: (name, units per second)."""
    for unit, scale, lower in _UNITS:
        if value >= lower:
            return unit, scale
    raise AssertionError("unreachable: negative times are refused before")


def iso_to_us(text: str) -> int:
    """An ISO 8601 date or time as epoch microseconds; without a zone it is UTC."""
    moment = dt.datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - _EPOCH) // _MICROSECOND


def looks_like_epoch(text: str) -> bool:
    """Digits (one sign, one dot allowed): the file's times are epoch numbers, not ISO text."""
    body = text[1:] if text[:1] in "+-" else text
    return body.replace(".", "", 1).isdigit()


def band(unit: str) -> tuple[int, int]:
    """The [low, high) range of epoch values in ``unit``, for the fast path's check."""
    bounds = {"s": (0, 10**11), "ms": (10**11, 10**14), "us": (10**14, LIMIT)}
    return bounds[unit]


def epoch(text: str, display: str, line: int) -> int:
    """A whole-number epoch timestamp in [0, 1e17) (``1704067200.0`` counts as whole)."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or number != number.to_integral_value():
        raise BarFileError(display, f"time {quote(text)} is not a whole-number timestamp", line)
    if number < 0:
        raise BarFileError(display, f"time {quote(text)} is before 1970", line)
    if number >= LIMIT:
        raise BarFileError(display, f"time {quote(text)} is out of range (after 1e17)", line)
    return int(number)


def _number(text: str, what: str, display: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BarFileError(display, f"{what} {quote(text)} is not a number", line) from None
    if not math.isfinite(value):
        raise BarFileError(display, f"{what} {quote(text)} is not a finite number", line)
    return value


def check_texts(row: Sequence[str], indices: Sequence[int], display: str, line: int) -> None:
    """Open, high, low and close are numbers a float carries exactly (see the module rules)."""
    for what, index in zip(PRICE_NAMES[:4], indices, strict=True):
        text = row[index]
        value = _number(text, what, display, line)
        if len(text.strip()) > SHORT:
            try:
                same = Decimal(text.strip()) == Decimal(repr(value))
            except InvalidOperation:
                same = False
            if not same:
                raise BarFileError(
                    display,
                    f"{what} {quote(text)} has more significant digits than can be kept "
                    "exactly (at most 15)",
                    line,
                )


def explain(
    row: list[str],
    columns: tuple[int, ...],
    width: int,
    parse_time: Callable[[str], int],
    unit: str,
    raw: RawBars,
    line: int,
    *,
    binance: bool,
) -> tuple[int, float, float, float, float, float]:
    """The slow path: parse one row field by field, accept what the fast path was too strict
    about (``1704067200.0``), and otherwise raise an error naming the field."""
    display = raw.display
    if binance and len(row) != width:
        raise BarFileError(
            display, f"has {len(row)} columns; Binance's kline layout has {width}", line
        )
    if len(row) < width:
        raise BarFileError(
            display, f"has {len(row)} columns; the header's time and prices need {width}", line
        )
    ti = columns[0]
    if unit == "iso":
        try:
            t = parse_time(row[ti])
        except (ValueError, OverflowError) as error:
            raise BarFileError(
                display, f"time {quote(row[ti])} is not an ISO 8601 date or time", line
            ) from error
    else:
        t = epoch(row[ti].strip(), display, line)
        found, _ = epoch_unit(t)
        if found != unit:
            raise BarFileError(
                display,
                f"time {quote(row[ti])} looks like {UNIT_NAMES[found]} but the file's "
                f"first row is in {UNIT_NAMES[unit]}",
                line,
            )
    o, h, lo, c, v = (_number(row[i], n, display, line) for n, i in zip(PRICE_NAMES, columns[1:],
                                                                        strict=True))  # fmt: skip
    check_texts(row, columns[1:5], display, line)
    if binance:
        close_text = row[6]
        try:
            close_time = int(close_text)
        except ValueError:
            raise BarFileError(
                display, f"close time {quote(close_text)} is not a whole number", line
            ) from None
        if close_time - t + 1 != raw.span:
            raw.odd_spans.append((line, close_time - t + 1))
    return t, o, h, lo, c, v
