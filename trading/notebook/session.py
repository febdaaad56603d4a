"""The trio side of an embedded run: one Runner, its strategies, and a door for requests.

Both handles (:mod:`~trading.notebook.guest` on the kernel's asyncio loop,
:mod:`~trading.notebook.thread` in a thread of its own) run :meth:`Session.run` as their trio
run's main function. The rules this module keeps (DESIGN.md rules 1, 7, 8 and 11):

* Requests come in through :meth:`Session.post`, which never blocks and never uses
  ``trio.from_thread``: it hands the request to the trio run with ``TrioToken.run_sync_soon``
  (safe from any thread, the guest's host thread included). Each request runs as a task in a
  nursery the session owns and reports its outcome to a callback, exactly once, whatever
  happens: its value, its error, or "not running" once the run is stopping or over.
* Requests are bounded: at most :data:`MAX_PENDING` wait to be started; past that, a request
  is answered "busy" at once rather than queued.
* The session is ready (``on_ready(None)``) only once every strategy's ``on_start`` succeeded;
  a failed start is reported (``on_ready(error)``) and the run winds down and ends.
* Stopping is the normal wind-down: ``stop all`` (each strategy's on_stop, its orders
  cancelled), then the Runner's own exit (engine, observers). When :meth:`Session.run`
  returns, every task it started has ended; :attr:`Session.leftover` names any task still in
  the run's tree besides trio's own, so tests can prove there are none.
* Results come from plain data the trio side owns (a journal of order events fed by the
  Runner's synchronous tap, the engine's books); reading them is only safe where no trio task
  runs at the same moment — the handles say how they guarantee that.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import outcome
import trio

from trading.core.commands import CommandResult
from trading.exchanges.base import Exchange, MarketData
from trading.exchanges.defaults import simulated
from trading.loader import load
from trading.notebook.journal import Journal
from trading.runtime.bus import Observer
from trading.runtime.clock import Clock, VirtualClock
from trading.runtime.delivery import clip
from trading.runtime.runner import Runner, RunnerNotRunning
from trading.runtime.strategy import Strategy, inspect_strategy

__all__ = ["MAX_PENDING", "SIM_START", "RunnerBusy", "Session", "StrategyLike", "not_running"]

log = logging.getLogger(__name__)

T = TypeVar("T")
# A strategy given to start(): an instance, a class, a name from the strategies folder
# ("sma_cross"), or a (name, strategy) pair.
StrategyLike = Strategy | type[Strategy] | str | tuple[str, Strategy]
Settle = Callable[[outcome.Outcome[Any]], None]
Job = tuple[Callable[[Runner], Awaitable[Any]], Settle]

MAX_PENDING = 64
# The simulated market's stretch that `trio-trade run` shows (see trading.serve.SIM_START).
SIM_START = 1_735_977_600.0


class RunnerBusy(RuntimeError):
    """Too many requests are waiting to start; nothing was done, try again."""


class Session:
    """One embedded run: the strategies, the edges, and the door for requests."""

    def __init__(
        self,
        strategies: Sequence[StrategyLike],
        *,
        clock: Clock | None = None,
        market: MarketData | None = None,
        exchange: Exchange | None = None,
        seed: int = 7,
        observers: Sequence[Observer] = (),
        strategies_dir: str | Path = "strategies",
        history: int = 10_000,
        **runner_options: Any,
    ) -> None:
        self.strategies = [_resolve(s, Path(strategies_dir)) for s in strategies]
        names = [name for name, _ in self.strategies]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"strategies named more than once: {', '.join(duplicates)}")
        self.names = tuple(names)
        if clock is None:
            # As `trio-trade run` on the simulated market: one bar of the shortest interval
            # per second of real time, over the same deterministic stretch of history.
            seconds = [
                inspect_strategy(type(s), name=n).interval.seconds for n, s in self.strategies
            ]
            clock = VirtualClock(start=SIM_START, speed=float(min(seconds, default=60)))
        if market is None and exchange is None:
            market, exchange = simulated(clock, seed=seed)
        self.clock = clock
        self.market = market
        self.exchange = exchange
        self.journal = Journal(limit=history)
        self._observers = tuple(observers)
        self._options = runner_options
        self.runner: Runner | None = None
        self.token: trio.lowlevel.TrioToken | None = None
        self.leftover: list[str] | None = None
        self._jobs: trio.MemorySendChannel[Job] | None = None
        self._stop: trio.Event | None = None

    async def run(self, on_ready: Callable[[BaseException | None], None]) -> list[CommandResult]:
        """The whole run: start the strategies, serve requests until :meth:`request_stop`,
        stop every strategy, leave the Runner. Returns the replies of the final ``stop``.

        Cancelling it (the trio run is cancelled from outside) runs the same wind-down
        through the Runner's exit."""
        self.token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        try:
            results = await self._run(on_ready)
        finally:
            self._jobs = None
            self.leftover = _other_tasks()
        return results

    async def _run(self, on_ready: Callable[[BaseException | None], None]) -> list[CommandResult]:
        assert self._stop is not None
        async with Runner(
            clock=self.clock,
            market=self.market,
            exchange=self.exchange,
            observers=self._observers,
            publish=self.journal,
            **self._options,
        ) as runner:
            self.runner = runner
            try:
                for name, strategy in self.strategies:
                    await runner.add(strategy, name=name)
            except BaseException as exc:
                on_ready(exc)
                raise
            send, receive = trio.open_memory_channel[Job](MAX_PENDING)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._serve, receive, nursery, name="notebook requests")
                self._jobs = send
                on_ready(None)
                await self._stop.wait()
                self._jobs = None
                send.close()
                results = await runner.stop_all(source="notebook")
                nursery.cancel_scope.cancel(reason="notebook: stop")
        return results

    def request_stop(self) -> None:
        """From trio (a run_sync_soon callback): end the run; idempotent."""
        if self._stop is not None:
            self._stop.set()

    def post(self, job: Callable[[Runner], Awaitable[T]], settle: Settle) -> None:
        """Run ``job(runner)`` in the trio run; ``settle`` gets its outcome, once, in the trio
        run's thread (or in the caller's, when the run is over). Never blocks."""
        token = self.token
        if token is None:
            settle(outcome.Error(RunnerNotRunning("the notebook runner has not started")))
            return
        try:
            token.run_sync_soon(self._accept, job, settle)
        except trio.RunFinishedError:
            settle(outcome.Error(RunnerNotRunning("the notebook runner has stopped")))

    def post_stop(self) -> bool:
        """Ask the run to end; False if it is already over."""
        if self.token is None:
            return False
        try:
            self.token.run_sync_soon(self.request_stop)
        except trio.RunFinishedError:
            return False
        return True

    def _accept(self, job: Callable[[Runner], Awaitable[Any]], settle: Settle) -> None:
        if self._jobs is None:
            settle(outcome.Error(RunnerNotRunning("the notebook runner is stopping")))
            return
        try:
            self._jobs.send_nowait((job, settle))
        except trio.WouldBlock:
            settle(outcome.Error(RunnerBusy(f"{MAX_PENDING} requests are already waiting")))
        except trio.ClosedResourceError:
            settle(outcome.Error(RunnerNotRunning("the notebook runner is stopping")))

    async def _serve(self, receive: trio.MemoryReceiveChannel[Job], nursery: trio.Nursery) -> None:
        async with receive:
            async for job, settle in receive:
                nursery.start_soon(self._do, job, settle)
        # Closed by a stop: whatever was still queued is answered, never dropped.
        while True:
            try:
                job, settle = receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            settle(outcome.Error(RunnerNotRunning("the notebook runner is stopping")))

    async def _do(self, job: Callable[[Runner], Awaitable[Any]], settle: Settle) -> None:
        assert self.runner is not None
        try:
            value = await job(self.runner)
        except trio.Cancelled:
            settle(outcome.Error(RunnerNotRunning("the notebook runner stopped first")))
            raise
        except Exception as exc:
            settle(outcome.Error(exc))
            return
        settle(outcome.Value(value))


