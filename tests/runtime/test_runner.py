"""Runner: many strategies, add/remove at runtime, `all`, other threads, and no leaked tasks."""

from __future__ import annotations

import random
import threading
from typing import Any

import attrs
import pytest
import trio
from trio.testing import MockClock

import trading
from tests.conftest import T0, EventLog, sim
from trading import StrategyState as S

BAR = 15 * 60


@attrs.define
class Ticker(trading.Strategy):
    interval = "15m"
    work: float = 0.0
    fail: bool = False
    computes: list[float] = attrs.field(factory=list, init=False)

    async def next(self, ctx: trading.Context) -> None:
        self.computes.append(ctx.now)
        if self.fail:
            raise RuntimeError("broken")
        if self.work:
            await trio.sleep(self.work)


def task_tree(task: Any = None) -> tuple[str, tuple[Any, ...]]:
    """Every live task under ``task`` (default: the root), as a comparable nested tuple."""
    task = task or trio.lowlevel.current_root_task()
    children = sorted(
        task_tree(child) for nursery in task.child_nurseries for child in nursery.child_tasks
    )
    return (task.name, tuple(children))


def count_tasks(tree: tuple[str, tuple[Any, ...]]) -> int:
    return 1 + sum(count_tasks(child) for child in tree[1])


async def test_all_fans_out_and_unknown_targets_are_refused(
    clock: MockClock, runner: trading.Runner
) -> None:
    for name in ("a", "b", "c"):
        await runner.add(Ticker(), name=name)
    results = await runner.send("pause all")
    assert [(r.target, r.ok, r.message) for r in results] == [
        ("a", True, "paused (was sleeping)"),
        ("b", True, "paused (was sleeping)"),
        ("c", True, "paused (was sleeping)"),
    ]
    (unknown,) = await runner.send("pause zz")
    assert not unknown.ok and unknown.message == "unknown strategy 'zz'; running: a, b, c"
    (ambiguous,) = await runner.send("pause")
    assert not ambiguous.ok and ambiguous.message == "pause: say which strategy: a | b | c | all"
    statuses = await runner.send("status")
    assert [r.state for r in statuses] == ["paused", "paused", "paused"]


async def test_target_may_be_omitted_with_a_single_strategy(
    clock: MockClock, runner: trading.Runner
) -> None:
    await runner.add(Ticker(), name="only")
    (result,) = await runner.send("pause")
    assert (result.target, result.ok) == ("only", True)


async def test_malformed_commands_get_a_clear_error_and_change_nothing(
    clock: MockClock, runner: trading.Runner, events: EventLog
) -> None:
    sr = await runner.add(Ticker(), name="a")
    for text, error in [
        ("", "empty command; try 'help'"),
        ("paws a", "unknown command 'paws'"),
        ("pause a b", "pause: unexpected 'b'"),
        ("set a", "set: nothing to set"),
        ('set a work="1', "cannot read"),
    ]:
        (result,) = await runner.send(text)
        assert not result.ok and result.message.startswith(error), (text, result.message)
    assert sr.state is S.SLEEPING
    assert isinstance(sr.strategy, Ticker) and sr.strategy.work == 0.0
    audited = events.of(trading.CommandHandled)
    assert len(audited) == 5 and not any(e.ok for e in audited)  # type: ignore[attr-defined]


async def test_a_refused_line_is_audited_by_a_short_prefix_not_copied_whole(
    clock: MockClock, runner: trading.Runner, events: EventLog
) -> None:
    await runner.add(Ticker(), name="a")
    pasted = "frobnicate " + "x" * 5_000  # a paste an operator did not mean to send
    quoted = 'nope "' + "y" * 300  # unterminated quote: refused by the word splitter
    for line in (pasted, quoted):
        (result,) = await runner.send(line)
        assert not result.ok and len(result.message) < 200
        (refused,) = events.of(trading.CommandHandled)[-1:]
        assert refused.command == line[:80] + "…"  # type: ignore[attr-defined]
    (short,) = await runner.send("paws a")
    assert events.of(trading.CommandHandled)[-1].command == "paws a"  # type: ignore[attr-defined]
    assert not short.ok
    done = threading.Event()
    runner.send_soon(pasted, on_reply=lambda results: done.set())
    await runner.flush()
    for _ in range(3):
        await trio.lowlevel.checkpoint()
    assert done.is_set()
    assert events.of(trading.CommandHandled)[-1].command == pasted[:80] + "…"  # type: ignore[attr-defined]


async def test_one_run_id_reaches_the_engine_and_its_client_order_ids(
    clock: MockClock, vclock: trading.VirtualClock
) -> None:
    async with trading.Runner(clock=vclock, run_id="abc123", **sim(vclock)) as runner:
        assert runner.run_id == "abc123"
        assert runner.engine is not None and runner.engine.run_id == "abc123"
    async with trading.Runner(clock=vclock, **sim(vclock)) as runner:
        assert runner.engine is not None and runner.engine.run_id == runner.run_id
        assert len(runner.run_id) == 8
    with pytest.raises(ValueError, match="run id"):
        trading.Runner(clock=vclock, run_id="not-a-token")  # '-' would break the id's parse


async def test_help_lists_builtin_and_custom_commands(
    clock: MockClock, runner: trading.Runner
) -> None:
    @attrs.define
    class Custom(trading.Strategy):
        custom_commands = {"boost": "boost NAME X: more"}

        async def next(self, ctx: trading.Context) -> None:
            pass

    await runner.add(Custom(), name="c")
    (result,) = await runner.send("/help")
    for verb in ("status", "pause", "resume", "wake", "set", "stop", "boost"):
        assert verb in result.message


