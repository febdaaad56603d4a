"""Command delivery: from a line of text (or a parsed Command) to the strategies it names.

The rules this module keeps (DESIGN.md rule 7):

* Bad input never raises: a line that cannot be parsed, names an unknown strategy or leaves
  out the name where several run gets one error reply, audited as a ``CommandHandled`` event,
  and nothing changes.
* A refused line is audited by a short prefix (:data:`AUDIT_TEXT_LIMIT` characters and "…"),
  never copied whole: a pasted megabyte must not reach every observer and the database.
* Targets are looked up before any await: a strategy removed while the command is on its way
  gets a "removed" reply, never a KeyError.
* :meth:`CommandRouter.send_nowait` never waits: a full mailbox answers "busy" at once, so it
  can run from ``run_sync_soon`` (other threads, signal handlers).
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from trading.core.commands import Command, CommandError, CommandResult, parse_command, usage
from trading.core.events import CommandHandled, Event
from trading.runtime.clock import Clock
from trading.runtime.strategy_runner import StrategyRunner

__all__ = ["AUDIT_TEXT_LIMIT", "NOT_RUNNING", "CommandRouter", "OnReply", "clip"]

OnReply = Callable[[list[CommandResult]], None]
NOT_RUNNING = "the Runner is not running (not entered yet, or exited)"
AUDIT_TEXT_LIMIT = 80


def clip(text: str) -> str:
    """``text`` as a refused line is kept: at most :data:`AUDIT_TEXT_LIMIT` characters + "…"."""
    if len(text) <= AUDIT_TEXT_LIMIT:
        return text
    return text[:AUDIT_TEXT_LIMIT] + "…"


class CommandRouter:
    """Parses, resolves targets and delivers, over the Runner's strategy table (shared, not
    copied: the Runner adds and removes, the router reads). ``is_open`` says whether the
    Runner takes commands (running or closing)."""

    def __init__(
        self,
        strategies: dict[str, StrategyRunner],
        *,
        clock: Clock,
        publish: Callable[[Event], None],
        is_open: Callable[[], bool],
    ) -> None:
        self._strategies = strategies
        self._clock = clock
        self._publish = publish
        self._is_open = is_open
        self._verbs: dict[str, str] | None = None

    def forget_verbs(self) -> None:
        """The strategy table changed: recompute the custom verbs on the next command."""
        self._verbs = None

    def custom_commands(self) -> dict[str, str]:
        """Every strategy's own verbs; cached, as every text command needs them to parse."""
        if self._verbs is None:
            self._verbs = {}
            for runner in self._strategies.values():
                self._verbs.update(runner.spec.custom_commands)
        return self._verbs

    def unknown(self, name: str) -> str:
        known = ", ".join(self._strategies) or "none"
        return f"unknown strategy {name!r}; running: {known}"

    def _resolve(
        self, command: Command | str, source: str
    ) -> tuple[Command, list[str]] | list[CommandResult]:
        """The parsed command and its targets, or the replies that refuse it."""
        if not self._is_open():
            text = command if isinstance(command, str) else command.text or command.verb
            return [CommandResult("", False, f"{NOT_RUNNING}: {clip(text)!r} not delivered")]
        if isinstance(command, str):
            line = command
            try:
                command = parse_command(line, source=source, custom_verbs=self.custom_commands())
            except CommandError as exc:
                refused = Command("?", source=source, text=clip(line))
                return [self.reply(refused, False, str(exc))]
        if command.verb == "help":
            return [self.reply(command, True, usage(self.custom_commands()))]
        try:
            targets = self._targets(command)
        except CommandError as exc:
            return [self.reply(command, False, str(exc))]
        if not targets:
            return [self.reply(command, True, "no strategies")]
        return command, targets

    async def send(self, command: Command | str, *, source: str) -> list[CommandResult]:
        """See :meth:`trading.runtime.runner.Runner.send`."""
        resolved = self._resolve(command, source)
        if isinstance(resolved, list):
            return resolved
        parsed, targets = resolved
        results: dict[str, CommandResult] = {}

        async def deliver(name: str, runner: StrategyRunner) -> None:
            # The runner was looked up before any await: a concurrent remove() cannot turn this
            # into a KeyError; it gets a reply saying what happened instead.
            if self._strategies.get(name) is not runner:
                results[name] = CommandResult(name, False, f"{name} was removed", "removed")
                return
            results[name] = await runner.send(parsed.for_target(name))

        pairs = [(name, self._strategies[name]) for name in targets]
        if len(pairs) == 1:
            await deliver(*pairs[0])
        else:
            async with trio.open_nursery() as nursery:
                for name, runner in pairs:
                    nursery.start_soon(deliver, name, runner)
        return [results[name] for name in targets]

    def send_nowait(self, text: str, source: str, on_reply: OnReply) -> None:
        """Deliver ``text`` to its targets without waiting; ``on_reply`` gets every reply once
        the last one is in (at once for refusals and "busy"). Runs in the trio thread."""
        resolved = self._resolve(text, source)
        if isinstance(resolved, list):
            on_reply(resolved)
            return
        command, targets = resolved
        results: dict[str, CommandResult] = {}

        def collect(name: str) -> Callable[[CommandResult], None]:
            def got(result: CommandResult) -> None:
                results[name] = result
                if len(results) == len(targets):
                    on_reply([results[n] for n in targets])

            return got

        for name in targets:
            self._strategies[name].send_nowait(command.for_target(name), collect(name))

    def _targets(self, command: Command) -> list[str]:
        target = command.target
        if target == "all" or (target is None and command.verb == "status"):
            return list(self._strategies)
        if target is None:
            if len(self._strategies) == 1:
                return list(self._strategies)
            raise CommandError(
                f"{command.verb}: say which strategy: {' | '.join([*self._strategies, 'all'])}"
            )
        if target not in self._strategies:
            raise CommandError(self.unknown(target))
        return [target]

    def reply(self, command: Command, ok: bool, message: str) -> CommandResult:
        """The Runner's own reply (no strategy reached), audited like a strategy's."""
        self._publish(
            CommandHandled(
                time=self._clock.now(),
                strategy=command.target or "",
                command=command.text or command.verb,
                source=command.source,
                ok=ok,
                message=message,
            )
        )
        return CommandResult("", ok, message)
