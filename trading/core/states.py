"""The strategy state machine of DESIGN.md, as data.

Core module: no trio, no IO. Every state change a StrategyRunner makes goes through
:func:`check_transition`, so a runner bug that would put a strategy in an impossible state fails
loudly in tests instead of showing operators a status that cannot be true.
"""

from __future__ import annotations

import enum

__all__ = ["IllegalStateChange", "StrategyState", "check_transition"]


class StrategyState(enum.Enum):
    CREATED = "created"
    STARTING = "starting"
    COMPUTING = "computing"
    SLEEPING = "sleeping"
    PAUSED = "paused"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    RESTARTING = "restarting"

    def __str__(self) -> str:
        return self.value

    @property
    def is_running(self) -> bool:
        """Whether the strategy's loop is alive and will compute again without operator help."""
        return self in _RUNNING


_RUNNING = frozenset(
    {
        StrategyState.STARTING,
        StrategyState.COMPUTING,
        StrategyState.SLEEPING,
        StrategyState.RESTARTING,
    }
)

S = StrategyState
TRANSITIONS: dict[StrategyState, frozenset[StrategyState]] = {
    S.CREATED: frozenset({S.STARTING, S.STOPPING}),
    S.STARTING: frozenset({S.COMPUTING, S.SLEEPING, S.PAUSED, S.STOPPING, S.FAILED}),
    S.COMPUTING: frozenset({S.SLEEPING, S.PAUSED, S.STOPPING, S.FAILED}),
    S.SLEEPING: frozenset({S.COMPUTING, S.PAUSED, S.STOPPING, S.FAILED}),
    S.PAUSED: frozenset({S.COMPUTING, S.SLEEPING, S.STOPPING, S.FAILED}),
    # failed: either a restart is scheduled, or the restart budget is spent and it waits for an
    # operator's resume (-> restarting) or stop.
    S.FAILED: frozenset({S.RESTARTING, S.STOPPING}),
    S.RESTARTING: frozenset({S.STARTING, S.STOPPING}),
    S.STOPPING: frozenset({S.STOPPED}),
    S.STOPPED: frozenset(),
}
del S


class IllegalStateChange(RuntimeError):
    """A runner tried a transition DESIGN.md does not allow: always a bug in trio-trade."""


def check_transition(old: StrategyState, new: StrategyState) -> None:
    if new not in TRANSITIONS[old]:
        raise IllegalStateChange(f"a strategy cannot go from {old} to {new}")
