"""A strategy's bounded command mailbox: where commands arrive and where their replies leave.

The rules this module keeps:

* The bound is real. Commands wait in one place, the :class:`CommandMachine`'s queue, which
  holds at most ``capacity`` (plus a stop and a pause, which are what empty it). Past it,
  :meth:`Mailbox.send` waits for room, first come first served (cancel-safe: a sender cancelled
  while waiting left nothing behind), and :meth:`Mailbox.send_nowait` answers "busy" at once.
  Nothing is buffered in front: a waiting sender is a task blocked in ``send``.
* Arrival is synchronous: the machine rules on a command in the sender's own task, so refusals,
  no-ops, ``status`` and ``reduce-only`` are answered without a task switch, and a command that
  must interrupt cancels the running phase at once. No receiver task, no channel.
* Every command gets exactly one reply, published as a ``CommandHandled`` audit event: at
  arrival, when the lifecycle applies it, or when the strategy ends (:meth:`Mailbox.close`).
* A reply callback (``on_reply``) that raises is logged and harms nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import attrs
import trio

from trading.core.commands import Command, CommandResult
from trading.core.machine import CommandMachine, Kind, Ruling, interruption

__all__ = ["Mailbox", "MailboxOwner", "OnReply", "Request"]

log = logging.getLogger(__name__)
OnReply = Callable[[CommandResult], None]


class MailboxOwner(Protocol):
    """What the mailbox asks of the strategy runner it belongs to: five narrow questions."""

    def answer_now(self, command: Command) -> tuple[bool, str]:
        """Answer ``status`` or ``reduce-only`` from what is known now."""
        ...

    def refuse_early(self, command: Command) -> str | None:
        """An error for a command that can be refused before queueing (a bad ``set``)."""
        ...

    def interrupt(self, reason: str) -> None:
        """Cancel whatever phase runs now, with ``reason``."""
        ...

    def audit(self, command: Command, ok: bool, message: str) -> None:
        """Publish the reply as an audit event."""
        ...

    def after_end(self, command: Command) -> tuple[bool, str]:
        """The answer for a command that reached a strategy that has ended."""
        ...


@attrs.define(eq=False)
class Request:
    """A command on its way, and the one-shot slot (or callback) its reply goes to."""

    command: Command
    on_reply: OnReply | None = None
    result: CommandResult | None = attrs.field(default=None, init=False)
    _done: trio.Event | None = attrs.field(default=None, init=False)

    def resolve(self, result: CommandResult) -> None:
        if self.result is not None:
            return
        self.result = result
        if self._done is not None:
            self._done.set()
        if self.on_reply is not None:
            try:
                self.on_reply(result)
            except Exception:
                log.exception("an on_reply callback raised for %r", self.command.text)

    async def wait(self) -> CommandResult:
        if self.result is None:
            if self._done is None:
                self._done = trio.Event()
            await self._done.wait()
        assert self.result is not None
        return self.result


class Mailbox:
    """Bounded mailbox of one strategy, in front of its :class:`CommandMachine`."""

    __slots__ = ("_closed", "_joined", "_outcome", "_owner", "_waiting", "machine", "name")

    def __init__(self, machine: CommandMachine[Request], owner: MailboxOwner) -> None:
        self.machine = machine
        self.name = machine.name
        self._owner = owner
        # Senders waiting for room, oldest first. Each is a task blocked in send(), not a
        # buffer: send_nowait never waits here.
        self._waiting: list[Request] = []
        self._joined: list[Request] = []  # stops that arrived while stopping
        self._closed = False
        self._outcome = (True, "stopped")

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(self, command: Command) -> CommandResult:
        """Deliver ``command`` and wait for its reply; waits for room when the mailbox is full.

        Senders waiting for room get in first come, first served. Cancelling while waiting for
        room leaves nothing queued; cancelling while waiting for the reply only stops waiting
        (the command still runs and is audited).
        """
        request = Request(command)
        if not self._offer(request):
            self._waiting.append(request)
            try:
                return await request.wait()
            finally:
                if request in self._waiting:  # cancelled before it got in: it never arrived
                    self._waiting.remove(request)
        return await request.wait()

    def send_nowait(self, command: Command, on_reply: OnReply) -> None:
        """Deliver without blocking; ``on_reply`` gets the reply later, or "busy" at once."""
        request = Request(command, on_reply)
        if not self._offer(request):
            queued = len(self.machine.queue)
            self._reply(request, False, f"busy: {queued} commands queued for {self.name}; retry")

    def _offer(self, request: Request, *, admitting: bool = False) -> bool:
        """Rule on an arriving request; False if it must wait for room (nothing was changed)."""
        command = request.command
        if self._closed:
            self._reply(request, *self._owner.after_end(command))
            return True
        early = self._owner.refuse_early(command)
        if early is not None:
            self._reply(request, False, early)
            return True
        full = bool(self._waiting) and not admitting  # others wait already: no jumping the line
        ruling, hit = self.machine.receive(request, command, full=full)
        if ruling.kind is Kind.FULL:
            return False
        if ruling.kind is Kind.NOW:
            self._reply(request, *self._owner.answer_now(command))
        elif ruling.kind is Kind.REPLY:
            self._reply(request, ruling.ok, ruling.message)
        elif ruling.kind is Kind.JOIN:
            if len(self._joined) >= self.machine.capacity and request.on_reply is not None:
                return False  # nowait stops while stopping: bounded too ("busy")
            self._joined.append(request)
        elif hit:
            self._owner.interrupt(interruption(command))
        return True

    def next_step(self) -> tuple[Request, Command, Ruling] | None:
        """The oldest queued command with the machine's ruling, for the lifecycle to apply."""
        step = self.machine.next_step()
        while self._waiting and self._offer(self._waiting[0], admitting=True):
            self._waiting.pop(0)  # the longest-waiting sender takes the room, on its behalf
        return step

    def reply(self, request: Request, ok: bool, message: str, state: str | None = None) -> None:
        self._reply(request, ok, message, state)

    def _reply(self, request: Request, ok: bool, message: str, state: str | None = None) -> None:
        self._owner.audit(request.command, ok, message)
        phase = state or self.machine.flags.phase.value
        request.resolve(CommandResult(self.name, ok, message, phase))

    def stopped(self, ok: bool, message: str) -> None:
        """The stop's outcome: what the stop command and every stop joining it will be told."""
        self._outcome = (ok, message)

    def close(self) -> list[Request]:
        """The strategy ended: answer what is queued and the stops, refuse from now on.

        Returns the stop requests answered, for tests and callers that wait on them."""
        self._closed = True
        for request, command in self.machine.drain():
            if command.verb == "stop":
                self._joined.append(request)
            else:
                self._reply(request, *self._owner.after_end(command))
        waiting, self._waiting = self._waiting, []
        for request in waiting:
            self._reply(request, *self._owner.after_end(request.command))
        joined, self._joined = self._joined, []
        for request in joined:
            self._reply(request, *self._outcome)
        return joined

    def join_stop(self, request: Request) -> None:
        """The applied stop's own request: answered with the outcome when the strategy ends."""
        self._joined.append(request)
