"""The command side of a StrategyRunner: its mailbox, the receiver task, and the one point
between phases where queued commands change the strategy.

Split from runner.py, which keeps the lifecycle (start, phases, failures, stop). The two halves
meet in a few attributes: the receiver reads ``state`` and ``_phase``, and cancels the phase when
:func:`trading.policy.interrupts` says a command cannot wait; the lifecycle calls
:meth:`CommandSide._apply_pending` between phases. Every request gets exactly one reply, and every
reply is published as a ``CommandHandled`` audit event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import attrs
import trio

from trading.core.commands import Command, CommandError, CommandResult
from trading.core.events import CommandHandled, Event
from trading.core.params import ParamError, apply_params, validate_params
from trading.core.policy import admit, interrupts
from trading.core.states import StrategyState
from trading.core.text import clock_time

if TYPE_CHECKING:
    from trading.core.restart import Backoff
    from trading.runtime.account import Account
    from trading.runtime.clock import Clock
    from trading.runtime.strategy import Context, Strategy, StrategySpec

__all__ = ["CommandSide", "Request"]

S = StrategyState
log = logging.getLogger(__name__)


@attrs.define(eq=False)
class Request:
    """A command on its way to a strategy, and the one-shot slot its reply goes in."""

    command: Command
    _done: trio.Event = attrs.field(factory=trio.Event, init=False)
    result: CommandResult | None = attrs.field(default=None, init=False)

    def resolve(self, result: CommandResult) -> None:
        if self.result is None:
            self.result = result
            self._done.set()

    async def wait(self) -> CommandResult:
        await self._done.wait()
        assert self.result is not None
        return self.result


class CommandSide:
    """Mixed into StrategyRunner; holds no state of its own (see the module docstring)."""

    # The flags this side sets; the rest of the state is the lifecycle's (runner.py).
    __slots__ = ("_interrupted_by", "_paused", "_restart_now", "_stopping", "_wake")

    _interrupted_by: str
    _paused: bool
    _restart_now: bool
    _stopping: bool
    _wake: bool
    name: str
    state: StrategyState
    clock: Clock
    strategy: Strategy
    spec: StrategySpec
    account: Account | None
    finished: trio.Event
    _publish: Callable[[Event], None]
    _send: trio.MemorySendChannel[Request]
    _receive: trio.MemoryReceiveChannel[Request]
    _phase: trio.CancelScope | None
    _pending: list[Request]
    _stop_requests: list[Request]
    _last_due: float
    _ctx: Context | None
    _stop_outcome: tuple[bool, str]
    _backoff: Backoff

    def describe(self) -> str:
        raise NotImplementedError

    def _phase_scope(self) -> AbstractContextManager[trio.CancelScope]:
        raise NotImplementedError

    # -- the outside world's entry point --------------------------------------------------------

    async def send(self, command: Command) -> CommandResult:
        """Deliver a command and wait for its reply. Cancel-safe: the reply is just not awaited."""
        request = Request(command)
        try:
            await self._send.send(request)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return self._reply_when_finished(command)
        return await request.wait()

    # -- commands -------------------------------------------------------------------------------

    async def _receiver(self) -> None:
        async for request in self._receive:
            self._receive_one(request)

    def _receive_one(self, request: Request) -> None:
        """Answer at once what needs no change; queue the rest and interrupt the phase if needed."""
        command = request.command
        verb, state = command.verb, self.state
        if verb == "status":
            self._reply(request, True, self.describe())
            return
        if self._stopping or state in (S.STOPPING, S.STOPPED):
            if verb == "stop":
                self._stop_requests.append(request)
            else:
                self._reply(request, False, f"{self.name} is {state}")
            return
        if verb == "reduce-only":
            self._reply(request, *self._set_reduce_only(command.args[0] == "on"))
            return
        if verb == "set":
            try:
                validate_params(self.strategy, dict(command.params))
            except ParamError as exc:
                self._reply(request, False, f"set: {exc}")
                return
        pause_queued = any(r.command.verb == "pause" for r in self._pending)
        verdict = admit(
            verb,
            state,
            name=self.name,
            paused=self._paused,
            pause_queued=pause_queued,
            custom=self.spec.custom_commands,
        )
        if verdict is not None:
            self._reply(request, *verdict)
            return
        self._pending.append(request)
        if self._phase is not None and interrupts(verb, state):
            self._interrupted_by = f"command {verb!r} from {command.source}"
            self._phase.cancel(reason=self._interrupted_by)

    def _set_reduce_only(self, on: bool) -> tuple[bool, str]:
        if self.account is None:
            return False, f"{self.name} has no trade engine"
        self.account.reduce_only = on
        if on:
            return True, "reduce-only on: next() keeps running; orders adding exposure are refused"
        return True, "reduce-only off"

    async def _apply_pending(self) -> None:
        """The one place commands change the strategy: between phases, in arrival order."""
        while self._pending:
            request = self._pending.pop(0)
            command = request.command
            verb = command.verb
            if verb == "stop":
                self._stopping = True
                self._stop_requests.append(request)
                # Whatever else was queued will not run: say so rather than leave it hanging.
                for other in self._pending:
                    self._reply(other, False, f"{self.name} is stopping")
                self._pending.clear()
                return
            if verb == "pause":
                if self._paused:
                    self._reply(request, True, "already paused")
                else:
                    was = self.state
                    self._paused = True
                    note = "; next() was interrupted" if was is S.COMPUTING else ""
                    self._reply(request, True, f"paused (was {was}){note}", state="paused")
            elif verb == "flatten":
                await self._flatten(request)
            elif verb == "resume":
                if self.account is not None:
                    self.account.halted = None  # an operator's resume re-arms the kill switch
                if self.state in (S.FAILED, S.RESTARTING):
                    self._backoff.reset()
                    self._restart_now = True
                    self._reply(request, True, "restarting now", state="restarting")
                elif self._paused:
                    self._paused = False
                    due = self.spec.interval.next_close(max(self.clock.now(), self._last_due))
                    self._reply(
                        request,
                        True,
                        f"resumed; next compute at {clock_time(due)}",
                        state="sleeping",
                    )
                else:
                    self._reply(request, True, f"not paused ({self.state})")
            elif verb == "wake":
                if self.state in (S.FAILED, S.RESTARTING):
                    self._restart_now = True
                    self._reply(request, True, "restarting now", state="restarting")
                else:
                    self._wake = True
                    self._reply(request, True, "waking: next() runs now", state="computing")
            elif verb == "set":
                try:
                    changed = apply_params(self.strategy, dict(command.params))
                except ParamError as exc:
                    self._reply(request, False, f"set: {exc}")
                else:
                    text = ", ".join(
                        f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items()
                    )
                    self._reply(request, True, text)
            else:
                await self._custom(request)

    async def _flatten(self, request: Request) -> None:
        if self.account is None:
            self._reply(request, False, f"{self.name} has no trade engine")
            return
        try:
            done = await self.account.flatten()  # its orders are shielded; nothing half-sent
        except Exception as exc:
            self._reply(request, False, f"flatten failed: {type(exc).__name__}: {exc}")
            return
        self._paused = True
        summary = "; ".join(done) or "nothing to flatten"
        self._reply(request, True, f"{summary}; paused", state="paused")

    async def _custom(self, request: Request) -> None:
        ctx = self._ctx
        assert ctx is not None
        with self._phase_scope() as scope:
            try:
                message = await self.strategy.on_command(ctx, request.command)
            except (CommandError, ValueError) as exc:
                self._reply(request, False, str(exc))
                return
            except Exception as exc:
                log.exception("%s: on_command(%r) raised", self.name, request.command.verb)
                self._reply(request, False, f"{type(exc).__name__}: {exc}")
                return
        if scope.cancelled_caught:
            self._reply(
                request, False, f"{request.command.verb} interrupted by {self._interrupted_by}"
            )
        else:
            self._reply(request, True, message or "done")

    def _reply(self, request: Request, ok: bool, message: str, *, state: str | None = None) -> None:
        result = CommandResult(self.name, ok, message, state or self.state.value)
        command = request.command
        self._publish(
            CommandHandled(
                time=self.clock.now(),
                strategy=self.name,
                command=command.text or command.verb,
                source=command.source,
                ok=ok,
                message=message,
            )
        )
        request.resolve(result)

    def _reply_when_finished(self, command: Command) -> CommandResult:
        if command.verb == "status":
            return CommandResult(self.name, True, self.describe(), self.state.value)
        if command.verb == "stop":
            return CommandResult(self.name, True, "already stopped", self.state.value)
        return CommandResult(self.name, False, f"{self.name} is {self.state}", self.state.value)

    def _close_mailbox(self) -> None:
        """Answer everything still queued, then refuse new commands (senders get a reply too)."""
        leftovers = list(self._pending)
        self._pending.clear()
        while True:
            try:
                leftovers.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        self._receive.close()
        for request in leftovers:
            result = self._reply_when_finished(request.command)
            self._reply(request, result.ok, result.message)
        ok, message = self._stop_outcome
        for request in self._stop_requests:
            self._reply(request, ok, message)
        self._stop_requests.clear()
