"""What ``ctx`` shows in the child, and how errors cross: as in-process."""

from __future__ import annotations

import logging

import pytest
import trio

import trading
from tests.isolation.helpers import Watched, real_time_runner
from tests.isolation.strategies import Probe, Trader
from trading.core.events import OrderFilled
from trading.isolation import isolate
from trading.isolation.serving import serve_request


async def replies(isolated: bool) -> list[tuple[bool, str]]:
    out = []
    strategy: trading.Strategy = isolate(Probe()) if isolated else Probe()
    async with real_time_runner(Watched()) as runner:
        await runner.add(strategy, name="p")
        with trio.fail_after(10):
            for text in ("probe p", "oops p x", "crash p", "where p"):
                [result] = await runner.send(text)
                out.append((result.ok, result.message))
            [now] = await runner.send("now p")
        assert abs(float(now.message) - runner.clock.now()) < 5.0
    return out


async def test_ctx_and_errors_in_the_child_read_as_in_process() -> None:
    inside = await replies(isolated=False)
    outside = await replies(isolated=True)
    assert outside == inside
    probe, oops, crash, where = inside
    assert where == (True, "thread here True; process here False")
    assert probe == (
        True,
        "[5, True, 'filled', '0.001', True, 'cancelled', [], 'OrderRefused: insufficient "
        "balance: selling 5 BTC, free 0.001 BTC', 'p', ('BTCUSDT',), '1d']",
    )
    assert oops == (False, "no such thing as ('x',)")  # a ValueError: the reply is its text
    assert crash == (False, "KeyError: 'k'")


async def test_ctx_log_reaches_the_parents_logger(caplog: pytest.LogCaptureFixture) -> None:
    watched = Watched()
    with caplog.at_level(logging.INFO, logger="trading.strategy.t"):
        async with real_time_runner(watched) as runner:
            await runner.add(isolate(Trader()), name="t")
            await watched.until(lambda: bool(watched.of(OrderFilled, "t")))
            await watched.until(lambda: runner["t"].state is trading.StrategyState.SLEEPING)
    [record] = [r for r in caplog.records if r.name == "trading.strategy.t"]
    assert record.getMessage().startswith("bought tt-t-000001-")
    assert record.getMessage().endswith("position 0.001")  # position() saw the buy at once


async def test_the_parent_serves_only_the_context_methods() -> None:
    async with real_time_runner(Watched()) as runner:
        sr = await runner.add(Trader(buy=False), name="t")
        assert sr.ctx is not None
        assert await serve_request(sr.ctx, "__init__", (), {}) == (
            False,
            ("ValueError", "the strategy's process asked for unknown '__init__'"),
        )
        assert await serve_request(sr.ctx, "buy", ["1"], {}) == (
            False,
            ("TypeError", "buy: malformed arguments from the strategy's process"),
        )
        ok, (bars, snapshot) = await serve_request(sr.ctx, "history", (None,), {"limit": 2})
        assert ok and len(bars) == 2 and set(snapshot) == {"positions", "open_orders"}
