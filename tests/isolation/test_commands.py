"""An isolated strategy answers commands exactly as the same strategy in-process does."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import trio

import trading
from tests.isolation.helpers import Watched, isolated_children, real_time_runner, until_gone
from tests.isolation.strategies import Trader
from trading.core.events import OrderFilled, OrderSubmitted
from trading.isolation import is_isolated, isolate


async def scenario(isolated: bool) -> dict[str, Any]:
    """add (computes on start: buys, then sleeps long) -> pause mid-compute -> set -> resume ->
    wake (buys) -> a custom command -> stop; everything the operator and the audit saw."""
    watched = Watched()
    strategy: trading.Strategy = Trader(sleep=60.0)
    if isolated:
        strategy = isolate(strategy)
    async with real_time_runner(watched) as runner:
        sr = await runner.add(strategy, name="t")
        pid = sr.strategy.child.pid if isolated else None  # type: ignore[attr-defined]
        if pid is not None:  # its own session: a Ctrl-C at the terminal reaches the parent only
            assert os.getsid(pid) == pid != os.getsid(0)
        await watched.until(lambda: len(watched.of(OrderFilled, "t")) == 1)
        await watched.until(lambda: sr.state is trading.StrategyState.COMPUTING)
        with trio.fail_after(5):  # the pause lands mid-compute (next() sleeps 60 s)
            await runner.send("pause t")
            await runner.send("set t sleep=0 qty=0.002")
            await runner.send("resume t")
            await runner.send("wake t")
        await watched.until(lambda: len(watched.of(OrderFilled, "t")) == 2)
        await watched.until(lambda: sr.state is trading.StrategyState.SLEEPING)
        with trio.fail_after(5):
            await runner.send("ping t")
            await runner.send("set t qty=-1 nosuch=2")
            [stop] = await runner.send("stop t")
        assert stop.ok, stop
        if pid is not None:
            await until_gone(pid, 5)  # the child is gone once the stop answered
            assert not isolated_children()
        engine = runner.engine
        assert engine is not None
        position = engine.account("t").position("BTCUSDT").quantity
    return {
        "replies": watched.replies("t"),
        "states": watched.states("t"),
        "submitted": len(watched.of(OrderSubmitted, "t")),
        "filled": [e.quantity for e in watched.of(OrderFilled, "t")],
        "position": position,
        "computes": sr.computes,
    }


async def test_isolated_strategy_has_the_same_replies_and_events_as_in_process() -> None:
    inside = await scenario(isolated=False)
    outside = await scenario(isolated=True)
    assert outside == inside
    verbs = [command.split()[0] for command, _, _ in inside["replies"]]
    assert verbs == ["pause", "set", "resume", "wake", "ping", "set", "stop"]
    assert inside["replies"][4] == ("ping t", True, "pong qty=0.002")  # the child saw the set
    assert inside["filled"] == [Decimal("0.001"), Decimal("0.002")]
    assert inside["position"] == Decimal("0.003")
    assert ("computing", "paused") in inside["states"]


async def test_isolate_keeps_parameters_and_is_idempotent() -> None:
    proxy = isolate(Trader(qty=Decimal("0.5"), sleep=1.0))
    assert is_isolated(proxy) and isolate(proxy) is proxy
    assert isinstance(proxy, Trader)
    assert (proxy.qty, proxy.sleep) == (Decimal("0.5"), 1.0)  # type: ignore[attr-defined]
    assert trading.runtime.strategy.inspect_strategy(type(proxy)).name == "trader"
