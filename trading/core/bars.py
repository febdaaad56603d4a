"""Bars and bar-time arithmetic.

Core module: plain data and pure functions, no trio and no IO. Bar closes are aligned to the Unix
epoch (so daily bars close at 00:00 UTC, as on Binance); every schedule in trio-trade is derived
from :meth:`Interval.next_close`, so there is one place that decides when a strategy wakes.
"""

from __future__ import annotations

import math
import re

import attrs

__all__ = ["Bar", "Due", "Interval", "IntervalError", "next_due", "parse_duration"]

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_INTERVAL_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.ASCII)
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.ASCII)


class IntervalError(ValueError):
    """A bar interval or a duration that cannot be understood; the message says what is accepted."""


@attrs.frozen(slots=True)
class Interval:
    """A bar length such as ``15m``; ``text`` keeps the spelling users and exchanges know."""

    seconds: int
    text: str

    @classmethod
    def parse(cls, value: str | Interval) -> Interval:
        """Accept ``<n><unit>`` with unit s, m, h, d or w (``1s``, ``15m``, ``4h``, ``1d``)."""
        if isinstance(value, Interval):
            return value
        if not isinstance(value, str):
            raise IntervalError(
                f"interval must be a string like '15m', not {type(value).__name__} {value!r}"
            )
        match = _INTERVAL_RE.match(value)
        if match is None:
            raise IntervalError(
                f"bad interval {value!r}: expected a whole number and a unit s, m, h, d or w, "
                "e.g. '1s', '1m', '5m', '15m', '1h', '4h', '1d'"
            )
        count, unit = int(match.group(1)), match.group(2)
        if count <= 0:
            raise IntervalError(f"bad interval {value!r}: the length must be at least 1{unit}")
        return cls(seconds=count * _UNIT_SECONDS[unit], text=f"{count}{unit}")

    def next_close(self, now: float) -> float:
        """The first bar close strictly after ``now``.

        Strictly after, so that a strategy woken exactly on a close and finishing its compute in
        zero time sleeps a whole bar instead of computing twice for the same bar.
        """
        return (math.floor(now / self.seconds) + 1) * self.seconds

    def last_close(self, now: float) -> float:
        """The most recent bar close at or before ``now``: the close of the last complete bar."""
        return math.floor(now / self.seconds) * self.seconds

    def __str__(self) -> str:
        return self.text


@attrs.frozen(slots=True)
class Due:
    """The close a strategy computes next (at once if it already passed), and how many closes
    it passes over to get there."""

    close: float
    skipped: int = 0


def next_due(interval: Interval, due: float | None, now: float) -> Due:
    """The overlap policy (DESIGN rule 3: no bar is skipped silently), as one pure function.

    ``due`` is the close the schedule is heading for (None before the first: then the next
    close strictly after ``now``).

    * Still ahead: sleep until it.
    * Already passed — a compute, a custom command or a slow start ran past it, and maybe past
      more: compute the *latest* passed close once, at once, and report the ones before it as
      skipped. Catching up on every one would only make a slow strategy slower and trade on
      stale bars. A compute that ends exactly on the next close computes that close at once,
      so a 15-minute compute on 15-minute bars does not halve the schedule.
    """
    if due is None:
        return Due(interval.next_close(now))
    if due > now:
        return Due(due)
    latest = interval.last_close(now)
    return Due(latest, skipped=round((latest - due) / interval.seconds))


def parse_duration(value: str) -> float:
    """Seconds in a human duration: ``30s``, ``1.5m``, ``2h``, ``250ms`` or a bare number."""
    match = _DURATION_RE.match(value)
    if match is None:
        raise IntervalError(
            f"bad duration {value!r}: expected a number and an optional unit ms, s, m, h, d or w, "
            "e.g. '30s', '5m', '1.5h'"
        )
    number, unit = float(match.group(1)), match.group(2) or "s"
    seconds = number / 1000 if unit == "ms" else number * _UNIT_SECONDS[unit]
    if not 0 < seconds < math.inf:
        raise IntervalError(f"bad duration {value!r}: it must be longer than zero and finite")
    return seconds


@attrs.frozen(slots=True)
class Bar:
    """One closed OHLCV bar. Prices are floats: bars feed signal maths, never order accounting."""

    symbol: str
    interval: Interval
    open_time: float
    open: float
    high: float
    low: float
    close: float
    volume: float

    @property
    def close_time(self) -> float:
        return self.open_time + self.interval.seconds
