"""The command machine, purely: replies and end state equal one-at-a-time application.

Core test: no event loop. The reference is tests/core/command_model.py, a separate small model.
"""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.core.command_model import CUSTOM, matches, run_burst
from trading.core.commands import Command
from trading.core.machine import CommandMachine, Flags, Kind, interrupts, judge
from trading.core.states import StrategyState as S

VERBS = ["stop", "pause", "resume", "wake", "set", CUSTOM, "status", "frob"]
START = {
    "sleeping": Flags(S.SLEEPING),
    "computing": Flags(S.COMPUTING),
    "paused": Flags(S.PAUSED, paused=True),
    "failed": Flags(S.FAILED),
    "restarting": Flags(S.RESTARTING),
}


def machine(phase: str, capacity: int = 64) -> CommandMachine[int]:
    m: CommandMachine[int] = CommandMachine("p", frozenset({CUSTOM}), capacity=capacity)
    m.flags = START[phase]
    return m


def burst(m: CommandMachine[int], verbs: list[str]) -> list[tuple[bool, str]]:
    """All arrive together, then the lifecycle applies the queue: the replies in arrival order."""
    replies: dict[int, tuple[bool, str]] = {}
    for ticket, verb in enumerate(verbs):
        ruling, _ = m.receive(ticket, Command(verb, "p"))
        assert ruling.kind is not Kind.FULL
        if ruling.kind in (Kind.REPLY, Kind.NOW, Kind.JOIN):
            text = {Kind.REPLY: ruling.message, Kind.JOIN: "stopped"}.get(ruling.kind, "")
            replies[ticket] = (ruling.ok, text)
    while (step := m.next_step()) is not None:
        ticket, _, ruling = step
        replies[ticket] = (ruling.ok, ruling.message)
    return [replies[t] for t in range(len(verbs))]


def model_phase(flags: Flags) -> str:
    if flags.stopping:
        return "stopping"
    if flags.phase is S.PAUSED and flags.restart:
        return "paused+restart"
    return flags.phase.value


@given(
    st.sampled_from(sorted(START)),
    st.lists(st.sampled_from([v for v in VERBS if v != "frob"]), max_size=10),
)
def test_a_burst_gets_the_replies_and_end_state_of_one_at_a_time(
    phase: str, verbs: list[str]
) -> None:
    m = machine(phase)
    got = burst(m, verbs)
    want, end = run_burst(phase, verbs)
    for verb, (ok, message), predicted in zip(verbs, got, want, strict=True):
        if verb == "status":
            continue
        if verb == CUSTOM and ok:
            message = "noted"  # the runtime writes on_command's own reply
        assert matches(predicted, ok, message), (verb, (ok, message), predicted)
    assert model_phase(m.flags) == end
    assert m.queue == []


@given(st.sampled_from(sorted(START)), st.lists(st.sampled_from(VERBS), max_size=40))
def test_the_queue_never_holds_more_than_capacity_plus_a_pause_and_a_stop(
    phase: str, verbs: list[str]
) -> None:
    m = machine(phase, capacity=3)
    for ticket, verb in enumerate(verbs):
        ruling, _ = m.receive(ticket, Command(verb, "p"))
        assert len(m.queue) <= 3 + 2
        if ruling.kind is Kind.FULL:
            assert verb not in ("stop", "pause") and len(m.queue) >= 3


@pytest.mark.parametrize(
    ("verbs", "last"),
    [
        (["pause", "resume", "pause"], (True, "paused (was sleeping)")),
        (["pause"], (True, "paused (was computing); next() was interrupted")),
        (["pause", "wake"], (False, "p is paused; resume it first")),
        (["pause", "resume"], (True, "resumed")),
        (["stop", "set"], (False, "p is stopping")),
        (["pause", "pause"], (True, "already paused")),
        (["resume"], (True, "not paused (computing)")),
        (["wake"], (True, "already computing")),
    ],
)
def test_issue_examples_during_a_compute(verbs: list[str], last: tuple[bool, str]) -> None:
    m = machine("computing")
    assert burst(m, verbs)[-1] == last


def test_pause_resume_pause_ends_paused() -> None:
    m = machine("computing")
    burst(m, ["pause", "resume", "pause"])
    assert m.flags.paused and m.flags.phase is S.PAUSED


def test_a_queued_custom_command_overtaken_by_a_pause_is_interrupted_not_run() -> None:
    m = machine("sleeping")
    assert burst(m, [CUSTOM, "set", "pause"])[0] == (
        False,
        "note interrupted by command 'pause' from api",
    )


def test_a_running_custom_command_is_interrupted_by_stop_and_pause_only() -> None:
    for verb in ("stop", "pause"):
        assert interrupts(verb, S.SLEEPING, running_custom=True)
    for verb in ("set", "wake", "resume", "flatten", CUSTOM):
        assert not interrupts(verb, S.SLEEPING, running_custom=True)


@pytest.mark.parametrize("verb", ["set", "resume", "wake", CUSTOM])
def test_a_running_compute_is_only_interrupted_by_stop_pause_flatten(verb: str) -> None:
    assert not interrupts(verb, S.COMPUTING, running_custom=False)
    for hard in ("stop", "pause", "flatten"):
        assert interrupts(hard, S.COMPUTING, running_custom=False)


@pytest.mark.parametrize("state", [S.SLEEPING, S.PAUSED, S.FAILED, S.RESTARTING])
@pytest.mark.parametrize("verb", ["stop", "pause", "resume", "wake", "set", "flatten", CUSTOM])
def test_waiting_phases_are_always_interrupted(state: S, verb: str) -> None:
    assert interrupts(verb, state, running_custom=False)


def test_only_stop_interrupts_on_start() -> None:
    assert interrupts("stop", S.STARTING, running_custom=False)
    for verb in ("pause", "set", "wake", "resume", "flatten"):
        assert not interrupts(verb, S.STARTING, running_custom=False)


def test_pending_is_shown_for_status() -> None:
    m = machine("computing")
    m.receive(1, Command("set", "p"))
    m.receive(2, Command("pause", "p"))
    assert m.pending() == ["set pending", "pause pending"]
    assert judge("status", m.flags, name="p", custom=()).kind is Kind.NOW


def test_full_refuses_to_queue_but_stop_and_pause_still_get_in() -> None:
    m = machine("computing", capacity=2)
    m.receive(1, Command("set", "p"))
    m.receive(2, Command("set", "p"))
    assert m.receive(3, Command("set", "p"))[0].kind is Kind.FULL
    assert m.receive(4, Command("pause", "p"))[0].kind is Kind.QUEUE
    assert m.receive(5, Command("stop", "p"))[0].kind is Kind.QUEUE
    assert m.receive(6, Command("stop", "p"))[0].kind is Kind.JOIN
    assert len(m.queue) == 4


def test_a_failure_between_arrival_and_apply_is_answered_truthfully() -> None:
    m = machine("computing")
    m.receive(1, Command(CUSTOM, "p"))
    m.entered(S.FAILED)  # next() raised before the queue was applied
    step = m.next_step()
    assert step is not None
    assert (step[2].ok, step[2].message) == (False, "p is failed; custom commands need it running")


def test_flags_but_changes_only_what_it_is_given_like_attrs_evolve() -> None:
    base = Flags(S.SLEEPING, paused=True, stopping=False, wake=True, restart=False)
    for field in attrs.fields(Flags):
        value = S.COMPUTING if field.name == "state" else not getattr(base, field.name)
        assert base.but(**{field.name: value}) == attrs.evolve(base, **{field.name: value})
    assert base.but() == base
