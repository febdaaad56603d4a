"""Runner under races: `all` against remove, sends after exit, start-up cancelled or failing,
and a removed strategy that nothing keeps alive."""

from __future__ import annotations

import gc
import threading
import weakref
from decimal import Decimal

import attrs
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from trio.testing import MockClock

import trading
from tests.conftest import T0, EventLog, sim
from trading.exchanges.paper import PaperBroker

NOT_RUNNING = "the Runner is not running"


@attrs.define
class Idle(trading.Strategy):
    interval = "15m"

    async def next(self, ctx: trading.Context) -> None:
        return None


async def checkpoints(n: int) -> None:
    for _ in range(n):
        await trio.lowlevel.checkpoint()


# -- point 13: `all` while a strategy is being removed ---------------------------------------


@given(
    n=st.integers(min_value=2, max_value=5),
    verb=st.sampled_from(["status", "pause", "wake", "stop", "set work=1"]),
    send_after=st.integers(min_value=0, max_value=12),
    remove_after=st.integers(min_value=0, max_value=12),
    victim=st.integers(min_value=0, max_value=4),
    second_remove=st.booleans(),
)
def test_send_to_all_racing_remove_answers_every_strategy(
    n: int, verb: str, send_after: int, remove_after: int, victim: int, second_remove: bool
) -> None:
    @attrs.define
    class Worker(trading.Strategy):
        interval = "15m"
        work: float = 0.0

        async def next(self, ctx: trading.Context) -> None:
            return None

    async def main() -> None:
        vclock = trading.VirtualClock(start=T0)
        async with trading.Runner(clock=vclock, publish=lambda e: None) as runner:
            names = [f"s{i}" for i in range(n)]
            for name in names:
                await runner.add(Worker(), name=name)
            gone = names[victim % n]
            replies: list[trading.CommandResult] = []

            async def send() -> None:
                await checkpoints(send_after)
                replies.extend(
                    await runner.send(f"{verb.split()[0]} all {' '.join(verb.split()[1:])}")
                )

            async def remove(name: str) -> None:
                await checkpoints(remove_after)
                await runner.remove(name)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send)
                nursery.start_soon(remove, gone)
                if second_remove:
                    nursery.start_soon(remove, names[(victim + 1) % n])
            if [r.target for r in replies] == [""]:  # every strategy was already gone
                assert replies[0].message == "no strategies" and not runner.names()
                return
            targets = [r.target for r in replies]
            assert len(targets) == len(set(targets))  # one reply per strategy reached
            assert set(targets) <= set(names)
            missing = set(names) - set(targets)  # only ones already gone when the send began
            assert all(name not in runner for name in missing)
            for reply in replies:
                if reply.state == "removed":
                    assert reply.message == f"{reply.target} was removed" and not reply.ok

    trio.run(main, clock=MockClock(autojump_threshold=0))


# -- point 13: after the Runner exited ----------------------------------------------------------


async def test_sends_after_exit_get_a_clear_error_reply(
    clock: MockClock, vclock: trading.VirtualClock
) -> None:
    async with trading.Runner(clock=vclock) as runner:
        await runner.add(Idle(), name="a")
    (reply,) = await runner.send("status")
    assert not reply.ok and reply.message.startswith(NOT_RUNNING)
    got: list[list[trading.CommandResult]] = []
    runner.send_soon("pause a", on_reply=got.append)
    assert len(got) == 1 and got[0][0].message.startswith(NOT_RUNNING)
    (from_thread,) = await trio.to_thread.run_sync(runner.send_from_thread, "pause a")
    assert not from_thread.ok and from_thread.message.startswith(NOT_RUNNING)
    before = trading.Runner(clock=vclock)  # not entered yet: the same answer
    (early,) = await before.send("status")
    assert early.message.startswith(NOT_RUNNING)


def test_sends_after_the_trio_run_ended_get_a_clear_error_reply() -> None:
    holder: list[trading.Runner] = []

    async def main() -> None:
        async with trading.Runner() as runner:
            holder.append(runner)

    trio.run(main)
    (runner,) = holder
    got: list[list[trading.CommandResult]] = []
    runner.send_soon("stop all", on_reply=got.append)
    assert got and got[0][0].message.startswith(NOT_RUNNING)
    (reply,) = runner.send_from_thread("stop all")
    assert reply.message.startswith(NOT_RUNNING)


async def test_send_soon_racing_the_exit_still_replies(
    clock: MockClock, vclock: trading.VirtualClock
) -> None:
    got: list[list[trading.CommandResult]] = []
    async with trading.Runner(clock=vclock) as runner:
        await runner.add(Idle(), name="a")
        thread = threading.Thread(target=lambda: runner.send_soon("pause a", on_reply=got.append))
        thread.start()
        await trio.to_thread.run_sync(thread.join)
        # leave before the spawned send runs: the reply must still come, not vanish
    await trio.testing.wait_all_tasks_blocked()
    assert len(got) == 1


