"""How much faster is a sweep on every core, and on a Dask cluster? (issue 10, sweep_speed)

What it measures
    ``trading.sweep`` replays ``strategies/sma_cross.py`` over 100,000 one-minute bars of a
    seeded random walk for 32 combinations (fast 3/5/8/13 × slow 20/30/50/80 × quantity
    0.005/0.01), three ways, in one process:

    * sequential: ``executor="inline"``, one replay after the other (the baseline);
    * local processes: ``executor="processes"``, one worker process per core (2 here);
    * Dask: a ``distributed.LocalCluster`` with two worker processes, one thread each.

    Figures are wall-clock seconds (the point of a sweep is the time you wait), medians of
    ``--runs`` runs, and the speed-up over sequential (target >= 1.7x on this 2-core machine).
    "Where time goes" splits a parallel run into the replays' own CPU time (summed over the
    combinations, as the workers report it), start-up (workers importing trading, the bars
    shipped once per worker) and what is left (scheduling, results coming back).

How to run
    . .venv/bin/activate
    python benchmarks/sweep_speed.py             # 32 × 100,000 bars, 1 run: ~5 minutes
    python benchmarks/sweep_speed.py --quick     # 8 × 20,000 bars: ~30 s
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from replay_speed import random_walk

from trading.sweep import sweep

ROOT = Path(__file__).resolve().parents[1]
GRID = {"fast": [3, 5, 8, 13], "slow": [20, 30, 50, 80], "quantity": ["0.005", "0.01"]}
QUICK = {"fast": [3, 5], "slow": [20, 30], "quantity": ["0.005", "0.01"]}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--bars", type=int)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the strategies' signal lines are not the benchmark
    grid = QUICK if args.quick else GRID
    bars = random_walk(args.bars or (20_000 if args.quick else 100_000))
    combos = 1
    for values in grid.values():
        combos *= len(values)
    common = dict(strategies_dir=ROOT / "strategies", progress=False)
    print(f"{combos} combinations x {len(bars):,} bars, {os.cpu_count()} cores")

    def run(label: str, fn: Callable[[], Any]) -> tuple[float, Any]:
        times, result = [], None
        for _ in range(args.runs):
            seconds, result = timed(fn)
            times.append(seconds)
        median = statistics.median(times)
        failed = len(result.failed)
        cpu = sum(row.cpu_seconds for row in result.rows)
        print(
            f"{label:<16} {median:8.1f} s   replays' CPU {cpu:7.1f} s"
            + (f"   {failed} failed" if failed else "")
        )
        return median, result

    sequential, reference = run(
        "sequential", lambda: sweep("sma_cross", bars, grid, executor="inline", **common)
    )
    local, local_result = run(
        "local processes", lambda: sweep("sma_cross", bars, grid, workers=2, **common)
    )
    assert [r.stats for r in local_result.rows] == [r.stats for r in reference.rows]
    figures = [("local processes", local, local_result)]
    try:
        import dask as dask_config
        import distributed
    except ImportError:
        print("dask             skipped: pip install 'trio-trade[sweep]'")
    else:
        # Dask as installed, then tuned for a CPU-bound batch: no statistical profiler sampling
        # every worker's stack every 10 ms, no work stealing, the system monitor every 5 s.
        tuned = {
            "distributed.worker.profile.enabled": False,
            "distributed.scheduler.work-stealing": False,
            "distributed.admin.system-monitor.interval": "5s",
        }
        for label, settings in (("dask (2 workers)", {}), ("dask, tuned", tuned)):
            with dask_config.config.set(settings):
                start = time.perf_counter()
                cluster = distributed.LocalCluster(
                    n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
                )
                client = distributed.Client(cluster)
                up = time.perf_counter() - start
                try:
                    seconds, result = run(
                        label,
                        lambda client=client: sweep(
                            "sma_cross", bars, grid, client=client, **common
                        ),
                    )
                finally:
                    client.close()
                    cluster.close()
            assert [r.stats for r in result.rows] == [r.stats for r in reference.rows]
            print(f"{'':<16} (+ {up:.1f} s to start the cluster, not counted)")
            figures.append((label, seconds, result))
    print()
    replays = sum(row.cpu_seconds for row in reference.rows)
    for label, seconds, result in figures:
        ideal = sum(row.cpu_seconds for row in result.rows) / 2
        print(
            f"{label}: {sequential / seconds:.2f}x sequential (target >= 1.7x); "
            f"replays alone would take {ideal:.1f} s on 2 cores, the rest "
            f"({seconds - ideal:+.1f} s) is start-up, shipping and scheduling"
        )
    print(f"sequential: {combos * len(bars) / replays:,.0f} bars per CPU-second in replays")
    return 0


if __name__ == "__main__":
    sys.exit(main())
