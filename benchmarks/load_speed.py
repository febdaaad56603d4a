"""How fast ``load_bars`` reads Binance kline files, next to the floors it is built on.

Writes N one-minute rows of the sample generator (Binance's µs layout) to a temporary file and
prints rows per CPU-second (``time.process_time``), median of the repeats, for:

* ``load_bars``: parse, check every row and every step, build the ``Bar`` objects;
* the floor: ``csv.reader`` plus ``int``/``float`` on the six fields, nothing kept;
* ``pandas.read_csv`` (its C parser) into a DataFrame, when pandas is installed: a vectorised
  reader that checks nothing and builds no bars, for scale.

Target: 500,000 rows in a few seconds (the replay benchmark loads 500k bars).

    python benchmarks/load_speed.py            # 500,000 rows, 3 repeats (~30 s)
    python benchmarks/load_speed.py --quick    # 100,000 rows, 1 repeat
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from trading.data import load_bars, write_sample

TARGET_SECONDS = 5.0


def _floor(path: Path) -> None:
    with path.open(newline="") as handle:
        for row in csv.reader(handle):
            int(row[0]), float(row[1]), float(row[2]), float(row[3]), float(row[4])
            float(row[5])


def _pandas(path: Path) -> None:
    import pandas  # type: ignore[import-untyped,unused-ignore]

    pandas.read_csv(path, header=None)


def _measure(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="100,000 rows, one repeat")
    args = parser.parse_args()
    rows, repeats = (100_000, 1) if args.quick else (args.rows, args.repeats)
    with tempfile.TemporaryDirectory() as directory:
        path = write_sample(Path(directory) / "BTCUSDT-1m-bench.csv", rows)
        size = path.stat().st_size / 1e6
        print(f"{rows:,} rows, {size:.1f} MB, median of {repeats}")
        loaded = _measure(lambda: load_bars(path), repeats)
        floor = _measure(lambda: _floor(path), repeats)
        print(f"  load_bars          {rows / loaded:>11,.0f} rows/CPU-s  ({loaded:.2f} s)")
        print(f"  csv + int/float    {rows / floor:>11,.0f} rows/CPU-s  ({floor:.2f} s, floor)")
        try:
            frame = _measure(lambda: _pandas(path), repeats)
        except ImportError:
            print("  pandas.read_csv    skipped (pandas is not installed)")
        else:
            print(f"  pandas.read_csv    {rows / frame:>11,.0f} rows/CPU-s  ({frame:.2f} s)")
        scaled = loaded * 500_000 / rows
        verdict = "PASS" if scaled <= TARGET_SECONDS else "MISS"
        print(f"{verdict}: 500,000 rows in {scaled:.2f} CPU-s (target <= {TARGET_SECONDS:.0f} s)")


if __name__ == "__main__":
    main()
