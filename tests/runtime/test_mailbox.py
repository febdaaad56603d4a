"""The mailbox: a real bound (point 10), what interrupts a custom command (point 11), status."""

from __future__ import annotations

import functools
import logging

import attrs
import pytest
import trio
import trio.testing
from trio.testing import MockClock

import trading
from trading import StrategyState as S

CAPACITY = 16  # StrategyRunner's default command_buffer, as the Runner builds it


@attrs.define
class Slow(trading.Strategy):
    """next() takes `work` seconds; the custom `note` takes `note_work` seconds."""

    interval = "15m"
    custom_commands = {"note": "note NAME TEXT"}
    fast: int = 5
    work: float = 600.0
    note_work: float = 100.0
    notes: list[str] = attrs.field(factory=list, init=False)

    async def next(self, ctx: trading.Context) -> None:
        await trio.sleep(self.work)

    async def on_command(self, ctx: trading.Context, command: trading.Command) -> str:
        await trio.sleep(self.note_work)
        self.notes.append(" ".join(command.args))
        return f"noted {len(self.notes)}"


async def computing(runner: trading.Runner, work: float = 600.0) -> trading.StrategyRunner:
    sr = await runner.add(Slow(work=work), name="p")
    await trio.sleep(1)
    assert sr.state is S.COMPUTING
    return sr


async def test_past_the_bound_an_awaiting_sender_waits_and_nothing_piles_up(
    clock: MockClock, runner: trading.Runner
) -> None:
    sr = await computing(runner)
    replies: list[tuple[int, float, str]] = []

    async def send(i: int) -> None:
        (result,) = await runner.send(f"set p fast={i}")
        replies.append((i, trio.current_time(), str(result)))

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for i in range(1, CAPACITY + 4):
            nursery.start_soon(send, i)
            await trio.testing.wait_all_tasks_blocked()
        assert len(sr.machine.queue) == CAPACITY  # the three others wait, held nowhere
        assert replies == []
    # the compute ended at 600 s; every set then applied, in arrival order
    replies.sort()
    assert [r for _, _, r in replies] == [
        f"p: ok: fast: {i - 1 if i > 1 else 5} -> {i}" for i in range(1, CAPACITY + 4)
    ]
    assert {t for _, t, _ in replies} == {start + 599}
    assert isinstance(sr.strategy, Slow) and sr.strategy.fast == CAPACITY + 3


async def test_a_waiting_sender_cancelled_leaves_nothing_queued(
    clock: MockClock, runner: trading.Runner
) -> None:
    sr = await computing(runner)
    for i in range(CAPACITY):
        sr.send_nowait(trading.Command("set", "p", params=(("fast", str(i)),)), lambda r: None)
    with trio.move_on_after(10):
        await sr.send(trading.Command("set", "p", params=(("fast", "99"),)))
    assert len(sr.machine.queue) == CAPACITY
    await trio.sleep(600)
    assert isinstance(sr.strategy, Slow) and sr.strategy.fast == CAPACITY - 1


async def test_stop_gets_past_a_full_mailbox_and_interrupts(
    clock: MockClock, runner: trading.Runner
) -> None:
    sr = await computing(runner)
    for i in range(CAPACITY):
        sr.send_nowait(trading.Command("set", "p", params=(("fast", str(i)),)), lambda r: None)
    before = trio.current_time()
    (result,) = await runner.send("stop p")
    assert result.ok and trio.current_time() == before  # at once, not after the compute
    assert sr.state is S.STOPPED


async def test_send_nowait_past_the_bound_answers_busy_at_once(
    clock: MockClock, runner: trading.Runner
) -> None:
    sr = await computing(runner)
    got: list[trading.CommandResult] = []
    for i in range(CAPACITY + 2):
        sr.send_nowait(trading.Command("set", "p", params=(("fast", str(i)),)), got.append)
    assert [str(r) for r in got] == ["p: error: busy: 16 commands queued for p; retry"] * 2


async def test_send_soon_past_the_bound_answers_busy(
    clock: MockClock, runner: trading.Runner
) -> None:
    sr = await computing(runner)
    for i in range(CAPACITY):
        sr.send_nowait(trading.Command("set", "p", params=(("fast", str(i)),)), lambda r: None)
    got: list[list[trading.CommandResult]] = []
    runner.send_soon("set p fast=7", on_reply=got.append)
    await trio.testing.wait_all_tasks_blocked()
    assert [[str(r) for r in rs] for rs in got] == [
        ["p: error: busy: 16 commands queued for p; retry"]
    ]


async def test_a_thread_send_past_the_bound_answers_busy(
    clock: MockClock, runner: trading.Runner
) -> None:
    sr = await computing(runner, work=1e9)  # the mock clock jumps while the thread runs
    for i in range(CAPACITY):
        sr.send_nowait(trading.Command("set", "p", params=(("fast", str(i)),)), lambda r: None)
    results = await trio.to_thread.run_sync(runner.send_from_thread, "set p fast=7")
    assert [str(r) for r in results] == ["p: error: busy: 16 commands queued for p; retry"]


