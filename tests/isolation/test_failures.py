"""A child that hogs the CPU, dies or breaks its channel is a strategy failure, restarted with the
usual backoff; the parent, the other strategies and the orders are unaffected."""

from __future__ import annotations

import os
import signal
from decimal import Decimal

import psutil
import trio

import trading
from tests.isolation.helpers import Watched, gone, isolated_children, real_time_runner, until_gone
from tests.isolation.strategies import Garbage, Trader
from trading.core.events import OrderFilled, OrderSubmitted, StrategyFailed
from trading.isolation import isolate
from trading.isolation.proxy import IsolatedStrategy

S = trading.StrategyState


def child_pid(runner: trading.Runner, name: str) -> int:
    strategy = runner[name].strategy
    assert isinstance(strategy, IsolatedStrategy) and strategy.child is not None
    return strategy.child.pid


async def test_a_cpu_hog_is_killed_at_the_cancel_deadline_then_fails_and_restarts() -> None:
    watched = Watched()
    async with real_time_runner(watched) as runner:
        hog = isolate(Trader(buy=False, spin=30.0), cancel_deadline=0.3)
        await runner.add(hog, name="hog")
        first = child_pid(runner, "hog")
        await watched.until(lambda: runner["hog"].state is S.COMPUTING)
        with trio.fail_after(5):  # answered at the deadline, not after the 30 s spin
            [reply] = await runner.send("pause hog")
        assert reply.ok and reply.message.startswith("paused"), reply  # as in-process
        assert gone(first)  # killed and reaped before the pause was answered
        assert runner["hog"].state is S.PAUSED and not watched.of(StrategyFailed)
        # its next compute is the failure: reported, backed off, restarted in a new process
        await runner.send("resume hog")
        await runner.send("wake hog")
        await watched.until(lambda: bool(watched.of(StrategyFailed, "hog")))
        [failed] = watched.of(StrategyFailed, "hog")
        assert failed.phase == "next"
        assert failed.error == (
            "ChildUnresponsive: child did not yield within 0.3s of a cancel; killed"
        )
        assert failed.restart_in is not None
        await watched.until(lambda: runner["hog"].restarts == 1)
        await watched.until(lambda: runner["hog"].state is S.COMPUTING)  # hogging again
        second = child_pid(runner, "hog")
        assert second != first
        with trio.fail_after(5):
            [stop] = await runner.send("stop hog")
        assert stop.ok, stop
        assert gone(second)
    assert not isolated_children()


async def test_kill_9_of_a_child_is_a_failure_naming_sigkill_and_loses_no_order() -> None:
    watched = Watched()
    async with real_time_runner(watched, initial_delay=0.3) as runner:
        await runner.add(isolate(Trader(sleep=60.0)), name="victim")
        await runner.add(isolate(Trader(sleep=0.0)), name="other")
        await runner.add(Trader(sleep=0.0), name="inproc")
        other = child_pid(runner, "other")
        await watched.until(lambda: len(watched.of(OrderFilled, "victim")) == 1)
        await watched.until(lambda: runner["victim"].state is S.COMPUTING)
        victim = child_pid(runner, "victim")
        os.kill(victim, signal.SIGKILL)  # mid-compute: next() sleeps 60 s after its buy
        await watched.until(lambda: bool(watched.of(StrategyFailed, "victim")))
        [failed] = watched.of(StrategyFailed, "victim")
        assert failed.error == "ChildDied: child killed by SIGKILL"
        assert failed.restart_in is not None and failed.restart_in >= 0.3
        assert gone(victim)
        # restarted after the backoff: a new process, which computes on start (a second buy)
        await watched.until(lambda: len(watched.of(OrderFilled, "victim")) == 2)
        assert child_pid(runner, "victim") not in (victim, other)
        # the others never noticed
        assert not watched.of(StrategyFailed, "other") and not watched.of(StrategyFailed, "inproc")
        assert runner["other"].state is S.SLEEPING and runner["inproc"].state is S.SLEEPING
        assert child_pid(runner, "other") == other and psutil.pid_exists(other)
        [ping] = await runner.send("ping other")
        assert ping.ok and ping.message == "pong qty=0.001"
        # no order lost or duplicated: one submit per buy, distinct ids, all at the engine
        submitted = watched.of(OrderSubmitted, "victim")
        ids = {e.client_order_id for e in submitted}
        assert len(submitted) == len(ids) == 2
        engine = runner.engine
        assert engine is not None
        assert engine.account("victim").position("BTCUSDT").quantity == Decimal("0.002")
        results = await runner.stop_all()
        assert all(r.ok for r in results), results
    assert not isolated_children()


async def test_garbage_on_the_childs_channel_is_a_failure_and_the_parent_goes_on() -> None:
    watched = Watched()
    async with real_time_runner(watched, max_restarts=0) as runner:
        await runner.add(isolate(Trader()), name="fine")
        for kind in ("huge", "code", "cut", "exit"):
            await runner.add(isolate(Garbage(kind=kind)), name=kind)
        await watched.until(lambda: len(watched.of(StrategyFailed)) == 4)
        errors = {e.strategy: e.error for e in watched.of(StrategyFailed)}
        assert errors["huge"].startswith("ChildDied: child sent a malformed frame: frame of")
        assert "over the" in errors["huge"]
        assert errors["code"] == (
            "ChildDied: child sent a malformed frame: frame names posix.system; "
            "only plain data may cross to the parent"
        )
        assert errors["cut"].startswith("ChildDied: child sent a malformed frame: channel closed")
        assert errors["exit"] == "ChildDied: child exited with status 3"
        assert runner["fine"].state is S.SLEEPING
        [ping] = await runner.send("ping fine")
        assert ping.ok
    assert not isolated_children()


async def test_a_child_killed_between_computes_fails_at_its_next_call() -> None:
    watched = Watched()
    async with real_time_runner(watched) as runner:
        sr = await runner.add(isolate(Trader(buy=False)), name="t")
        await watched.until(lambda: sr.computes == 1 and sr.state is S.SLEEPING)
        pid = child_pid(runner, "t")
        os.kill(pid, signal.SIGKILL)
        await until_gone(pid)
        assert sr.state is S.SLEEPING  # nothing runs in the child while it sleeps: not noticed
        await runner.send("wake t")
        await watched.until(lambda: bool(watched.of(StrategyFailed, "t")))
        [failed] = watched.of(StrategyFailed, "t")
        assert (failed.phase, failed.error) == ("next", "ChildDied: child killed by SIGKILL")
        await watched.until(lambda: sr.computes == 2)  # restarted: a new child computes
        assert child_pid(runner, "t") != pid
