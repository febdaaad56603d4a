"""StrategyRunner: one strategy's nursery-free lifecycle, its phases, and the effects of commands.

The rules this module keeps (DESIGN.md, "Rules of time and cancellation"):

* The StrategyRunner *has* a :class:`~trading.runtime.mailbox.Mailbox` and, behind it, the pure
  :class:`~trading.core.machine.CommandMachine`; it decides nothing about commands itself. It
  executes the machine's effects: cancel the running phase, apply queued commands between
  phases (:meth:`_apply_pending`), read the flags to choose the next phase.
* Every wait is a *phase*: a ``trio.CancelScope`` in ``self._phase``. Bars are waited for on the
  strategy's clock; restart backoff in real monotonic time (``trio.current_time()``), so a
  compressed or virtual clock never turns a crash loop into hundreds of restarts.
* An ``OrderRefused`` out of ``next()`` is the account saying no (it published ``OrderRejected``):
  logged once, and the strategy goes on at its next bar; it is not a failure.
* Every ending runs one wind-down (:meth:`_wind_down`): ``on_stop`` (if ``on_start`` completed),
  the account's shutdown (open orders cancelled or reported, positions kept), then a flush — all
  under ONE shielded scope whose deadline is ``stop_timeout`` from the start, so the deadline
  reaches every shielded step below. A stop, a failure given up and an outside cancellation
  (the Runner torn down) take the same path; the stop's reply lists what was and was not done.
"""

from __future__ import annotations

import logging
import math
import traceback
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import attrs
import trio

from trading.core.commands import Command, CommandError, CommandResult
from trading.core.events import CommandHandled, Event, StrategyFailed, StrategyStateChanged
from trading.core.machine import CommandMachine, Kind
from trading.core.orders import OrderRefused
from trading.core.params import ParamError, apply_params, param_values, validate_params
from trading.core.restart import Backoff, RestartPolicy
from trading.core.states import StrategyState, check_transition
from trading.core.text import clock_time, show, span
from trading.exchanges.base import MarketData
from trading.runtime.account import Account
from trading.runtime.clock import Clock
from trading.runtime.mailbox import Mailbox, OnReply, Request
from trading.runtime.strategy import Context, Strategy, StrategySpec
from trading.runtime.wind_down import run_on_stop, wind_down

__all__ = ["Publish", "StoppedWhileStarting", "StrategyRunner"]

Publish = Callable[[Event], None]
S = StrategyState
log = logging.getLogger(__name__)


class _Failed(Exception):
    """Strategy code raised; carries the phase so the error report can say where."""

    def __init__(self, phase: str, error: BaseException) -> None:
        super().__init__(phase, error)
        self.phase = phase
        self.error = error


class StoppedWhileStarting(RuntimeError):
    """A stop landed while the first on_start was still running: the strategy never ran."""