async def test_an_on_reply_that_raises_is_logged_and_harms_nothing(
    clock: MockClock, runner: trading.Runner, caplog: pytest.LogCaptureFixture
) -> None:
    sr = await runner.add(Slow(work=0), name="p")

    def boom(result: trading.CommandResult) -> None:
        raise RuntimeError("callback bug")

    with caplog.at_level(logging.ERROR):
        sr.send_nowait(trading.Command("pause", "p"), boom)
        await trio.sleep(1)
    assert sr.state is S.PAUSED
    assert "on_reply callback raised" in caplog.text
    (result,) = await runner.send("resume p")
    assert result.ok


# -- point 11: what interrupts a running custom command ------------------------------------------


@pytest.mark.parametrize(
    ("verb", "reply"),
    [
        ("stop", "p: ok: stopped"),
        ("pause", "p: ok: paused (was sleeping)"),
    ],
)
async def test_stop_and_pause_interrupt_a_running_custom_command(
    clock: MockClock, runner: trading.Runner, verb: str, reply: str
) -> None:
    sr = await runner.add(Slow(work=0), name="p")
    replies: dict[str, tuple[float, str]] = {}

    async def send(text: str) -> None:
        (result,) = await runner.send(text)
        replies[text.split()[0]] = (trio.current_time(), str(result))

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send, "note p hello")
        await trio.sleep(10)
        assert sr.machine.running_custom
        nursery.start_soon(send, f"{verb} p")
    assert replies["note"] == (
        start + 10,
        f"p: error: note interrupted by command {verb!r} from api",
    )
    assert replies[verb] == (start + 10, reply)
    assert isinstance(sr.strategy, Slow) and sr.strategy.notes == []


async def _timed_send(
    runner: trading.Runner, replies: dict[str, tuple[float, str]], text: str
) -> None:
    """Send ``text``; record when its reply came and what it said."""
    (result,) = await runner.send(text)
    replies[text] = (trio.current_time(), str(result))


@pytest.mark.parametrize(
    ("verb", "reply"),
    [
        ("set p fast=9", "p: ok: fast: 5 -> 9"),
        ("wake p", "p: ok: waking: next() runs now"),
        ("resume p", "p: ok: not paused (sleeping)"),  # a no-op is answered at once
    ],
)
async def test_set_wake_resume_never_interrupt_a_running_custom_command(
    clock: MockClock, runner: trading.Runner, verb: str, reply: str
) -> None:
    await runner.add(Slow(work=0), name="p")
    replies: dict[str, tuple[float, str]] = {}
    send = functools.partial(_timed_send, runner, replies)

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send, "note p hello")
        await trio.sleep(10)
        nursery.start_soon(send, verb)
    assert replies["note p hello"] == (start + 100, "p: ok: noted 1")
    at = start + 10 if verb == "resume p" else start + 100  # queued behind the custom command
    assert replies[verb] == (at, reply)


async def test_resume_behind_a_paused_custom_command_waits_for_it(
    clock: MockClock, runner: trading.Runner
) -> None:
    sr = await runner.add(Slow(work=0), name="p")
    assert (await runner.send("pause p"))[0].ok
    replies: dict[str, tuple[float, str]] = {}
    send = functools.partial(_timed_send, runner, replies)

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send, "note p x")
        await trio.sleep(10)
        nursery.start_soon(send, "resume p")
    assert replies["note p x"] == (start + 100, "p: ok: noted 1")
    assert replies["resume p"][0] == start + 100
    assert replies["resume p"][1].startswith("p: ok: resumed; next compute at")
    assert sr.state is S.SLEEPING


# -- status shows what is queued ------------------------------------------------------------------


async def test_status_shows_a_set_pending_behind_a_running_custom_command(
    clock: MockClock, runner: trading.Runner
) -> None:
    sr = await runner.add(Slow(work=0), name="p")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(runner.send, "note p x")
        await trio.sleep(1)
        nursery.start_soon(runner.send, "set p fast=7")
        await trio.sleep(1)
        (status,) = await runner.send("status p")
        assert status.message.startswith("sleeping; set pending;")
        assert sr.status()["pending"] == ["set"]
        nursery.cancel_scope.cancel()


async def test_status_shows_a_set_pending_behind_a_compute(
    clock: MockClock, runner: trading.Runner
) -> None:
    sr = await computing(runner)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(runner.send, "set p fast=7")
        await trio.testing.wait_all_tasks_blocked()
        (status,) = await runner.send("status p")
        assert status.message.startswith("computing; set pending;")
        nursery.cancel_scope.cancel()
    assert sr.machine.pending() == ["set pending"]


async def test_status_shows_pause_pending_while_on_start_runs(
    clock: MockClock, runner: trading.Runner
) -> None:
    @attrs.define
    class SlowStart(trading.Strategy):
        async def on_start(self, ctx: trading.Context) -> None:
            await trio.sleep(100)  # only a stop interrupts on_start: a pause waits for it

        async def next(self, ctx: trading.Context) -> None:
            pass

    replies: list[str] = []

    async def pause() -> None:
        (result,) = await runner.send("pause s")
        replies.append(str(result))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: runner.add(SlowStart(), name="s"))
        await trio.sleep(1)
        nursery.start_soon(pause)
        await trio.sleep(1)
        (status,) = await runner.send("status s")
        assert status.message.startswith("starting; pause pending;")
        (wake,) = await runner.send("wake s")  # judged behind the pause: refused, truthfully
        assert str(wake) == "s: error: s is paused; resume it first"
    assert replies == ["s: ok: paused (was starting)"]
    assert runner["s"].state is S.PAUSED
    assert runner["s"].computes == 0  # the compute on start was dropped by the pause
