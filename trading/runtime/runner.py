"""Runner: many strategies in one process, added and removed at runtime, commanded by name or `all`.

The Runner owns two nurseries: one for its services (the EventBus its observers hang on, and the
TradeEngine) and, inside it, one for strategies — each StrategyRunner lives there and nowhere
else. Leaving ``async with Runner() as runner:`` stops every strategy (``on_stop`` runs, open
orders are cancelled), then the engine, then drains the observers, and ends every task.
Failures are isolated twice: strategy errors are restarted by the StrategyRunner under its
RestartPolicy, and an unexpected error of the StrategyRunner itself is logged and confined to that
strategy instead of tearing down the others.
"""

from __future__ import annotations

import gc
import logging
import threading
import types
from collections.abc import Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from typing import Any, Self

import trio

from trading.core.commands import Command, CommandError, CommandResult, parse_command, usage
from trading.core.events import CommandHandled, Event
from trading.core.restart import RestartPolicy
from trading.exchanges.base import Exchange, MarketData, PriceSource
from trading.exchanges.sim import SimulatedMarket
from trading.observers.log import LogObserver
from trading.runtime.bus import EventBus, Observer
from trading.runtime.clock import Clock, WallClock
from trading.runtime.engine import TradeEngine
from trading.runtime.strategy import Strategy, inspect_strategy
from trading.runtime.strategy_runner import Publish, StrategyRunner

__all__ = ["Runner"]

log = logging.getLogger(__name__)


