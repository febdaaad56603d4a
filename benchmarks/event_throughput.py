"""Event throughput: order events per second published into the EventBus and recorded in SQLite.

What it measures
    N mixed order events (OrderSubmitted, OrderAccepted, OrderFilled per order, Decimal prices,
    quantities and fees) are published into an ``EventBus`` with a ``Recorder`` attached, on a
    temporary file. The producer publishes in chunks and awaits ``bus.wait_for_capacity()``
    between them, as the engine does before submitting orders; the clock stops when
    ``bus.flush()`` returns, i.e. when the last event is committed. Then the row counts are
    checked (events, orders, fills): nothing may be lost.

    Baseline, in the same process: a plain synchronous writer, one commit per event, no bus,
    no thread, no trio: ``Recorder.write([(seq, event)])`` called for each event in turn on
    the same schema, pragmas (WAL, synchronous=NORMAL) and row code, so the only difference is
    the batching and the bus. This is what "write each event as it comes" costs. The ratio is
    the gain of batching. The baseline runs on fewer events because it is slow.

    Each measurement runs ``--repeat`` times (default 3) on a fresh file; every run is printed
    and the median is the figure. The load average (1, 5, 15 min) is printed before and after:
    on a shared machine a figure means little without it.

    Also printed: the publish cost per event (time inside ``publish`` calls only: what the
    trading loop pays; for the plain writer that is the whole write), the recorder's largest
    backlog and its mean batch size.

    Second part: the delay a slow observer adds to commands. A Runner with N strategies that
    trade every second on the paper broker; pause/resume round trips (send -> reply) are timed
    with no extra observer, then with a lossless observer whose every batch takes 1 s in a
    worker thread (a recorder on a saturated disk). Target: no measurable difference.

Why
    DESIGN.md rule 6: observers never block trading and the recorder loses nothing. The recorder
    must keep up with a busy engine or its backlog (memory) grows without end; target
    >= 20,000 order events/s end to end.

How to run
    . .venv/bin/activate
    python benchmarks/event_throughput.py            # 200,000 events (+ 20,000 baseline) x 3
    python benchmarks/event_throughput.py --quick    # 40,000 (+ 5,000 baseline) x 3
    python benchmarks/event_throughput.py --no-latency   # throughput only
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import attrs
import trio

import trading
from trading.core.events import Event, OrderAccepted, OrderFilled, OrderSubmitted
from trading.exchanges.paper import PaperBroker
from trading.observers.recorder import Recorder
from trading.runtime.bus import EventBus, Observer

TARGET = 20_000  # order events per second, end to end
T0 = 1_735_689_600.0


@attrs.frozen
class Result:
    label: str
    events: int
    seconds: float
    publish_seconds: float
    max_pending: int
    batches: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def order_events(count: int) -> list[Event]:
    """Three events per order; built up front so the figure is the bus and the recorder's."""
    events: list[Event] = []
    quantity, fee = Decimal("0.00150"), Decimal("0.0000015")
    for n in range(count // 3 + 1):
        oid = f"bench-{n:08d}"
        price = Decimal(100_000 + n % 1000) / 100
        when = T0 + n * 0.001
        head = ("bench", oid, "BTCUSDT", "buy" if n % 2 else "sell", "limit", quantity, price)
        events.append(OrderSubmitted(when, *head))
        events.append(OrderAccepted(when, *head, exchange_order_id=f"ex-{n}"))
        events.append(
            OrderFilled(
                when,
                *head,
                trade_id=f"t{n}",
                fill_quantity=quantity,
                fill_price=price,
                fee=fee,
                fee_asset="BTC",
                filled_quantity=quantity,
            )
        )
    return events[:count]


async def measure(
    label: str, path: Path, events: list[Event], max_batch: int, chunk: int
) -> Result:
    bus = EventBus()
    recorder = Recorder(path)
    bus.attach(recorder, max_batch=max_batch)
    publish_seconds = 0.0
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        start = time.perf_counter()
        for i in range(0, len(events), chunk):
            began = time.perf_counter()
            for event in events[i : i + chunk]:
                bus.publish(event)
            publish_seconds += time.perf_counter() - began
            await bus.wait_for_capacity()
            await trio.lowlevel.checkpoint()  # the trading loop yields now and then
        await bus.flush()
        seconds = time.perf_counter() - start
        stats = bus.statistics()["recorder"]
        await bus.aclose()
    if stats.failed or stats.dropped:
        raise SystemExit(f"{label}: {stats.failed} failed, {stats.dropped} dropped")
    return Result(label, len(events), seconds, publish_seconds, stats.max_pending, recorder.batches)


def plain_writer(label: str, path: Path, events: list[Event]) -> Result:
    """The baseline: each event written and committed on its own, synchronously."""
    recorder = Recorder(path)
    try:
        start = time.perf_counter()
        for seq, event in enumerate(events, start=1):
            recorder.write([(seq, event)])
        seconds = time.perf_counter() - start
    finally:
        recorder.close()
    return Result(label, len(events), seconds, seconds, 0, len(events))


def check_rows(path: Path, events: list[Event]) -> None:
    expected = {
        "events": len(events),
        "orders": len({e.client_order_id for e in events if isinstance(e, OrderSubmitted)}),
        "fills": sum(isinstance(e, OrderFilled) for e in events),
    }
    conn = sqlite3.connect(path)
    try:
        found = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in expected}
    finally:
        conn.close()
    if found != expected:
        raise SystemExit(f"rows lost in {path.name}: expected {expected}, found {found}")


