"""ServiceHost: the one task that owns everything a Runner runs, and ends it in order.

The rules this module keeps (DESIGN.md rules 1 and 11):

* Every task of a Runner lives under one *host* task, inside a shielded CancelScope: an outside
  cancellation of the ``async with Runner`` block reaches the block, never the strategies, the
  engine or the bus directly, so the wind-down can still use them (cancel orders, publish).
* The host holds two nurseries: the services (the EventBus, the BarScheduler that wakes
  strategies at their bar closes, and the TradeEngine with its exchange connection) and, inside
  it, the strategies'. Services outlive strategies.
* The Runner drives the end: :meth:`ServiceHost.wind_down` sets the deadlines (the shield's
  included, so every shielded step below sees them, contract C1), the Runner stops its
  strategies, then :meth:`ServiceHost.close` ends the strategies' nursery, stops the engine
  and its reconciler under ``engine_timeout``, drains the observers (each under the bus's own
  bound) and ends the services. Each step is bounded, so closing never hangs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from trading.core.events import Event
from trading.exchanges.base import Exchange
from trading.runtime.bus import EventBus
from trading.runtime.clock import Clock
from trading.runtime.engine import TradeEngine
from trading.runtime.scheduler import BarScheduler

__all__ = ["GRACE", "ServiceHost"]

log = logging.getLogger(__name__)

# Slack on top of each step's own bound, so a step that ends right at its deadline is not cut.
GRACE = 1.0


class ServiceHost:
    """Start with ``await nursery.start(host.run)``; strategies go in :attr:`nursery`."""

    def __init__(
        self,
        bus: EventBus,
        exchange: Exchange | None,
        *,
        clock: Clock,
        publish: Callable[[Event], None],
        engine_timeout: float,
        scheduler: BarScheduler | None = None,
        run_id: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.bus = bus
        self.scheduler = scheduler
        self.exchange = exchange
        self.clock = clock
        self.publish = publish
        self.engine_timeout = engine_timeout
        self.engine: TradeEngine | None = None
        self.nursery: trio.Nursery | None = None  # the strategies' nursery, while open
        self._shield: trio.CancelScope | None = None
        self._strategies: trio.CancelScope | None = None
        self._engine_scope: trio.CancelScope | None = None
        self._closing = trio.Event()
        self._engine_done = trio.Event()
        self._done = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with trio.CancelScope(shield=True) as self._shield:
                async with trio.open_nursery() as services:
                    await services.start(self.bus.run)
                    if self.scheduler is not None:
                        await services.start(self.scheduler.run)
                    if self.exchange is not None:
                        engine = TradeEngine(
                            self.exchange,
                            clock=self.clock,
                            publish=self.publish,
                            capacity=self.bus.wait_for_capacity,
                            run_id=self.run_id,
                        )
                        self.engine = await services.start(self._serve_engine, engine)
                    with trio.CancelScope() as self._strategies:
                        async with trio.open_nursery() as strategies:
                            self.nursery = strategies
                            task_status.started()
                            await self._closing.wait()
                            strategies.cancel_scope.cancel(reason="Runner closed")
                    self.nursery = None
                    await self._stop_services()
                    services.cancel_scope.cancel(reason="Runner closed")
        finally:
            self.nursery = None
            self._done.set()

    def wind_down(self, *, strategies_for: float, total: float) -> None:
        """The wind-down starts: strategies get ``strategies_for`` seconds from now (then they
        are cancelled), and the whole host ``total`` seconds."""
        now = trio.current_time()
        if self._shield is not None:
            self._shield.deadline = now + total
        if self._strategies is not None:
            self._strategies.deadline = now + strategies_for
        if self._engine_scope is not None:
            # Reconciliation the engine starts from now on is bounded too (contract C1).
            self._engine_scope.deadline = now + strategies_for + self.engine_timeout

    async def close(self, budget: float) -> None:
        """End the strategies' nursery, then the services; return once the host ended (or,
        were a step to break its own bound, after ``budget`` seconds)."""
        self._closing.set()
        with trio.move_on_after(budget) as waited:
            await self._done.wait()
        if waited.cancelled_caught:
            log.error("the Runner's tasks did not end within %gs", budget)

    async def _serve_engine(
        self, engine: TradeEngine, *, task_status: trio.TaskStatus[TradeEngine]
    ) -> None:
        try:
            with trio.CancelScope() as self._engine_scope:
                await engine.run(task_status=task_status)
        finally:
            self._engine_done.set()

    async def _stop_services(self) -> None:
        """Strategies are gone: stop the engine and its reconciler (bounded), then drain every
        observer (each bounded by the bus), so nothing publishes into a closed bus."""
        if self._engine_scope is not None:
            scope = self._engine_scope
            # In-flight shielded exchange calls see this deadline (contract C1) and end by it.
            scope.deadline = min(scope.deadline, trio.current_time() + self.engine_timeout)
            scope.cancel(reason="Runner closed")
            with trio.move_on_after(self.engine_timeout + GRACE) as waited:
                await self._engine_done.wait()
            if waited.cancelled_caught:
                log.error("the trade engine did not stop within %gs", self.engine_timeout)
        await self.bus.aclose()
