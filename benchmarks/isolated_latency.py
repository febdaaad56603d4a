"""Command latency across the process boundary: isolated strategies against in-process ones.

What it measures (``command_latency.py --isolated`` runs it; or run it alone)
    N strategies (default 100) each *computing*: their ``next()`` awaits a long sleep, so a
    ``pause`` has a compute to cancel. For an isolated strategy that is in its child process,
    and the pause crosses the boundary twice (the parent cancels the phase -> "cancel" to the
    child -> the child cancels its ``next()`` -> "cancelled" back -> the phase ends -> PAUSED).

    * **pause mid-compute**: from ``Runner.send("pause NAME")`` to the strategy's
      ``StrategyStateChanged(new="paused")`` reaching the ``publish`` callback, one command in
      flight, to a random strategy; then ``resume`` + ``wake`` put it back in a compute.
    * **pause while sleeping**: the same, with every strategy asleep between bars (isolated or
      not, this never reaches a child: the sleep phase is the parent's).
    * **memory per isolated strategy**: RSS and USS of one child process (median over the
      children), and the parent's RSS growth per strategy.
    * **start-up**: ``add_many`` of the N strategies (each isolated one starts a process).

    Every figure is the median of ``--runs`` (default 3) child runs per design, one at a time.

How to run
    . .venv/bin/activate
    python benchmarks/command_latency.py --isolated [--isolated-n 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

RESULT_TAG = "RESULT "
TARGET_P99_MS = 2.0  # pause across the process boundary, at N = 100
WARMUP = 10


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": math.nan, "p99_ms": math.nan, "count": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] * 1e3

    return {"p50_ms": at(0.50), "p99_ms": at(0.99), "count": len(ordered)}


def measure(isolated: bool, n: int, samples: int, seed: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import trio
    from bench_strategies import Computes  # importable by reference in the children

    import trading
    from trading.isolation import isolate

    paused_at: dict[str, float] = {}
    state: dict[str, str] = {}
    changed = trio.Event()

    def publish(event: trading.Event) -> None:
        nonlocal changed
        if isinstance(event, trading.StrategyStateChanged):
            state[event.strategy] = event.new
            if event.new == "paused":
                paused_at[event.strategy] = time.perf_counter()
            changed.set()
            changed = trio.Event()

    async def until(predicate: Any) -> None:
        with trio.fail_after(60):
            while not predicate():
                await changed.wait()

    async def main() -> dict[str, Any]:
        rng = random.Random(seed)
        clock = trading.VirtualClock(start=1_735_689_600.0)
        market, exchange = trading.simulated(clock)
        base_rss = psutil.Process().memory_info().rss
        async with trading.Runner(
            clock=clock, market=market, exchange=exchange, publish=publish
        ) as runner:
            names = [f"s{i}" for i in range(n)]
            made = [Computes(sleep=3600.0) for _ in names]
            strategies = [isolate(s) if isolated else s for s in made]
            t = time.perf_counter()
            await runner.add_many(list(zip(names, strategies, strict=True)))
            start_s = time.perf_counter() - t
            await until(lambda: all(state.get(x) == "computing" for x in names))
            parent_rss = psutil.Process().memory_info().rss - base_rss
            children = psutil.Process().children()
            rss = [c.memory_full_info() for c in children]
            computing: list[float] = []
            for i in range(WARMUP + samples):
                name = rng.choice(names)
                t0 = time.perf_counter()
                [reply] = await runner.send(f"pause {name}")
                if not reply.ok:
                    raise RuntimeError(f"{reply}; {runner[name].describe()}")
                await until(lambda name=name: state.get(name) == "paused")
                if i >= WARMUP:
                    computing.append(paused_at[name] - t0)
                await runner.send(f"resume {name}")
                await runner.send(f"wake {name}")
                await until(lambda name=name: state.get(name) == "computing")
                await trio.sleep(0.002)  # let the child's next() reach its sleep
            for name in names:  # now all asleep between bars
                strategy = runner[name].strategy
                object.__setattr__(strategy, "sleep", 0.0)
                await runner.send(f"pause {name}")
                await runner.send(f"resume {name}")
            sleeping: list[float] = []
            for i in range(WARMUP + samples):
                name = rng.choice(names)
                t0 = time.perf_counter()
                await runner.send(f"pause {name}")
                await until(lambda name=name: state.get(name) == "paused")
                if i >= WARMUP:
                    sleeping.append(paused_at[name] - t0)
                await runner.send(f"resume {name}")
            t = time.perf_counter()
            await runner.stop_all()
            stop_s = time.perf_counter() - t
        return {
            "design": "isolated" if isolated else "in-process",
            "n": n,
            "pause_computing": percentiles(computing),
            "pause_sleeping": percentiles(sleeping),
            "start_s": start_s,
            "stop_all_s": stop_s,
            "child_rss_mb": statistics.median(m.rss for m in rss) / 2**20 if rss else 0.0,
            "child_uss_mb": statistics.median(m.uss for m in rss) / 2**20 if rss else 0.0,
            "parent_kb_per_strategy": parent_rss / n / 1024,
            "children_left": len(psutil.Process().children()),
        }

    return trio.run(main)


def run_child(isolated: bool, n: int, samples: int, seed: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", json.dumps([isolated, n, samples, seed])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"isolated_latency child failed with exit code {proc.returncode}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            result: dict[str, Any] = json.loads(line[len(RESULT_TAG) :])
            return result
    raise SystemExit(f"isolated_latency child printed no result:\n{proc.stdout}")


def median_of(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(float(value))
    return statistics.median(values)


def report(runs: int = 3, n: int = 100, samples: int = 300) -> int:
    """Print the isolated path's figures next to the in-process ones; the number of misses."""
    print(
        f"\nisolated strategies: N = {n}, each computing (next() awaits a long sleep); "
        f"median of {runs} child runs per design; {samples} pauses each; "
        f"{psutil.cpu_count()} CPUs"
    )
    results: dict[str, list[dict[str, Any]]] = {"in-process": [], "isolated": []}
    for k in range(runs):
        for isolated in (False, True):
            r = run_child(isolated, n, samples, seed=k)
            results[r["design"]].append(r)
            print(
                f"  run {k + 1}/{runs}: {r['design']:<10} pause mid-compute p50 "
                f"{r['pause_computing']['p50_ms']:.3f} ms p99 {r['pause_computing']['p99_ms']:.3f}"
                f" ms; load {', '.join(f'{x:.2f}' for x in psutil.getloadavg())}"
            )
    header = f"  {'':34}{'in-process':>14}{'isolated':>14}"
    print(header)
    rows = [
        ("pause mid-compute p50 (ms)", ("pause_computing", "p50_ms"), "{:.3f}"),
        ("pause mid-compute p99 (ms)", ("pause_computing", "p99_ms"), "{:.3f}"),
        ("pause while sleeping p50 (ms)", ("pause_sleeping", "p50_ms"), "{:.3f}"),
        ("pause while sleeping p99 (ms)", ("pause_sleeping", "p99_ms"), "{:.3f}"),
        ("start-up, add_many (s)", ("start_s",), "{:.2f}"),
        ("stop all (s)", ("stop_all_s",), "{:.2f}"),
        ("parent memory per strategy (KiB)", ("parent_kb_per_strategy",), "{:.0f}"),
        ("child RSS per strategy (MiB)", ("child_rss_mb",), "{:.1f}"),
        ("child USS per strategy (MiB)", ("child_uss_mb",), "{:.1f}"),
    ]
    for label, path, fmt in rows:
        inside = median_of(results["in-process"], *path)
        outside = median_of(results["isolated"], *path)
        print(f"  {label:<34}{fmt.format(inside):>14}{fmt.format(outside):>14}")
    p99 = median_of(results["isolated"], "pause_computing", "p99_ms")
    ok = p99 <= TARGET_P99_MS
    print(
        f"  target: isolated pause mid-compute p99 <= {TARGET_P99_MS:g} ms at N = {n}: "
        f"{'PASS' if ok else 'MISS'} ({p99:.3f} ms)"
    )
    left = max(r["children_left"] for r in results["isolated"])
    print(f"  child processes left after stop all: {left}")
    return 0 if ok and left == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    if args.child:
        isolated, n, samples, seed = json.loads(args.child)
        print(RESULT_TAG + json.dumps(measure(isolated, n, samples, seed)), flush=True)
        return
    os.environ.setdefault("PYTHONHASHSEED", "0")
    report(args.runs, args.n, args.samples)


if __name__ == "__main__":
    main()
