"""The plan of one strategy's recovery: what the reads found, and the one step that applies it.

Split from :mod:`trading.runtime.recovery` (which does the reads): this module decides, without
IO, which client ids are the strategy's, which orders to adopt and settle, which trades the
database lacks, and applies all of it in one synchronous step (see the rules there): the books
are rebuilt from the recorded fills, then the missing trades are booked through the engine in
the order they happened (average-cost books depend on it), then each order is settled on the
exchange's report.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Final

import attrs

from trading.core import events as ev
from trading.core.ids import new_client_order_id, parse_client_order_id
from trading.core.orders import Fill, Order, OrderSpec, OrderState, OrderType
from trading.exchanges.base import ExchangeOrder
from trading.runtime.account import Account
from trading.runtime.engine import TradeEngine
from trading.runtime.history import Recorded, RecordedOrder

__all__ = ["Plan", "belongs"]

log = logging.getLogger(__name__)
_S = OrderState
_SHOWN: Final = 20  # ids named in the report; the rest are counted


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


class Plan:
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
