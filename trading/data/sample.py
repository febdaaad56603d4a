"""Deterministic sample bars: a seeded random walk that looks like BTCUSDT one-minute klines.

The rules this module keeps:

* Same arguments, same bytes, on every platform and Python version: only integer arithmetic
  on ``random.Random(seed)``'s ``randint`` (no floats, no ``gauss``), prices in cents (the 0.01
  tick grid), quantities in 0.001 BTC. The bundled file is this module's output, and a test
  regenerates it byte for byte.
* The output is Binance's spot kline layout from 2025 on: no header, 12 columns, open and close
  times in microseconds, so loading it exercises the real format.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Final

__all__ = [
    "SAMPLE_NAME",
    "SAMPLE_ROWS",
    "SAMPLE_SEED",
    "SAMPLE_START",
    "sample_csv",
    "sample_path",
    "sample_rows",
    "write_sample",
]

SAMPLE_NAME: Final = "BTCUSDT-1m-sample.csv"
SAMPLE_ROWS: Final = 8_640  # six days of minutes (under 1 MB)
SAMPLE_SEED: Final = 2025
SAMPLE_START: Final = 1_735_689_600  # 2025-01-01 00:00:00 UTC
_START_CENTS: Final = 9_350_000  # 93,500.00 USDT
_MINUTE_US: Final = 60_000_000


def _money(units: int, places: int) -> str:
    """A non-negative fixed-point integer as decimal text with ``places`` decimals."""
    whole, fraction = divmod(units, 10**places)
    return f"{whole}.{fraction:0{places}d}"


def sample_rows(
    rows: int = SAMPLE_ROWS, *, seed: int = SAMPLE_SEED, start: int = SAMPLE_START
) -> Iterator[list[str]]:
    """Binance kline rows (as text) of a random walk: ``rows`` one-minute bars from ``start``
    (epoch seconds, on a minute)."""
    if start % 60:
        raise ValueError(f"start {start} is not on a minute")
    rng = random.Random(seed)
    randint = rng.randint
    close = _START_CENTS
    open_us = start * 1_000_000
    for _ in range(rows):
        open_ = close
        path = [open_]
        for _ in range(4):
            path.append(max(100, path[-1] + randint(-2_500, 2_500)))
        close = path[-1]
        high = max(path) + randint(0, 800)
        low = max(1, min(path) - randint(0, 800))
        volume = randint(500, 30_000)  # 0.001 BTC: 0.5 .. 30 BTC
        typical = (open_ + high + low + close) // 4  # cents
        taker = volume * randint(30, 70) // 100
        yield [
            str(open_us),
            _money(open_, 2),
            _money(high, 2),
            _money(low, 2),
            _money(close, 2),
            _money(volume, 3),
            str(open_us + _MINUTE_US - 1),
            _money(volume * typical // 10**3, 2),  # quote volume, cents
            str(randint(200, 3_000)),
            _money(taker, 3),
            _money(taker * typical // 10**3, 2),
            "0",
        ]
        open_us += _MINUTE_US


def sample_csv(
    rows: int = SAMPLE_ROWS, *, seed: int = SAMPLE_SEED, start: int = SAMPLE_START
) -> str:
    """The whole file as text (``\\n`` line ends, as Binance's files)."""
    out = io.StringIO()
    for row in sample_rows(rows, seed=seed, start=start):
        out.write(",".join(row))
        out.write("\n")
    return out.getvalue()


def write_sample(
    path: str | Path,
    rows: int = SAMPLE_ROWS,
    *,
    seed: int = SAMPLE_SEED,
    start: int = SAMPLE_START,
) -> Path:
    """Write a sample file (name it like ``BTCUSDT-1m-....csv`` so the loader knows the symbol
    and interval); returns the path. Blocking IO."""
    target = Path(path)
    target.write_bytes(sample_csv(rows, seed=seed, start=start).encode("ascii"))
    return target


def sample_path() -> Path:
    """The bundled sample: six days of BTCUSDT-like 1m bars from 2025-01-01 (µs timestamps)."""
    return Path(str(resources.files("trading.data").joinpath("samples", SAMPLE_NAME)))
