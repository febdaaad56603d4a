"""Crash recovery: a restarted run takes over what its strategies' earlier runs left behind.

After a ``kill -9`` the exchange still holds the strategy's resting orders and its trades, and
the database holds what the recorder committed before the process died (all but a tail).
Before a strategy starts, :class:`Recovery` rebuilds its account from both. The rules it keeps:

* The exchange is the truth, the database the memory. Positions are the database's fills
  replayed in the order they were booked, plus every exchange trade of the strategy whose
  ``(symbol, trade id)`` the database lacks, booked once, through the engine (so it is recorded,
  and the next restart finds it in the database). An order's state is the exchange's.
* Orders are matched by client order id: an id is this strategy's if the database recorded it
  for the strategy, or if it is what ``new_client_order_id`` makes for this strategy with the
  id's own sequence and run. Open orders of other strategies, or not made by trio-trade, are
  left alone and named in the report.
* Nothing is sent: an adopted order is tracked again (pushes apply, ``ctx.account`` lists it,
  stop and flatten cancel it), never re-submitted. An order the database thought open and the
  exchange does not know is reconciled in the background like a lost submit (``not found`` is
  believed only after the engine's grace).
* All reads come first, the changes last, with no await between the last read and the end:
  a recovery that fails changes nothing, and a trade that happens meanwhile is either in the
  trades read or pushed to an order already tracked (a cancel in that window is learnt when
  the order is next touched). Recovery is idempotent: a second restart finds the same state.
* Fail closed: if the database or the exchange cannot be read within ``timeout`` seconds (real
  time; reads are retried, they are read-only), :class:`RecoveryFailed` stops the start, so a
  strategy never trades on a position it does not know. ``recover=False`` is the way to start
  anyway.

Layering (DESIGN.md): the database is reached through the ``TradeHistory`` port of
:mod:`trading.runtime.history`; the recorder's side implements it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from typing import TypeVar

import attrs
import trio

from trading.core import events as ev
from trading.core.ids import new_client_order_id, parse_client_order_id
from trading.core.orders import Fill, Order, OrderSpec, OrderState, OrderType, Side
from trading.core.risk import RiskLimits
from trading.exchanges.base import ExchangeOrder, Recoverable
from trading.runtime.account import Account
from trading.runtime.engine import TradeEngine
from trading.runtime.history import Recorded, RecordedOrder, TradeHistory

__all__ = ["Recovery", "RecoveryFailed", "recovery_for"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_S = OrderState
_SHOWN = 20  # ids named in the report; the rest are counted


class RecoveryFailed(Exception):
    """The strategy did not start: its earlier state could not be read (message says why)."""


def recovery_for(
    recover: bool | None,
    exchange: object,
    observers: Iterable[object],
    flush: Callable[[], Awaitable[None]],
) -> Recovery | None:
    """The Runner's ``recover`` option. None (the default) recovers when an observer is a
    :class:`TradeHistory` (a Recorder: a database is configured) and the exchange is
    :class:`Recoverable` and keeps its state beyond this process (an exchange class saying
    ``outlives_process = False``, like the in-memory paper broker, is new at each start: the
    database's positions would be wrong for it). True without both is a ValueError."""
    history = next((o for o in observers if isinstance(o, TradeHistory)), None)
    if recover is None:
        recover = (
            history is not None
            and isinstance(exchange, Recoverable)
            and getattr(exchange, "outlives_process", True) is not False
        )
    if not recover:
        return None
    if history is None:
        raise ValueError("recover=True needs a database: attach a Recorder to the Runner")
    if not isinstance(exchange, Recoverable):
        raise ValueError(
            f"recover=True needs an exchange that lists open orders and trades; "
            f"{type(exchange).__name__} does not"
        )
    return Recovery(history, flush=flush)


def belongs(client_order_id: str, strategy: str) -> bool:
    """Whether ``new_client_order_id`` makes this id for ``strategy`` (sanitising included)."""
    parts = parse_client_order_id(client_order_id)
    if parts is None:
        return False
    try:
        made = new_client_order_id(strategy, parts.seq, parts.run, prefix=parts.prefix)
    except ValueError:
        return False
    return made == client_order_id


def _named(ids: Iterable[str]) -> tuple[str, ...]:
    ids = sorted(ids)
    more = len(ids) - _SHOWN
    return tuple(ids[:_SHOWN]) + ((f"... and {more} more",) if more > 0 else ())


class Recovery:
    """One Runner's crash recovery; :meth:`account` gives a strategy its recovered account.

    ``flush`` waits until the recorder committed what this run published (so a strategy
    removed and added again reads its own fills back). ``lookback`` (seconds) widens the
    trades read for clock skew between the database's times and the exchange's.
    """

    def __init__(
        self,
        history: TradeHistory,
        *,
        flush: Callable[[], Awaitable[None]],
        timeout: float = 30.0,
        lookback: float = 60.0,
    ) -> None:
        self.history = history
        self.flush = flush
        self.timeout = timeout
        self.lookback = lookback

    async def account(
        self, engine: TradeEngine, strategy: str, limits: RiskLimits | None, symbols: Sequence[str]
    ) -> Account:
        """The strategy's account, recovered if the engine does not hold it yet (an account
        that lives on across restarts in this run already knows everything). Raises
        RecoveryFailed, and leaves the engine without the account, if recovery failed.
        Cancelling it before it ends changes nothing (the reads come first)."""
        if engine.has_account(strategy):
            return engine.account(strategy, limits)
        exchange = engine.exchange
        if not isinstance(exchange, Recoverable):
            raise RecoveryFailed(f"{type(exchange).__name__} cannot list open orders and trades")
        await self.flush()  # local and bounded by the recorder; no real-time limit of ours
        try:
            recorded = await self.history.recorded(strategy)
        except Exception as exc:
            raise RecoveryFailed(
                f"{strategy}: cannot recover: the database could not be read "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        plan = _Plan(strategy, recorded)
        opened = await self._read("open orders", exchange.open_orders)
        plan.take_open(opened)
        for order in plan.unsettled():
            plan.reports[order.client_order_id] = await self._read(
                f"order {order.client_order_id}",
                partial(engine.exchange.query, order.symbol, order.client_order_id),
            )
        since = max(plan.since() - self.lookback, 0.0)
        await self._read_trades(exchange, plan, symbols, since)
        lost = plan.orders_of_trades_only()
        for symbol, cid in lost:
            plan.reports[cid] = await self._read(
                f"order {cid}", partial(engine.exchange.query, symbol, cid)
            )
        if lost:  # those reads took time: read the trades again, last
            await self._read_trades(exchange, plan, symbols, since)
        balances = await self._read("balances", engine.balances)
        account = engine.account(strategy, limits)
        try:
            event = plan.apply(engine, account)  # no await from here on
        except Exception as exc:
            engine.release(strategy)
            raise RecoveryFailed(f"{strategy}: cannot rebuild its books: {exc}") from exc
        _check_holdings(account, balances)
        engine.publish(event)
        log.info("%s", ev.describe(event))
        return account

    async def _read_trades(
        self, exchange: Recoverable, plan: _Plan, symbols: Sequence[str], since: float
    ) -> None:
        for symbol in sorted(plan.symbols() | set(symbols)):
            plan.trades[symbol] = await self._read(
                f"trades in {symbol}", partial(exchange.trades_since, symbol, since)
            )

    async def _read(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """``call()``, retried with backoff for ``timeout`` seconds of real time (it is
        read-only); RecoveryFailed naming ``what`` and the last error after that."""
        delay, last = 0.25, "no answer"
        with trio.move_on_after(self.timeout):
            while True:
                try:
                    return await call()
                except Exception as exc:
                    last = f"{type(exc).__name__}: {exc}"
                    log.warning("recovery: reading %s failed (%s); retrying", what, last)
                await trio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise RecoveryFailed(
            f"cannot recover: {what} could not be read within {self.timeout:g}s ({last}); "
            "not starting on positions and orders it does not know (recover=False to start anyway)"
        )


class _Plan:
    """What the reads found for one strategy, and the one synchronous step that applies it."""

    def __init__(self, strategy: str, recorded: Recorded) -> None:
        self.strategy = strategy
        self.recorded = recorded
        self.db_orders = {o.client_order_id: o for o in recorded.orders}
        self.db_fills: dict[str, list[Fill]] = {}
        for fill in recorded.fills:
            self.db_fills.setdefault(fill.client_order_id, []).append(fill)
        self.known = {(f.symbol, f.trade_id) for f in recorded.fills}
        self.open: dict[str, ExchangeOrder] = {}
        self.left_alone: list[str] = []
        self.reports: dict[str, ExchangeOrder | None] = {}
        self.trades: dict[str, list[Fill]] = {}

    def mine(self, client_order_id: str) -> bool:
        return client_order_id in self.db_orders or belongs(client_order_id, self.strategy)

    def take_open(self, opened: Iterable[ExchangeOrder]) -> None:
        for report in opened:
            if self.mine(report.client_order_id):
                self.open[report.client_order_id] = report
            else:
                self.left_alone.append(report.client_order_id)

    def unsettled(self) -> list[RecordedOrder]:
        """Recorded orders not open on the exchange whose fate may have moved on: not final
        in the database, or final with fewer recorded trades than their filled quantity."""
        found = []
        for cid, order in self.db_orders.items():
            booked = sum((f.quantity for f in self.db_fills.get(cid, ())), Decimal(0))
            if cid not in self.open and (
                not order.state.is_final or order.filled_quantity > booked
            ):
                found.append(order)
        return found

    def since(self) -> float:
        """Trades before this are all in the database: the strategy's last record, or the
        first record of an order that may still be missing trades. With no record at all
        (the crash lost the whole first run, or it never had this database) there is no such
        time: 0, the exchange's whole history under the strategy's client ids."""
        times = [o.created_at for o in self.unsettled()]
        if self.recorded.last_time is not None:
            times.append(self.recorded.last_time)
        return min(times, default=0.0)

    def symbols(self) -> set[str]:
        found = {o.symbol for o in self.recorded.orders} | {f.symbol for f in self.recorded.fills}
        return found | {r.symbol for r in self.open.values()}

    def missing(self) -> list[Fill]:
        """Trades of this strategy the database lacks, oldest first: each symbol's in the
        exchange's order, merged by time (a stable sort keeps the exchange's order on ties)."""
        found = [
            fill
            for trades in self.trades.values()
            for fill in trades
            if (fill.symbol, fill.trade_id) not in self.known
            and fill.client_order_id
            and self.mine(fill.client_order_id)
        ]
        return sorted(found, key=lambda f: f.time)

    def orders_of_trades_only(self) -> list[tuple[str, str]]:
        """(symbol, client id) of missing trades whose order nothing read so far describes."""
        return sorted(
            {
                (f.symbol, f.client_order_id)
                for f in self.missing()
                if f.client_order_id not in self.open and f.client_order_id not in self.reports
            }
        )

    def apply(self, engine: TradeEngine, account: Account) -> ev.Recovered:
        """Rebuild the books, adopt the orders, book the missing trades in the order they
        happened (average-cost books depend on it), then settle each order on the exchange's
        report. Synchronous: nothing else runs meanwhile."""
        restored = account.restore(self.recorded.fills)
        missing = self.missing()
        trades_of: dict[str, list[Fill]] = {}
        for fill in missing:
            trades_of.setdefault(fill.client_order_id, []).append(fill)
        orders: dict[str, Order] = {}
        for cid in sorted({*self.open, *self.reports, *trades_of}):
            report = self.open.get(cid) or self.reports.get(cid)
            order = self._order(engine, cid, report, trades_of.get(cid, []))
            if order is not None and engine.adopt(order):
                orders[cid] = order
        booked: list[str] = []
        for fill in missing:
            order = orders.get(fill.client_order_id)
            if order is None:
                continue
            done = order.filled_quantity + fill.quantity >= order.quantity
            step = ExchangeOrder.of(
                order.spec,
                exchange_order_id=order.exchange_order_id or "",
                state=_S.FILLED if done else _S.PARTIALLY_FILLED,
                fills=(fill,),
            )
            before = len(order.fills)
            engine.apply(order, step)
            if len(order.fills) > before:
                booked.append(f"{fill.symbol}:{fill.trade_id}")
        adopted: list[str] = []
        closed: list[str] = []
        unresolved: list[str] = []
        for cid, order in orders.items():
            report = self.open.get(cid) or self.reports.get(cid)
            if report is not None:
                engine.apply(order, report, reconciled=True)
            elif cid in trades_of:  # known only by its trades: they are the whole of it
                engine.apply(order, _settled(order), reconciled=True)
            if order.state is _S.UNKNOWN:
                engine.chase(order)  # not found (yet): the engine keeps asking
                unresolved.append(cid)
            elif order.is_open:
                adopted.append(cid)
            else:
                closed.append(f"{cid} {order.state.value}")
        for symbol in account.book.positions:
            account.publish_position(symbol)
        return ev.Recovered(
            time=engine.clock.now(),
            strategy=self.strategy,
            restored_fills=restored,
            adopted_orders=_named(adopted),
            booked_trades=tuple(booked),
            closed_orders=_named(closed),
            unresolved_orders=_named(unresolved),
            left_alone=_named(self.left_alone),
            positions=tuple(
                (symbol, position.quantity)
                for symbol, position in sorted(account.book.positions.items())
            ),
        )

    def _order(
        self, engine: TradeEngine, cid: str, report: ExchangeOrder | None, trades: list[Fill]
    ) -> Order | None:
        """The order as this run tracks it: its spec from the exchange (else the database,
        else its trades), state unknown, with the fills the database recorded for it."""
        recorded = self.db_orders.get(cid)
        if report is not None:
            spec = OrderSpec(
                client_order_id=cid,
                symbol=report.symbol,
                side=report.side,
                type=report.type,
                quantity=report.quantity,
                price=report.price,
            )
        elif recorded is not None:
            spec = OrderSpec(
                client_order_id=cid,
                symbol=recorded.symbol,
                side=recorded.side,
                type=recorded.type,
                quantity=recorded.quantity,
                price=recorded.price,
            )
        else:
            first = trades[0]
            spec = OrderSpec(
                client_order_id=cid,
                symbol=first.symbol,
                side=first.side,
                type=OrderType.MARKET,
                quantity=sum((f.quantity for f in trades), Decimal(0)),
            )
        fills = self.db_fills.get(cid, [])
        filled = sum((f.quantity for f in fills), Decimal(0))
        notional = sum((f.quantity * f.price for f in fills), Decimal(0))
        try:
            return Order(
                **attrs.asdict(spec, recurse=False),
                strategy=self.strategy,
                state=_S.UNKNOWN,
                fills=list(fills),
                filled_quantity=filled,
                average_fill_price=notional / filled if filled else None,
                exchange_order_id=(report.exchange_order_id or None) if report else None,
                created_at=recorded.created_at if recorded else engine.clock.now(),
            )
        except Exception as exc:  # the records contradict each other: say so, adopt nothing
            log.error("%s: recovery cannot rebuild order %s: %s", self.strategy, cid, exc)
            return None


def _settled(order: Order) -> ExchangeOrder:
    """The report of an order the exchange no longer describes, from its own trades."""
    done = order.filled_quantity >= order.quantity
    return ExchangeOrder.of(
        order.spec,
        exchange_order_id=order.exchange_order_id or "",
        state=_S.FILLED if done else _S.PARTIALLY_FILLED,
    )


def _check_holdings(account: Account, balances: Mapping[str, Decimal]) -> None:
    """Warn if a recovered long position is more than the account holds of the asset (free,
    plus what the strategy's own open sells lock): the books and the exchange disagree."""
    for symbol, position in account.book.positions.items():
        base = account.book.symbols[symbol][0]
        if position.quantity <= 0 or base not in balances:
            continue
        locked = sum(
            (o.remaining_quantity for o in account.open_orders(symbol) if o.side is Side.SELL),
            Decimal(0),
        )
        held = balances[base] + locked
        if position.quantity > held:
            log.warning(
                "%s: recovered position %s %s but the exchange holds %s %s: check the account",
                account.strategy,
                symbol,
                position.quantity,
                held,
                base,
            )
