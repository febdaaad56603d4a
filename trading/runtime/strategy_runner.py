"""StrategyRunner: one strategy's nursery, its phases, its command receiver and its state machine.

The rules this module keeps (DESIGN.md, "Rules of time and cancellation"):

* Two tasks live in the strategy's nursery: the *lifecycle* (start, compute/sleep phases, stop,
  restart) and the *receiver* (reads the command channel). Nothing else; both end with it.
* Every wait of the lifecycle is a *phase*: a ``trio.CancelScope`` stored in ``self._phase``. The
  receiver never changes the strategy; it queues the command and, when the command cannot wait,
  cancels the phase with a reason. The lifecycle applies queued commands at one point only,
  between phases (:meth:`_apply_pending`), so commands never race ``next()``.
* ``status`` is answered by the receiver directly and never interrupts anything.
* ``on_stop`` runs shielded under ``stop_timeout`` whenever ``on_start`` completed.

This module is the lifecycle; the command side (mailbox, receiver, applying commands) is
:mod:`trading.receiver`, mixed in.
"""

from __future__ import annotations

import logging
import math
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import attrs
import trio

from trading.core.commands import Command
from trading.core.events import Event, StrategyError, StrategyStateChanged
from trading.core.params import param_values
from trading.core.restart import Backoff, RestartPolicy
from trading.core.states import StrategyState, check_transition
from trading.core.text import clock_time, show, span
from trading.exchanges.base import MarketData
from trading.runtime.account import Account
from trading.runtime.clock import Clock
from trading.runtime.receiver import CommandSide, Request
from trading.runtime.strategy import Context, Strategy, StrategySpec

__all__ = ["Publish", "StoppedWhileStarting", "StrategyRunner"]

Publish = Callable[[Event], None]
S = StrategyState
log = logging.getLogger(__name__)


class _StrategyFailed(Exception):
    """Strategy code raised; carries the phase so the error report can say where."""

    def __init__(self, phase: str, error: BaseException) -> None:
        super().__init__(phase, error)
        self.phase = phase
        self.error = error


class StoppedWhileStarting(RuntimeError):
    """A stop landed while the first on_start was still running: the strategy never ran."""


