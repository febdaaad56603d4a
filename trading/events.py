"""Frozen event records: what happened, when, to which strategy.

Core module: no trio, no IO. Events are the one record of a run: observers (log, database,
notifiers) see nothing else, so every fact an operator may ask about later is an event here.
``time`` is the runner clock's epoch seconds (virtual in replay and tests).
"""

from __future__ import annotations

import attrs

__all__ = [
    "CommandHandled",
    "Event",
    "StrategyError",
    "StrategyStateChanged",
    "describe",
]


@attrs.frozen(slots=True)
class Event:
    time: float
    strategy: str


@attrs.frozen(slots=True)
class StrategyStateChanged(Event):
    old: str
    new: str
    reason: str = ""


@attrs.frozen(slots=True)
class CommandHandled(Event):
    """The audit trail: every command, where it came from, and the reply it got."""

    command: str
    source: str
    ok: bool
    message: str


@attrs.frozen(slots=True)
class StrategyError(Event):
    """Strategy code raised. ``restart_in`` is None when the restart budget is spent."""

    phase: str
    error: str
    traceback: str
    failures: int
    restart_in: float | None


def describe(event: Event) -> str:
    """One readable line per event, for logs and console notifiers."""
    who = event.strategy or "runner"
    if isinstance(event, StrategyStateChanged):
        why = f" ({event.reason})" if event.reason else ""
        return f"{who}: {event.old} -> {event.new}{why}"
    if isinstance(event, CommandHandled):
        verdict = "ok" if event.ok else "error"
        return f"{who}: command {event.command!r} from {event.source}: {verdict}: {event.message}"
    if isinstance(event, StrategyError):
        then = "gave up" if event.restart_in is None else f"restart in {event.restart_in:g}s"
        return f"{who}: failed in {event.phase} ({event.error}); failure {event.failures}, {then}"
    return f"{who}: {event!r}"
