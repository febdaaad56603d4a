"""The command policy: what is answered at once, and what interrupts which phase."""

from __future__ import annotations

import pytest

from trading.core.policy import LIFECYCLE_VERBS, admit, interrupts
from trading.core.states import StrategyState as S


def verdict(verb: str, state: S, *, paused: bool = False, queued: bool = False) -> object:
    return admit(verb, state, name="x", paused=paused, pause_queued=queued, custom={"boost"})


@pytest.mark.parametrize("state", list(S))
def test_stop_always_interrupts_and_is_never_answered_early(state: S) -> None:
    assert interrupts("stop", state)
    assert verdict("stop", state) is None


@pytest.mark.parametrize("verb", ["set", "resume", "wake", "boost"])
def test_a_running_compute_is_only_interrupted_by_stop_pause_flatten(verb: str) -> None:
    assert not interrupts(verb, S.COMPUTING)
    assert all(interrupts(v, S.COMPUTING) for v in ("stop", "pause", "flatten"))


@pytest.mark.parametrize("state", [S.SLEEPING, S.PAUSED, S.FAILED, S.RESTARTING])
@pytest.mark.parametrize("verb", sorted(LIFECYCLE_VERBS))
def test_waiting_phases_are_always_interrupted(state: S, verb: str) -> None:
    assert interrupts(verb, state)


def test_answers_given_at_once() -> None:
    assert verdict("frob", S.SLEEPING) == (False, "x has no command 'frob'")
    assert verdict("wake", S.PAUSED, paused=True) == (False, "x is paused; resume it first")
    assert verdict("wake", S.COMPUTING) == (True, "already computing")
    assert verdict("resume", S.SLEEPING) == (True, "not paused (sleeping)")
    assert verdict("pause", S.PAUSED, paused=True) == (True, "already paused")
    assert verdict("pause", S.COMPUTING, queued=True) == (True, "already paused")
    assert verdict("boost", S.RESTARTING) == (
        False,
        "x is restarting; custom commands need it running",
    )
    assert verdict("flatten", S.FAILED) == (
        False,
        "x is failed; stop it, or resume to restart it now",
    )


def test_queued_for_the_lifecycle() -> None:
    assert verdict("pause", S.SLEEPING) is None
    assert verdict("resume", S.PAUSED, paused=True) is None
    assert verdict("resume", S.FAILED) is None  # restarts it
    assert verdict("resume", S.COMPUTING, queued=True) is None  # undoes the queued pause
    assert verdict("wake", S.SLEEPING) is None
    assert verdict("set", S.COMPUTING) is None
    assert verdict("boost", S.SLEEPING) is None