def report(result: Result) -> None:
    print(
        f"    {result.label:<26} {result.events:>8,} events in {result.seconds:7.2f} s"
        f"  = {result.rate:>9,.0f} events/s"
        f"   publish {1e6 * result.publish_seconds / result.events:5.2f} us/event"
        f"   max backlog {result.max_pending:>7,}"
        f"   mean batch {result.events / max(1, result.batches):7.1f}"
    )


class SlowDisk:
    """A lossless observer whose every batch takes ``seconds`` in a worker thread, as a recorder
    on a saturated disk would: the event loop stays free, the observer falls behind."""

    lossless = True

    def __init__(self, seconds: float) -> None:
        self.name = "slow-disk"
        self.seconds = seconds
        self.handled = 0

    async def handle(self, batch: Sequence[tuple[int, Event]]) -> None:
        await trio.to_thread.run_sync(time.sleep, self.seconds)
        self.handled += len(batch)

    async def aclose(self) -> None:
        pass


async def command_latency(slow: bool, strategies: int, samples: int) -> tuple[list[float], int]:
    """Pause/resume round trips (send -> reply, which comes once the phase was interrupted and
    the command applied) while every strategy trades each second; with or without a slow
    lossless observer attached."""

    @attrs.define
    class Trader(trading.Strategy):
        interval = "1s"

        async def next(self, ctx: trading.Context) -> None:
            held = ctx.position().quantity
            await (ctx.sell(held) if held else ctx.buy("0.001"))

    slow_disk = SlowDisk(1.0)
    observers: list[Observer] = [slow_disk] if slow else []
    market = trading.SimulatedMarket()
    broker = PaperBroker(market, trading.WallClock(), balances={"USDT": Decimal(10**9)})
    latencies: list[float] = []
    rng = random.Random(7)
    async with trading.Runner(observers=observers, exchange=broker, market=market) as runner:
        await runner.add_many((f"t{i}", Trader()) for i in range(strategies))
        await trio.sleep(2.5)  # trading has begun, the slow disk is behind
        for _ in range(samples):
            # Between bar closes (the herd of computes at each close is measured elsewhere),
            # while the slow observer is busy with what the last close published.
            await trio.sleep((rng.uniform(0.3, 0.9) - time.time()) % 1.0)
            name = f"t{rng.randrange(strategies)}"
            t0 = time.perf_counter()
            await runner.send(f"pause {name}")
            latencies.append(time.perf_counter() - t0)
            await runner.send(f"resume {name}")
        behind = runner.bus.statistics()[slow_disk.name].pending if slow else 0
        await runner.stop_all()
    return latencies, behind


