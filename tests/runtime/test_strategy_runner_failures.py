"""What is a failure and what is not: real-time restart backoff (C3), refused orders (point 16)."""

from __future__ import annotations

from decimal import Decimal

import attrs
import trio
from trio.testing import MockClock

import trading
from tests.conftest import T0, EventLog
from trading import StrategyState as S
from trading.core import events as ev

BAR = 15 * 60


@attrs.define
class AlwaysFails(trading.Strategy):
    interval = "1m"

    async def next(self, ctx: trading.Context) -> None:
        raise RuntimeError("broken every time")


async def test_restart_backoff_counts_real_seconds_not_the_compressed_clock(
    clock: MockClock, events: EventLog
) -> None:
    # 900x: a 15-minute bar passes in one second. The backoff (1, 2, 4 s) must not shrink with it.
    fast = trading.VirtualClock(start=T0, speed=900)
    policy = trading.RestartPolicy(max_restarts=50, initial_delay=1, max_delay=60, factor=2)
    async with trading.Runner(clock=fast, publish=events, restart_policy=policy) as runner:
        sr = await runner.add(AlwaysFails(), name="f")
        await trio.sleep(3.5)  # failed at 0, restarted at 1 and at 3 (real seconds)
        assert len(events.of(ev.StrategyFailed, "f")) == 3
        assert sr.state is S.RESTARTING
        assert "restart in 3.5s" in sr.describe()  # the third delay is 4 s, 0.5 s of it gone
        await trio.sleep(60)  # failures at 0, 1, 3, 7, 15, 31, 63 s: seven, not thousands
        assert len(events.of(ev.StrategyFailed, "f")) == 7
        await runner.send("stop f")


@attrs.define
class Buyer(trading.Strategy):
    """Buys ``quantity`` at every compute; counts computes."""

    interval = "15m"
    quantity: Decimal = attrs.field(default=Decimal("0.01"), converter=Decimal)
    computes: int = attrs.field(default=0, init=False)

    async def next(self, ctx: trading.Context) -> None:
        self.computes += 1
        await ctx.buy(self.quantity)


async def _refused_orders_do_not_end_the_run(
    runner: trading.Runner, events: EventLog, command: str, reason: str, refused: int
) -> None:
    sr = await runner.add(Buyer(), name="b")
    # reduce-only lands during the first compute, before its buy; a set waits for its end
    (reply,) = await runner.send(command)
    assert reply.ok, reply
    await trio.sleep(3 * BAR + 1)
    assert sr.state is S.SLEEPING
    assert sr.strategy.computes == 4  # type: ignore[attr-defined]  # goes on at each bar
    assert events.of(ev.StrategyFailed) == []  # no failure, no restart, no backoff
    assert sr.failures == 0 and sr.last_error is None
    rejected = [e for e in events.of(ev.OrderRejected, "b") if isinstance(e, ev.OrderRejected)]
    assert len(rejected) == refused and all(reason in e.reason for e in rejected)


async def test_reduce_only_before_a_buy_signal_does_not_end_the_run(
    clock: MockClock, runner: trading.Runner, events: EventLog
) -> None:
    await _refused_orders_do_not_end_the_run(runner, events, "reduce-only b on", "reduce-only", 4)


async def test_an_unaffordable_quantity_does_not_end_the_run(
    clock: MockClock, runner: trading.Runner, events: EventLog
) -> None:
    await _refused_orders_do_not_end_the_run(runner, events, "set b quantity=1e9", "balance", 3)


async def test_a_removed_strategy_is_not_kept_alive_by_its_logger_or_its_account(
    clock: MockClock, runner: trading.Runner
) -> None:
    import gc
    import logging
    import weakref

    sr = await runner.add(Buyer(), name="gone")
    assert sr.account is not None and sr.account.on_kill is not None
    refs = [weakref.ref(sr), weakref.ref(sr.strategy)]
    (reply,) = await runner.send("status gone")  # the logger and the account were both used
    assert reply.ok
    await runner.remove("gone")
    del sr, reply
    gc.collect()
    assert [r() for r in refs] == [None, None]
    logger = logging.getLogger("trading.strategy.gone")
    assert logger.handlers == [] and logger.filters == []
