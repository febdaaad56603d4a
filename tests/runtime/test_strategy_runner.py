"""StrategyRunner: phases, commands in every phase, failures and restarts, on_stop guarantees."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.lowlevel
from trio.testing import MockClock

import trading
from tests.conftest import T0, EventLog, sim
from trading import StrategyState as S
from trading.core.events import CommandHandled, StrategyFailed, StrategyStateChanged
from trading.runtime.strategy_runner import StoppedWhileStarting

BAR = 15 * 60


@attrs.define
class Probe(trading.Strategy):
    """Records when it computes; next() takes `work` virtual seconds."""

    interval = "15m"
    custom_commands = {"note": "note NAME TEXT: remember TEXT"}

    fast: int = attrs.field(default=5, validator=attrs.validators.gt(0))
    slow: int = 20
    work: float = 0.0
    fail_on: int = -1  # raise on this compute number (1-based), -1 never
    computes: list[float] = attrs.field(factory=list, init=False)
    seen_fast: list[int] = attrs.field(factory=list, init=False)
    notes: list[str] = attrs.field(factory=list, init=False)
    stopped: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be below slow ({self.slow})")

    async def next(self, ctx: trading.Context) -> None:
        self.computes.append(ctx.now)
        self.seen_fast.append(self.fast)
        if len(self.computes) == self.fail_on:
            raise RuntimeError("boom")
        if self.work:
            await trio.sleep(self.work)

    async def on_command(self, ctx: trading.Context, command: trading.Command) -> str:
        if command.args == ("bad",):
            raise ValueError("bad note")
        self.notes.append(" ".join(command.args))
        return f"noted {len(self.notes)}"

    async def on_stop(self, ctx: trading.Context) -> None:
        self.stopped += 1


async def one(runner: trading.Runner, text: str) -> trading.CommandResult:
    (result,) = await runner.send(text)
    return result


async def in_phase(runner: trading.Runner, phase: str, **params: object) -> trading.StrategyRunner:
    """A Probe named `p`, brought into `phase` (sleeping, computing or paused)."""
    work = 600.0 if phase == "computing" else 0.0
    sr = await runner.add(Probe(work=work, **params), name="p")  # type: ignore[arg-type]
    await trio.sleep(1)
    if phase == "paused":
        assert (await one(runner, "pause p")).ok
    assert sr.state.value == phase
    return sr


async def test_schedule_computes_on_start_then_at_each_bar_close(
    clock: MockClock, runner: trading.Runner
) -> None:
    sr = await runner.add(Probe(), name="p")
    await trio.sleep(3 * BAR + 1)
    probe = sr.strategy
    assert isinstance(probe, Probe)
    assert probe.computes == [T0, T0 + BAR, T0 + 2 * BAR, T0 + 3 * BAR]
    assert sr.state is S.SLEEPING


@pytest.mark.parametrize("phase", ["sleeping", "computing", "paused"])
async def test_status_answers_without_interrupting(
    clock: MockClock, runner: trading.Runner, phase: str
) -> None:
    sr = await in_phase(runner, phase)
    before = trio.current_time()
    result = await one(runner, "status p")
    assert result.ok and result.state == phase and result.message.startswith(phase)
    assert "fast=5" in result.message
    assert trio.current_time() == before
    assert sr.state.value == phase


@pytest.mark.parametrize(
    ("phase", "message"),
    [
        ("sleeping", "paused (was sleeping)"),
        ("computing", "paused (was computing); next() was interrupted"),
        ("paused", "already paused"),
    ],
)
async def test_pause(clock: MockClock, runner: trading.Runner, phase: str, message: str) -> None:
    sr = await in_phase(runner, phase)
    before = trio.current_time()
    result = await one(runner, "pause p")
    assert (result.ok, result.message) == (True, message)
    assert trio.current_time() == before  # lands at once, even mid-compute
    await trio.lowlevel.checkpoint()
    assert sr.state is S.PAUSED
    await trio.sleep(5 * BAR)  # paused means no computes at bar closes
    assert isinstance(sr.strategy, Probe) and len(sr.strategy.computes) == 1


@pytest.mark.parametrize("phase", ["sleeping", "computing", "paused"])
async def test_resume(clock: MockClock, runner: trading.Runner, phase: str) -> None:
    sr = await in_phase(runner, phase)
    result = await one(runner, "resume p")
    assert result.ok
    if phase == "paused":
        assert result.message == "resumed; next compute at 00:15:00 UTC"
        await trio.lowlevel.checkpoint()
        assert sr.state is S.SLEEPING
        await trio.sleep(BAR)
        assert isinstance(sr.strategy, Probe) and sr.strategy.computes[-1] == T0 + BAR
    else:
        assert result.message == f"not paused ({phase})"
        assert sr.state.value == phase


@pytest.mark.parametrize("phase", ["sleeping", "computing", "paused"])
async def test_wake(clock: MockClock, runner: trading.Runner, phase: str) -> None:
    sr = await in_phase(runner, phase)
    probe = sr.strategy
    assert isinstance(probe, Probe)
    before = trio.current_time()
    result = await one(runner, "wake p")
    if phase == "sleeping":
        assert (result.ok, result.message) == (True, "waking: next() runs now")
        await trio.lowlevel.checkpoint()
        assert probe.computes == [T0, T0 + 1]  # ran now, not at the bar close
        assert trio.current_time() == before
        await trio.sleep(BAR)  # and the bar schedule goes on
        assert probe.computes == [T0, T0 + 1, T0 + BAR]
    elif phase == "computing":
        assert (result.ok, result.message) == (True, "already computing")
        assert sr.state is S.COMPUTING
    else:
        assert not result.ok and result.message == "p is paused; resume it first"
        assert sr.state is S.PAUSED and probe.computes == [T0]


@pytest.mark.parametrize("phase", ["sleeping", "computing", "paused"])
async def test_set_applies_between_phases(
    clock: MockClock, runner: trading.Runner, phase: str
) -> None:
    sr = await in_phase(runner, phase)
    probe = sr.strategy
    assert isinstance(probe, Probe)
    before = trio.current_time()
    result = await one(runner, "set p fast=7 slow=30")
    assert (result.ok, result.message) == (True, "fast: 5 -> 7, slow: 20 -> 30")
    assert (probe.fast, probe.slow) == (7, 30)
    if phase == "computing":
        # not interrupted: the reply came when next() ended, 600 s after it began
        assert trio.current_time() == before + 599  # began 1 s before `in_phase` returned
        assert probe.seen_fast == [5]
    else:
        assert trio.current_time() == before
    assert sr.state.value == ("sleeping" if phase == "computing" else phase)
    if phase != "paused":
        await trio.sleep(BAR)
        assert probe.seen_fast[-1] == 7
        assert probe.computes[1] == T0 + BAR  # the sleep kept its deadline


async def test_set_during_sleep_keeps_the_deadline(
    clock: MockClock, runner: trading.Runner
) -> None:
    sr = await runner.add(Probe(), name="p")
    await trio.sleep(100)
    assert (await one(runner, "set p fast=6")).ok
    await trio.sleep(BAR - 100 - 1)
    assert isinstance(sr.strategy, Probe) and len(sr.strategy.computes) == 1
    await trio.sleep(2)
    assert sr.strategy.computes == [T0, T0 + BAR]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("set p fast=abc", "set: fast: 'abc' is not a valid int"),
        ("set p fast=0", "set: rejected: 'fast' must be > 0"),
        ("set p fast=30", "set: rejected: fast (30) must be below slow (20)"),
        ("set p nope=1", "set: unknown parameter 'nope'; parameters: fast, slow, work, fail_on"),
        ("set p fast=6 slow=x", "set: slow: 'x' is not a valid int"),
    ],
)
@pytest.mark.parametrize("phase", ["sleeping", "computing", "paused"])
async def test_bad_set_is_refused_at_once_and_changes_nothing(
    clock: MockClock, runner: trading.Runner, phase: str, text: str, error: str
) -> None:
    sr = await in_phase(runner, phase)
    before = trio.current_time()
    result = await one(runner, text)
    assert not result.ok and result.message.startswith(error), result.message
    assert trio.current_time() == before
    assert isinstance(sr.strategy, Probe)
    assert (sr.strategy.fast, sr.strategy.slow) == (5, 20)
    assert sr.state.value == phase


@pytest.mark.parametrize("phase", ["sleeping", "computing", "paused"])
async def test_stop_runs_on_stop_and_ends_the_tasks(
    clock: MockClock, runner: trading.Runner, phase: str
) -> None:
    sr = await in_phase(runner, phase)
    before = trio.current_time()
    result = await one(runner, "stop p")
    assert (result.ok, result.message, result.state) == (True, "stopped", "stopped")
    assert trio.current_time() == before
    assert sr.state is S.STOPPED and sr.finished.is_set()
    assert isinstance(sr.strategy, Probe) and sr.strategy.stopped == 1
    again = await one(runner, "stop p")
    assert (again.ok, again.message) == (True, "already stopped")
    refused = await one(runner, "pause p")
    assert not refused.ok and refused.message == "p is stopped"


async def test_command_during_a_15_minute_sleep_lands_with_zero_virtual_time(
    clock: MockClock, runner: trading.Runner, events: EventLog
) -> None:
    sr = await runner.add(Probe(), name="p")
    await trio.sleep(60)
    assert sr.state is S.SLEEPING and sr.clock.now() == T0 + 60
    sent_at = trio.current_time()
    result = await one(runner, "pause p")
    assert result.ok and trio.current_time() == sent_at
    paused = [e for e in events.of(StrategyStateChanged, "p") if e.new == "paused"]  # type: ignore[attr-defined]
    assert [e.time for e in paused] == [T0 + 60]


@pytest.mark.parametrize("phase", ["sleeping", "paused"])
async def test_custom_command(clock: MockClock, runner: trading.Runner, phase: str) -> None:
    sr = await in_phase(runner, phase)
    result = await one(runner, "note p hello world")
    assert (result.ok, result.message) == (True, "noted 1")
    assert isinstance(sr.strategy, Probe) and sr.strategy.notes == ["hello world"]
    bad = await one(runner, "note p bad")
    assert not bad.ok and bad.message == "bad note"
    assert sr.state.value == phase


async def test_every_command_is_audited(
    clock: MockClock, runner: trading.Runner, events: EventLog
) -> None:
    await runner.add(Probe(), name="p")
    texts = ["status", "pause p", "resume p", "wake p", "set p fast=6", "frobnicate", "stop q"]
    for text in texts:
        await runner.send(text, source="test")
    audited = events.of(CommandHandled)
    assert [e.command for e in audited] == texts  # type: ignore[attr-defined]
    assert all(e.source == "test" for e in audited)  # type: ignore[attr-defined]
    assert [e.ok for e in audited] == [True, True, True, True, True, False, False]  # type: ignore[attr-defined]


async def test_failure_restarts_with_backoff_and_others_keep_their_schedule(
    clock: MockClock, runner: trading.Runner, events: EventLog
) -> None:
    healthy = await runner.add(Probe(), name="healthy")
    await runner.add(Probe(fail_on=2), name="flaky")
    # flaky fails at every second compute of each instance: at T0+BAR, then after each restart
    # (restart computes at once, fails at the next bar close).
    await trio.sleep(6 * BAR + 1)
    assert isinstance(healthy.strategy, Probe)
    assert healthy.strategy.computes == [T0 + k * BAR for k in range(7)]
    errors = events.of(StrategyFailed, "flaky")
    assert [e.restart_in for e in errors][:3] == [1.0, 2.0, 4.0]  # type: ignore[attr-defined]
    assert all("RuntimeError: boom" in e.error for e in errors)  # type: ignore[attr-defined]
    states = [e.new for e in events.of(StrategyStateChanged, "flaky")]  # type: ignore[attr-defined]
    assert states[:8] == [
        "starting",
        "computing",
        "sleeping",
        "computing",
        "failed",
        "restarting",
        "starting",
        "computing",
    ]
    # on_stop ran for the failed instance before its replacement started
    starts = [e.time for e in events.of(StrategyStateChanged, "flaky") if e.new == "starting"]  # type: ignore[attr-defined]
    assert starts[1] == T0 + BAR + 1  # 1 s backoff after the failure at the bar close
    assert starts[2] == T0 + 2 * BAR + 2  # then 2 s


async def test_restart_budget_spent_leaves_it_failed_until_resume(
    clock: MockClock, runner: trading.Runner, events: EventLog
) -> None:
    sr = await runner.add(Probe(fail_on=1, work=0), name="f")
    # fails on its first compute of every instance: 1 + 3 restarts (max_restarts=3), then gives up
    await trio.sleep(10)
    assert sr.state is S.FAILED and sr.given_up
    errors = events.of(StrategyFailed, "f")
    assert [e.restart_in for e in errors] == [1.0, 2.0, 4.0, None]  # type: ignore[attr-defined]
    status = await one(runner, "status f")
    assert status.message.startswith("failed") and "RuntimeError: boom" in status.message
    refused = await one(runner, "pause f")
    assert not refused.ok
    result = await one(runner, "resume f")
    assert (result.ok, result.message) == (True, "restarting now")
    await trio.lowlevel.checkpoint()
    assert len(events.of(StrategyFailed, "f")) == 5  # it ran again (and failed again)


async def test_stop_during_restart_backoff(clock: MockClock, runner: trading.Runner) -> None:
    sr = await runner.add(Probe(fail_on=2), name="f")
    await trio.sleep(BAR + 0.5)
    assert sr.state is S.RESTARTING
    result = await one(runner, "stop f")
    assert result.ok and sr.state is S.STOPPED


async def test_on_stop_is_shielded_and_bounded(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog
) -> None:
    @attrs.define
    class SlowStop(trading.Strategy):
        done: list[str] = attrs.field(factory=list, init=False)

        async def next(self, ctx: trading.Context) -> None:
            pass

        async def on_stop(self, ctx: trading.Context) -> None:
            await trio.sleep(3)
            self.done.append("cleaned")
            await trio.sleep(100)
            self.done.append("never")

    async with trading.Runner(
        clock=vclock, publish=events, stop_timeout=10, **sim(vclock)
    ) as runner:
        sr = await runner.add(SlowStop(), name="s")
        result = await one(runner, "stop s")
        assert not result.ok
        assert result.message == (
            "stopped; on_stop timed out after 5s (half of stop_timeout 10s; the rest is kept "
            "for the orders)"
        )
        assert isinstance(sr.strategy, SlowStop) and sr.strategy.done == ["cleaned"]


async def test_on_stop_runs_when_the_runner_is_cancelled(
    clock: MockClock, vclock: trading.VirtualClock
) -> None:
    stopped: list[float] = []

    @attrs.define
    class Cleanup(trading.Strategy):
        async def next(self, ctx: trading.Context) -> None:
            pass

        async def on_stop(self, ctx: trading.Context) -> None:
            await trio.sleep(1)  # would raise Cancelled if not shielded
            stopped.append(ctx.now)

    with trio.move_on_after(100):
        async with trading.Runner(clock=vclock, publish=lambda e: None, **sim(vclock)) as runner:
            await runner.add(Cleanup(), name="c")
            await trio.sleep_forever()
    assert stopped == [T0 + 101]


async def test_first_on_start_error_reaches_add(clock: MockClock, runner: trading.Runner) -> None:
    @attrs.define
    class BadStart(trading.Strategy):
        async def on_start(self, ctx: trading.Context) -> None:
            raise ConnectionError("exchange unreachable")

        async def next(self, ctx: trading.Context) -> None:
            pass

    with pytest.raises(ConnectionError, match="exchange unreachable"):
        await runner.add(BadStart(), name="b")
    assert "b" not in runner


async def test_stop_interrupts_a_hanging_on_start(clock: MockClock, runner: trading.Runner) -> None:
    @attrs.define
    class Hang(trading.Strategy):
        async def on_start(self, ctx: trading.Context) -> None:
            await trio.sleep_forever()

        async def next(self, ctx: trading.Context) -> None:
            pass

    outcome: list[BaseException] = []

    async def add() -> None:
        try:
            await runner.add(Hang(), name="h")
        except StoppedWhileStarting as exc:
            outcome.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(add)
        await trio.sleep(5)
        sr = runner["h"]
        assert sr.state is S.STARTING
        result = await sr.send(trading.Command("stop", "h"))
        assert (result.ok, result.message) == (True, "stopped")
    assert sr.state is S.STOPPED
    assert [str(e) for e in outcome] == ["h was stopped before on_start finished"]
    assert "h" not in runner


async def test_commands_during_stopping_get_replies(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog
) -> None:
    @attrs.define
    class SlowStop(trading.Strategy):
        async def next(self, ctx: trading.Context) -> None:
            pass

        async def on_stop(self, ctx: trading.Context) -> None:
            await trio.sleep(4)  # within on_stop's share: half of the default 10 s

    async with trading.Runner(clock=vclock, publish=events, **sim(vclock)) as runner:
        sr = await runner.add(SlowStop(), name="s")
        replies: list[tuple[float, str]] = []

        async def send(text: str) -> None:
            (result,) = await runner.send(text)
            replies.append((trio.current_time(), str(result)))

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send, "stop s")
            await trio.sleep(1)
            assert sr.state is S.STOPPING
            nursery.start_soon(send, "pause s")
            nursery.start_soon(send, "stop s")
        assert sorted(replies) == [
            (start + 1, "s: error: s is stopping"),
            (start + 4, "s: ok: stopped"),
            (start + 4, "s: ok: stopped"),
        ]


async def test_commands_queued_during_compute_apply_in_order_before_a_stop(
    clock: MockClock, runner: trading.Runner
) -> None:
    sr = await runner.add(Probe(work=600), name="p")
    replies: list[str] = []

    async def send(text: str) -> None:
        (result,) = await runner.send(text)
        replies.append(str(result))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send, "set p fast=6")  # queued: waits for the compute to end
        await trio.sleep(1)
        nursery.start_soon(send, "stop p")  # interrupts the compute; the set still applies first
    assert replies == ["p: ok: fast: 5 -> 6", "p: ok: stopped"]
    assert sr.finished.is_set() and isinstance(sr.strategy, Probe) and sr.strategy.fast == 6


async def test_compute_overrunning_a_bar_skips_to_the_next_close(
    clock: MockClock, runner: trading.Runner
) -> None:
    sr = await runner.add(Probe(work=BAR + 60), name="p")
    await trio.sleep(3 * BAR)
    assert isinstance(sr.strategy, Probe)
    # started at T0, ran past T0+BAR, so the next compute is the close after that: T0+2*BAR
    assert sr.strategy.computes == [T0, T0 + 2 * BAR]
