"""What a loaded bar file is, and how a bad one is reported.

The rules this module keeps:

* A :class:`BarSeries` is one symbol at one interval, in strictly increasing open time, every bar
  on the interval's grid and no bar missing: whoever reads it (replay, results) never re-checks.
  ``repairs`` says, one line per repair, what the loader changed to get there; empty means the
  file was taken exactly as written.
* A :class:`BarFileError` names the file, the 1-based line (the row, for Parquet) when one row is
  to blame, and what was wrong with it, in words a user can act on. Offending values are quoted
  shortened, so a hostile file cannot make an error message large.
* Prices are floats (``Bar`` feeds signal maths) read straight from the file's text, never
  computed, and the loader refuses a price with more significant digits than a float carries, so
  :func:`exact` gives back the file's exact decimal value for order and fill accounting.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import attrs

from trading.core.bars import Bar, Interval

__all__ = ["BarFileError", "BarSeries", "exact", "quote"]

_QUOTE_LIMIT = 40


def quote(value: object) -> str:
    """``repr`` of an offending value, cut to a readable length."""
    text = repr(value)
    if len(text) > _QUOTE_LIMIT:
        text = text[: _QUOTE_LIMIT - 3] + "..."
    return text


def exact(price: float) -> Decimal:
    """The exact decimal value of a price the loader read: ``exact(bar.close)``.

    Exact because the loader only accepts prices of at most 15 significant digits, which a float
    carries round trip (``repr`` gives the shortest text that reads back as the same float).
    Trailing zeros of the file's text are not kept: ``42000.10000000`` comes back as ``42000.1``,
    the same number.
    """
    return Decimal(repr(price))


class BarFileError(ValueError):
    """A bar file that cannot be read as written.

    ``path`` is the file (for a zip, ``archive.zip:member.csv``), ``line`` the 1-based line (or
    Parquet row) to blame, None when the whole file is (empty, unreadable, no symbol).
    """

    def __init__(self, path: str, problem: str, line: int | None = None) -> None:
        super().__init__(path, problem, line)
        self.path = path
        self.problem = problem
        self.line = line

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path} line {self.line}"
        return f"{where}: {self.problem}"


@attrs.frozen(slots=True)
class BarSeries:
    """One symbol's bars at one interval, ready to replay: sorted, on the grid, gap-free.

    Iterating and ``len`` go to ``bars``; ``source`` is the file it came from, ``time_unit``
    what that file's timestamps were in (``s``, ``ms``, ``us`` or ``iso``).
    """

    symbol: str
    interval: Interval
    bars: tuple[Bar, ...] = attrs.field(repr=lambda bars: f"<{len(bars)} bars>")
    repairs: tuple[str, ...] = ()
    source: str = ""
    time_unit: str = ""

    def __len__(self) -> int:
        return len(self.bars)

    def __iter__(self) -> Iterator[Bar]:
        return iter(self.bars)

    @property
    def start(self) -> float:
        """Open time of the first bar (epoch seconds); the series is never empty."""
        return self.bars[0].open_time

    @property
    def end(self) -> float:
        """Close time of the last bar (epoch seconds)."""
        return self.bars[-1].close_time