async def test_add_refuses_a_duplicate_name_but_readds_after_stop(
    clock: MockClock, runner: trading.Runner
) -> None:
    first = await runner.add(Ticker(), name="a")
    with pytest.raises(ValueError, match="already running"):
        await runner.add(Ticker(), name="a")
    await runner.send("stop a")
    second = await runner.add(Ticker(), name="a")
    assert second is not first and second.state is not S.STOPPED


async def test_remove_stops_and_forgets(clock: MockClock, runner: trading.Runner) -> None:
    sr = await runner.add(Ticker(work=600), name="a")
    result = await runner.remove("a")
    assert (result.ok, result.message) == (True, "removed (stopped)")
    assert sr.finished.is_set() and "a" not in runner
    assert not (await runner.remove("a")).ok


async def test_a_failing_strategy_does_not_disturb_the_others(
    clock: MockClock, runner: trading.Runner
) -> None:
    good = [await runner.add(Ticker(), name=f"good{i}") for i in range(3)]
    bad = await runner.add(Ticker(fail=True), name="bad")
    await trio.sleep(4 * BAR + 1)
    for sr in good:
        assert isinstance(sr.strategy, Ticker)
        assert sr.strategy.computes == [T0 + k * BAR for k in range(5)]
    assert bad.state is S.FAILED and bad.given_up


async def test_wait_idle_returns_when_everything_stopped_or_gave_up(
    clock: MockClock, runner: trading.Runner
) -> None:
    await runner.add(Ticker(fail=True), name="bad")
    await runner.add(Ticker(), name="good")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(runner.wait_idle)
        await trio.sleep(BAR)
        assert len(nursery.child_tasks) == 1  # still waiting: `good` runs
        await runner.send("stop good")
    assert runner["bad"].given_up and runner["good"].finished.is_set()


async def test_commands_from_another_thread(clock: MockClock, runner: trading.Runner) -> None:
    await runner.add(Ticker(), name="a")
    replies: list[list[trading.CommandResult]] = []

    def other_thread() -> None:
        replies.append(runner.send_from_thread("pause a", source="notebook"))

    await trio.to_thread.run_sync(other_thread)
    assert [(r.target, r.ok, r.state) for r in replies[0]] == [("a", True, "paused")]
    assert runner["a"].state is S.PAUSED


async def test_send_soon_from_a_foreign_thread_never_blocks(
    clock: MockClock, runner: trading.Runner
) -> None:
    await runner.add(Ticker(), name="a")
    got = trio.Event()
    seen: list[str] = []

    def on_reply(results: list[trading.CommandResult]) -> None:
        seen.extend(str(r) for r in results)
        got.set()

    thread = threading.Thread(target=lambda: runner.send_soon("pause a", on_reply=on_reply))
    thread.start()
    await trio.to_thread.run_sync(thread.join)
    await got.wait()
    assert seen == ["a: ok: paused (was sleeping)"]


async def test_leaving_the_runner_block_stops_everything(
    clock: MockClock, vclock: trading.VirtualClock, events: EventLog
) -> None:
    before = task_tree()
    async with trading.Runner(clock=vclock, publish=events, **sim(vclock)) as runner:
        runners = [await runner.add(Ticker(work=100 * i), name=f"s{i}") for i in range(5)]
        await trio.sleep(50)
    assert all(sr.state is S.STOPPED for sr in runners)
    assert task_tree() == before


async def test_no_leaked_tasks_after_10000_random_commands_on_100_strategies(
    clock: MockClock, vclock: trading.VirtualClock
) -> None:
    rng = random.Random(20261125)
    policy = trading.RestartPolicy(max_restarts=2, window=600, initial_delay=1, max_delay=5)
    async with trading.Runner(
        clock=vclock, publish=lambda e: None, restart_policy=policy, **sim(vclock)
    ) as runner:
        empty = task_tree()
        names = [f"s{i:03d}" for i in range(100)]

        def make() -> Ticker:
            return Ticker(work=rng.choice([0.0, 0.0, 30.0, 2000.0]), fail=rng.random() < 0.05)

        for name in names:
            await runner.add(make(), name=name)
        per_strategy = (count_tasks(task_tree()) - count_tasks(empty)) / len(names)
        verbs = ["pause", "resume", "wake", "status", "stop", "set", "remove", "add"]
        replies = 0

        async def act(name: str) -> None:
            nonlocal replies
            verb = rng.choice(verbs)
            if verb == "remove":
                if name in runner:
                    await runner.remove(name)
                replies += 1
            elif verb == "add":
                if name not in runner or runner[name].finished.is_set():
                    await runner.add(make(), name=name)
                replies += 1
            else:
                text = (
                    f"set {name} work={rng.choice([0, 5, 60])}"
                    if verb == "set"
                    else f"{verb} {name}"
                )
                if name in runner:
                    results = await runner.send(text)
                    assert len(results) == 1
                replies += 1

        for _ in range(100):  # 100 rounds of 100 concurrent commands
            async with trio.open_nursery() as nursery:
                # each name once per round, so an add and a remove of one name never race
                for name in rng.sample(names, 100):
                    nursery.start_soon(act, name)
            await trio.sleep(rng.choice([0, 1, 60, BAR]))
        assert replies == 10_000
        # while running: exactly the tasks of the strategies still alive, nothing extra
        alive = [n for n in runner.names() if not runner[n].finished.is_set()]
        assert count_tasks(task_tree()) - count_tasks(empty) == per_strategy * len(alive)
        for name in list(runner.names()):
            await runner.remove(name)
        assert task_tree() == empty


async def test_wait_idle_returns_when_the_only_strategy_gives_up(
    clock: MockClock, runner: trading.Runner
) -> None:
    await runner.add(Ticker(fail=True), name="bad")
    with trio.fail_after(3600):
        await runner.wait_idle()
    assert runner["bad"].given_up and not runner["bad"].finished.is_set()