class StrategyRunner(CommandSide):
    """Runs one strategy until it is stopped. Create it, then ``await nursery.start(sr.run)``."""

    # Thousands of these may live in one process: slots save a kilobyte and a half each.
    __slots__ = (
        "_backoff",
        "_ctx",
        "_due",
        "_flush",
        "_last_due",
        "_on_given_up",
        "_pending",
        "_phase",
        "_publish",
        "_receive",
        "_restart_at",
        "_send",
        "_stop_outcome",
        "_stop_requests",
        "account",
        "clock",
        "computes",
        "finished",
        "last_error",
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
            account.on_kill = self._kill
        self._backoff = Backoff(restart_policy or RestartPolicy())
        self._send, self._receive = trio.open_memory_channel[Request](command_buffer)
        self.state = S.CREATED
        self._phase: trio.CancelScope | None = None
        self._pending: list[Request] = []  # a few at most; a deque costs 760 bytes empty
        self._stop_requests: list[Request] = []
        self._stopping = False
        self._paused = False
        self._wake = False
        self._restart_now = False
        self._last_due = -math.inf
        self._due: float | None = None
        self._restart_at: float | None = None
        self._ctx: Context | None = None
        self._interrupted_by = ""
        self._stop_outcome = (True, "stopped")
        self.computes = 0
        self.last_error: str | None = None
        self.finished = trio.Event()
        self.ready = False

    # -- the outside world's entry points ------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[StrategyRunner] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until stopped. Signals readiness once ``on_start`` succeeded the first time; an
        exception from that first ``on_start`` propagates to the caller of ``nursery.start``."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._receiver, name=f"{self.name}:receiver")
                try:
                    await self._lifecycle(task_status)
                finally:
                    nursery.cancel_scope.cancel(reason=f"{self.name} ended")
        except BaseExceptionGroup as group:
            # The receiver never raises, so a group holds the lifecycle's one error: unwrap it so
            # add() raises what on_start raised, not a group around it.
            if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
                raise group.exceptions[0] from None
            raise
        finally:
            self.finished.set()
            self._close_mailbox()

    # -- lifecycle ------------------------------------------------------------------------------

    async def _lifecycle(self, task_status: trio.TaskStatus[StrategyRunner]) -> None:
        while True:
            self._set_state(S.STARTING, "restart" if self.ready else "added")
            ctx = self._ctx = Context(
                spec=self.spec,
                clock=self.clock,
                market=self.market,
                log=logging.getLogger(f"trading.strategy.{self.name}"),
                account=self.account,
            )
            try:
                with self._phase_scope() as scope:
                    await self._guard("on_start", self.strategy.on_start, ctx)
            except _StrategyFailed as failure:
                if not self.ready:
                    raise failure.error from None
                if await self._after_failure(failure):
                    continue
                await self._finish(ctx, ran_on_start=False)
                return
            if scope.cancelled_caught:  # only a stop interrupts on_start
                await self._apply_pending()
                await self._finish(ctx, ran_on_start=False)
                if not self.ready:
                    raise StoppedWhileStarting(f"{self.name} was stopped before on_start finished")
                return
            if not self.ready:
                self.ready = True  # the caller of add() can now tell setup errors from later ones
                task_status.started(self)
            try:
                await self._phases(ctx)
            except _StrategyFailed as failure:
                await self._run_on_stop(ctx)
                if await self._after_failure(failure):
                    self._fresh_instance()
                    continue
                await self._finish(ctx, ran_on_start=False)
                return
            except BaseException:
                # Cancelled from outside (the Runner is being torn down): still let the strategy
                # clean up, as promised, before the cancellation continues.
                await self._run_on_stop(ctx)
                raise
            await self._finish(ctx, ran_on_start=True)
            return

    async def _phases(self, ctx: Context) -> None:
        """Compute and sleep until a stop; strategy errors leave as _StrategyFailed."""
        compute_due = self.spec.cls.compute_on_start
        while True:
            await self._apply_pending()
            if self._stopping:
                return
            if self._paused:
                await self._idle(S.PAUSED, until=None)
                continue
            if compute_due or self._wake:
                compute_due = self._wake = False
                self._set_state(S.COMPUTING)
                ctx.bar_close = self._last_due if self._last_due > -math.inf else None
                with self._phase_scope() as scope:
                    await self._refresh_marks()
                    await self._guard("next", self.strategy.next, ctx)
                    self.computes += 1
                    ctx.computes = self.computes
                if scope.cancelled_caught:
                    log.info("%s: next() interrupted by %s", self.name, self._interrupted_by)
                continue
            self._due = self.spec.interval.next_close(max(self.clock.now(), self._last_due))
            if await self._idle(S.SLEEPING, until=self._due):
                self._last_due = self._due
                compute_due = True

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
        self._receive_one(Request(Command("pause", self.name, source="risk", text=text)))

    async def _idle(self, state: StrategyState, *, until: float | None) -> bool:
        """Wait in ``state`` until ``until`` (or forever); False if a command interrupted."""
        self._set_state(state)
        with self._phase_scope() as scope:
            if until is None:
                await trio.sleep_forever()
            else:
                await self.clock.sleep_until(until)
        return not scope.cancelled_caught

    async def _after_failure(self, failure: _StrategyFailed) -> bool:
        """Report a strategy error and wait out the backoff; True to restart, False to stop."""
        now = self.clock.now()
        delay = self._backoff.failed(now)
        error = f"{type(failure.error).__name__}: {failure.error}"
        self.last_error = f"{failure.phase}: {error}"
        tb = "".join(traceback.format_exception(failure.error))
        self._publish(
            StrategyError(
                time=now,
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
        self._restart_now = False
        self._restart_at = None if delay is None else now + delay
        if self.given_up and self._on_given_up is not None:
            self._on_given_up()
        while True:
            await self._apply_pending()
            if self._stopping:
                return False
            if self._restart_now:
                self._restart_now = False
                self._restart_at = None
                self._set_state(S.RESTARTING, "operator")
                return True
            if self._restart_at is None:
                await self._idle(S.FAILED, until=None)
            elif await self._idle(S.RESTARTING, until=self._restart_at):
                self._restart_at = None
                return True

    def _fresh_instance(self) -> None:
        """Restart from clean state but keep parameters an operator may have ``set``."""
        if attrs.has(type(self.strategy)):
            self.strategy = attrs.evolve(cast(Any, self.strategy))
        else:
            self.strategy = type(self.strategy)()

    async def _finish(self, ctx: Context, *, ran_on_start: bool) -> None:
        """The stop sequence: on_stop, then the account's open orders (and positions, if so
        configured), then a flush of the recorder; each step bounded, all of it reported."""
        self._set_state(S.STOPPING, "stop")
        problem = await self._run_on_stop(ctx) if ran_on_start else None
        done = await self._wind_down()
        self._set_state(S.STOPPED, "stop")
        message = "; ".join(["stopped", *([f"on_stop {problem}"] if problem else []), *done])
        # Stop requests are answered in run(), once the receiver task has ended too.
        self._stop_outcome = (problem is None, message)

    async def _wind_down(self) -> list[str]:
        done: list[str] = []
        with trio.CancelScope(shield=True), trio.move_on_after(self.stop_timeout) as deadline:
            if self.account is not None:
                try:
                    done.extend(await self.account.shutdown())
                except Exception as exc:
                    log.exception("%s: winding down orders failed", self.name)
                    done.append(f"winding down orders failed: {type(exc).__name__}: {exc}")
            if self._flush is not None:
                await self._flush()
        if deadline.cancelled_caught:
            done.append(f"wind-down timed out after {self.stop_timeout:g}s")
        return done

    async def _run_on_stop(self, ctx: Context) -> str | None:
        """Run on_stop shielded, bounded by ``stop_timeout``; say what went wrong, if anything."""
        with trio.CancelScope(shield=True):
            with trio.move_on_after(self.stop_timeout) as deadline:
                try:
                    await self.strategy.on_stop(ctx)
                except Exception as exc:
                    log.exception("%s: on_stop raised", self.name)
                    return f"raised {type(exc).__name__}: {exc}"
            if deadline.cancelled_caught:
                log.error("%s: on_stop did not finish within %gs", self.name, self.stop_timeout)
                return f"timed out after {self.stop_timeout:g}s"
        return None

    async def _guard(
        self, phase: str, hook: Callable[[Context], Awaitable[None]], ctx: Context
    ) -> None:
        try:
            await hook(ctx)
        except Exception as exc:
            raise _StrategyFailed(phase, exc) from exc

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

    # -- status ---------------------------------------------------------------------------------

    def describe(self) -> str:
        """One line for an operator: state, schedule, parameters, health."""
        parts = [str(self.state)]
        if self.state is S.SLEEPING and self._due is not None:
            parts.append(
                f"next compute at {clock_time(self._due)} (in {span(self._due - self.clock.now())})"
            )
        if self.state is S.RESTARTING and self._restart_at is not None:
            parts.append(f"restart in {span(self._restart_at - self.clock.now())}")
        if self._paused and self.state is not S.PAUSED:
            parts.append("pause pending")
        parts.append(f"interval {self.spec.interval}")
        parts.append(f"symbols {','.join(self.spec.symbols)}")
        params = param_values(self.strategy)
        if params:
            parts.append(" ".join(f"{k}={show(v)}" for k, v in params.items()))
        if self.account is not None:
            parts.append(self.account.summary())
        parts.append(f"computes {self.computes}")
        if self._backoff.failures:
            parts.append(f"failures {self._backoff.failures}")
        if self.last_error:
            parts.append(f"last error {self.last_error}")
        return "; ".join(parts)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "interval": self.spec.interval.text,
            "symbols": list(self.spec.symbols),
            "params": param_values(self.strategy),
            "next_close": self._due if self.state is S.SLEEPING else None,
            "computes": self.computes,
            "failures": self._backoff.failures,
            "last_error": self.last_error,
        }
