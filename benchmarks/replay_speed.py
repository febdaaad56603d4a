"""How fast does a replay run the live code? (issue 9, the replay_speed benchmark)

What it measures
    ``trading.replay`` runs ``strategies/sma_cross.py`` (interval overridden to 1m by the data;
    fast 5, slow 20: about 15,000 round trips) over 500,000 one-minute bars of a seeded random
    walk, through the same Runner, mailbox, command machine, CancelScopes, TradeEngine and
    paper broker as a live run. In the same process, backtrader runs the equivalent SMA cross
    (SMA 5/20 CrossOver, 0.01 BTC market orders filled at the signal bar's close, 0.1 % fee,
    0.05 % slippage) over the same bars. Figures are bars per CPU-second
    (``time.process_time``: the machine is shared, CPU time is the cost), medians of ``--runs``
    (at least 3) runs:

    * ``sma_cross``: replay vs backtrader, and their ratio (target: >= 20,000 bars per
      CPU-second with orders, >= 2x backtrader);
    * ``overhead``: a strategy whose ``next()`` does nothing, replayed, minus a bare loop that
      calls the same ``next()`` over the bars: the framework's own cost per bar (target
      <= 10 µs);
    * ``trades``: a strategy doing the same reading and arithmetic on every bar but trading
      every k-th bar, at about 1,000 / 5,000 / 15,000 round trips: the cost per round trip
      between levels must stay the same (linear growth).

Baseline
    backtrader, run in the same process on the same bars (skipped, with a message, when it is
    not installed: ``pip install backtrader``).

How to run
    . .venv/bin/activate
    python benchmarks/replay_speed.py            # 500,000 bars, 3 runs: ~4 minutes of CPU
    python benchmarks/replay_speed.py --quick    # 50,000 bars: ~30 s of CPU
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import logging
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

import trading
from trading.core.bars import Bar, Interval
from trading.replay import ReplayResult, replay

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "strategies"))
from sma_cross import SmaCross, sma

T0 = 1_735_689_600.0  # 2025-01-01 00:00 UTC
CASH = Decimal(10_000_000)  # never the limit: the benchmark measures trading, not ruin
FEE, SLIPPAGE = Decimal("0.001"), Decimal("0.0005")
TARGET_BARS_PER_SECOND = 20_000
TARGET_RATIO = 2.0
TARGET_OVERHEAD_US = 10.0


def random_walk(n: int, seed: int = 20_260_101) -> list[Bar]:
    """One-minute BTCUSDT bars: log-price steps of 0.1 %, high/low a little outside."""
    rng = random.Random(seed)
    interval = Interval.parse("1m")
    price, bars = 60_000.0, []
    for i in range(n):
        open_ = price
        price *= math.exp(rng.gauss(0.0, 0.001))
        high = max(open_, price) * (1 + abs(rng.gauss(0.0, 0.0003)))
        low = min(open_, price) * (1 - abs(rng.gauss(0.0, 0.0003)))
        bars.append(Bar("BTCUSDT", interval, T0 + 60 * i, open_, high, low, price, 1.0))
    return bars


class Nothing(trading.Strategy):
    """next() does nothing: what is left is the framework's cost."""

    interval = "1m"

    async def next(self, ctx: trading.Context) -> None:
        return None


@attrs.define
class TradeEvery(trading.Strategy):
    """Reads and averages like sma_cross on every bar; buys or sells every ``every``-th bar."""

    interval = "1m"
    every: int = 10

    async def next(self, ctx: trading.Context) -> None:
        closes = [bar.close for bar in await ctx.history(limit=21)]
        sma(closes[-5:]), sma(closes[-20:]), sma(closes[-6:-1]), sma(closes[-21:-1])
        if ctx.computes % self.every == 0:
            if ctx.position().quantity > 0:
                await ctx.sell(ctx.position().quantity)
            else:
                await ctx.buy(Decimal("0.01"))


def cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result


def replay_once(strategy: Any, bars: list[Bar], **params: Any) -> tuple[float, ReplayResult]:
    return cpu(
        lambda: replay(
            strategy,
            bars,
            params=params,
            balances={"USDT": CASH},
            fee_rate=FEE,
            slippage=SLIPPAGE,
            warmup=21,
            progress=False,
        )
    )


def round_trips(result: ReplayResult) -> int:
    return sum(1 for fill in result.fills if fill.side is trading.Side.SELL)


