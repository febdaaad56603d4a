"""ConsoleNotifier: notable events only, bursts folded with a count, drops always reported.
And LogObserver, the other observer that talks to people."""

from __future__ import annotations

import io
import logging
import re
import threading
from decimal import Decimal

import pytest
import trio
import trio.testing

from tests.conftest import T0
from trading.core.events import (
    Event,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    RiskBreached,
    StrategyError,
    StrategyStateChanged,
    describe,
)
from trading.observers.log import LogObserver
from trading.observers.notifier import ConsoleNotifier
from trading.runtime.bus import EventBus

D = Decimal


def filled(i: int) -> Event:
    return OrderFilled(
        T0 + i, "sma", f"o{i}", "BTCUSDT", "buy", "market", D("0.1"), None,
        trade_id=f"t{i}", fill_quantity=D("0.1"), fill_price=D("100.5"), fee=D("0.01"),
        fee_asset="USDT", filled_quantity=D("0.1"),
    )


def flip(new: str, old: str = "computing") -> Event:
    return StrategyStateChanged(T0, "sma", old, new, "")


async def test_a_burst_is_folded_with_a_count(clock: trio.testing.MockClock) -> None:
    lines: list[str] = []
    notifier = ConsoleNotifier(lines.append, max_lines=10)
    await notifier.handle([(i, filled(i)) for i in range(1, 51)])
    assert len(lines) == 11
    assert lines[0] == "sma: buy 0.1 BTCUSDT @ 100.5 filled (o1, fee 0.01 USDT)"
    assert lines[-1] == "... 40 more events folded"


async def test_routine_events_are_not_shown(clock: trio.testing.MockClock) -> None:
    lines: list[str] = []
    notifier = ConsoleNotifier(lines.append)
    submitted = OrderSubmitted(T0, "sma", "o1", "BTCUSDT", "buy", "limit", D("1"), D("2"))
    error = StrategyError(T0, "sma", "next", "ValueError: bad", "tb", 1, None)
    batch = [flip("sleeping"), flip("computing", "sleeping"), submitted, flip("paused"), error]
    await notifier.handle(list(enumerate(batch, start=1)))
    assert lines == [
        "sma: computing -> paused",
        "sma: failed in next (ValueError: bad); failure 1, gave up",
    ]


async def test_rate_limit_folds_and_reports_later(clock: trio.testing.MockClock) -> None:
    lines: list[str] = []
    notifier = ConsoleNotifier(lines.append, max_lines=3, rate=1.0, summary_interval=5)
    for i in range(1, 11):  # ten fills, one every 0.1 s: the bucket of 3 empties
        await notifier.handle([(i, filled(i))])
        await trio.sleep(0.1)
    # Three shown, then the first fold is said at once; later folds wait for the interval.
    assert len(lines) == 4 and lines[3] == "... 1 more events folded"
    await trio.sleep(5)
    await notifier.handle([(11, filled(11))])  # the summary is due again, a token is back
    assert lines[4:] == [
        "sma: buy 0.1 BTCUSDT @ 100.5 filled (o11, fee 0.01 USDT)",
        "... 6 more events folded",
    ]
    assert notifier.total_folded == 7


async def test_bus_drops_are_reported(clock: trio.testing.MockClock) -> None:
    out = io.StringIO()
    notifier = ConsoleNotifier(out, max_lines=5)
    bus = EventBus()
    bus.attach(notifier, buffer=4)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        await trio.testing.wait_all_tasks_blocked()  # the notifier waits on its channel
        for i in range(1, 101):
            bus.publish(filled(i))  # a burst with no checkpoint: the channel of 4 overflows
        await bus.flush()
        await trio.sleep(2)  # the rate limit's bucket refills
        bus.publish(flip("stopped", "stopping"))
        await bus.flush()
        dropped = bus.statistics()["console"].dropped
        await bus.aclose()
    text = out.getvalue()
    assert dropped > 90
    reported = [int(n) for n in re.findall(r"\.\.\. (\d+) events dropped under load", text)]
    assert sum(reported) == dropped == notifier.total_dropped
    shown = [describe(filled(i)) for i in range(1, 6)]  # 1 in hand + 4 in the channel
    assert [line for line in text.splitlines() if "filled" in line] == shown
    assert text.splitlines()[-1] == "sma: stopping -> stopped"


async def test_log_observer_levels(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="trading.observers.log")
    observer = LogObserver()
    error = StrategyError(T0, "sma", "next", "ValueError: bad", "tb", 1, 2.0)
    risk = RiskBreached(T0, "sma", "max_drawdown", "-5%", "kill switch")
    rejected = OrderRejected(T0, "sma", "o9", "BTCUSDT", "buy", "market", D("1"), None,
                             reason="min notional", sent=False)
    batch = [error, risk, rejected, flip("sleeping"), filled(1)]
    await observer.handle(list(enumerate(batch, start=1)))
    observer.note_dropped(3)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, f"#1 {describe(error)}"),
        (logging.WARNING, f"#2 {describe(risk)}"),
        (logging.WARNING, f"#3 {describe(rejected)}"),
        (logging.DEBUG, f"#4 {describe(flip('sleeping'))}"),
        (logging.INFO, f"#5 {describe(filled(1))}"),
        (logging.WARNING, "3 events dropped under load (log buffer 10000)"),
    ]


class StalledStream:
    """A terminal whose reader stopped reading: every write blocks until ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.text = io.StringIO()

    def write(self, text: str) -> int:
        self.entered.set()
        self.release.wait()
        return self.text.write(text)

    def flush(self) -> None:
        self.release.wait()


async def test_a_stalled_terminal_never_blocks_the_notifier(
    clock: trio.testing.MockClock,
) -> None:
    stream = StalledStream()
    notifier = ConsoleNotifier(stream, max_lines=1_000, rate=1e9, drain_timeout=0.05)
    try:
        for batch in range(300):  # each handle returns at once although nothing is written
            await notifier.handle([(batch, filled(batch))])
        assert stream.entered.wait(timeout=10)  # the writer thread is stuck in write()
        assert notifier.lines_lost > 0
        await notifier.aclose()  # bounded by drain_timeout, even though the terminal is stalled
    finally:
        stream.release.set()
    # The reader comes back: the next write says how much was lost on the way.
    assert notifier._writer is not None and notifier._writer.drain(10)
    notifier._emit(["after the stall"])
    assert notifier._writer.drain(10)
    text = stream.text.getvalue()
    lost = [int(n) for n in re.findall(r"\.\.\. (\d+) lines dropped: the reader", text)]
    assert sum(lost) == notifier.lines_lost
    assert text.splitlines()[-1] == "after the stall"
    assert text.count("filled (o") + notifier.lines_lost == 300


async def test_a_stalled_terminal_never_blocks_publishing_through_the_bus(
    clock: trio.testing.MockClock,
) -> None:
    stream = StalledStream()
    notifier = ConsoleNotifier(stream, rate=1e9, max_lines=1_000, drain_timeout=0.05)
    bus = EventBus()
    bus.attach(notifier, buffer=16)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(bus.run)
            for i in range(2_000):
                bus.publish(filled(i))
                if i % 100 == 0:
                    await trio.sleep(0.01)  # trading goes on, the notifier keeps taking batches
            await bus.flush()
            delivered = bus.statistics()["console"].delivered
            await bus.aclose()
    finally:
        stream.release.set()
    assert delivered == 2_000 - bus.statistics()["console"].dropped
    assert notifier.lines_lost > 0
