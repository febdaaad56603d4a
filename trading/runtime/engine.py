"""TradeEngine: the one place orders go through, and the subject every order event comes from.

The rules this module keeps (DESIGN.md rules 4 and 6):

* Nothing reaches the exchange before it passed validation and the strategy's risk limits; a
  refusal raises :class:`OrderRefused` to the strategy and publishes ``OrderRejected(sent=False)``.
* Every state-changing exchange call (submit, cancel) runs shielded under its own deadline. If the
  deadline passes, or the call fails without an answer, the order is ``unknown`` and is reconciled
  by its client order id — still shielded, bounded by ``reconcile_timeout`` — before the caller
  goes on. A submit is never retried, so a stop never produces a duplicate; an order is tracked
  from before it is sent, so a stop never loses one.
* Every change is published as an event, so the log, the database and the notifier follow without
  the strategy author writing any of it.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal

import trio

from trading.core import events as ev
from trading.core.orders import (
    Order,
    OrderRefused,
    OrderState,
    new_client_order_id,
    strategy_of,
)
from trading.core.risk import RiskLimits
from trading.exchanges.base import (
    Exchange,
    ExchangeError,
    ExchangeOrder,
    ExchangeRejected,
    OrderRequest,
    SymbolInfo,
)
from trading.runtime.account import Account
from trading.runtime.clock import Clock

__all__ = ["OrderUnresolved", "TradeEngine"]

log = logging.getLogger(__name__)
Publish = Callable[[ev.Event], None]


class OrderUnresolved(RuntimeError):
    """The exchange could not tell us an order's fate within ``reconcile_timeout``.

    The order stays ``unknown``; the engine keeps reconciling it in the background.
    """


class TradeEngine:
    """Routes orders of every strategy through one Exchange; see the module rules.

    Start it with ``await nursery.start(engine.run)``; strategies get their view of it through
    :meth:`account` (that is what ``ctx.buy`` and friends use).
    """

    def __init__(
        self,
        exchange: Exchange,
        *,
        clock: Clock,
        publish: Publish,
        call_timeout: float = 10.0,
        reconcile_timeout: float = 30.0,
        not_found_grace: float = 5.0,
        run_id: str | None = None,
        capacity: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.exchange = exchange
        self.wait_for_capacity = capacity or trio.lowlevel.checkpoint
        self.clock = clock
        self.publish = publish
        self.call_timeout = call_timeout
        self.reconcile_timeout = reconcile_timeout
        # An order the exchange does not know yet may still be on its way; Binance refuses any
        # request older than recvWindow (5 s by default), so after that "not found" means never.
        self.not_found_grace = not_found_grace
        # 32 random bits: client ids (and the database rows keyed by them) stay unique across
        # many runs, not just within one.
        self.run_id = run_id or secrets.token_hex(4)
        self.orders: dict[str, Order] = {}
        self.marks: dict[str, Decimal] = {}
        self._sent_at: dict[str, float] = {}
        self._seq = itertools.count(1)
        self._symbols: Mapping[str, SymbolInfo] = {}
        self._accounts: dict[str, Account] = {}
        self._unresolved: set[str] = set()
        self._wake_reconciler = trio.Event()

    # -- lifetime -------------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[TradeEngine] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Connect the exchange and keep reconciling orders left unknown, until cancelled."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.exchange.run, self._on_update)
            self._symbols = self.exchange.symbol_info()
            nursery.start_soon(self._reconciler)
            task_status.started(self)

    def symbol(self, symbol: str) -> SymbolInfo:
        info = self._symbols.get(symbol)
        if info is None:
            known = ", ".join(sorted(self._symbols)) or "none (is the engine running?)"
            raise OrderRefused(f"unknown symbol {symbol!r}; the exchange lists {known}")
        return info

    def symbols(self) -> Mapping[str, SymbolInfo]:
        return self._symbols

    def account(self, strategy: str, limits: RiskLimits | None = None) -> Account:
        """The strategy's account; the same object across restarts, so positions survive them."""
        account = self._accounts.get(strategy)
        if account is None:
            account = self._accounts[strategy] = Account(self, strategy, limits or RiskLimits())
        elif limits is not None:
            account.limits = limits
        return account

    def new_order_id(self, strategy: str) -> str:
        return new_client_order_id(strategy, next(self._seq), self.run_id)

    # -- state-changing calls (rule 4) ----------------------------------------------------------

    async def send(self, order: Order) -> None:
        """Submit ``order`` (already tracked and validated). Shielded; returns with the order in a
        known state, raises OrderRefused if the exchange refused it, OrderUnresolved if not even
        reconciliation could tell."""
        request = OrderRequest(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            type=order.type,
            quantity=order.quantity,
            price=order.price,
            time_in_force=order.time_in_force,
        )
        self._publish_order(ev.OrderSubmitted, order)
        self._sent_at[order.client_order_id] = self.clock.now()
        refused: ExchangeRejected | None = None
        with trio.CancelScope(shield=True):
            problem = f"no answer within {self.call_timeout:g}s"
            with trio.move_on_after(self.call_timeout):
                try:
                    report = await self.exchange.submit(request)
                except ExchangeRejected as exc:
                    refused = exc
                except ExchangeError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                else:
                    self.apply(order, report)
                    return
            if refused is None:
                await self._lost_track(order, problem)
                return
        assert refused is not None
        order.mark_rejected(refused.reason, self.clock.now())
        self._publish_order(ev.OrderRejected, order, reason=refused.reason, sent=True)
        raise OrderRefused(f"the exchange refused the order: {refused}")

    async def cancel(self, order: Order) -> None:
        """Cancel an open order, shielded; afterwards its state is what the exchange says."""
        if not order.is_open:
            return
        with trio.CancelScope(shield=True):
            problem = f"no answer within {self.call_timeout:g}s"
            with trio.move_on_after(self.call_timeout):
                try:
                    report = await self.exchange.cancel(order.symbol, order.client_order_id)
                except ExchangeRejected as exc:
                    # Usually "Unknown order sent.": it filled or was cancelled meanwhile. Ask.
                    problem = f"cancel refused: {exc}"
                except ExchangeError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                else:
                    self.apply(order, report)
                    return
            await self._lost_track(order, problem, mark=False)

    async def _lost_track(self, order: Order, problem: str, *, mark: bool = True) -> None:
        if mark and order.state is not OrderState.UNKNOWN:
            order.mark_unknown(self.clock.now())
            self._publish_order(ev.OrderUnknown, order, reason=problem)
        log.warning("%s: %s; reconciling by client order id", order.client_order_id, problem)
        if not await self._reconcile(order, self.reconcile_timeout):
            self._unresolved.add(order.client_order_id)
            self._wake_reconciler.set()
            if order.state is OrderState.UNKNOWN:
                raise OrderUnresolved(
                    f"order {order.client_order_id} is unknown: the exchange did not answer within "
                    f"{self.reconcile_timeout:g}s; still reconciling in the background"
                )

    async def _reconcile(self, order: Order, budget: float) -> bool:
        """Ask the exchange about ``order`` until it answers or ``budget`` runs out."""
        delay = 0.25
        with trio.move_on_after(budget):
            while True:
                try:
                    report = await self.exchange.query(order.symbol, order.client_order_id)
                except ExchangeError as exc:
                    log.info("%s: query failed (%s); retrying", order.client_order_id, exc)
                else:
                    sent_at = self._sent_at.get(order.client_order_id, -float("inf"))
                    if report is not None:
                        self.apply(order, report, reconciled=True)
                        return True
                    if order.state is not OrderState.UNKNOWN:
                        return True  # a cancel we could not confirm, but we know the order
                    if self.clock.now() - sent_at >= self.not_found_grace:
                        order.reconcile(OrderState.REJECTED, Decimal(0), None, self.clock.now())
                        order.reject_reason = "never reached the exchange"
                        self._publish_order(
                            ev.OrderReconciled, order, state="rejected", filled_quantity=Decimal(0)
                        )
                        return True
                await trio.sleep(delay)
                delay = min(delay * 2, 5.0)
        return False

    async def _reconciler(self) -> None:
        """Keeps chasing orders whose fate the exchange could not tell in time."""
        while True:
            await self._wake_reconciler.wait()
            self._wake_reconciler = trio.Event()
            while self._unresolved:
                for cid in sorted(self._unresolved):
                    order = self.orders[cid]
                    with trio.CancelScope(shield=True):
                        done = await self._reconcile(order, self.reconcile_timeout)
                    if done or (not order.is_open and order.state is not OrderState.UNKNOWN):
                        self._unresolved.discard(cid)
                await trio.sleep(self.reconcile_timeout)

    # -- applying what the exchange says ---------------------------------------------------------

    def _on_update(self, report: ExchangeOrder) -> None:
        order = self.orders.get(report.client_order_id)
        if order is None:
            log.debug("update for an order not ours: %s", report.client_order_id)
            return
        self.apply(order, report)

    def apply(self, order: Order, report: ExchangeOrder, *, reconciled: bool = False) -> None:
        """Bring ``order`` to what ``report`` says: fills first (they prove the order exists),
        then the state. Publishes one event per change; idempotent for repeated reports."""
        now = self.clock.now()
        was_unknown = order.state is OrderState.UNKNOWN
        if order.state is OrderState.NEW and report.state is not OrderState.REJECTED:
            order.mark_submitted(report.exchange_order_id, now)
            self._publish_order(ev.OrderAccepted, order, exchange_order_id=report.exchange_order_id)
        for fill in report.fills:
            if order.state.is_final and fill.trade_id not in {f.trade_id for f in order.fills}:
                log.error(
                    "%s: fill %s after final state ignored", order.client_order_id, fill.trade_id
                )
                continue
            before = len(order.fills)
            order.apply_fill(fill)
            if len(order.fills) == before:
                continue  # a resent fill
            self.marks[order.symbol] = fill.price
            kind = ev.OrderFilled if order.state is OrderState.FILLED else ev.OrderPartiallyFilled
            self._publish_order(
                kind,
                order,
                trade_id=fill.trade_id,
                fill_quantity=fill.quantity,
                fill_price=fill.price,
                fee=fill.fee,
                fee_asset=fill.fee_asset,
                filled_quantity=order.filled_quantity,
            )
            account = self._accounts.get(order.strategy)
            if account is not None:
                account.on_fill(fill)
        if was_unknown or reconciled:
            if order.state is not report.state and not order.state.is_final:
                order.reconcile(report.state, report.filled_quantity, report.average_price, now)
            if reconciled:
                self._publish_order(
                    ev.OrderReconciled,
                    order,
                    state=order.state.value,
                    filled_quantity=order.filled_quantity,
                )
            return
        if report.state is OrderState.CANCELLED and order.is_open:
            order.mark_cancelled(now)
            self._publish_order(ev.OrderCancelled, order, filled_quantity=order.filled_quantity)
        elif report.state is OrderState.EXPIRED and order.is_open:
            order.mark_expired(now)
            self._publish_order(
                ev.OrderCancelled, order, filled_quantity=order.filled_quantity, reason="expired"
            )
        elif report.state is OrderState.REJECTED and order.is_open:
            order.mark_rejected(report.reason or "rejected", now)
            self._publish_order(ev.OrderRejected, order, reason=report.reason, sent=True)

    def _publish_order(self, kind: type[ev.OrderEvent], order: Order, **fields: object) -> None:
        self.publish(
            kind(
                time=self.clock.now(),
                strategy=order.strategy or strategy_of(order.client_order_id) or "",
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side.value,
                order_type=order.type.value,
                quantity=order.quantity,
                price=order.price,
                **fields,
            )
        )