def bare_loop(bars: list[Bar]) -> float:
    strategy = Nothing()

    def loop() -> None:
        for _ in bars:
            coro = strategy.next(None)  # type: ignore[arg-type]
            try:  # noqa: SIM105 -- contextlib.suppress would add its own cost to the baseline
                coro.send(None)
            except StopIteration:
                pass

    return cpu(loop)[0]


def backtrader_once(bars: list[Bar]) -> tuple[float, int] | None:
    try:
        import backtrader as bt
        import pandas as pd
    except ImportError:
        return None

    class Cross(bt.Strategy):  # type: ignore[misc]
        params = (("fast", 5), ("slow", 20))

        def __init__(self) -> None:
            fast = bt.indicators.SMA(self.data.close, period=self.p.fast)
            slow = bt.indicators.SMA(self.data.close, period=self.p.slow)
            self.cross = bt.indicators.CrossOver(fast, slow)
            self.trips = 0

        def next(self) -> None:
            if self.cross[0] > 0 and self.position.size <= 0:
                self.buy(size=0.01)
            elif self.cross[0] < 0 and self.position.size > 0:
                self.close()
                self.trips += 1

    frame = pd.DataFrame(
        {
            "open": [b.open for b in bars],
            "high": [b.high for b in bars],
            "low": [b.low for b in bars],
            "close": [b.close for b in bars],
            "volume": [b.volume for b in bars],
        },
        index=pd.to_datetime([dt.datetime.fromtimestamp(b.open_time, dt.UTC) for b in bars]),
    )

    def run() -> int:
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(bt.feeds.PandasData(dataname=frame))
        cerebro.addstrategy(Cross)
        cerebro.broker.setcash(float(CASH))
        cerebro.broker.setcommission(commission=float(FEE))
        cerebro.broker.set_slippage_perc(float(SLIPPAGE))
        cerebro.broker.set_coc(True)  # fill at the signal bar's close, as the replay does
        (strategy,) = cerebro.run()
        return int(strategy.trips)

    return cpu(run)


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="50,000 bars")
    args = parser.parse_args()
    n = 50_000 if args.quick else args.bars
    runs = max(3, args.runs)
    logging.disable(logging.WARNING)  # refusals and the like are not what is measured
    bars = random_walk(n)
    print(f"replay_speed: {n:,} one-minute bars, {runs} runs, medians; CPU time")

    times, trips = [], 0
    for _ in range(runs):
        seconds, result = replay_once(SmaCross, bars, fast=5, slow=20)
        times.append(seconds)
        trips = round_trips(result)
    ours = n / median(times)
    print(f"  sma_cross  replay     {ours:10,.0f} bars/CPU-s  ({trips:,} round trips)")

    bt_times, bt_trips = [], None
    for _ in range(runs):
        measured = backtrader_once(bars)
        if measured is None:
            break
        bt_times.append(measured[0])
        bt_trips = measured[1]
    if bt_times:
        theirs = n / median(bt_times)
        print(f"  sma_cross  backtrader {theirs:10,.0f} bars/CPU-s  ({bt_trips:,} round trips)")
        print(f"  ratio      {ours / theirs:.2f}x backtrader (target >= {TARGET_RATIO:g}x)")
    else:
        print("  backtrader: not installed (pip install backtrader): no baseline this run")

    overhead = []
    for _ in range(runs):
        seconds, _result = replay_once(Nothing, bars)
        overhead.append((seconds - bare_loop(bars)) / n * 1e6)
    print(f"  overhead   {median(overhead):.2f} µs per bar (target <= {TARGET_OVERHEAD_US:g})")

    levels = []
    for wanted in (1_000, 5_000, 15_000):
        every = max(1, round(n / (2 * wanted * (n / 500_000))))
        spent = []
        for _ in range(runs):
            seconds, result = replay_once(TradeEvery, bars, every=every)
            spent.append(seconds)
        levels.append((round_trips(result), median(spent)))
        print(f"  trades     {levels[-1][0]:7,} round trips  {levels[-1][1]:7.2f} CPU-s")
    (t1, s1), (t2, s2), (t3, s3) = levels
    low, high = (s2 - s1) / (t2 - t1) * 1e6, (s3 - s2) / (t3 - t2) * 1e6
    print(
        f"  per round trip: {low:.0f} µs (1k->5k), {high:.0f} µs (5k->15k): "
        f"ratio {high / low:.2f} (linear: ~1)"
    )
    ok = ours >= TARGET_BARS_PER_SECOND and median(overhead) <= TARGET_OVERHEAD_US
    if bt_times:
        ok = ok and ours / theirs >= TARGET_RATIO
    print("  targets met" if ok else "  TARGET MISSED")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
