"""The command side of one StrategyRunner: executing what the command machine ruled.

The rules this module keeps:

* It decides nothing. :class:`~trading.core.machine.CommandMachine` rules on every command;
  this object carries the rulings out: it answers what is answered at once (``status``,
  ``reduce-only``, a ``set`` that cannot validate), publishes every reply as a ``CommandHandled``
  audit event, and applies queued commands between phases (:meth:`CommandEffects.apply_pending`,
  called only by the lifecycle, so commands never race ``next()``).
* What it needs from the lifecycle is a small public surface of :class:`StrategyRunner`: the
  strategy, its account and context, ``phase_scope()`` and ``interrupt()``, ``next_close()`` and
  ``reset_backoff()``. It keeps no state of its own.
* Only ``stop`` and ``pause`` interrupt a running ``on_command``; its reply names what did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trading.core.commands import Command, CommandError
from trading.core.events import CommandHandled, Event
from trading.core.machine import Kind
from trading.core.params import ParamError, apply_params, param_values, validate_params
from trading.core.text import clock_time, show, span
from trading.runtime.mailbox import Mailbox, Request

if TYPE_CHECKING:
    from trading.runtime.strategy_runner import StrategyRunner

__all__ = ["CommandEffects"]

log = logging.getLogger(__name__)


class CommandEffects:
    """Carries out the machine's rulings for one StrategyRunner (it is the mailbox's owner)."""

    __slots__ = ("_publish", "mailbox", "sr")

    mailbox: Mailbox

    def __init__(self, sr: StrategyRunner, publish: Callable[[Event], None]) -> None:
        self.sr = sr
        self._publish = publish

    # -- between phases ------------------------------------------------------------------------

    async def apply_pending(self) -> None:
        """The one place commands change the strategy: between phases, in arrival order."""
        sr, mailbox = self.sr, self.mailbox
        while (step := mailbox.next_step()) is not None:
            request, command, ruling = step
            verb = command.verb
            if ruling.kind is not Kind.QUEUE:
                mailbox.reply(request, ruling.ok, ruling.message)
            elif verb == "stop":
                mailbox.join_stop(request)
                return
            elif verb == "resume":
                if sr.account is not None:
                    sr.account.halted = None  # an operator's resume re-arms the kill switch
                if ruling.message == "restarting now":
                    sr.reset_backoff()
                    mailbox.reply(request, True, ruling.message)
                else:
                    text = f"resumed; next compute at {clock_time(sr.next_close())}"
                    mailbox.reply(request, True, text, state="sleeping")
            elif verb == "set":
                self._apply_set(request, command)
            elif verb == "flatten":
                await self._flatten(request)
            elif verb in sr.machine.custom:
                await self._custom(request, command)
            else:
                mailbox.reply(request, True, ruling.message)

    def _apply_set(self, request: Request, command: Command) -> None:
        try:
            changed = apply_params(self.sr.strategy, dict(command.params))
        except ParamError as exc:
            self.mailbox.reply(request, False, f"set: {exc}")
            return
        text = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
        self.mailbox.reply(request, True, text)

    async def _flatten(self, request: Request) -> None:
        # The machine already paused the strategy: a flatten that fails still leaves it paused,
        # the cautious side, and says so.
        account = self.sr.account
        if account is None:
            self.mailbox.reply(request, False, f"{self.sr.name} has no trade engine; paused")
            return
        try:
            done = await account.flatten()  # its orders are shielded; nothing half-sent
        except Exception as exc:
            text = f"flatten failed: {type(exc).__name__}: {exc}; paused"
            self.mailbox.reply(request, False, text, state="paused")
            return
        summary = "; ".join(done) or "nothing to flatten"
        self.mailbox.reply(request, True, f"{summary}; paused", state="paused")

    async def _custom(self, request: Request, command: Command) -> None:
        sr = self.sr
        ctx = sr.ctx
        assert ctx is not None
        sr.machine.running_custom = True
        try:
            with sr.phase_scope() as scope:
                message = await sr.strategy.on_command(ctx, command)
        except (CommandError, ValueError) as exc:
            self.mailbox.reply(request, False, str(exc))
            return
        except Exception as exc:
            log.exception("%s: on_command(%r) raised", sr.name, command.verb)
            self.mailbox.reply(request, False, f"{type(exc).__name__}: {exc}")
            return
        finally:
            sr.machine.running_custom = False
        if scope.cancelled_caught:
            text = f"{command.verb} interrupted by {sr.interrupted_by}"
            self.mailbox.reply(request, False, text)
        else:
            self.mailbox.reply(request, True, message or "done")

    # -- what the mailbox asks (MailboxOwner) ----------------------------------------------------

    def interrupt(self, reason: str) -> None:
        self.sr.interrupt(reason)

    def answer_now(self, command: Command) -> tuple[bool, str]:
        sr = self.sr
        if command.verb == "status":
            return True, sr.describe()
        if sr.account is None:
            return False, f"{sr.name} has no trade engine"
        sr.account.reduce_only = on = command.args[:1] == ("on",)
        if on:
            return True, "reduce-only on: next() keeps running; orders adding exposure are refused"
        return True, "reduce-only off"

    def refuse_early(self, command: Command) -> str | None:
        if command.verb == "set":
            try:
                validate_params(self.sr.strategy, dict(command.params))
            except ParamError as exc:
                return f"set: {exc}"
        return None

    def audit(self, command: Command, ok: bool, message: str) -> None:
        self._publish(
            CommandHandled(
                time=self.sr.clock.now(),
                strategy=self.sr.name,
                command=command.text or command.verb,
                source=command.source,
                ok=ok,
                message=message,
            )
        )

    def after_end(self, command: Command) -> tuple[bool, str]:
        sr = self.sr
        if command.verb == "status":
            return True, sr.describe()
        if command.verb == "stop":
            return True, "already stopped"
        return False, f"{sr.name} is {sr.state}"

    # -- what an operator is told --------------------------------------------------------------

    def describe(self) -> str:
        """One line for an operator: state, what is queued ("pause pending"), schedule,
        parameters, health."""
        sr = self.sr
        parts = [str(sr.state), *sr.machine.pending()]
        if sr.due is not None:
            parts.append(
                f"next compute at {clock_time(sr.due)} (in {span(sr.due - sr.clock.now())})"
            )
        if sr.restart_in is not None:
            parts.append(f"restart in {span(sr.restart_in)}")
        parts.append(f"interval {sr.spec.interval}")
        parts.append(f"symbols {','.join(sr.spec.symbols)}")
        params = param_values(sr.strategy)
        if params:
            parts.append(" ".join(f"{k}={show(v)}" for k, v in params.items()))
        if sr.account is not None:
            parts.append(sr.account.summary())
        parts.append(f"computes {sr.computes}")
        if sr.failures:
            parts.append(f"failures {sr.failures}")
        if sr.last_error:
            parts.append(f"last error {sr.last_error}")
        return "; ".join(parts)

    def status(self) -> dict[str, Any]:
        sr = self.sr
        return {
            "name": sr.name,
            "state": sr.state.value,
            "pending": [command.verb for _, command in sr.machine.queue],
            "interval": sr.spec.interval.text,
            "symbols": list(sr.spec.symbols),
            "params": param_values(sr.strategy),
            "next_close": sr.due,
            "computes": sr.computes,
            "failures": sr.failures,
            "last_error": sr.last_error,
        }
