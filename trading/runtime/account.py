"""Account: one strategy's view of the TradeEngine — what ``ctx.buy``, ``ctx.position`` and the
``stop``/``flatten``/``reduce-only`` commands act on.

It owns the strategy's open orders, positions and PnL (from its own fills only, so two strategies
on one symbol keep separate books), its risk limits, its reduce-only switch and its daily-loss kill
switch. Every order goes through :meth:`submit`, where all pre-trade checks live; orders are routed
through the narrow :class:`~trading.runtime.routing.OrderRouter` port (the TradeEngine), so this
module does not import the engine. Finished orders leave ``orders`` (the engine tells us through
:meth:`forget`): nothing here scans the history.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation

import attrs
import trio

from trading.core import events as ev
from trading.core.filters import apply_filters
from trading.core.ledger import Portfolio, Position
from trading.core.orders import (
    Fill,
    Order,
    OrderRefused,
    OrderSpec,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
)
from trading.core.risk import RiskLimits, check_order, daily_loss_breached
from trading.runtime.deadlines import shield_within
from trading.runtime.routing import OrderRouter

__all__ = ["Account", "describe_cancels", "to_decimal"]

log = logging.getLogger(__name__)
# What a buy must be able to pay on top of its notional: taker fee plus slippage, generously.
_BUY_MARGIN = Decimal("1.003")


def to_decimal(value: Decimal | int | float | str, what: str) -> Decimal:
    """Accept what strategy authors naturally write (``0.01``, ``"0.01"``) without float noise."""
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise OrderRefused(f"{what} {value!r} is not a number") from None


class Account:
    def __init__(self, engine: OrderRouter, strategy: str, limits: RiskLimits) -> None:
        self.engine = engine
        self.strategy = strategy
        self.limits = limits
        self.reduce_only = False
        self.halted: str | None = None
        self.on_kill: Callable[[str], None] | None = None
        self.orders: dict[str, Order] = {}  # open and unknown orders only
        self._book: Portfolio | None = None
        self._day: int | None = None
        self._day_start_pnl = Decimal(0)

    @property
    def book(self) -> Portfolio:
        """Positions and PnL from this strategy's own fills (cash starts at zero)."""
        if self._book is None:
            symbols = self.engine.symbols()
            self._book = Portfolio(symbols={s: (i.base, i.quote) for s, i in symbols.items()})
        return self._book

    # -- what ctx exposes -----------------------------------------------------------------------

    async def submit(
        self,
        side: Side,
        quantity: Decimal | int | float | str,
        symbol: str,
        price: Decimal | int | float | str | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
    ) -> Order:
        """Validate, check risk, then send; returns the order in the state the exchange reported
        (filled, resting, ...), even when its answer was lost after a pushed update.

        Raises OrderRefused with the reason when a check, the exchange or the deadline refused
        it (nothing placed), OrderUnresolved when the exchange could not tell its fate before the
        deadline (it is still chased by client order id; never re-sent). Shielded while it talks
        to the exchange: cancelling the caller (a ``pause``) waits for the answer."""
        engine = self.engine
        # Backpressure, only far past normal: the recorder is a very long way behind.
        await engine.wait_for_capacity()
        spec = OrderSpec(
            client_order_id=engine.new_order_id(self.strategy),
            symbol=symbol,
            side=side,
            type=OrderType.MARKET if price is None else OrderType.LIMIT,
            quantity=Decimal(0),
            time_in_force=time_in_force,
        )
        try:
            spec = attrs.evolve(spec, quantity=to_decimal(quantity, "quantity"))
            if price is not None:
                spec = attrs.evolve(spec, price=to_decimal(price, "price"))
            info = engine.symbol(symbol)
            Order(**attrs.asdict(spec, recurse=False), strategy=self.strategy, created_at=0.0)
            if self.halted:
                raise OrderRefused(f"trading is halted: {self.halted}")
            if trio.current_effective_deadline() <= trio.current_time():
                raise OrderRefused("no time left before the deadline (stopping)")
            mark = spec.price if spec.price is not None else await self._mark(symbol)
            # The symbol's filters: quantity down to the step, a limit price to the tick on the
            # less aggressive side; what still breaks a filter is refused before sending.
            spec = apply_filters(spec, info, reference_price=mark)
            mark = spec.price if spec.price is not None else mark
            order = Order(
                **attrs.asdict(spec, recurse=False),
                strategy=self.strategy,
                created_at=engine.clock.now(),
            )
            await self._check_balance(side, spec.quantity, mark, info.base, info.quote)
            self._check_risk(order, spec.quantity * mark)
        except OrderRefused as refused:
            self._refuse(spec, refused.reason)
            raise
        self.orders[order.client_order_id] = order
        await engine.send(order)
        return order

    async def cancel(self, order: Order | str) -> Order:
        """Cancel one of this strategy's orders; a finished Order is returned as it is."""
        cid = order if isinstance(order, str) else order.client_order_id
        target = self.orders.get(cid)
        if target is None:
            if isinstance(order, Order) and order.strategy == self.strategy:
                return order  # already finished: nothing to cancel
            raise OrderRefused(f"{self.strategy} has no open order {cid!r}")
        await self.engine.cancel(target)
        return target

    def position(self, symbol: str) -> Position:
        return self.book.position(symbol) if symbol in self.book.positions else Position(symbol)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open and unknown orders, O(open): finished ones are not kept."""
        return [o for o in self.orders.values() if symbol is None or o.symbol == symbol]

    def restore(self, fills: Iterable[Fill]) -> int:
        """Rebuild the books from the fills earlier runs booked (crash recovery), in the order
        they were booked: no events, no kill switch (they are not today's news). Returns how
        many there were. Raises PortfolioError, changing nothing, for a fill the books cannot
        take."""
        symbols = self.engine.symbols()
        book = Portfolio(symbols={s: (i.base, i.quote) for s, i in symbols.items()})
        restored = sum(1 for fill in fills if book.apply_fill(fill))
        self._book = book  # all or nothing
        return restored

    def forget(self, order: Order) -> None:
        """The router's word that ``order`` is final: it leaves the open index."""
        self.orders.pop(order.client_order_id, None)

    # -- fills, PnL, the kill switch ------------------------------------------------------------

    def on_fill(self, fill: Fill) -> None:
        self._roll_day()  # before booking: the day's baseline must not include this fill's fee
        self.book.apply_fill(fill)
        self.publish_position(fill.symbol)
        self.check_kill_switch()

    def publish_position(self, symbol: str) -> None:
        position = self.position(symbol)
        mark = self.engine.marks.get(symbol, position.average_price)
        self.engine.publish(
            ev.PositionSnapshot(
                time=self.engine.clock.now(),
                strategy=self.strategy,
                symbol=symbol,
                quantity=position.quantity,
                average_price=position.average_price,
                mark_price=mark,
                realised_pnl=position.realised_pnl,
                unrealised_pnl=position.unrealised_pnl(mark),
                fees=position.fees,
            )
        )

    def pnl(self) -> Decimal:
        """Realised + unrealised − fees over every symbol, at the engine's last marks."""
        total = Decimal(0)
        for symbol, position in self.book.positions.items():
            mark = self.engine.marks.get(symbol, position.average_price)
            total += position.realised_pnl + position.unrealised_pnl(mark) - position.fees
        return total

    def _roll_day(self) -> None:
        """At the first event of a (runner clock) day, take the day's baseline: the PnL as the
        day started, before that event changes it."""
        day = int(self.engine.clock.now() // 86400)
        if self._day != day:
            self._day, self._day_start_pnl = day, self.pnl()

    def check_kill_switch(self) -> None:
        self._roll_day()
        now = self.engine.clock.now()
        today = self.pnl() - self._day_start_pnl
        if self.halted or not daily_loss_breached(self.limits, today):
            return
        self.halted = (
            f"daily loss {-today:.2f} exceeds max_daily_loss {self.limits.max_daily_loss} "
            f"({dt.datetime.fromtimestamp(now, tz=dt.UTC):%Y-%m-%d})"
        )
        self.engine.publish(
            ev.RiskBreached(
                time=now,
                strategy=self.strategy,
                rule="max_daily_loss",
                detail=self.halted,
                action="strategy paused; orders refused until resume",
            )
        )
        if self.on_kill is not None:
            self.on_kill(self.halted)

    async def refresh_marks(self) -> None:
        """Mark open positions to market (before each compute) so PnL and the kill switch see
        moves that happened without fills."""
        if self._book is None:
            return  # never traded: nothing to mark
        self._roll_day()  # the new day's baseline is taken at the old marks
        for symbol, position in self.book.positions.items():
            if position.quantity:
                self.engine.marks[symbol] = await self.engine.last_price(symbol)
        self.check_kill_switch()

    # -- stop and flatten -----------------------------------------------------------------------

    async def flatten(self) -> list[str]:
        """Close every position with market orders; shielded by the engine's send."""
        done = []
        for symbol, position in list(self.book.positions.items()):
            for order in self.open_orders(symbol):
                await self.engine.cancel(order)
            qty = position.quantity
            if qty == 0:
                continue
            side = Side.SELL if qty > 0 else Side.BUY
            saved, self.halted = self.halted, None  # flattening is allowed while halted
            try:
                order = await self.submit(side, abs(qty), symbol)
                done.append(f"flattened {symbol} {qty} ({order.state.value})")
            except OrderRefused as exc:
                done.append(f"could not flatten {symbol} {qty}: {exc.reason}")
            finally:
                self.halted = saved
        return done

    async def shutdown(self) -> list[str]:
        """The ordered part of ``stop`` (contract C2): cancel open orders, optionally flatten,
        report. Shielded but within the caller's deadline (C1). Each line is true: an order is
        said to be cancelled only if the exchange confirmed it; the others are named, by client
        order id, as still resting (cancel refused or not sent in time) or unknown (no answer
        before the deadline; the engine keeps reconciling it)."""
        report: list[str] = []
        if not self.orders and self._book is None and not self.limits.flatten_on_stop:
            return report  # never traded and nothing open: nothing to cancel, report or publish
        with shield_within():
            if self.limits.cancel_open_orders_on_stop:
                opened = list(self.orders.values())
                for order in opened:
                    await self.engine.cancel(order)
                report.extend(describe_cancels(opened))
            if self.limits.flatten_on_stop:
                report.extend(await self.flatten())
            for symbol, position in self.book.positions.items():
                if position.quantity:
                    report.append(f"position {symbol} {position.quantity} kept")
                self.publish_position(symbol)
        return report

    def summary(self) -> str:
        parts = []
        for symbol, position in self.book.positions.items():
            if position.quantity or position.realised_pnl:
                mark = self.engine.marks.get(symbol, position.average_price)
                parts.append(
                    f"{symbol} {position.quantity} @ {position.average_price:.2f} "
                    f"(unrealised {position.unrealised_pnl(mark):+.2f})"
                )
        pnl = f"pnl {self.pnl():+.2f}"
        opened = len(self.open_orders())
        flags = [f for f, on in (("reduce-only", self.reduce_only), ("halted", self.halted)) if on]
        return "; ".join([*(parts or ["flat"]), pnl, f"open orders {opened}", *flags])

    # -- checks ---------------------------------------------------------------------------------

    async def _mark(self, symbol: str) -> Decimal:
        mark = await self.engine.last_price(symbol)
        self.engine.marks[symbol] = mark
        return mark

    async def _check_balance(
        self, side: Side, qty: Decimal, price: Decimal, base: str, quote: str
    ) -> None:
        balances = await self.engine.balances()
        if side is Side.BUY and quote in balances:
            need = qty * price * _BUY_MARGIN
            if need > balances[quote]:
                raise OrderRefused(
                    f"insufficient balance: buying {qty} {base} needs about {need:.2f} {quote}, "
                    f"free {balances[quote]:.2f}"
                )
        if side is Side.SELL and base in balances and qty > balances[base]:
            raise OrderRefused(
                f"insufficient balance: selling {qty} {base}, free {balances[base]} {base}"
            )

    def _check_risk(self, order: Order, notional: Decimal) -> None:
        position = self.position(order.symbol).quantity
        pending = [o.side.sign * o.remaining_quantity for o in self.open_orders(order.symbol)]
        reason = check_order(
            self.limits,
            notional=notional,
            open_orders=len(self.orders),
            reduce_only=self.reduce_only,
            position=position,
            pending=pending,
            signed_quantity=order.side.sign * order.quantity,
        )
        if reason is not None:
            if not reason.startswith("reduce-only"):
                self.engine.publish(
                    ev.RiskBreached(
                        time=self.engine.clock.now(),
                        strategy=self.strategy,
                        rule=reason.split(":", 1)[0],
                        detail=reason,
                        action="order refused",
                    )
                )
            raise OrderRefused(reason)

    def _refuse(self, spec: OrderSpec, reason: str) -> None:
        """Publish a refusal; the quantity is 0 when it could not be read."""
        log.warning("%s: order refused before sending: %s", self.strategy, reason)
        self.engine.publish(
            ev.OrderRejected(
                time=self.engine.clock.now(),
                strategy=self.strategy,
                **spec.event_fields(),
                reason=reason,
                sent=False,
            )
        )


_CANCELLED = (OrderState.CANCELLED, OrderState.EXPIRED)


def describe_cancels(orders: list[Order]) -> list[str]:
    """Lines for a stop reply after cancelling ``orders``, by client order id, never claiming
    "cancelled" for an order whose state is not cancelled or expired."""
    lines: list[str] = []
    cancelled = [o.client_order_id for o in orders if o.state in _CANCELLED]
    if cancelled:
        lines.append(f"cancelled {len(cancelled)} open order(s): {', '.join(cancelled)}")
    for order in orders:
        cid = order.client_order_id
        if order.state is OrderState.UNKNOWN:
            lines.append(
                f"could not cancel {cid} (unknown: no answer before the deadline; "
                "still reconciling)"
            )
        elif order.is_open:
            lines.append(f"could not cancel {cid} (still resting, {order.state.value})")
        elif order.state not in _CANCELLED:
            lines.append(f"{cid} was {order.state.value} before it could be cancelled")
    return lines
