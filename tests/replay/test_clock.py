"""ReplayClock: the fast path moves time only when nothing else is due first."""

from __future__ import annotations

import io
import math

import pytest
import trio
import trio.testing

from tests.replay.helpers import T0, walk
from trading.replay.clock import ReplayClock
from trading.replay.market import BarsMarket
from trading.replay.progress import terminal_progress


def test_reached_moves_to_the_close_and_tells_on_advance() -> None:
    clock = ReplayClock(T0, end=T0 + 600)
    moves: list[float] = []
    clock.on_advance = moves.append
    assert clock.reached(T0)  # already there: no move
    assert clock.reached(T0 + 60) and clock.now() == T0 + 60
    assert clock.reached(T0 + 30)  # in the past
    assert clock.now() == T0 + 60  # never backwards
    assert moves == [T0 + 60]


def test_the_fast_path_stops_at_the_end_and_before_a_barrier() -> None:
    clock = ReplayClock(T0, end=T0 + 300, barriers=[T0 + 120])
    assert clock.reached(T0 + 60)
    assert not clock.reached(T0 + 120)  # a command is due there: it lands first
    assert clock.now() == T0 + 60
    clock.advance_without_waking(T0 + 120)
    clock.passed_barrier()
    assert clock.reached(T0 + 180) and clock.reached(T0 + 300)
    assert not clock.reached(T0 + 360)  # past the last bar
    assert clock.now() == T0 + 300


def test_every_nth_step_yields_to_trio_at_the_same_bar() -> None:
    clock = ReplayClock(T0, checkpoint_every=3)
    results = [clock.reached(T0 + 60 * i) for i in range(1, 8)]
    assert results == [True, True, False, True, True, False, True]


async def test_a_sleeper_holds_the_fast_path_back_until_woken() -> None:
    clock = ReplayClock(T0)
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep_until(T0 + 120)
        woke.append(clock.now())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper)
        await trio.testing.wait_all_tasks_blocked()
        assert clock.next_event() == T0 + 120
        assert clock.reached(T0 + 60)
        assert not clock.reached(T0 + 180)  # would jump over the sleeper
        assert clock.advance(T0 + 120) == 1
    assert woke == [T0 + 120]
    assert clock.next_event() == math.inf and clock.reached(T0 + 180)


async def test_a_cancelled_sleeper_is_forgotten() -> None:
    clock = ReplayClock(T0)
    with trio.move_on_after(0.01):
        await clock.sleep_until(T0 + 60)
    assert clock.next_event() == math.inf
    assert clock.reached(T0 + 600)


def test_history_never_holds_a_bar_that_has_not_closed() -> None:
    bars = walk(10)
    market = BarsMarket(bars)

    async def history(end: float) -> list[float]:
        return [
            b.close_time
            for b in await market.history("BTCUSDT", bars[0].interval, end=end, limit=3)
        ]

    assert trio.run(history, bars[4].close_time - 1) == [b.close_time for b in bars[1:4]]
    assert trio.run(history, bars[4].close_time) == [b.close_time for b in bars[2:5]]
    assert market.price("BTCUSDT", bars[0].open_time) == bars[0].open
    assert market.price("BTCUSDT", bars[3].close_time + 59) == bars[3].close
    with pytest.raises(LookupError, match="no symbol 'ETHUSDT'"):
        market.price("ETHUSDT", T0)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_terminal_bar_draws_only_on_a_terminal_and_ends_its_line() -> None:
    assert terminal_progress(io.StringIO(), 100_000) is None
    assert terminal_progress(Tty(), 100) is None  # too short to be worth it
    stream = Tty()
    draw = terminal_progress(stream, 100_000)
    assert draw is not None
    draw(50_000, 100_000)
    draw(100_000, 100_000)
    text = stream.getvalue()
    assert text.startswith("\rreplay [") and " 50%" in text and text.endswith("100,000 bars\n")


def test_outside_a_kernel_there_is_no_notebook_bar() -> None:
    from trading.replay.progress import default_progress, notebook_progress

    assert notebook_progress(100_000) is None
    assert default_progress(io.StringIO(), 100_000) is None
    forced = default_progress(io.StringIO(), 10, force=True)
    assert forced is not None


def test_a_held_close_stays_unreached_until_the_driver_moves_there() -> None:
    clock = ReplayClock(T0, checkpoint_every=2)
    assert clock.reached(T0 + 60)
    assert not clock.reached(T0 + 120)  # the yield
    assert not clock.reached(T0 + 120)  # asked again (the loop does): still no
    clock.advance(T0 + 120)
    assert clock.reached(T0 + 120) and clock.reached(T0 + 180)