async def test_an_on_reply_that_raises_is_logged_and_harms_nothing(
    clock: MockClock, runner: trading.Runner, caplog: pytest.LogCaptureFixture
) -> None:
    await runner.add(Idle(), name="a")
    done = trio.Event()

    def bad(results: list[trading.CommandResult]) -> None:
        done.set()
        raise ValueError("callback bug")

    runner.send_soon("pause a", on_reply=bad)
    await done.wait()
    await trio.testing.wait_all_tasks_blocked()
    assert "on_reply callback raised for 'pause a'; ignored" in caplog.text
    (reply,) = await runner.send("resume a")
    assert reply.ok and runner["a"].state is trading.StrategyState.SLEEPING


# -- point 21: start-up cancelled or failing ----------------------------------------------------


class Prices:
    def price(self, symbol: str, t: float) -> float:
        return 60_000.0


@attrs.define
class SlowStart(trading.Strategy):
    """Leaves an order resting, then takes ``delay`` seconds to finish starting."""

    interval = "15m"
    delay: float = 0.0
    log: list[str] = attrs.field(factory=list)

    async def on_start(self, ctx: trading.Context) -> None:
        await ctx.buy("0.01", price=Decimal(50_000))
        await trio.sleep(self.delay)
        self.log.append(f"started {ctx.name}")

    async def next(self, ctx: trading.Context) -> None:
        return None

    async def on_stop(self, ctx: trading.Context) -> None:
        self.log.append(f"on_stop {ctx.name}")


@given(cancel_at=st.floats(min_value=0, max_value=10.5, allow_nan=False))
def test_cancelling_add_many_leaves_nothing_running_and_no_order_resting(cancel_at: float) -> None:
    async def main() -> None:
        vclock = trading.VirtualClock(start=T0)
        broker = PaperBroker(Prices(), vclock)
        log: list[str] = []
        async with trading.Runner(clock=vclock, exchange=broker) as runner:
            with trio.move_on_after(cancel_at) as scope:
                await runner.add_many((f"s{i}", SlowStart(delay=i, log=log)) for i in range(10))
            started = {line.split()[1] for line in log if line.startswith("started")}
            stopped = {line.split()[1] for line in log if line.startswith("on_stop")}
            if not scope.cancelled_caught:  # add_many finished first: all run, nothing stopped
                assert len(started) == 10 and not stopped
                return
            assert started == stopped  # every started one was wound down, on_stop included
            assert not any(not runner[n].finished.is_set() for n in runner.names())
            assert await broker.open_orders() == []
            assert runner._live == set()

    trio.run(main, clock=MockClock(autojump_threshold=0))


async def test_one_failing_on_start_leaves_the_others_started_and_says_which(
    clock: MockClock, runner: trading.Runner
) -> None:
    @attrs.define
    class Picky(trading.Strategy):
        interval = "15m"
        fail: bool = False

        async def on_start(self, ctx: trading.Context) -> None:
            await trio.sleep(1)
            if self.fail:
                raise ValueError(f"{ctx.name} has no API key")

        async def next(self, ctx: trading.Context) -> None:
            return None

    with pytest.raises(trading.StartFailed) as raised:
        await runner.add_many((f"s{i}", Picky(fail=i in (3, 7))) for i in range(10))
    assert set(raised.value.errors) == {"s3", "s7"} and raised.value.started == 8
    assert "s3 (ValueError: s3 has no API key)" in str(raised.value)
    assert sorted(runner.names()) == sorted(f"s{i}" for i in range(10) if i not in (3, 7))
    assert all(runner[n].state is trading.StrategyState.SLEEPING for n in runner.names())


async def test_add_many_freezes_nothing_and_reenables_the_collector(
    clock: MockClock, runner: trading.Runner
) -> None:
    frozen = gc.get_freeze_count()
    await runner.add_many((f"s{i}", Idle()) for i in range(100))
    assert gc.get_freeze_count() == frozen and gc.isenabled()


# -- point 23: a removed strategy is freed ------------------------------------------------------


async def test_a_removed_strategy_is_freed(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog
) -> None:
    @attrs.define
    class Trades(trading.Strategy):
        interval = "1m"

        async def next(self, ctx: trading.Context) -> None:
            if ctx.computes == 0:
                (bar,) = await ctx.history(limit=1)
                await ctx.buy("0.001")
                below = Decimal(str(round(bar.close * 0.95)))
                await ctx.buy("0.001", price=below)  # rests until the stop cancels it
            ctx.log.info("computed")

    async with trading.Runner(clock=vclock, publish=events, **sim(vclock)) as runner:
        sr = await runner.add(Trades(), name="freed_probe")
        await trio.sleep(5 * 60)
        assert (await runner.send("status freed_probe"))[0].ok
        strategy_ref = weakref.ref(sr.strategy)
        del sr
        result = await runner.remove("freed_probe")
        assert result.ok and "cancelled 1 open order" in result.message, result
        gc.collect()
        assert strategy_ref() is None, gc.get_referrers(strategy_ref())
        # StrategyRunner has __slots__ without __weakref__: look for it among live objects
        alive = [
            o
            for o in gc.get_objects()
            if isinstance(o, trading.StrategyRunner) and o.name == "freed_probe"
        ]
        assert alive == [], [gc.get_referrers(o) for o in alive]
        assert "freed_probe" not in runner
