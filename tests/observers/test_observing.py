"""Observers attached once to the Runner: every order event reaches the log, the database and the
notifier without strategy code, and a slow observer never slows trading or commands."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import attrs
import pytest
import trio
from trio.testing import MockClock

import trading
from tests.conftest import EventLog, sim
from trading.core import events as ev
from trading.observers.log import LogObserver
from trading.observers.notifier import ConsoleNotifier
from trading.observers.recorder import Recorder

BAR = 15 * 60


@attrs.define
class BuyOnce(trading.Strategy):
    """Only calls ctx.buy: everything else must happen by itself."""

    async def next(self, ctx: trading.Context) -> None:
        if ctx.computes == 0:
            await ctx.buy("0.01")


@attrs.define
class Churn(trading.Strategy):
    """Trades every bar, so events keep coming."""

    interval = "1m"

    async def next(self, ctx: trading.Context) -> None:
        if ctx.position().quantity:
            await ctx.sell(ctx.position().quantity)
        else:
            await ctx.buy("0.001")


class SlowRecorder(Recorder):
    """A recorder on a very slow disk: each batch takes a whole (virtual) second.

    It writes inline rather than in a worker thread: under the autojumping mock clock a thread
    looks like idleness, and the clock would jump past every deadline while SQLite works.
    """

    async def handle(self, batch: Sequence[tuple[int, ev.Event]]) -> None:
        await trio.sleep(1)
        self.write(batch)


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql))


async def test_a_strategy_that_only_buys_is_logged_recorded_and_notified(
    clock: MockClock,
    vclock: trading.VirtualClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = tmp_path / "run.db"
    notes: list[str] = []
    observers = [LogObserver(), Recorder(db), ConsoleNotifier(notes.append)]
    caplog.set_level(logging.INFO, logger="trading.observers.log")
    async with trading.Runner(clock=vclock, observers=observers, **sim(vclock)) as runner:
        await runner.add(BuyOnce(), name="b")
        await trio.sleep(1)
    assert any("b: buy 0.01 BTCUSDT @ " in r.getMessage() for r in caplog.records)
    assert rows(db, "SELECT strategy, side, state FROM orders") == [("b", "buy", "filled")]
    assert len(rows(db, "SELECT * FROM fills WHERE strategy = 'b'")) == 1
    assert any(note.startswith("b: buy 0.01 BTCUSDT @ ") for note in notes)


async def test_slow_recorder_delays_no_command_and_loses_nothing(
    clock: MockClock, vclock: trading.VirtualClock, tmp_path: Path, events: EventLog
) -> None:
    db = tmp_path / "slow.db"
    async with trading.Runner(
        clock=vclock, publish=events, observers=[SlowRecorder(db)], **sim(vclock)
    ) as runner:
        sr = await runner.add(Churn(), name="c")
        # 30 one-minute bars of trading, then half a second into the recorder's next write
        await trio.sleep(30 * 60 + 0.5)
        assert runner.bus.statistics()["recorder"].pending > 0
        sent_at = trio.current_time()
        (reply,) = await runner.send("pause c")
        assert reply.ok and trio.current_time() == sent_at  # same virtual instant
        assert sr.state is trading.StrategyState.PAUSED
    # leaving the Runner drained the recorder: every published event is in the database
    recorded = rows(db, "SELECT COUNT(*) FROM events")[0][0]
    assert recorded == len(events)
    fills = [e for e in events if isinstance(e, ev.OrderFilled)]
    assert len(fills) >= 30 and len(rows(db, "SELECT * FROM fills")) == len(fills)


async def test_stop_flushes_the_recorder_before_replying(
    clock: MockClock, vclock: trading.VirtualClock, tmp_path: Path, events: EventLog
) -> None:
    db = tmp_path / "flush.db"
    async with trading.Runner(
        clock=vclock, publish=events, observers=[SlowRecorder(db)], **sim(vclock)
    ) as runner:
        await runner.add(Churn(), name="c")
        await trio.sleep(10 * 60)
        (reply,) = await runner.send("stop c")
        assert reply.ok
        # on disk: everything published before the flush; after it came only the state change
        # to stopped and the audit of this very command
        assert [type(e).__name__ for e in events[-2:]] == ["StrategyStateChanged", "CommandHandled"]
        assert rows(db, "SELECT COUNT(*) FROM events")[0][0] == len(events) - 2


class StuckNotifier(ConsoleNotifier):
    """A notifier whose sink never returns (a chat API that hangs): lossy, so it must not
    delay anything."""

    async def handle(self, batch: Sequence[tuple[int, ev.Event]]) -> None:
        await trio.sleep_forever()


async def test_a_stuck_notifier_delays_no_stop_and_the_recorder_is_still_flushed(
    clock: MockClock, vclock: trading.VirtualClock, tmp_path: Path, events: EventLog
) -> None:
    db = tmp_path / "stuck.db"
    notes: list[str] = []
    observers = [SlowRecorder(db), StuckNotifier(notes.append)]
    async with trading.Runner(
        clock=vclock, publish=events, observers=observers, **sim(vclock)
    ) as runner:
        await runner.add(Churn(), name="c")
        await runner.add(Churn(), name="d")
        await trio.sleep(10 * 60 + 0.5)
        assert runner.bus.statistics()["recorder"].pending > 0  # mid-write: the recorder lags
        before_stop = len(events)
        sent_at = trio.current_time()
        (reply,) = await runner.send("stop c")
        assert reply.ok
        # the slow recorder's write (1 s per batch) is waited for; the stuck notifier is not
        assert trio.current_time() - sent_at <= 3
        assert rows(db, "SELECT COUNT(*) FROM events")[0][0] >= before_stop
        (status,) = await runner.send("status d")  # commands answer at once, too
        assert status.ok and trio.current_time() - sent_at <= 3
        assert runner.bus.statistics()["console"].pending > 0  # still stuck
    assert notes == []
