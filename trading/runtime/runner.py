"""Runner: many strategies in one process, added and removed at runtime, commanded by name or `all`.

The rules this module keeps (DESIGN.md rules 1, 7 and 11):

* The Runner picks no edges: ``market``, ``exchange`` and ``observers`` are what the caller
  passes (None = none). Composition roots (the CLI, :func:`trading.simulated`) choose defaults.
* Its tasks live under one shielded host task (:mod:`trading.runtime.host`): services (bus,
  engine) outlive the strategies, and an outside cancellation reaches only the block.
* Every way out of the block — its end, an exception, an outside cancellation, Ctrl-C — runs
  one wind-down, each step under a deadline that reaches through its shields: strategies
  (``stop``: on_stop, open orders cancelled or reported) -> the engine and its reconciler ->
  the observers drained (a lossless one gets longer than a lossy one; one that overruns is
  abandoned and logged with what it lost) -> end. Nothing but the block's own exception
  leaves ``async with Runner``, and leaving never hangs.
* Failures are isolated: strategy errors are restarted by the StrategyRunner under its
  RestartPolicy; an unexpected error of a StrategyRunner itself is logged and confined to it.

The Runner is the public face; the work is elsewhere: commands in :mod:`~trading.runtime.delivery`,
other threads' doors in :mod:`~trading.runtime.threads`, bulk start and stop in
:mod:`~trading.runtime.startup` and :mod:`~trading.runtime.stopping`, the tasks in
:mod:`~trading.runtime.host`.
"""

from __future__ import annotations

import logging
import threading
import types
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from typing import Any, Self

import trio

from trading.core.commands import Command, CommandResult
from trading.core.events import Event
from trading.core.ids import check_run_token, new_run_id
from trading.core.restart import RestartPolicy
from trading.core.risk import RiskLimits
from trading.exchanges.base import Exchange, MarketData
from trading.runtime import threads
from trading.runtime.account import Account
from trading.runtime.bus import EventBus, Observer
from trading.runtime.clock import Clock, WallClock
from trading.runtime.delivery import CommandRouter, OnReply
from trading.runtime.engine import TradeEngine
from trading.runtime.host import GRACE, ServiceHost
from trading.runtime.recovery import recovery_for
from trading.runtime.scheduler import BarScheduler
from trading.runtime.services import (
    NoMarket,
    RunnerNotRunning,
    RunnerThreadError,
    SharedFlush,
)
from trading.runtime.startup import StartFailed, start_many, wind_down_failed_start
from trading.runtime.stopping import stop_each
from trading.runtime.strategy import Strategy, inspect_strategy
from trading.runtime.strategy_runner import Publish, StrategyRunner

__all__ = ["Runner", "RunnerNotRunning", "RunnerThreadError", "StartFailed"]

log = logging.getLogger(__name__)


