"""Event throughput: order events per second published into the EventBus and recorded in SQLite.

What it measures
    N mixed order events (OrderSubmitted, OrderAccepted, OrderFilled per order, Decimal prices,
    quantities and fees) are published into an ``EventBus`` with a ``Recorder`` attached, on a
    temporary file. The producer publishes in chunks and awaits ``bus.wait_for_capacity()``
    between them, as the engine does before submitting orders; the clock stops when
    ``bus.flush()`` returns, i.e. when the last event is committed. Then the row counts are
    checked (events, orders, fills): nothing may be lost.

    Baseline, in the same run: the same recorder with ``max_batch=1``, so one transaction per
    event (what a naive "write each event as it comes" recorder does). The ratio is the gain of
    batching. The baseline runs on fewer events because it is slow.

    Also printed: the publish cost per event (time inside ``publish`` calls only: what the
    trading loop pays), the recorder's largest backlog and its mean batch size.

Why
    DESIGN.md rule 6: observers never block trading and the recorder loses nothing. The recorder
    must keep up with a busy engine or its backlog (memory) grows without end; target
    >= 20,000 order events/s end to end.

How to run
    . .venv/bin/activate
    python benchmarks/event_throughput.py            # 200,000 events (+ 20,000 baseline)
    python benchmarks/event_throughput.py --quick    # 40,000 (+ 5,000 baseline), a few seconds
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import attrs
import trio

from trading.bus import EventBus
from trading.events import Event, OrderAccepted, OrderFilled, OrderSubmitted
from trading.observers.recorder import Recorder

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
                when, *head, trade_id=f"t{n}", fill_quantity=quantity, fill_price=price,
                fee=fee, fee_asset="BTC", filled_quantity=quantity,
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
        f"  {result.label:<28} {result.events:>8,} events in {result.seconds:7.2f} s"
        f"  = {result.rate:>9,.0f} events/s"
        f"   publish {1e6 * result.publish_seconds / result.events:5.2f} us/event"
        f"   max backlog {result.max_pending:>7,}"
        f"   mean batch {result.events / max(1, result.batches):7.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    parser.add_argument("--events", type=int, help="events in the batched run (default 200000)")
    parser.add_argument("--baseline-events", type=int, help="events in the baseline run")
    parser.add_argument("--chunk", type=int, default=500, help="events published between yields")
    args = parser.parse_args()
    count = args.events or (40_000 if args.quick else 200_000)
    baseline_count = args.baseline_events or (5_000 if args.quick else 20_000)

    # The bus says when backpressure engages (the producer here outruns any real engine).
    logging.basicConfig(level=logging.WARNING, format="  (bus: %(message)s)")
    print(f"event throughput: bus -> Recorder (SQLite WAL), python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="trio-trade-bench-") as tmp:
        events = order_events(count)
        batched_db = Path(tmp) / "batched.db"
        batched = trio.run(measure, "batched (one tx per batch)", batched_db, events, 5_000,
                           args.chunk)
        check_rows(batched_db, events)
        report(batched)
        few = events[:baseline_count]
        baseline_db = Path(tmp) / "baseline.db"
        baseline = trio.run(measure, "baseline (one tx per event)", baseline_db, few, 1,
                            args.chunk)
        check_rows(baseline_db, few)
        report(baseline)
    verdict = "PASS" if batched.rate >= TARGET else "MISS"
    print(f"  rows checked: nothing lost ({count:,} + {baseline_count:,} events)")
    gain = batched.rate / baseline.rate
    print(f"  batching gain: {gain:.1f}x the one-transaction-per-event rate")
    print(f"  {verdict}: {batched.rate:,.0f} events/s (target >= {TARGET:,}/s)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
