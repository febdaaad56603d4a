"""The bar schedule under overlaps (point 12) and the bar-close herd (the Runner's scheduler).

No bar is skipped silently: a compute, a custom command, a pause or a failure that overlaps
bar closes either computes the latest passed close at once (busy) or goes back to the schedule
(paused, failed), and every close not computed is reported in a ``BarsSkipped`` event.
"""

from __future__ import annotations

import attrs
import trio
from trio.testing import MockClock

import trading
from tests.conftest import T0, EventLog
from trading.core.events import BarsSkipped, CommandHandled

BAR = 15 * 60


@attrs.define
class Slow(trading.Strategy):
    """next() takes ``work`` seconds of the strategy's clock; records the close it computed."""

    interval = "15m"
    compute_on_start = False
    custom_commands = {"chore": "chore NAME: a custom command taking `chore` seconds"}

    work: float = 0.0
    chore: float = 0.0
    closes: list[float | None] = attrs.field(factory=list, init=False)

    async def next(self, ctx: trading.Context) -> None:
        self.closes.append(ctx.bar_close)
        if self.work:
            await trio.sleep(self.work)

    async def on_command(self, ctx: trading.Context, command: trading.Command) -> str:
        await trio.sleep(self.chore)
        return "chore done"


def skipped(events: EventLog) -> list[BarsSkipped]:
    return [e for e in events if isinstance(e, BarsSkipped)]


async def test_a_compute_as_long_as_the_bar_computes_every_close(
    clock: MockClock, runner: trading.Runner, events: EventLog
) -> None:
    strategy = Slow(work=BAR)  # ends exactly on the next close
    await runner.add(strategy, name="s")
    await trio.sleep(8 * BAR + 1)
    assert strategy.closes[:8] == [T0 + k * BAR for k in range(1, 9)]
    assert skipped(events) == []


async def test_an_overrun_computes_the_latest_close_at_once_and_reports_the_rest(
    clock: MockClock, runner: trading.Runner, events: EventLog
) -> None:
    strategy = Slow(work=2.5 * BAR)  # each compute runs past two closes and into a third bar
    await runner.add(strategy, name="s")
    await trio.sleep(BAR + 2.5 * BAR + 1)
    # The first compute (close T0+BAR) ended at T0+3.5 BAR: T0+2 BAR was passed over, T0+3 BAR
    # is computed at once, not at T0+4 BAR.
    assert strategy.closes[:2] == [T0 + BAR, T0 + 3 * BAR]
    (report, *_) = skipped(events)
    assert (report.count, report.first, report.last) == (1, T0 + 2 * BAR, T0 + 2 * BAR)
    assert report.reason.startswith("busy")


async def test_a_custom_command_past_a_close_leaves_that_close_computed_at_once(
    clock: MockClock, runner: trading.Runner, events: EventLog
) -> None:
    strategy = Slow(chore=BAR)
    await runner.add(strategy, name="s")
    await trio.sleep(BAR - 10)  # just before the first close
    (reply,) = await runner.send("chore s")
    assert reply.ok, reply
    await trio.sleep(5)
    assert strategy.closes == [T0 + BAR]  # computed as soon as the chore ended
    assert skipped(events) == []


async def test_closes_passed_while_paused_are_reported_and_resume_keeps_the_schedule(
    clock: MockClock, runner: trading.Runner, events: EventLog
) -> None:
    strategy = Slow()
    await runner.add(strategy, name="s")
    await trio.sleep(BAR + 1)
    assert strategy.closes == [T0 + BAR]
    assert (await runner.send("pause s"))[0].ok
    await trio.sleep(3 * BAR)  # closes T0+2..4 BAR pass while paused
    assert (await runner.send("resume s"))[0].ok
    await trio.sleep(1)
    assert strategy.closes == [T0 + BAR]  # resume goes back to the schedule: no compute now
    (report,) = skipped(events)
    assert (report.count, report.first, report.last) == (3, T0 + 2 * BAR, T0 + 4 * BAR)
    assert report.reason == "paused"
    await trio.sleep(BAR)
    assert strategy.closes == [T0 + BAR, T0 + 5 * BAR]


async def test_a_command_at_a_shared_close_lands_before_the_herd_has_computed(
    clock: MockClock, runner: trading.Runner, events: EventLog
) -> None:
    """The Runner's scheduler wakes the herd a chunk at a time: a pause sent at the close that
    300 strategies share lands after at most a few chunks of their computes, and every other
    strategy still computes that close. (Which of the operator and the herd trio runs first at
    the close is trio's choice; over four closes the unchunked herd is caught either way.)"""
    herd = await runner.add_many((f"h{i}", Slow()) for i in range(300))
    target = herd[-1]  # parked last: the last one an unchunked herd would reach

    def computed() -> int:
        return sum(len(s.strategy.closes) for s in herd)

    behind: list[int] = []
    for k in range(1, 5):
        await runner.clock.sleep_until(T0 + k * BAR)  # the same deadline the scheduler sleeps to
        before = computed()
        (reply,) = await runner.send(f"pause {target.name}")
        behind.append(computed() - before)
        assert reply.ok and reply.state == "paused", reply
        assert (await runner.send(f"resume {target.name}"))[0].ok
        await trio.sleep(1)
        assert [len(s.strategy.closes) for s in herd[:-1]] == [k] * 299
    assert max(behind) <= 4 * 8, behind  # chunks of 8, not the 299 an unchunked herd runs first
    assert [e for e in events if isinstance(e, CommandHandled) and not e.ok] == []