def slow_observer_report(quick: bool) -> None:
    strategies, samples = (50, 40) if quick else (200, 200)
    print(f"slow observer: pause latency with {strategies} strategies trading every second")
    base, _ = trio.run(command_latency, False, strategies, samples)
    slowed, behind = trio.run(command_latency, True, strategies, samples)
    for label, values in (("no slow observer", base), ("slow disk (1 s/batch)", slowed)):
        values.sort()
        p50 = values[len(values) // 2] * 1e6
        p99 = values[int(len(values) * 0.99)] * 1e6
        print(f"  {label:<24} p50 {p50:8.0f} µs   p99 {p99:8.0f} µs   (n={len(values)})")
    d50 = (slowed[len(slowed) // 2] - base[len(base) // 2]) * 1e6
    d99 = (slowed[int(len(slowed) * 0.99)] - base[int(len(base) * 0.99)]) * 1e6
    print(
        f"  added by the slow observer: p50 {d50:+.0f} µs, p99 {d99:+.0f} µs "
        f"(it was {behind:,} events behind at the end; target: none measurable)"
    )


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unavailable"
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


def median_of(label: str, results: list[Result]) -> Result:
    middle = statistics.median(r.rate for r in results)
    best = min(results, key=lambda r: abs(r.rate - middle))
    return attrs.evolve(best, label=label, seconds=best.events / middle)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    parser.add_argument("--events", type=int, help="events in the batched run (default 200000)")
    parser.add_argument("--baseline-events", type=int, help="events in the baseline run")
    parser.add_argument("--chunk", type=int, default=500, help="events published between yields")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measure (>= 3)")
    parser.add_argument(
        "--no-latency", action="store_true", help="skip the slow-observer latency part"
    )
    args = parser.parse_args()
    count = args.events or (40_000 if args.quick else 200_000)
    baseline_count = args.baseline_events or (5_000 if args.quick else 20_000)
    repeat = max(3, args.repeat)

    # The bus says when backpressure engages (the producer here outruns any real engine).
    logging.basicConfig(level=logging.WARNING, format="  (bus: %(message)s)")
    print(f"event throughput: bus -> Recorder (SQLite WAL), python {sys.version.split()[0]}")
    print(f"  load average before: {load_average()}")
    events = order_events(count)
    few = events[:baseline_count]
    batched_runs: list[Result] = []
    baseline_runs: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="trio-trade-bench-") as tmp:
        for n in range(repeat):
            batched_db = Path(tmp) / f"batched-{n}.db"
            result = trio.run(
                measure, f"batched, run {n + 1}", batched_db, events, 5_000, args.chunk
            )
            check_rows(batched_db, events)
            report(result)
            batched_runs.append(result)
            baseline_db = Path(tmp) / f"baseline-{n}.db"
            result = plain_writer(f"plain writer, run {n + 1}", baseline_db, few)
            check_rows(baseline_db, few)
            report(result)
            baseline_runs.append(result)
    batched = median_of("batched: median", batched_runs)
    baseline = median_of("plain writer: median", baseline_runs)
    print(f"  medians of {repeat} runs:")
    report(batched)
    report(baseline)
    verdict = "PASS" if batched.rate >= TARGET else "MISS"
    print(f"  rows checked: nothing lost ({count:,} + {baseline_count:,} events per run)")
    gain = batched.rate / baseline.rate
    print(
        f"  batching gain: {gain:.1f}x a plain synchronous writer committing each event "
        "(same schema, pragmas and row code)"
    )
    print(f"  {verdict}: {batched.rate:,.0f} events/s median (target >= {TARGET:,}/s)")
    print(f"  load average after: {load_average()}")
    if not args.no_latency:
        print()
        slow_observer_report(args.quick)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
