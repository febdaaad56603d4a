"""TradeEngine: the one place orders go through, and the subject every order event comes from.

The rules this module keeps (DESIGN.md rules 4 and 6, contracts C1, C3, C6):

* Nothing reaches the exchange before it passed validation and the strategy's risk limits (the
  Account's job, through the :class:`~trading.runtime.routing.OrderRouter` port).
* Every state-changing exchange call (submit, cancel) goes through one helper, :meth:`_call`:
  shielded, under ``min(caller's effective deadline, now + call_timeout)``. Whatever it raises
  (not only ``ExchangeError``), or if the deadline passes, an order not yet answered becomes
  ``unknown`` and is reconciled by its client order id, bounded the same way. A submit is never
  retried, so a stop never produces a duplicate; an order is tracked from before it is sent, so a
  stop never loses one. No order stays ``new`` once its submit returned or raised.
* "Not found" means "never arrived" only after ``not_found_grace`` seconds of real monotonic
  time (``trio.current_time()``) since the submit attempt ended, never on the strategy's clock.
* Reports (answers, pushes, lookups) go through ``trading.core.updates.apply_update``: only what
  moves an order forward is applied. :meth:`apply` and the push callback never raise.
* Finished orders leave the engine: ``orders`` holds open and unknown orders only, so the cost
  of an order does not grow with the orders ever placed (history lives in the recorder).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal

import trio

from trading.core import events as ev
from trading.core.ids import new_client_order_id, new_run_id
from trading.core.orders import Order, OrderRefused, OrderState, OrderUnresolved
from trading.core.risk import RiskLimits
from trading.core.updates import apply_update
from trading.exchanges.base import Exchange, ExchangeOrder, ExchangeRejected, SymbolInfo
from trading.runtime.account import Account
from trading.runtime.clock import Clock
from trading.runtime.deadlines import shield_within
from trading.runtime.order_events import OrderEvents

__all__ = ["OrderUnresolved", "TradeEngine"]

log = logging.getLogger(__name__)
Publish = Callable[[ev.Event], None]
_S = OrderState


class _NotSent:
    """The deadline had passed before the call could start: nothing reached the exchange."""


_NOT_SENT = _NotSent()
_CallResult = ExchangeOrder | ExchangeRejected | str | _NotSent


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
        self._capacity = capacity or trio.lowlevel.checkpoint
        self._clock = clock
        self._publish = publish
        self._events = OrderEvents(publish, clock)
        self.call_timeout = call_timeout
        self.reconcile_timeout = reconcile_timeout
        # An order the exchange does not know yet may still be on its way; Binance refuses any
        # request older than recvWindow (5 s by default), so after that "not found" means never.
        self.not_found_grace = not_found_grace
        # 32 random bits: client ids (and the database rows keyed by them) stay unique across
        # many runs, not just within one.
        self.run_id = run_id or new_run_id()
        self.orders: dict[str, Order] = {}  # open and unknown orders only
        # Finished orders a report said traded more than the trades we have: their trades may
        # still be pushed, and must be booked. Off the hot paths; they leave once booked.
        self._awaiting_trades: dict[str, Order] = {}
        self._marks: dict[str, Decimal] = {}
        self._attempt_ended: dict[str, float] = {}  # trio time a submit attempt ended
        self._seq = itertools.count(1)
        self._symbols: Mapping[str, SymbolInfo] = {}
        self._accounts: dict[str, Account] = {}
        self._released: set[str] = set()
        self._unresolved: dict[str, Order] = {}
        self._wake_reconciler = trio.Event()
        #: Called with every order as it is sent (a replay keeps them all for its results);
        #: must not raise or block. The engine itself forgets finished orders.
        self.on_sent: Callable[[Order], None] | None = None

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

    # -- the OrderRouter port (what accounts use) ------------------------------------------------

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def marks(self) -> dict[str, Decimal]:
        return self._marks

    def publish(self, event: ev.Event) -> None:
        self._publish(event)

    async def wait_for_capacity(self) -> None:
        await self._capacity()

    def symbol(self, symbol: str) -> SymbolInfo:
        info = self._symbols.get(symbol)
        if info is None:
            known = ", ".join(sorted(self._symbols)) or "none (is the engine running?)"
            raise OrderRefused(f"unknown symbol {symbol!r}; the exchange lists {known}")
        return info

    def symbols(self) -> Mapping[str, SymbolInfo]:
        return self._symbols

    def new_order_id(self, strategy: str) -> str:
        return new_client_order_id(strategy, next(self._seq), self.run_id)

    async def last_price(self, symbol: str) -> Decimal:
        return await self.exchange.last_price(symbol)

    async def balances(self) -> Mapping[str, Decimal]:
        return await self.exchange.balances()

    # -- accounts (C6) ---------------------------------------------------------------------------

    def account(self, strategy: str, limits: RiskLimits | None = None) -> Account:
        """The strategy's account; the same object across restarts, so positions survive them."""
        self._released.discard(strategy)
        account = self._accounts.get(strategy)
        if account is None:
            account = self._accounts[strategy] = Account(self, strategy, limits or RiskLimits())
        elif limits is not None:
            account.limits = limits
        return account

    def has_account(self, strategy: str) -> bool:
        return strategy in self._accounts

    def adopt(self, order: Order) -> bool:
        """Track ``order``, placed by an earlier run (crash recovery), as if sent from here:
        pushes and reports for it apply, its strategy's account lists it, stop and flatten
        cancel it. It is never sent. False (and nothing changes) if it is tracked already."""
        cid = order.client_order_id
        if cid in self.orders or cid in self._awaiting_trades:
            return False
        self.orders[cid] = order
        account = self._accounts.get(order.strategy)
        if account is not None:
            account.orders[cid] = order
        return True

    def chase(self, order: Order) -> None:
        """Reconcile an adopted order in the background (the exchange did not know it yet): as
        for a lost submit, "not found" is believed only after ``not_found_grace``."""
        cid = order.client_order_id
        self._attempt_ended.setdefault(cid, trio.current_time())
        self._unresolved[cid] = order
        self._wake_reconciler.set()

    def release(self, strategy: str) -> None:
        """Forget a removed strategy: its account goes now, or when its last open or unknown
        order is resolved (fills of those still reach its books). Unknown names are ignored."""
        account = self._accounts.get(strategy)
        if account is None:
            return
        account.on_kill = None  # the strategy runner's callback: the last reference back to it
        if account.orders:
            self._released.add(strategy)
        else:
            del self._accounts[strategy]

    # -- state-changing calls (rule 4) ----------------------------------------------------------

    async def _call(self, call: Callable[[], Awaitable[ExchangeOrder]]) -> _CallResult:
        """The one shielded exchange call (C1): the report, the refusal, or what went wrong."""
        own_deadline = trio.current_time() + self.call_timeout
        with shield_within(self.call_timeout) as scope:
            if scope.deadline <= trio.current_time():
                return _NOT_SENT
            try:
                return await call()
            except ExchangeRejected as exc:
                return exc
            except Exception as exc:  # any failure leaves the outcome unknown (rule 4)
                return f"{type(exc).__name__}: {exc}"
        if scope.deadline < own_deadline:
            return "no answer before the caller's deadline"
        return f"no answer within {self.call_timeout:g}s"

    async def send(self, order: Order) -> None:
        """Track and submit ``order`` (already validated). Shielded; returns with the order in a
        known state; raises OrderRefused if the exchange refused it (or there was no time left to
        send it), OrderUnresolved if not even reconciliation could tell before the deadline."""
        cid = order.client_order_id
        self.orders[cid] = order
        if self.on_sent is not None:
            self.on_sent(order)
        self._events.order(ev.OrderSubmitted, order)
        result = await self._call(lambda: self.exchange.submit(order.spec))
        self._attempt_ended[cid] = trio.current_time()
        if isinstance(result, ExchangeOrder):
            self.apply(order, result)
            if order.state is not _S.NEW:
                return
            result = "its answer could not be used"
        if isinstance(result, ExchangeRejected | _NotSent) and order.state is _S.NEW:
            if isinstance(result, ExchangeRejected):
                reason, message = result.reason, f"the exchange refused the order: {result}"
            else:
                reason = message = "not sent: no time left before the deadline"
            order.mark_rejected(reason, self._clock.now())
            self._events.order(ev.OrderRejected, order, reason=reason, sent=True)
            self._finished(order)
            raise OrderRefused(message)
        if order.state is not _S.NEW:  # a pushed update already told us where it is
            log.info("%s: submit answer lost (%s); the stream already placed it", cid, result)
            return
        order.mark_unknown(self._clock.now())
        self._events.order(ev.OrderUnknown, order, reason=str(result))
        log.warning("%s: %s; reconciling by client order id", cid, result)
        await self._resolve(order)
        state: OrderState = order.state  # moved by the reconciliation above
        if state is _S.UNKNOWN:
            raise OrderUnresolved(
                f"order {cid} is unknown: the exchange could not tell its fate before the "
                "deadline; still reconciling in the background"
            )

    async def cancel(self, order: Order) -> None:
        """Cancel an open order, shielded (C1); never raises. Afterwards its state is what the
        exchange said; ``unknown`` if it could not say before the deadline (then the background
        reconciler keeps asking), still open if the cancel was refused or never sent."""
        if not order.is_open:
            return
        cid = order.client_order_id
        result = await self._call(lambda: self.exchange.cancel(order.symbol, cid))
        if isinstance(result, ExchangeOrder):
            self.apply(order, result)
            return
        if isinstance(result, _NotSent):
            return
        if isinstance(result, ExchangeRejected):
            # Usually "Unknown order sent.": it filled or was cancelled meanwhile. Ask.
            log.info("%s: cancel refused (%s); asking the exchange", cid, result)
        elif order.is_open and order.state is not _S.UNKNOWN:
            order.mark_unknown(self._clock.now())
            self._events.order(ev.OrderUnknown, order, reason=f"cancel: {result}")
        await self._resolve(order)

    async def _resolve(self, order: Order) -> None:
        known = await self._reconcile(order, self.reconcile_timeout)
        if not known and order.is_open and order.client_order_id in self.orders:
            self._unresolved[order.client_order_id] = order
            self._wake_reconciler.set()

    def _never_arrived(self, order: Order) -> bool:
        """Not found, never acknowledged, and the grace (real time, C3) since the submit attempt
        ended has passed: the request cannot still be in flight."""
        if order.exchange_order_id is not None or order.fills:
            return False
        ended = self._attempt_ended.get(order.client_order_id, trio.current_time())
        return trio.current_time() - ended >= self.not_found_grace

    async def _reconcile(self, order: Order, budget: float, *, shield: bool = True) -> bool:
        """Ask the exchange about ``order`` until it knows, within ``budget`` and the caller's
        deadline (C1). True once the order's state is known. Shielded for a caller that must
        not go on before it knows; the background reconciler is not (asking is read-only, so
        stopping the engine may cancel it at once)."""
        cid = order.client_order_id
        delay = 0.25
        with shield_within(budget) if shield else trio.move_on_after(budget):
            while True:
                try:
                    report = await self.exchange.query(order.symbol, cid)
                except Exception as exc:
                    log.info(
                        "%s: query failed (%s: %s); asking again", cid, type(exc).__name__, exc
                    )
                else:
                    if report is not None:
                        self.apply(order, report, reconciled=True)
                        if order.state is not _S.UNKNOWN:
                            return True
                    elif order.state is not _S.UNKNOWN:
                        return True  # a cancel we could not confirm, but we know the order
                    elif self._never_arrived(order):
                        self._reject_lost(order)
                        return True
                ended = self._attempt_ended.get(cid, -math.inf)
                grace_end = ended + self.not_found_grace
                now = trio.current_time()
                await trio.sleep(min(delay, grace_end - now) if grace_end > now else delay)
                delay = min(delay * 2, 5.0)
        return False

    def _reject_lost(self, order: Order) -> None:
        order.reconcile(_S.REJECTED, Decimal(0), None, self._clock.now())
        order.reject_reason = "never reached the exchange"
        self._events.order(ev.OrderReconciled, order, state="rejected", filled_quantity=Decimal(0))
        self._finished(order)

    async def _reconciler(self) -> None:
        """Keeps chasing orders whose fate the exchange could not tell in time."""
        while True:
            await self._wake_reconciler.wait()
            self._wake_reconciler = trio.Event()
            while self._unresolved:
                for cid, order in list(self._unresolved.items()):
                    done = await self._reconcile(order, self.reconcile_timeout, shield=False)
                    if done or not order.is_open:
                        self._unresolved.pop(cid, None)
                if self._unresolved:
                    await trio.sleep(self.reconcile_timeout)

    # -- applying what the exchange says ---------------------------------------------------------

    def _on_update(self, report: ExchangeOrder) -> None:
        """The exchange's push callback: never raises (a bad report is logged and dropped)."""
        try:
            cid = report.client_order_id
            order = self.orders.get(cid) or self._awaiting_trades.get(cid)
            if order is None:
                log.debug("update for an order not open here: %s", report.client_order_id)
                return
            self.apply(order, report)
        except Exception:
            log.exception("update dropped: %r", report)

    def apply(self, order: Order, report: ExchangeOrder, *, reconciled: bool = False) -> None:
        """Bring ``order`` forward to what ``report`` says (``trading.core.updates``), publish one
        event per change and book new fills. Never raises: what cannot be used is logged."""
        cid = order.client_order_id
        try:
            applied = apply_update(order, report, self._clock.now())
        except Exception:
            log.exception("%s: report dropped: %r", cid, report)
            return
        for reason in applied.dropped:
            log.warning("%s: dropped from a report: %s", cid, reason)
        for fill in applied.fills:
            self._marks[order.symbol] = fill.price
        try:
            self._events.applied(order, report, applied, reconciled=reconciled)
            account = self._accounts.get(order.strategy)
            if account is not None:
                for fill in applied.fills:
                    account.on_fill(fill)
        except Exception:
            log.exception("%s: publishing or booking an update failed", cid)
        if not order.is_open:
            self._finished(order)

    def _finished(self, order: Order) -> None:
        """A final order leaves every hot path (rule: cost per order does not grow)."""
        cid = order.client_order_id
        self.orders.pop(cid, None)
        if order.unbooked_quantity > 0:
            self._awaiting_trades[cid] = order
        else:
            self._awaiting_trades.pop(cid, None)
        self._attempt_ended.pop(cid, None)
        self._unresolved.pop(cid, None)
        account = self._accounts.get(order.strategy)
        if account is not None:
            account.forget(order)
            if order.strategy in self._released and not account.orders:
                self._released.discard(order.strategy)
                del self._accounts[order.strategy]
