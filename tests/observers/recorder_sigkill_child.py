"""Child process for the SIGKILL test: bus + Recorder on a file, publishing until killed.

Usage: python tests/observers/recorder_sigkill_child.py DB_PATH

Prints ``acked N`` (flushed) from the recorder's on_commit callback: N is the bus seq of the last
event in a committed batch, so every event up to N must be in the file whatever happens next.
Publishes in real time (trio's default clock), yielding between bursts so batches form.
"""

from __future__ import annotations

import sys
from decimal import Decimal

import trio

from trading.core.events import Event, OrderFilled, OrderSubmitted
from trading.observers.recorder import Recorder
from trading.runtime.bus import EventBus


def order_events(i: int) -> list[Event]:
    when, order_id, price = 1_735_689_600.0 + i, f"kill-{i}", Decimal("100000.10")
    quantity = Decimal("0.001")
    return [
        OrderSubmitted(when, "kill", order_id, "BTCUSDT", "buy", "limit", quantity, price),
        OrderFilled(
            when, "kill", order_id, "BTCUSDT", "buy", "limit", quantity, price,
            trade_id=f"t{i}",
            fill_quantity=quantity,
            fill_price=price,
            fee=Decimal("0.0000001"),
            fee_asset="BTC",
            filled_quantity=quantity,
        ),
    ]


def ack(seq: int) -> None:
    sys.stdout.write(f"acked {seq}\n")
    sys.stdout.flush()


async def main(path: str) -> None:
    bus = EventBus()
    bus.attach(Recorder(path, on_commit=ack), max_batch=200)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        i = 0
        while True:
            for _ in range(50):
                for event in order_events(i):
                    bus.publish(event)
                i += 1
            await bus.wait_for_capacity()
            await trio.sleep(0.001)


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
