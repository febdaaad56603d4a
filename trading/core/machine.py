"""The command machine: state, flags and queued commands in; replies and effects out.

Core module: no trio, no IO. The rules this module keeps (DESIGN.md rule 10, "a reply is what
will happen"):

* A command is judged against the state that the commands queued before it will leave (the
  *projection*), never against the state the lifecycle happens to be in. So the replies and the
  end state are those of applying the same commands one at a time in arrival order:
  ``pause, resume, pause`` ends paused, and a ``wake`` behind a queued ``pause`` is refused.
* What needs no change is answered at arrival (refusals and no-ops: "already paused"); what
  changes the strategy is queued and answered when the lifecycle applies it, between phases, where
  the same judge runs again against the real flags (a failure in between may change the answer,
  and the answer says so).
* Only ``stop`` and ``pause`` interrupt a running ``on_command``; ``stop``, ``pause`` and
  ``flatten`` interrupt a running ``next()``; waits (sleep, paused, failed, restart backoff) are
  interrupted by anything queued, which is applied before the wait resumes toward its deadline.
* The queue is bounded by ``capacity``; past it :meth:`CommandMachine.receive` says FULL and the
  mailbox makes the sender wait (or answers "busy"). ``stop`` and ``pause`` still get in, because
  they are what empties the queue; that overflow is at most two (a second pause is a no-op and
  nothing is queued behind a stop).

The runtime (:mod:`trading.runtime.strategy_runner`) only executes the effects: it cancels the
phase when told to, reads the flags between phases and runs set/flatten/on_command.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from typing import Any, Generic, TypeVar

import attrs

from trading.core.commands import Command
from trading.core.states import StrategyState

__all__ = ["CommandMachine", "Flags", "Kind", "Ruling", "interrupts", "judge"]

S = StrategyState
T = TypeVar("T")

# Verbs the lifecycle applies between phases; status and reduce-only are answered at once.
LIFECYCLE_VERBS = frozenset({"stop", "pause", "resume", "wake", "set", "flatten"})
_WAITING = frozenset({S.SLEEPING, S.PAUSED, S.FAILED, S.RESTARTING})
_BROKEN = frozenset({S.FAILED, S.RESTARTING})


class Kind(enum.Enum):
    NOW = "now"  # the runtime answers at once from what it knows (status, reduce-only)
    REPLY = "reply"  # answered at once with the ruling's message; nothing changes
    QUEUE = "queue"  # queued for the lifecycle; answered when applied
    JOIN = "join"  # a stop while stopping: answered with the stop's outcome
    FULL = "full"  # would be queued, but the queue is at capacity


@attrs.frozen(slots=True)
class Flags:
    """What a strategy is doing plus the decisions taken and not yet acted on by the lifecycle."""

    state: StrategyState
    paused: bool = False
    stopping: bool = False
    wake: bool = False
    restart: bool = False  # restart now (resume or wake while failed), skipping the backoff

    def but(self, **changes: Any) -> Flags:
        """A copy with ``changes``: ``attrs.evolve`` without its generic cost (this runs several
        times per command, and ``stop all`` sends ten thousand commands at once)."""
        return Flags(
            changes.get("state", self.state),
            changes.get("paused", self.paused),
            changes.get("stopping", self.stopping),
            changes.get("wake", self.wake),
            changes.get("restart", self.restart),
        )

    @property
    def phase(self) -> StrategyState:
        """Where the strategy is headed once the lifecycle acts on the flags."""
        if self.stopping or self.state in (S.STOPPING, S.STOPPED):
            return S.STOPPED if self.state is S.STOPPED else S.STOPPING
        if self.state in _BROKEN and not self.restart:
            return self.state
        if self.paused:  # a restart that was asked for goes on; the new start waits paused
            return S.PAUSED
        if self.restart:
            return S.STARTING
        if self.wake:
            return S.COMPUTING
        if self.state is S.PAUSED:  # resumed, the lifecycle has not moved yet: back to the bars
            return S.SLEEPING
        return self.state


@attrs.frozen(slots=True)
class Ruling:
    kind: Kind
    ok: bool
    message: str
    then: Flags


def judge(verb: str, flags: Flags, *, name: str, custom: Collection[str]) -> Ruling:
    """The reply ``verb`` gets if applied to ``flags`` now, and the flags it leaves."""
    phase = flags.phase

    def reply(ok: bool, message: str) -> Ruling:
        return Ruling(Kind.REPLY, ok, message, flags)

    def queue(message: str, **changes: Any) -> Ruling:
        return Ruling(Kind.QUEUE, True, message, flags.but(**changes))

    if verb == "status":
        return Ruling(Kind.NOW, True, "", flags)
    if phase in (S.STOPPING, S.STOPPED):
        if verb == "stop":
            return Ruling(Kind.JOIN, True, "stopping", flags)
        return reply(False, f"{name} is {phase}")
    if verb == "stop":
        return queue("stopped", stopping=True, wake=False, restart=False)
    if verb == "reduce-only":
        return Ruling(Kind.NOW, True, "", flags)
    if verb not in LIFECYCLE_VERBS and verb not in custom:
        return reply(False, f"{name} has no command {verb!r}")
    broken = phase in _BROKEN
    if verb == "pause":
        if broken:
            return reply(False, f"{name} is {phase}; stop it, or resume to restart it now")
        if phase is S.PAUSED:
            return reply(True, "already paused")
        note = "; next() was interrupted" if phase is S.COMPUTING else ""
        return queue(f"paused (was {phase}){note}", **_halt(flags))
    if verb == "flatten":
        if broken:
            return reply(False, f"{name} is {phase}; stop it, or resume to restart it now")
        return queue("flattened; paused", **_halt(flags))
    if verb == "resume":
        if broken:
            return queue("restarting now", restart=True)
        if phase is S.PAUSED:
            return queue("resumed", paused=False)
        return reply(True, f"not paused ({phase})")
    if verb == "wake":
        if broken:
            return queue("restarting now", restart=True)
        if phase is S.PAUSED:
            return reply(False, f"{name} is paused; resume it first")
        if phase is S.COMPUTING:
            return reply(True, "already computing")
        return queue("waking: next() runs now", wake=True)
    if verb == "set":
        return queue("set")
    # a strategy's own verb
    if broken:
        return reply(False, f"{name} is {phase}; custom commands need it running")
    return queue("done")


def _halt(flags: Flags) -> dict[str, Any]:
    """Pause: a running compute is cut short, so a later resume goes back to the bar schedule."""
    state = S.SLEEPING if flags.state is S.COMPUTING else flags.state
    return {"paused": True, "wake": False, "state": state}


def interrupts(verb: str, state: StrategyState, *, running_custom: bool) -> bool:
    """Whether a queued ``verb`` cancels what runs now rather than waiting for it to end."""
    if running_custom:
        return verb in ("stop", "pause")
    if verb == "stop" or state in _WAITING:
        return True
    return verb in ("pause", "flatten") and state is S.COMPUTING


@attrs.define(eq=False)
class CommandMachine(Generic[T]):
    """One strategy's command state. ``T`` is the runtime's ticket for a waiting reply."""

    name: str
    custom: Collection[str] = ()
    capacity: int = 16
    flags: Flags = attrs.field(factory=lambda: Flags(S.CREATED))
    running_custom: bool = False
    # a list, not a deque: it holds a handful (an empty deque costs 760 bytes)
    queue: list[tuple[T, Command]] = attrs.field(factory=list)

    # -- what the lifecycle tells the machine ---------------------------------------------------

    def entered(self, state: StrategyState) -> None:
        if self.flags.state is not state:  # unchanged: nothing to copy (once per bar)
            self.flags = self.flags.but(state=state)

    def take_wake(self) -> bool:
        """A compute starts now: a queued or applied wake is used up."""
        wake = self.flags.wake
        if wake:
            self.flags = self.flags.but(wake=False)
        return wake

    def take_restart(self) -> bool:
        restart = self.flags.restart
        if restart:
            self.flags = self.flags.but(restart=False)
        return restart

    # -- arrival -------------------------------------------------------------------------------

    def projection(self) -> Flags:
        """The flags once everything queued is applied, in order."""
        flags = self.flags
        for _, command in self.queue:
            flags = judge(command.verb, flags, name=self.name, custom=self.custom).then
        return flags

    def receive(self, ticket: T, command: Command, *, full: bool = False) -> tuple[Ruling, bool]:
        """Judge an arriving command; queue it if it changes anything.

        Returns the ruling and whether the phase running now must be interrupted. ``full``: the
        caller has others waiting for room already, so this one must not jump the line.
        """
        verb = command.verb
        ruling = judge(verb, self.projection(), name=self.name, custom=self.custom)
        if ruling.kind is not Kind.QUEUE:
            return ruling, False
        full = full or len(self.queue) >= self.capacity
        if full and verb not in ("stop", "pause"):
            return attrs.evolve(ruling, kind=Kind.FULL), False
        self.queue.append((ticket, command))
        hit = interrupts(verb, self.flags.state, running_custom=self.running_custom)
        return ruling, hit

    # -- between phases ------------------------------------------------------------------------

    def next_step(self) -> tuple[T, Command, Ruling] | None:
        """Pop the oldest queued command and rule on it against the real flags, which it then
        leaves as its ruling says. A custom command that a later pause or stop has already
        overtaken is not started: it is answered as interrupted, as if it had begun."""
        if not self.queue:
            return None
        ticket, command = self.queue.pop(0)
        ruling = judge(command.verb, self.flags, name=self.name, custom=self.custom)
        if ruling.kind is Kind.QUEUE:
            if command.verb in self.custom:
                by = self.overtaken_by()
                if by is not None:
                    ruling = Ruling(
                        Kind.REPLY, False, f"{command.verb} interrupted by {by}", self.flags
                    )
            self.flags = ruling.then
        return ticket, command, ruling

    def overtaken_by(self) -> str | None:
        """The first queued pause or stop, described as an interruption's reason."""
        for _, command in self.queue:
            if command.verb in ("stop", "pause"):
                return interruption(command)
        return None

    def pending(self) -> list[str]:
        """What is queued, for ``status``: ``["pause pending", "set pending"]``."""
        return [f"{command.verb} pending" for _, command in self.queue]

    def drain(self) -> list[tuple[T, Command]]:
        """Everything still queued, removed (the strategy ended before applying it)."""
        queued, self.queue = self.queue, []
        return queued


def interruption(command: Command) -> str:
    return f"command {command.verb!r} from {command.source}"