class Runner:
    """Runs strategies. Use as ``async with Runner(...) as runner: await runner.add(MyStrategy())``.

    ``market`` feeds ``ctx.history`` (none: a strategy asking for bars fails with a clear
    error); ``exchange`` takes orders (none: no trading); ``observers`` get every event. For
    the usual simulated set-up: ``market, exchange = trading.simulated(clock)``.

    Leaving the block is bounded: each strategy's stop by ``stop_timeout``, the engine by
    ``engine_timeout``, each lossless observer by ``observer_timeout`` and each lossy one by
    ``lossy_observer_timeout`` (to drain, and as long again to close).

    ``run_id`` (default: 8 fresh hex digits; 1-8 ASCII letters/digits, else ValueError) names
    the run: every client order id ends with it; give the same id to a Recorder so its rows
    join the orders (the CLI does). ``recover`` (default: on when a Recorder is attached and
    the exchange's state outlives the process) rebuilds each strategy's positions and adopts
    its open orders before it starts (:mod:`~trading.runtime.recovery`).

    Commands come in through :meth:`send` (from trio code) or :meth:`send_from_thread` /
    :meth:`send_soon` (from other threads, signal handlers, notebook cells).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        market: MarketData | None = None,
        exchange: Exchange | None = None,
        observers: Sequence[Observer] = (),
        publish: Publish | None = None,
        restart_policy: RestartPolicy | None = None,
        stop_timeout: float = 10.0,
        engine_timeout: float = 5.0,
        observer_timeout: float = 10.0,
        lossy_observer_timeout: float = 1.0,
        run_id: str | None = None,
        recover: bool | None = None,
    ) -> None:
        # One id for the whole run: the engine's client order ids end with it, and the CLI's
        # Recorder keys its rows by it, so a row and the orders of its run can be joined.
        self.run_id = check_run_token(run_id) if run_id is not None else new_run_id()
        self.clock: Clock = clock if clock is not None else WallClock()
        self.market: MarketData = market if market is not None else NoMarket()
        # Observers are attached here, once; everything the runner and the engine publish
        # reaches each of them through its own bounded channel. `publish` is a synchronous tap
        # (tests, embedding code) that sees every event first and must not block.
        self.bus = EventBus(
            close_timeout=observer_timeout, lossy_close_timeout=lossy_observer_timeout
        )
        for observer in observers:
            self.bus.attach(observer)
        self._tap = publish
        self.exchange = exchange
        self.restart_policy = restart_policy or RestartPolicy()
        self.stop_timeout = stop_timeout
        self.engine_timeout = engine_timeout
        self._strategies: dict[str, StrategyRunner] = {}
        self._router = CommandRouter(
            self._strategies,
            clock=self.clock,
            publish=self.publish,
            is_open=lambda: self._state in ("running", "closing"),
        )
        self._live: set[StrategyRunner] = set()
        self._state = "new"  # -> running -> closing -> closed
        self._stack: AsyncExitStack | None = None
        # One timer for every strategy's bar closes, waking a chunk of them at a time, so a
        # command arriving on a close all of them share is not queued behind every compute.
        self.scheduler = BarScheduler(self.clock)
        self._host = ServiceHost(
            self.bus,
            exchange,
            clock=self.clock,
            publish=self.publish,
            engine_timeout=engine_timeout,
            scheduler=self.scheduler,
            run_id=self.run_id,
        )
        # Crash recovery before each strategy starts (trading.runtime.recovery); None: off.
        self._recovery = recovery_for(recover, exchange, observers, self._flush_lossless)
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread: int | None = None
        self._idle = trio.Event()
        self._idle.set()
        # A stop flushes the lossless observers only (a stuck notifier must not delay it), and
        # concurrent stops share their flushes.
        self._stop_flush = SharedFlush(self._flush_lossless)

    def publish(self, event: Event) -> None:
        if self._tap is not None:
            self._tap(event)
        self.bus.publish(event)

    # -- lifetime -------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError(f"Runner is {self._state}: a Runner runs once; build a new one")
        async with AsyncExitStack() as stack:
            outer = await stack.enter_async_context(trio.open_nursery())
            # The host runs shielded: were this start cancelled, trio would keep it in the
            # start's own nursery, waiting for a close that never comes. Start it whole (the
            # host shields its start-up anyway), then honour a cancellation by closing it.
            with trio.CancelScope(shield=True):
                await outer.start(self._host.run, name="trio-trade runner")
            try:
                await trio.lowlevel.checkpoint_if_cancelled()
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self._host.close(self._budget())
                raise
            self._token = trio.lowlevel.current_trio_token()
            self._thread = threading.get_ident()
            self._state = "running"
            self._stack = stack.pop_all()
        return self

    async def flush(self) -> None:
        """Wait until every event published so far was handled by every observer."""
        await self.bus.flush()

    async def _flush_lossless(self) -> None:
        await self.bus.flush(lossless_only=True)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> bool:
        """The one wind-down, whatever ended the block; see the module docstring."""
        stack, self._stack = self._stack, None
        assert stack is not None, "Runner.__aexit__ without __aenter__"
        self._state = "closing"
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + self._budget()
            try:
                await self._wind_down(exc)
            except Exception:
                log.exception("trio-trade bug: the Runner's wind-down raised")
            finally:
                await self._host.close(self._budget())
        try:
            # The block's own exception is not handed to the nursery: it would come out wrapped
            # in an ExceptionGroup. The host has ended by now, so the nursery closes at once.
            await stack.aclose()
        except BaseException:
            if exc is None:
                raise
            log.exception("the Runner's tasks raised while the block was leaving with %r", exc)
        finally:
            self._state = "closed"
            self._token = None
            self._thread = None
        return False

    def _budget(self) -> float:
        """Hard bound of the whole wind-down: the sum of its steps' bounds, plus slack."""
        bus = self.bus
        observers = 2 * max(bus.close_timeout, bus.lossy_close_timeout)
        return self.stop_timeout + self.engine_timeout + observers + 3 * GRACE

    async def _wind_down(self, exc: BaseException | None) -> None:
        """Stop every strategy through the same ``stop`` an operator sends, bounded by
        ``stop_timeout``; then the host stops the services."""
        self._host.wind_down(strategies_for=self.stop_timeout + GRACE, total=self._budget())
        source = "runner" if exc is None else f"runner ({type(exc).__name__})"
        for result in await self.stop_all(source=source):
            if not result.ok:
                log.warning("on leaving the Runner: %s", result)
        await self._host.close(self._budget())

    @property
    def nursery(self) -> trio.Nursery:
        """The strategies' nursery: tasks started here end with the Runner (while it winds
        down too, so a signal handler can still start a stop)."""
        nursery = self._host.nursery
        if nursery is None or self._state not in ("running", "closing"):
            raise RunnerNotRunning(
                "the Runner is not running: use `async with Runner() as runner:`"
            )
        return nursery

    @property
    def engine(self) -> TradeEngine | None:
        return self._host.engine

    # -- strategies -----------------------------------------------------------------------------

    async def add(self, strategy: Strategy, *, name: str | None = None) -> StrategyRunner:
        """Start ``strategy``; returns once its ``on_start`` succeeded (its error propagates).

        Raises ValueError if a strategy of that name is still running, RunnerNotRunning
        outside the ``async with`` block. If the start fails or is cancelled, whatever its
        ``on_start`` left at the exchange is wound down (bounded) before the error propagates.
        With recovery on, the strategy's account is recovered first (RecoveryFailed if not).
        """
        nursery = self.nursery
        spec = inspect_strategy(type(strategy), name=name)
        account = await self._account(spec.name, spec.cls.risk, spec.symbols)  # may await
        if self._state != "running":
            raise RunnerNotRunning("the Runner is closing: it starts no more strategies")
        existing = self._strategies.get(spec.name)
        if existing is not None and not existing.finished.is_set():
            raise ValueError(
                f"a strategy named {spec.name!r} is already running; remove it first or pass name="
            )
        watch = getattr(self.clock, "watch", None)  # a live feed: its bars drive the schedule
        if watch is not None:
            for symbol in spec.symbols:
                watch(symbol, spec.interval)
        runner = StrategyRunner(
            strategy,
            spec,
            clock=self.clock,
            market=self.market,
            publish=self.publish,
            restart_policy=self.restart_policy,
            stop_timeout=self.stop_timeout,
            account=account,
            on_given_up=self._check_idle,
            flush=self._stop_flush,
            scheduler=self.scheduler,
        )
        self._strategies[spec.name] = runner
        self._live.add(runner)
        self._router.forget_verbs()
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        try:
            await nursery.start(self._supervise, runner, name=f"strategy:{spec.name}")
        except BaseException:
            if self._strategies.get(spec.name) is runner:
                del self._strategies[spec.name]
                self._router.forget_verbs()
            self._live.discard(runner)
            self._check_idle()
            await wind_down_failed_start(runner, self.stop_timeout)
            raise
        return runner

    async def _account(
        self, name: str, limits: RiskLimits | None, symbols: Sequence[str]
    ) -> Account | None:
        if self.engine is None or self._recovery is None:
            return None if self.engine is None else self.engine.account(name, limits)
        return await self._recovery.account(self.engine, name, limits, symbols)

    async def add_many(
        self, strategies: Iterable[Strategy | tuple[str, Strategy]]
    ) -> list[StrategyRunner]:
        """Start many strategies at once (``(name, strategy)`` pairs or bare strategies).

        Every one is tried: if some ``on_start`` raised, the others run and
        :class:`StartFailed` names each that did not start. Cancelled (Ctrl-C during
        start-up), it leaves nothing running: what it started is stopped, bounded, first.
        The garbage collector is paused meanwhile (see :mod:`trading.runtime.startup`).
        """
        return await start_many(
            lambda strategy, name: self.add(strategy, name=name),
            lambda runners: stop_each(runners, "add_many cancelled"),
            strategies,
            stop_budget=self.stop_timeout + GRACE,
        )

    async def _supervise(
        self, runner: StrategyRunner, *, task_status: trio.TaskStatus[StrategyRunner]
    ) -> None:
        try:
            await runner.run(task_status=task_status)
        except Exception:
            if not runner.ready:
                raise  # reaches the caller of add()
            log.exception(
                "trio-trade bug: the runner of %s crashed; other strategies go on", runner.name
            )
        finally:
            self._live.discard(runner)
            self._check_idle()

    async def remove(self, name: str) -> CommandResult:
        """Stop ``name`` (if running), wait for it to end, and forget it: afterwards nothing of
        the Runner's (strategy table, engine account, bus) keeps the strategy alive."""
        runner = self._strategies.get(name)
        if runner is None:
            return CommandResult(name, False, self._router.unknown(name))
        result = await runner.send(Command("stop", name, source="runner", text=f"stop {name}"))
        await runner.finished.wait()
        if self._strategies.get(name) is runner:
            del self._strategies[name]
            self._router.forget_verbs()
            if runner.account is not None and self.engine is not None:
                self.engine.release(runner.name)  # the account must not keep the runner
        return CommandResult(name, result.ok, f"removed ({result.message})", "removed")

    async def stop_all(self, *, source: str = "runner") -> list[CommandResult]:
        """Stop every strategy still running (those still starting too), concurrently; each
        runs its on_stop and winds down its orders. Stops share their recorder flushes."""
        return await stop_each(list(self._live), source)

    async def wait_idle(self) -> None:
        """Return once no strategy is running any more (all stopped, or failed for good).
        Sleeps between changes: it wakes only when a strategy ends or gives up."""
        while not self._all_done():
            if self._idle.is_set():  # set by an earlier give-up, and someone restarted since
                self._idle = trio.Event()
            await self._idle.wait()
        await trio.lowlevel.checkpoint()

    def _all_done(self) -> bool:
        # Only live runners are looked at, so each of N strategies ending costs O(live), and
        # `stop all` does not turn quadratic.
        return all(r.given_up for r in self._live)

    def _check_idle(self) -> None:
        if self._all_done():
            self._idle.set()

    def names(self) -> list[str]:
        return list(self._strategies)

    def __getitem__(self, name: str) -> StrategyRunner:
        return self._strategies[name]

    def __contains__(self, name: object) -> bool:
        return name in self._strategies

    def status(self) -> list[dict[str, Any]]:
        return [runner.status() for runner in self._strategies.values()]

    # -- commands -------------------------------------------------------------------------------

    def custom_commands(self) -> dict[str, str]:
        """Every strategy's own verbs; cached, as every text command needs them to parse."""
        return self._router.custom_commands()

    async def send(self, command: Command | str, *, source: str = "api") -> list[CommandResult]:
        """Deliver a command (text or parsed) to its target(s); one reply per strategy reached.

        Never raises for bad input: a command that cannot be parsed or names an unknown strategy
        gets an error reply, and nothing changes (the audit keeps a refused line's first
        80 characters, not the whole of it). Outside the ``async with`` block every
        command gets the reply "the Runner is not running". A strategy removed while the
        command is on its way gets a "removed" reply.
        """
        return await self._router.send(command, source=source)

    # -- other threads --------------------------------------------------------------------------

    def send_from_thread(self, command: str, *, source: str = "thread") -> list[CommandResult]:
        """Send from another thread (a notebook cell, a GUI) and wait for the replies.

        Raises RunnerThreadError when called from the Runner's own thread — from a trio task,
        or from the host loop of trio guest mode, which runs no trio task and would deadlock
        waiting for one: there, use ``await runner.send(...)``. Once the Runner is not running,
        returns the error reply "the Runner is not running". Delivered without blocking the
        event loop (``send_nowait``): a full mailbox answers "busy" at once.
        """
        return threads.send_from_thread(
            self._token, self._thread, self._router.send_nowait, command, source
        )

    def send_soon(
        self,
        command: str,
        *,
        source: str = "signal",
        on_reply: OnReply | None = None,
    ) -> None:
        """Fire-and-forget from any thread or a signal handler; never blocks the caller, and
        never queues past a strategy's mailbox bound: a full mailbox answers "busy" at once.

        ``on_reply`` gets the replies in the Runner's thread; if it raises, the error is logged
        and nothing else happens. Once the Runner is not running, ``on_reply`` gets the error
        reply "the Runner is not running" (in the caller's thread if the trio run is over).
        """
        threads.send_soon(self._token, self._router.send_nowait, command, source, on_reply)