def not_running(text: str, why: Exception) -> CommandResult:
    """The error reply to a command that reached no run (as ``Runner.send`` answers)."""
    return CommandResult("", False, f"{why}: {clip(text)!r} not delivered")


def _resolve(strategy: StrategyLike, directory: Path) -> tuple[str, Strategy]:
    """(name, instance) for whatever start() was given; errors name what is wrong."""
    if isinstance(strategy, tuple):
        name, instance = strategy
        return name, instance
    if isinstance(strategy, str):
        spec = load(strategy, directory)
        return spec.name, spec.cls()
    if isinstance(strategy, type):
        strategy = strategy()
    if not isinstance(strategy, Strategy):
        raise TypeError(f"not a strategy: {strategy!r}")
    return inspect_strategy(type(strategy)).name, strategy


def _other_tasks() -> list[str]:
    """Names of the run's tasks besides this one, its ancestors and trio's own system tasks."""
    current = trio.lowlevel.current_task()
    ancestors = set()
    task: trio.lowlevel.Task | None = current
    while task is not None:
        ancestors.add(task)
        nursery = task.parent_nursery
        task = nursery.parent_task if nursery is not None else None
    found = []
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        assert task is not None
        if task not in ancestors and not task.name.startswith("<"):
            found.append(task.name)
        for child_nursery in task.child_nurseries:
            stack.extend(child_nursery.child_tasks)
    return found