class Runner:
    """Runs strategies. Use as ``async with Runner(...) as runner: await runner.add(MyStrategy())``.

    Commands come in through :meth:`send` (from trio code) or :meth:`send_from_thread` /
    :meth:`send_soon` (from other threads, signal handlers, notebook cells).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        market: MarketData | None = None,
        publish: Publish | None = None,
        observers: Sequence[Observer] | None = None,
        restart_policy: RestartPolicy | None = None,
        stop_timeout: float = 10.0,
        exchange: Exchange | None = None,
        paper: bool = True,
    ) -> None:
        self.clock: Clock = clock if clock is not None else WallClock()
        self.market: MarketData = market if market is not None else SimulatedMarket()
        # Observers are attached here, once; everything the runner and the engine publish
        # reaches each of them through its own bounded channel. `publish` is a synchronous tap
        # (tests, embedding code) that sees every event first and must not block.
        self.bus = EventBus()
        for observer in observers if observers is not None else [LogObserver()]:
            self.bus.attach(observer)
        self._tap = publish
        if exchange is None and paper and isinstance(self.market, PriceSource):
            # The embedded default: paper trading against the market the strategies read.
            from trading.exchanges.paper import PaperBroker

            exchange = PaperBroker(self.market, self.clock)
        self.exchange = exchange
        self.engine: TradeEngine | None = None
        self.restart_policy = restart_policy or RestartPolicy()
        self.stop_timeout = stop_timeout
        self._strategies: dict[str, StrategyRunner] = {}
        self._live: set[StrategyRunner] = set()
        self._verbs: dict[str, str] | None = None
        self._nursery: trio.Nursery | None = None
        self._stack: AsyncExitStack | None = None
        self._services: trio.Nursery | None = None
        self._engine_scope: trio.CancelScope | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._idle = trio.Event()
        self._idle.set()

    def publish(self, event: Event) -> None:
        if self._tap is not None:
            self._tap(event)
        self.bus.publish(event)

    # -- lifetime -------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        # Two nurseries: services (the trade engine) outlive strategies, which still use them
        # while they stop; the callback between them ends the services once strategies are gone.
        async with AsyncExitStack() as stack:
            self._services = await stack.enter_async_context(trio.open_nursery())
            await self._services.start(self.bus.run)
            if self.exchange is not None:
                engine = TradeEngine(
                    self.exchange,
                    clock=self.clock,
                    publish=self.publish,
                    capacity=self.bus.wait_for_capacity,
                )
                self.engine = await self._services.start(self._serve_engine, engine)
            stack.push_async_callback(self._stop_services)
            self._nursery = await stack.enter_async_context(trio.open_nursery())
            self._token = trio.lowlevel.current_trio_token()
            self._stack = stack.pop_all()
        return self

    async def _serve_engine(
        self, engine: TradeEngine, *, task_status: trio.TaskStatus[TradeEngine]
    ) -> None:
        with trio.CancelScope() as self._engine_scope:
            await engine.run(task_status=task_status)

    async def _stop_services(self) -> None:
        """Strategies are gone: stop the engine, then drain every observer, then end the bus."""
        if self._engine_scope is not None:
            self._engine_scope.cancel(reason="Runner closed")
        with trio.CancelScope(shield=True):
            await self.bus.aclose()
        if self._services is not None:
            self._services.cancel_scope.cancel(reason="Runner closed")

    async def flush(self) -> None:
        """Wait until every event published so far was handled by every observer."""
        await self.bus.flush()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        assert stack is not None, "Runner.__aexit__ without __aenter__"
        try:
            if exc is None:
                await self.stop_all()
            elif self._nursery is not None:
                self._nursery.cancel_scope.cancel(reason="Runner block raised")
        finally:
            self._nursery = None
            result: bool | None = await stack.__aexit__(exc_type, exc, tb)
        return result

    @property
    def nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("the Runner is not running: use `async with Runner() as runner:`")
        return self._nursery

    # -- strategies -----------------------------------------------------------------------------

    async def add(self, strategy: Strategy, *, name: str | None = None) -> StrategyRunner:
        """Start ``strategy``; returns once its ``on_start`` succeeded (its error propagates).

        Raises ValueError if a strategy of that name is still running.
        """
        spec = inspect_strategy(type(strategy), name=name)
        existing = self._strategies.get(spec.name)
        if existing is not None and not existing.finished.is_set():
            raise ValueError(
                f"a strategy named {spec.name!r} is already running; remove it first or pass name="
            )
        runner = StrategyRunner(
            strategy,
            spec,
            clock=self.clock,
            market=self.market,
            publish=self.publish,
            restart_policy=self.restart_policy,
            stop_timeout=self.stop_timeout,
            account=None if self.engine is None else self.engine.account(spec.name, spec.cls.risk),
            on_given_up=self._check_idle,
            flush=self.flush,
        )
        self._strategies[spec.name] = runner
        self._live.add(runner)
        self._verbs = None
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        try:
            await self.nursery.start(self._supervise, runner, name=f"strategy:{spec.name}")
        except BaseException:
            if self._strategies.get(spec.name) is runner:
                del self._strategies[spec.name]
            self._live.discard(runner)
            self._check_idle()
            raise
        return runner

    async def add_many(
        self, strategies: Iterable[Strategy | tuple[str, Strategy]]
    ) -> list[StrategyRunner]:
        """Start many strategies at once (``(name, strategy)`` pairs or bare strategies).

        Start-up allocates a few hundred objects per strategy; letting the garbage collector
        rescan them all as the heap grows is most of the cost of starting thousands. So the
        collector is paused while they start, and what start-up built is then frozen out of
        future collections (``gc.freeze``), the usual remedy for long-running servers. An error
        from one ``on_start`` propagates after the others have started.
        """
        items = [(None, s) if isinstance(s, Strategy) else s for s in strategies]
        runners: list[StrategyRunner | None] = [None] * len(items)
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            async with trio.open_nursery() as nursery:
                for index, (name, strategy) in enumerate(items):
                    nursery.start_soon(self._add_into, runners, index, strategy, name)
        finally:
            if was_enabled:
                gc.freeze()
                gc.enable()
        return [r for r in runners if r is not None]

    async def _add_into(
        self,
        into: list[StrategyRunner | None],
        index: int,
        strategy: Strategy,
        name: str | None,
    ) -> None:
        into[index] = await self.add(strategy, name=name)

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
        """Stop ``name`` (if running), wait for it to end, and forget it."""
        runner = self._strategies.get(name)
        if runner is None:
            return CommandResult(name, False, self._unknown(name))
        result = await runner.send(Command("stop", name, source="runner", text=f"stop {name}"))
        await runner.finished.wait()
        if self._strategies.get(name) is runner:
            del self._strategies[name]
            self._verbs = None
        return CommandResult(name, result.ok, f"removed ({result.message})", "removed")

    async def stop_all(self, *, source: str = "runner") -> list[CommandResult]:
        """Stop every strategy still running, concurrently; each runs its on_stop."""
        results: list[CommandResult] = []
        async with trio.open_nursery() as nursery:
            for runner in list(self._live):
                nursery.start_soon(self._stop_one, runner, source, results)
        return results

    @staticmethod
    async def _stop_one(runner: StrategyRunner, source: str, into: list[CommandResult]) -> None:
        into.append(await runner.send(Command("stop", runner.name, source=source, text="stop all")))

    async def wait_idle(self) -> None:
        """Return once no strategy is running any more (all stopped, or failed for good)."""
        while True:
            await self._idle.wait()
            if self._all_done():
                return

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

    def custom_commands(self) -> dict[str, str]:
        """Every strategy's own verbs; cached, as every text command needs them to parse."""
        if self._verbs is None:
            self._verbs = {}
            for runner in self._strategies.values():
                self._verbs.update(runner.spec.custom_commands)
        return self._verbs

    # -- commands -------------------------------------------------------------------------------

    async def send(self, command: Command | str, *, source: str = "api") -> list[CommandResult]:
        """Deliver a command (text or parsed) to its target(s); one reply per strategy reached.

        Never raises for bad input: a command that cannot be parsed or names an unknown strategy
        gets an error reply, and nothing changes.
        """
        if isinstance(command, str):
            try:
                command = parse_command(command, source=source, custom_verbs=self.custom_commands())
            except CommandError as exc:
                return [
                    self._runner_reply(
                        Command("?", source=source, text=str(command)), False, str(exc)
                    )
                ]
        if command.verb == "help":
            return [self._runner_reply(command, True, usage(self.custom_commands()))]
        try:
            targets = self._targets(command)
        except CommandError as exc:
            return [self._runner_reply(command, False, str(exc))]
        if not targets:
            return [self._runner_reply(command, True, "no strategies")]
        results: dict[str, CommandResult] = {}

        async def deliver(name: str) -> None:
            results[name] = await self._strategies[name].send(command.for_target(name))

        if len(targets) == 1:
            await deliver(targets[0])
        else:
            async with trio.open_nursery() as nursery:
                for name in targets:
                    nursery.start_soon(deliver, name)
        return [results[name] for name in targets]

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
            raise CommandError(self._unknown(target))
        return [target]

    def _unknown(self, name: str) -> str:
        known = ", ".join(self._strategies) or "none"
        return f"unknown strategy {name!r}; running: {known}"

    def _runner_reply(self, command: Command, ok: bool, message: str) -> CommandResult:
        self.publish(
            CommandHandled(
                time=self.clock.now(),
                strategy=command.target or "",
                command=command.text or command.verb,
                source=command.source,
                ok=ok,
                message=message,
            )
        )
        return CommandResult("", ok, message)

    # -- other threads --------------------------------------------------------------------------

    def send_from_thread(self, command: str, *, source: str = "thread") -> list[CommandResult]:
        """Send from another thread (a notebook cell, a GUI) and wait for the replies.

        Delivered without blocking the event loop (``send_nowait``): a strategy whose mailbox is
        full answers "busy" at once; the calling thread waits only for the replies."""
        token = self._require_token()
        done = threading.Event()
        box: list[list[CommandResult]] = []

        def on_reply(results: list[CommandResult]) -> None:
            box.append(results)
            done.set()

        trio.from_thread.run_sync(
            lambda: self._send_nowait(command, source, on_reply), trio_token=token
        )
        done.wait()
        return box[0]

    def send_soon(
        self,
        command: str,
        *,
        source: str = "signal",
        on_reply: Callable[[list[CommandResult]], None] | None = None,
    ) -> None:
        """Fire-and-forget from any thread or a signal handler; never blocks the caller, and
        never queues past a strategy's mailbox bound: a full mailbox answers "busy" at once."""
        token = self._require_token()
        token.run_sync_soon(self._send_nowait, command, source, on_reply)

    def _send_nowait(
        self,
        text: str,
        source: str,
        on_reply: Callable[[list[CommandResult]], None] | None,
    ) -> None:
        """Deliver ``text`` to its targets without waiting; ``on_reply`` gets every reply once
        the last one is in (at once for refusals and "busy"). Runs in the trio thread."""

        def report(results: list[CommandResult]) -> None:
            if on_reply is not None:
                try:
                    on_reply(results)
                except Exception:
                    log.exception("an on_reply callback raised for %r", text)

        try:
            command = parse_command(text, source=source, custom_verbs=self.custom_commands())
        except CommandError as exc:
            report([self._runner_reply(Command("?", source=source, text=text), False, str(exc))])
            return
        if command.verb == "help":
            report([self._runner_reply(command, True, usage(self.custom_commands()))])
            return
        try:
            targets = self._targets(command)
        except CommandError as exc:
            report([self._runner_reply(command, False, str(exc))])
            return
        if not targets:
            report([self._runner_reply(command, True, "no strategies")])
            return
        results: dict[str, CommandResult] = {}

        def collect(name: str) -> Callable[[CommandResult], None]:
            def got(result: CommandResult) -> None:
                results[name] = result
                if len(results) == len(targets):
                    report([results[n] for n in targets])

            return got

        for name in targets:
            self._strategies[name].send_nowait(command.for_target(name), collect(name))

    def _require_token(self) -> trio.lowlevel.TrioToken:
        if self._token is None:
            raise RuntimeError("the Runner is not running")
        return self._token
