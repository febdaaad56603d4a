"""Does an order cost more after many orders? (issue 6, point 8)

What it measures
    The wall time of one ``submit`` + fill through the real order path: ``Account.submit``
    (validation, filters, balance and risk checks) -> ``TradeEngine.send`` (the shielded call,
    the update applied in the core, events built and published) -> ``PaperBroker`` (a market
    order fills at once) -> the account's books. Market orders alternate buy/sell so the position
    stays small. Events go to a counting publisher (the bus and observers are measured by
    ``event_throughput.py``, not here).

    For each run a fresh engine first places ``--small`` (1,000) orders, then the script times
    ``--batch`` orders; it goes on to ``--large`` (100,000) orders in total and times another
    batch. The figure is the median cost per order over ``--runs`` runs (at least 3), and the
    ratio large/small; target <= 1.5 (the cost does not grow with the orders ever placed:
    finished orders leave the engine's and the account's hot paths). Cost is this process's CPU
    time (``time.process_time``), not wall time: on a shared machine other processes' load
    would otherwise show up as growth. Everything runs on one thread, so CPU time is the cost.

Baseline
    The same batch at the small count, in the same run: the ratio compares like with like.

How to run
    . .venv/bin/activate
    python benchmarks/order_cost.py            # 3 runs, 1,000 vs 100,000 earlier orders
    python benchmarks/order_cost.py --quick    # 3 runs, 1,000 vs 10,000 (a few seconds)
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from decimal import Decimal

import trio

from trading.core.events import Event
from trading.core.orders import Side
from trading.exchanges.paper import PaperBroker
from trading.runtime.clock import WallClock
from trading.runtime.engine import TradeEngine

TARGET_RATIO = 1.5


class FlatPrice:
    def price(self, symbol: str, t: float) -> float:
        return 60_000.0


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, event: Event) -> None:
        self.count += 1


async def one_run(small: int, large: int, batch: int) -> tuple[float, float, int]:
    clock = WallClock()
    broker = PaperBroker(
        FlatPrice(),
        clock,
        balances={"USDT": Decimal(10) ** 12, "BTC": Decimal(10) ** 6},
    )
    publish = Counter()
    engine = TradeEngine(broker, clock=clock, publish=publish)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        account = engine.account("bench")
        placed = 0

        async def place(n: int) -> float:
            nonlocal placed
            start = time.process_time()
            for _ in range(n):
                side = Side.BUY if placed % 2 == 0 else Side.SELL
                await account.submit(side, "0.001", "BTCUSDT")
                placed += 1
            return (time.process_time() - start) / n

        await place(small)
        at_small = await place(batch)
        await place(large - placed)
        at_large = await place(batch)
        assert not engine.orders and not account.orders, "finished orders were kept"
        nursery.cancel_scope.cancel()
    return at_small, at_large, placed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 vs 10,000, short batches")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args()
    if args.quick:
        args.large, args.batch = 10_000, 2_000
    runs = max(3, args.runs)
    smalls, larges = [], []
    for i in range(runs):
        gc.collect()
        small, large, placed = trio.run(one_run, args.small, args.large, args.batch)
        smalls.append(small)
        larges.append(large)
        print(
            f"run {i + 1}: {small * 1e6:7.1f} us/order after {args.small:,} orders, "
            f"{large * 1e6:7.1f} us/order after {args.large:,} ({placed:,} placed)"
        )
    small_med, large_med = statistics.median(smalls), statistics.median(larges)
    ratio = large_med / small_med
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"median of {runs} runs, CPU time per submit+fill, paper broker, market orders:")
    print(f"  after {args.small:>7,} earlier orders: {small_med * 1e6:7.1f} us/order")
    print(f"  after {args.large:>7,} earlier orders: {large_med * 1e6:7.1f} us/order")
    verdict = "ok" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(f"  ratio {ratio:.2f} (target <= {TARGET_RATIO}): {verdict}")
    print(f"  load average {load} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
