"""Tests for the strategy state machine of DESIGN.md (core: no event loop)."""

from __future__ import annotations

import itertools
from collections import deque

import pytest

from trading.core.states import TRANSITIONS, IllegalStateChange, StrategyState, check_transition

S = StrategyState
ALL_PAIRS = list(itertools.product(S, S))

# The edges drawn in DESIGN.md's diagram, written out here rather than taken from the module.
DIAGRAM_EDGES = {
    (S.CREATED, S.STARTING),
    (S.STARTING, S.COMPUTING),
    (S.COMPUTING, S.SLEEPING),
    (S.SLEEPING, S.COMPUTING),
    (S.SLEEPING, S.STOPPING),
    (S.STOPPING, S.STOPPED),
    (S.COMPUTING, S.PAUSED),
    (S.PAUSED, S.COMPUTING),
    (S.SLEEPING, S.PAUSED),
    (S.FAILED, S.RESTARTING),
    (S.RESTARTING, S.STARTING),
}
# "(any) -> failed": every state in which strategy code (on_start, next) can raise.
CAN_FAIL = {S.STARTING, S.COMPUTING, S.SLEEPING, S.PAUSED}


def test_every_state_has_an_entry() -> None:
    assert set(TRANSITIONS) == set(S)


def test_state_values_and_str() -> None:
    for state in S:
        assert str(state) == state.value
        assert state.value == state.name.lower()


@pytest.mark.parametrize(("old", "new"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_check_transition_matches_the_table(old: StrategyState, new: StrategyState) -> None:
    if new in TRANSITIONS[old]:
        check_transition(old, new)
    else:
        with pytest.raises(IllegalStateChange) as info:
            check_transition(old, new)
        assert str(info.value) == f"a strategy cannot go from {old.value} to {new.value}"


def test_illegal_state_change_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError):
        check_transition(S.STOPPED, S.STARTING)


def test_no_self_transitions() -> None:
    for state in S:
        with pytest.raises(IllegalStateChange):
            check_transition(state, state)


def test_stopped_is_terminal() -> None:
    assert TRANSITIONS[S.STOPPED] == frozenset()
    for new in S:
        with pytest.raises(IllegalStateChange):
            check_transition(S.STOPPED, new)


def test_only_stopping_leads_to_stopped() -> None:
    assert {old for old in S if S.STOPPED in TRANSITIONS[old]} == {S.STOPPING}


def test_stopping_only_leads_to_stopped() -> None:
    assert TRANSITIONS[S.STOPPING] == frozenset({S.STOPPED})


def test_nothing_returns_to_created() -> None:
    assert all(S.CREATED not in targets for targets in TRANSITIONS.values())


def test_every_non_terminal_state_can_be_stopped() -> None:
    for state in S:
        if state not in (S.STOPPED, S.STOPPING):
            check_transition(state, S.STOPPING)


def _reachable(start: StrategyState) -> set[StrategyState]:
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in TRANSITIONS[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def test_every_state_is_reachable_from_created() -> None:
    assert _reachable(S.CREATED) == set(S)


@pytest.mark.parametrize("state", list(S), ids=str)
def test_stopped_is_reachable_from_every_state(state: StrategyState) -> None:
    assert S.STOPPED in _reachable(state)


EDGES = sorted(DIAGRAM_EDGES, key=str)


@pytest.mark.parametrize(("old", "new"), EDGES, ids=[f"{a}->{b}" for a, b in EDGES])
def test_diagram_edges_are_allowed(old: StrategyState, new: StrategyState) -> None:
    check_transition(old, new)


@pytest.mark.parametrize("state", sorted(CAN_FAIL, key=str), ids=str)
def test_running_states_can_fail(state: StrategyState) -> None:
    check_transition(state, S.FAILED)


def test_failed_only_restarts_or_stops() -> None:
    assert TRANSITIONS[S.FAILED] == frozenset({S.RESTARTING, S.STOPPING})


def test_restarting_only_starts_or_stops() -> None:
    assert TRANSITIONS[S.RESTARTING] == frozenset({S.STARTING, S.STOPPING})


def test_is_running() -> None:
    running = {state for state in S if state.is_running}
    assert running == {S.STARTING, S.COMPUTING, S.SLEEPING, S.RESTARTING}