class StrategyRunner:
    """Runs one strategy until it is stopped. Create it, then ``await nursery.start(sr.run)``."""

    # Thousands of these may live in one process: slots save a kilobyte and a half each.
    __slots__ = (
        "__weakref__",
        "_backoff",
        "_ctx",
        "_due",
        "_flush",
        "_interrupted_by",
        "_last_due",
        "_on_given_up",
        "_phase",
        "_publish",
        "_restart_at",
        "account",
        "clock",
        "computes",
        "finished",
        "last_error",
        "machine",
        "mailbox",
        "market",
        "name",
        "ready",
        "spec",
        "state",
        "stop_timeout",
        "strategy",
    )

    def __init__(
        self,
        strategy: Strategy,
        spec: StrategySpec,
        *,
        clock: Clock,
        market: MarketData,
        publish: Publish,
        restart_policy: RestartPolicy | None = None,
        stop_timeout: float = 10.0,
        command_buffer: int = 16,
        account: Account | None = None,
        flush: Callable[[], Awaitable[None]] | None = None,
        on_given_up: Callable[[], None] | None = None,
    ) -> None:
        self.strategy = strategy
        self.spec = spec
        self.name = spec.name
        self.clock = clock
        self.market = market
        self.stop_timeout = stop_timeout
        self.account = account
        self._flush = flush
        self._on_given_up = on_given_up
        self._publish = publish
        if account is not None:
            account.on_kill = _weak_kill(self)  # the engine's account must not pin this runner
        self._backoff = Backoff(restart_policy or RestartPolicy())
        self.machine: CommandMachine[Request] = CommandMachine(
            spec.name, frozenset(spec.custom_commands), capacity=command_buffer
        )
        self.mailbox = Mailbox(self.machine, self)
        self.state = S.CREATED
        self._phase: trio.CancelScope | None = None
        self._interrupted_by = ""
        self._last_due = -math.inf
        self._due: float | None = None
        self._restart_at: float | None = None  # trio (real monotonic) time
        self._ctx: Context | None = None
        self.computes = 0
        self.last_error: str | None = None
        self.finished = trio.Event()
        self.ready = False

    # -- the outside world's entry points ------------------------------------------------------

    async def send(self, command: Command) -> CommandResult:
        """Deliver a command and wait for its reply (waits for room if the mailbox is full)."""
        return await self.mailbox.send(command)

    def send_nowait(self, command: Command, on_reply: OnReply) -> None:
        """Deliver without blocking: ``on_reply`` gets the reply later, or "busy" at once."""
        self.mailbox.send_nowait(command, on_reply)

    async def run(
        self, *, task_status: trio.TaskStatus[StrategyRunner] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until stopped. Signals readiness once ``on_start`` succeeded the first time; an
        exception from that first ``on_start`` propagates to the caller of ``nursery.start``."""
        try:
            await self._lifecycle(task_status)
        finally:
            self.finished.set()
            self.mailbox.close()

    # -- lifecycle ------------------------------------------------------------------------------

    async def _lifecycle(self, task_status: trio.TaskStatus[StrategyRunner]) -> None:
        while True:
            self._set_state(S.STARTING, "restart" if self.ready else "added")
            ctx = self._ctx = Context(
                spec=self.spec,
                clock=self.clock,
                market=self.market,
                # per-strategy logger; it holds no handler or closure that could pin this runner
                log=logging.getLogger(f"trading.strategy.{self.name}"),
                account=self.account,
            )
            on_stop_owed = False
            try:
                try:
                    with self._phase_scope() as scope:
                        await self._guard("on_start", self.strategy.on_start, ctx)
                except _Failed as failure:
                    if not self.ready:
                        raise failure.error from None
                    if await self._after_failure(failure):
                        continue
                    await self._wind_down(ctx, on_stop=False)
                    return
                if scope.cancelled_caught:  # only a stop interrupts on_start
                    await self._apply_pending()
                    await self._wind_down(ctx, on_stop=False)
                    if not self.ready:
                        raise StoppedWhileStarting(
                            f"{self.name} was stopped before on_start finished"
                        )
                    return
                if not self.ready:
                    self.ready = True  # the caller of add() can now tell setup errors from later
                    task_status.started(self)
                on_stop_owed = True
                try:
                    await self._phases(ctx)
                except _Failed as failure:
                    on_stop_owed = False
                    problem = await self._bounded_on_stop(ctx)
                    if problem:
                        log.error("%s: on_stop after a failure %s", self.name, problem)
                    if await self._after_failure(failure):
                        self._fresh_instance()
                        continue
                    await self._wind_down(ctx, on_stop=False)
                    return
                await self._wind_down(ctx, on_stop=True)
                return
            except trio.Cancelled:
                # Cancelled from outside (the Runner is torn down): the same bounded wind-down as
                # a stop, then the cancellation goes on.
                if self.ready and self.state is not S.STOPPED:
                    await self._wind_down(ctx, on_stop=on_stop_owed)
                raise

    async def _phases(self, ctx: Context) -> None:
        """Compute and sleep until a stop; strategy errors leave as _Failed."""
        compute_due = self.spec.cls.compute_on_start
        while True:
            await self._apply_pending()
            flags = self.machine.flags
            if flags.stopping:
                return
            if flags.paused:
                compute_due = False  # resume goes back to the bar schedule, even before the first
                await self._idle(S.PAUSED, until=None)
                continue
            if self.machine.take_wake() or compute_due:
                compute_due = False
                await self._compute(ctx)
                continue
            # The sleep phase: wait for the next bar close on the strategy's clock.
            self._due = self.spec.interval.next_close(max(self.clock.now(), self._last_due))
            if await self._idle(S.SLEEPING, until=self._due):
                self._last_due = self._due
                compute_due = True

    async def _compute(self, ctx: Context) -> None:
        self._set_state(S.COMPUTING)
        ctx.bar_close = self._last_due if self._last_due > -math.inf else None
        with self._phase_scope() as scope:
            await self._refresh_marks()
            try:
                await self._guard("next", self.strategy.next, ctx)
            except _Failed as failure:
                if not isinstance(failure.error, OrderRefused):
                    raise
                # The account refused an order and published OrderRejected: not a crash.
                log.warning(
                    "%s: next() ended on a refused order (%s); it runs again at the next bar",
                    self.name,
                    failure.error,
                )
            self.computes += 1
            ctx.computes = self.computes
        if scope.cancelled_caught:
            log.info("%s: next() interrupted by %s", self.name, self._interrupted_by)

    async def _refresh_marks(self) -> None:
        """Mark positions to market before each compute, so the kill switch sees price moves."""
        if self.account is None:
            return
        try:
            await self.account.refresh_marks()
        except Exception as exc:  # a price feed hiccup must not count as a strategy failure
            log.warning("%s: could not mark positions to market: %s", self.name, exc)

    def _kill(self, reason: str) -> None:
        """The account's kill switch tripped: pause at once, as an operator's pause would."""
        text = f"pause {self.name}"
        self.mailbox.send_nowait(Command("pause", self.name, source="risk", text=text), _ignore)

    async def _idle(self, state: StrategyState, *, until: float | None, real: bool = False) -> bool:
        """Wait in ``state`` until ``until`` (or forever); False if a command interrupted.

        ``until`` is on the strategy's clock, or in trio's monotonic time when ``real``."""
        self._set_state(state)
        with self._phase_scope() as scope:
            if until is None:
                await trio.sleep_forever()
            elif real:
                await trio.sleep_until(until)
            else:
                await self.clock.sleep_until(until)
        return not scope.cancelled_caught

    async def _after_failure(self, failure: _Failed) -> bool:
        """Report a strategy error and wait out the backoff; True to restart, False to stop."""
        now = trio.current_time()  # backoff counts real seconds (C3), never the bar clock
        delay = self._backoff.failed(now)
        error = f"{type(failure.error).__name__}: {failure.error}"
        self.last_error = f"{failure.phase}: {error}"
        tb = "".join(traceback.format_exception(failure.error))
        self._publish(
            StrategyFailed(
                time=self.clock.now(),
                strategy=self.name,
                phase=failure.phase,
                error=error,
                traceback=tb,
                failures=self._backoff.failures,
                restart_in=delay,
            )
        )
        if delay is None:
            log.error("%s failed in %s and gave up restarting: %s", self.name, failure.phase, error)
        else:
            log.warning(
                "%s failed in %s (%s); restart in %gs", self.name, failure.phase, error, delay
            )
        self._set_state(S.FAILED, self.last_error)
        self._restart_at = None if delay is None else now + delay
        if self.given_up and self._on_given_up is not None:
            self._on_given_up()
        while True:
            await self._apply_pending()
            if self.machine.flags.stopping:
                return False
            if self.machine.take_restart():
                self._restart_at = None
                self._set_state(S.RESTARTING, "operator")
                return True
            if self._restart_at is None:
                await self._idle(S.FAILED, until=None)
            elif await self._idle(S.RESTARTING, until=self._restart_at, real=True):
                self._restart_at = None
                return True

    def _fresh_instance(self) -> None:
        """Restart from clean state but keep parameters an operator may have ``set``."""
        if attrs.has(type(self.strategy)):
            self.strategy = attrs.evolve(cast(Any, self.strategy))
        else:
            self.strategy = type(self.strategy)()

    # -- the wind-down ---------------------------------------------------------------------------

    async def _wind_down(self, ctx: Context, *, on_stop: bool) -> None:
        self._set_state(S.STOPPING, "stop")
        strategy = self.strategy
        ok, message = await wind_down(
            self.name,
            on_stop=(lambda: strategy.on_stop(ctx)) if on_stop else None,
            account=self.account,
            flush=self._flush,
            stop_timeout=self.stop_timeout,
        )
        self._set_state(S.STOPPED, "stop")
        self.mailbox.stopped(ok, message)

    async def _bounded_on_stop(self, ctx: Context) -> str | None:
        """on_stop after a failure, before the restart: shielded, bounded by ``stop_timeout``."""
        strategy = self.strategy
        with trio.CancelScope(shield=True, deadline=trio.current_time() + self.stop_timeout) as sc:
            problem = await run_on_stop(self.name, lambda: strategy.on_stop(ctx))
        return f"timed out after {self.stop_timeout:g}s" if sc.cancelled_caught else problem

    # -- executing commands --------------------------------------------------------------------

    async def _apply_pending(self) -> None:
        """The one place commands change the strategy: between phases, in arrival order."""
        while (step := self.mailbox.next_step()) is not None:
            request, command, ruling = step
            verb = command.verb
            if ruling.kind is not Kind.QUEUE:
                self.mailbox.reply(request, ruling.ok, ruling.message)
            elif verb == "stop":
                self.mailbox.join_stop(request)
                return
            elif verb == "resume":
                if self.account is not None:
                    self.account.halted = None  # an operator's resume re-arms the kill switch
                if ruling.message == "restarting now":
                    self._backoff.reset()
                    self.mailbox.reply(request, True, ruling.message)
                else:
                    due = self.spec.interval.next_close(max(self.clock.now(), self._last_due))
                    text = f"resumed; next compute at {clock_time(due)}"
                    self.mailbox.reply(request, True, text, state="sleeping")
            elif verb == "set":
                self._apply_set(request, command)
            elif verb == "flatten":
                await self._flatten(request)
            elif verb in self.machine.custom:
                await self._custom(request, command)
            else:
                self.mailbox.reply(request, True, ruling.message)

    def _apply_set(self, request: Request, command: Command) -> None:
        try:
            changed = apply_params(self.strategy, dict(command.params))
        except ParamError as exc:
            self.mailbox.reply(request, False, f"set: {exc}")
            return
        text = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
        self.mailbox.reply(request, True, text)

    async def _flatten(self, request: Request) -> None:
        # The machine already paused the strategy: a flatten that fails still leaves it paused,
        # the cautious side, and says so.
        if self.account is None:
            self.mailbox.reply(request, False, f"{self.name} has no trade engine; paused")
            return
        try:
            done = await self.account.flatten()  # its orders are shielded; nothing half-sent
        except Exception as exc:
            text = f"flatten failed: {type(exc).__name__}: {exc}; paused"
            self.mailbox.reply(request, False, text, state="paused")
            return
        summary = "; ".join(done) or "nothing to flatten"
        self.mailbox.reply(request, True, f"{summary}; paused", state="paused")

    async def _custom(self, request: Request, command: Command) -> None:
        ctx = self._ctx
        assert ctx is not None
        self.machine.running_custom = True
        try:
            with self._phase_scope() as scope:
                message = await self.strategy.on_command(ctx, command)
        except (CommandError, ValueError) as exc:
            self.mailbox.reply(request, False, str(exc))
            return
        except Exception as exc:
            log.exception("%s: on_command(%r) raised", self.name, command.verb)
            self.mailbox.reply(request, False, f"{type(exc).__name__}: {exc}")
            return
        finally:
            self.machine.running_custom = False
        if scope.cancelled_caught:
            text = f"{command.verb} interrupted by {self._interrupted_by}"
            self.mailbox.reply(request, False, text)
        else:
            self.mailbox.reply(request, True, message or "done")

    # -- what the mailbox asks (MailboxOwner) ----------------------------------------------------

    def interrupt(self, reason: str) -> None:
        # the first interruption is the one that ended the phase; later ones find it cancelled
        if self._phase is not None and not self._phase.cancel_called:
            self._interrupted_by = reason
            self._phase.cancel(reason=reason)

    def answer_now(self, command: Command) -> tuple[bool, str]:
        if command.verb == "status":
            return True, self.describe()
        if self.account is None:
            return False, f"{self.name} has no trade engine"
        self.account.reduce_only = on = command.args[:1] == ("on",)
        if on:
            return True, "reduce-only on: next() keeps running; orders adding exposure are refused"
        return True, "reduce-only off"

    def refuse_early(self, command: Command) -> str | None:
        if command.verb == "set":
            try:
                validate_params(self.strategy, dict(command.params))
            except ParamError as exc:
                return f"set: {exc}"
        return None

    def audit(self, command: Command, ok: bool, message: str) -> None:
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

    def after_end(self, command: Command) -> tuple[bool, str]:
        if command.verb == "status":
            return True, self.describe()
        if command.verb == "stop":
            return True, "already stopped"
        return False, f"{self.name} is {self.state}"

    # -- small helpers ---------------------------------------------------------------------------

    async def _guard(
        self, phase: str, hook: Callable[[Context], Awaitable[None]], ctx: Context
    ) -> None:
        try:
            await hook(ctx)
        except Exception as exc:
            raise _Failed(phase, exc) from exc

    @contextmanager
    def _phase_scope(self) -> Iterator[trio.CancelScope]:
        with trio.CancelScope() as scope:
            self._phase = scope
            try:
                yield scope
            finally:
                self._phase = None

    def _set_state(self, new: StrategyState, reason: str = "") -> None:
        old = self.state
        self.machine.entered(new)  # even unchanged: a pause may have moved the machine's view on
        if new is old:
            return
        check_transition(old, new)
        self.state = new
        self._publish(
            StrategyStateChanged(
                time=self.clock.now(),
                strategy=self.name,
                old=old.value,
                new=new.value,
                reason=reason,
            )
        )

    @property
    def given_up(self) -> bool:
        """Failed past its restart budget: nothing more happens without an operator."""
        return self.state is S.FAILED and self._restart_at is None

    @property
    def restart_in(self) -> float | None:
        """Real seconds until the scheduled restart, if one is scheduled."""
        if self.state is not S.RESTARTING or self._restart_at is None:
            return None
        return max(0.0, self._restart_at - trio.current_time())

    @property
    def due(self) -> float | None:
        """The bar close the strategy sleeps toward (strategy clock), while sleeping."""
        return self._due if self.state is S.SLEEPING else None

    @property
    def failures(self) -> int:
        return self._backoff.failures

    def describe(self) -> str:
        """One line for an operator: state, what is queued ("pause pending"), schedule,
        parameters, health."""
        parts = [str(self.state), *self.machine.pending()]
        if self.due is not None:
            parts.append(
                f"next compute at {clock_time(self.due)} (in {span(self.due - self.clock.now())})"
            )
        if self.restart_in is not None:
            parts.append(f"restart in {span(self.restart_in)}")
        parts.append(f"interval {self.spec.interval}")
        parts.append(f"symbols {','.join(self.spec.symbols)}")
        params = param_values(self.strategy)
        if params:
            parts.append(" ".join(f"{k}={show(v)}" for k, v in params.items()))
        if self.account is not None:
            parts.append(self.account.summary())
        parts.append(f"computes {self.computes}")
        if self.failures:
            parts.append(f"failures {self.failures}")
        if self.last_error:
            parts.append(f"last error {self.last_error}")
        return "; ".join(parts)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "pending": [command.verb for _, command in self.machine.queue],
            "interval": self.spec.interval.text,
            "symbols": list(self.spec.symbols),
            "params": param_values(self.strategy),
            "next_close": self.due,
            "computes": self.computes,
            "failures": self.failures,
            "last_error": self.last_error,
        }


def _weak_kill(sr: StrategyRunner) -> Callable[[str], None]:
    ref = weakref.ref(sr)

    def kill(reason: str) -> None:
        runner = ref()
        if runner is not None:
            runner._kill(reason)

    return kill


def _ignore(result: object) -> None:
    """A reply nobody waits for (the kill switch's own pause is audited like any command)."""
