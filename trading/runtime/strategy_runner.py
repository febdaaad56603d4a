"""StrategyRunner: one strategy's lifecycle — its phases, failures, restarts and wind-down.

The rules this module keeps (DESIGN.md, "Rules of time and cancellation"):

* The StrategyRunner *has* a :class:`~trading.runtime.mailbox.Mailbox` and, behind it, the pure
  :class:`~trading.core.machine.CommandMachine`; it decides nothing about commands itself. It
  executes the machine's effects — its :class:`~trading.runtime.effects.CommandEffects` applies
  queued commands between phases — and reads the machine's flags to choose the next phase.
* Every wait is a *phase* (:mod:`~trading.runtime.phases`): one ``trio.CancelScope``. Bars
  are waited for on the strategy's clock; restart backoff in real monotonic time
  (``trio.current_time()``), so a compressed or virtual clock never turns a crash loop into
  hundreds of restarts.
* A close that is already reached when a compute ends (a replay's clock reaches each close at
  once; a live one only after a compute ran past it) is computed back to back in the same
  phase, unless a command waits to be applied or a flag is up: what the loop would do, without
  a scope and a loop turn per bar.
* An ``OrderRefused`` out of ``next()`` is the account saying no (it published ``OrderRejected``):
  logged once, and the strategy goes on at its next bar; it is not a failure.
* Every ending runs one wind-down (:meth:`_wind_down`): ``on_stop`` (if ``on_start`` completed),
  the account's shutdown (open orders cancelled or reported, positions kept), then a flush — all
  under ONE shielded scope whose deadline is ``stop_timeout`` from the start, so the deadline
  reaches every shielded step below. A stop, a failure given up and an outside cancellation
  (the Runner torn down) take the same path; the stop's reply lists what was and was not done.

Its parts live elsewhere: where the bar schedule is in :mod:`~trading.runtime.bar_schedule`, what
a failure costs in :mod:`~trading.runtime.failures`, the kill switch's pause in
:mod:`~trading.runtime.kill_switch`, what commands do in :mod:`~trading.runtime.effects`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any

import trio

from trading.core.commands import Command, CommandResult
from trading.core.events import Event, StrategyStateChanged
from trading.core.machine import CommandMachine
from trading.core.orders import OrderRefused
from trading.core.restart import RestartPolicy
from trading.core.states import StrategyState, check_transition
from trading.exchanges.base import MarketData
from trading.runtime.account import Account
from trading.runtime.bar_schedule import BarSchedule
from trading.runtime.clock import Clock
from trading.runtime.effects import CommandEffects
from trading.runtime.failures import (
    Failed,
    Restarts,
    bounded_on_stop,
    fresh_instance,
    guard,
)
from trading.runtime.kill_switch import pause_on_kill
from trading.runtime.mailbox import Mailbox, OnReply, Request
from trading.runtime.phases import Phases
from trading.runtime.scheduler import BarScheduler
from trading.runtime.strategy import Context, Strategy, StrategySpec
from trading.runtime.wind_down import wind_down

__all__ = ["Publish", "StoppedWhileStarting", "StrategyRunner"]

Publish = Callable[[Event], None]
S = StrategyState
log = logging.getLogger(__name__)


class StoppedWhileStarting(RuntimeError):
    """A stop landed while the first on_start was still running: the strategy never ran."""


class StrategyRunner:
    """Runs one strategy until it is stopped. Create it, then ``await nursery.start(sr.run)``."""

    # Thousands of these may live in one process: slots save a kilobyte and a half each.
    __slots__ = (
        "__weakref__",
        "_bars",
        "_clock_reached",
        "_flush",
        "_on_given_up",
        "_publish",
        "_restarts",
        "_waits",
        "account",
        "clock",
        "computes",
        "ctx",
        "effects",
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
        scheduler: BarScheduler | None = None,
    ) -> None:
        self.strategy = strategy
        self.spec = spec
        self.name = spec.name
        self.clock = clock
        self._clock_reached: Callable[[float], bool] | None = getattr(clock, "reached", None)
        self.market = market
        self.stop_timeout = stop_timeout
        self.account = account
        self._flush = flush
        self._on_given_up = on_given_up
        self._publish = publish
        if account is not None:
            account.on_kill = pause_on_kill(self)  # the engine's account must not pin this runner
        self._restarts = Restarts(restart_policy or RestartPolicy())
        self.machine: CommandMachine[Request] = CommandMachine(
            spec.name, frozenset(spec.custom_commands), capacity=command_buffer
        )
        self.effects = CommandEffects(self, publish)
        self.mailbox = self.effects.mailbox = Mailbox(self.machine, self.effects)
        self.state = S.CREATED
        self._bars = BarSchedule(spec.name, spec.interval, clock, publish)
        # Bar closes are waited for through the Runner's scheduler when there is one (a chunk of
        # strategies woken at a time); a woken strategy holds a slot until its compute is over.
        self._waits = Phases(clock, scheduler)
        self.ctx: Context | None = None
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
            ctx = self.ctx = Context(
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
                    with self.phase_scope() as scope:
                        await guard("on_start", self.strategy.on_start, ctx)
                except Failed as failure:
                    if not self.ready:
                        raise failure.error from None
                    if await self._after_failure(failure):
                        continue
                    await self._wind_down(ctx, on_stop=False)
                    return
                if scope.cancelled_caught:  # only a stop interrupts on_start
                    await self.effects.apply_pending()
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
                except Failed as failure:
                    on_stop_owed = False
                    problem = await bounded_on_stop(
                        self.name, functools.partial(self.strategy.on_stop, ctx), self.stop_timeout
                    )
                    if problem:
                        log.error("%s: on_stop after a failure %s", self.name, problem)
                    if await self._after_failure(failure):
                        self.strategy = fresh_instance(self.strategy)
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
        """Compute and sleep until a stop; strategy errors leave as Failed."""
        try:
            await self._schedule(ctx)
        finally:
            self._waits.give_back_slot()

    async def _schedule(self, ctx: Context) -> None:
        compute_due: bool | str = self.spec.cls.compute_on_start
        # A restart: the closes passed while failed or restarting are reported, not computed.
        self._bars.skip_to_now("failed and restarting")
        while True:
            await self.effects.apply_pending()
            flags = self.machine.flags
            if flags.stopping:
                return
            if flags.paused:
                self._waits.give_back_slot()
                compute_due = False  # resume goes back to the bar schedule, even before the first
                await self._idle(S.PAUSED, until=None)
                self._bars.skip_to_now("paused")
                continue
            if self.machine.take_wake() or compute_due:
                # A compute for a reached close reads history up to that close (not "now", which
                # a late live bar or a slow compute may have moved on); a wake reads up to now.
                ctx.history_end = self._bars.bar_close if compute_due == "close" else None
                compute_due = False
                try:
                    await self._compute(ctx)
                finally:
                    self._waits.give_back_slot()
                continue
            self._waits.give_back_slot()
            # The sleep phase: wait for the close the schedule heads for on the strategy's clock,
            # or compute at once a close that a compute or a command ran past (overlap policy).
            close = self._bars.head_for_next()
            if self._reached(close) or await self._idle(S.SLEEPING, until=close, scheduled=True):
                self._bars.reached(close)
                compute_due = "close"

    def _reached(self, close: float) -> bool:
        """Is ``close`` already reached? A live feed's clock says so only once its bars came;
        a replay's clock moves there when nothing else is due first (its fast path)."""
        reached = self._clock_reached
        return bool(reached(close)) if reached is not None else close <= self.clock.now()

    async def _compute(self, ctx: Context) -> None:
        self._set_state(S.COMPUTING)
        with self.phase_scope() as scope:
            while True:
                ctx.bar_close = self._bars.bar_close
                await self._refresh_marks()
                try:
                    await guard("next", self.strategy.next, ctx)
                except Failed as failure:
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
                if not self._next_close_at_once(ctx):
                    break
        if scope.cancelled_caught:
            log.info("%s: next() interrupted by %s", self.name, self.interrupted_by)

    def _next_close_at_once(self, ctx: Context) -> bool:
        """Back to back: True if the next close is reached already and nothing waits to be
        applied, so it is computed in this same phase (what the loop would do, without a phase
        scope per bar: a replay's clock reaches every close at once, and a scope costs µs).
        A wake's compute, a queued command or a flag goes back through the loop instead."""
        machine = self.machine
        flags = machine.flags
        if ctx.history_end is None or machine.queue or flags.wake or flags.paused:
            return False
        if flags.stopping:
            return False
        self._waits.give_back_slot()
        close = self._bars.head_for_next()
        if not self._reached(close):
            return False
        self._bars.reached(close)
        ctx.history_end = close
        return True

    async def _refresh_marks(self) -> None:
        """Mark positions to market before each compute, so the kill switch sees price moves."""
        if self.account is None:
            return
        try:
            await self.account.refresh_marks()
        except Exception as exc:  # a price feed hiccup must not count as a strategy failure
            log.warning("%s: could not mark positions to market: %s", self.name, exc)

    async def _idle(
        self,
        state: StrategyState,
        *,
        until: float | None,
        real: bool = False,
        scheduled: bool = False,
    ) -> bool:
        """Wait in ``state`` until ``until`` (see :meth:`Phases.wait`); False if interrupted."""
        self._set_state(state)
        return await self._waits.wait(until=until, real=real, scheduled=scheduled)

    async def _after_failure(self, failure: Failed) -> bool:
        """Report a strategy error and wait out the backoff; True to restart, False to stop."""
        self.last_error = self._restarts.failed(
            self.name, failure, clock=self.clock, publish=self._publish
        )
        self._set_state(S.FAILED, self.last_error)
        if self.given_up and self._on_given_up is not None:
            self._on_given_up()
        while True:
            await self.effects.apply_pending()
            if self.machine.flags.stopping:
                return False
            if self.machine.take_restart():
                self._restarts.restarting()
                self._set_state(S.RESTARTING, "operator")
                return True
            if self._restarts.at is None:
                await self._idle(S.FAILED, until=None)
            elif await self._idle(S.RESTARTING, until=self._restarts.at, real=True):
                self._restarts.restarting()
                return True

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

    # -- what the command side needs from the lifecycle -----------------------------------------

    def interrupt(self, reason: str) -> None:
        """Cancel the running phase; the first interruption is the one that ended it."""
        self._waits.interrupt(reason)

    @property
    def interrupted_by(self) -> str:
        return self._waits.interrupted_by

    def next_close(self) -> float:
        """The bar close the schedule goes to next (strategy clock)."""
        return self._bars.next_close()

    def reset_backoff(self) -> None:
        """An operator's resume of a failed strategy: a full restart budget again."""
        self._restarts.reset()

    # -- small helpers ---------------------------------------------------------------------------

    def phase_scope(self) -> AbstractContextManager[trio.CancelScope]:
        return self._waits.scope()

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
        return self.state is S.FAILED and self._restarts.at is None

    @property
    def restart_in(self) -> float | None:
        """Real seconds until the scheduled restart, if one is scheduled."""
        return self._restarts.restart_in() if self.state is S.RESTARTING else None

    @property
    def due(self) -> float | None:
        """The bar close the strategy sleeps toward (strategy clock), while sleeping."""
        return self._bars.due if self.state is S.SLEEPING else None

    @property
    def failures(self) -> int:
        return self._restarts.failures

    @property
    def restarts(self) -> int:
        """Restarts done in this run (after failures, or asked for by an operator)."""
        return self._restarts.restarts

    @property
    def last_bar(self) -> float | None:
        """The close of the last bar the schedule reached (strategy clock); None before one."""
        return self._bars.bar_close

    def describe(self) -> str:
        """One line for an operator (see :meth:`CommandEffects.describe`)."""
        return self.effects.describe()

    def status(self) -> dict[str, Any]:
        return self.effects.status()
