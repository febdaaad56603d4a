"""Which commands a strategy answers at once, which it refuses, which wait for the lifecycle —
and which of those interrupt the phase it is in.

Core module: no trio, no IO; the StrategyRunner's receiver asks these two functions and acts.
Keeping the table here, apart from the runner's mechanics, is what lets a test read the whole
command policy of DESIGN.md in one place.
"""

from __future__ import annotations

from collections.abc import Collection

from trading.core.states import StrategyState

__all__ = ["LIFECYCLE_VERBS", "admit", "interrupts"]

S = StrategyState
# Verbs queued for the lifecycle (applied between phases); the others are answered by the
# receiver itself: status, reduce-only (a flag the next order checks), help.
LIFECYCLE_VERBS = frozenset({"stop", "pause", "resume", "wake", "set", "flatten"})
_WAITING = frozenset({S.SLEEPING, S.PAUSED, S.FAILED, S.RESTARTING})
_BROKEN = frozenset({S.FAILED, S.RESTARTING})


def admit(
    verb: str,
    state: StrategyState,
    *,
    name: str,
    paused: bool,
    pause_queued: bool,
    custom: Collection[str],
) -> tuple[bool, str] | None:
    """The reply to give at once, or None to queue the command for the lifecycle.

    Refusals come at once so bad input gets an immediate answer; no-ops too, so that an idle
    ``resume`` is not kept waiting behind a long ``next()``.
    """
    if verb not in LIFECYCLE_VERBS and verb not in custom:
        return False, f"{name} has no command {verb!r}"
    if verb == "wake" and state is S.PAUSED:
        return False, f"{name} is paused; resume it first"
    if verb in ("pause", "flatten") and state in _BROKEN:
        return False, f"{name} is {state}; stop it, or resume to restart it now"
    if verb in custom and state in _BROKEN:
        return False, f"{name} is {state}; custom commands need it running"
    if verb == "wake" and state is S.COMPUTING:
        return True, "already computing"
    if verb == "resume" and not (paused or pause_queued or state in _BROKEN):
        return True, f"not paused ({state})"
    if verb == "pause" and (paused or pause_queued):
        return True, "already paused"
    return None


def interrupts(verb: str, state: StrategyState) -> bool:
    """Whether a queued command cancels the current phase rather than waiting for it to end.

    Waiting phases are always interrupted (the command is applied, then the wait resumes toward
    the same deadline); a running ``next()`` only for what must not wait: stop, pause, flatten.
    """
    if verb == "stop" or state in _WAITING:
        return True
    return verb in ("pause", "flatten") and state is S.COMPUTING
