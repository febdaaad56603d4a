"""Every way a start ends leaves no process; a cancelled compute places no order."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

import trading
from tests.isolation.helpers import Watched, eventually, isolated_children, real_time_runner
from tests.isolation.strategies import LateBuyer, Probe, SlowStart
from trading.core.events import OrderSubmitted
from trading.isolation import isolate
from trading.isolation.framing import FrameReader, dumps, loads_plain
from trading.runtime.strategy import inspect_strategy
from trading.runtime.strategy_runner import StoppedWhileStarting
from trading.serve import _on_symbols


async def test_a_stop_during_on_start_leaves_no_child() -> None:
    watched = Watched()
    async with real_time_runner(watched) as runner:

        async def add() -> None:
            with pytest.raises(StoppedWhileStarting):
                await runner.add(isolate(SlowStart()), name="slow")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(add)
            await eventually(lambda: bool(isolated_children()))  # up, in on_start
            assert "slow" in runner
            with trio.fail_after(10):
                await runner.send("stop slow")
        assert not isolated_children()


class _Seen(logging.Handler):
    """Sets an event when the strategy's log says ``text`` (forwarded from its child)."""

    def __init__(self, text: str, event: trio.Event) -> None:
        super().__init__()
        self.text, self.event = text, event

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == self.text:
            self.event.set()


async def test_a_request_after_the_cancel_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    watched = Watched()
    shielded = trio.Event()
    logging.getLogger("trading.strategy.late").addHandler(_Seen("shielded", shielded))
    with caplog.at_level(logging.INFO, logger="trading.strategy.late"):
        async with real_time_runner(watched) as runner:
            await runner.add(isolate(LateBuyer()), name="late")
            with trio.fail_after(20):
                await shielded.wait()
            with trio.fail_after(5):
                [pause] = await runner.send("pause late")
            assert pause.ok, pause
            assert runner["late"].state is trading.StrategyState.PAUSED
    assert not watched.of(OrderSubmitted, "late")  # the cancelled compute placed no order


async def test_symbols_of_the_run_reach_the_child() -> None:
    spec = _on_symbols(inspect_strategy(Probe), ("ETHUSDT",))
    async with real_time_runner(Watched()) as runner:
        await runner.add(isolate(spec.cls(qty="0.01", limit="1000")), name="p")
        with trio.fail_after(10):
            [probe] = await runner.send("probe p")
    assert probe.ok and probe.message.endswith("'p', ('ETHUSDT',), '1d']"), probe


async def test_a_cancelled_receive_keeps_what_it_read() -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    reader = FrameReader(receive, loads_plain)
    frame = dumps(("hello", 1))
    await send.send_all(frame[:7])
    with trio.move_on_after(0.05) as scope:
        await reader.receive()
    assert scope.cancelled_caught
    await send.send_all(frame[7:])
    with trio.fail_after(5):
        assert await reader.receive() == ("hello", 1)
