"""Account: one strategy's view of the TradeEngine — what ``ctx.buy``, ``ctx.position`` and the
``stop``/``flatten``/``reduce-only`` commands act on.

It owns the strategy's orders, positions and PnL (from its own fills only, so two strategies on
one symbol keep separate books), its risk limits, its reduce-only switch and its daily-loss kill
switch. Every order goes through :meth:`submit`, where all pre-trade checks live.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import trio

from trading.core import events as ev
from trading.core.ledger import Portfolio, Position
from trading.core.orders import Fill, Order, OrderRefused, OrderType, Side, TimeInForce
from trading.core.risk import RiskLimits, check_order, daily_loss_breached

if TYPE_CHECKING:
    from trading.runtime.engine import TradeEngine

__all__ = ["Account", "to_decimal"]

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
    def __init__(self, engine: TradeEngine, strategy: str, limits: RiskLimits) -> None:
        self.engine = engine
        self.strategy = strategy
        self.limits = limits
        self.reduce_only = False
        self.halted: str | None = None
        self.on_kill: Callable[[str], None] | None = None
        self.orders: dict[str, Order] = {}
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
        """Validate, check risk, then send. Raises OrderRefused with the reason, nothing sent."""
        engine = self.engine
        # Backpressure, only far past normal: the recorder is a very long way behind.
        await engine.wait_for_capacity()
        order_type = OrderType.MARKET if price is None else OrderType.LIMIT
        cid = engine.new_order_id(self.strategy)
        qty, limit = Decimal(0), None
        try:
            qty = to_decimal(quantity, "quantity")
            limit = None if price is None else to_decimal(price, "price")
            info = engine.symbol(symbol)
            order = Order(
                client_order_id=cid,
                strategy=self.strategy,
                symbol=symbol,
                side=side,
                type=order_type,
                quantity=qty,
                price=limit,
                time_in_force=time_in_force,
                created_at=engine.clock.now(),
            )
            if self.halted:
                raise OrderRefused(f"trading is halted: {self.halted}")
            mark = limit if limit is not None else await self._mark(symbol)
            _check_filters(
                info.step_size,
                info.tick_size,
                info.min_quantity,
                info.min_notional,
                qty,
                limit,
                mark,
            )
            await self._check_balance(side, qty, mark, info.base, info.quote)
            self._check_risk(order, qty * mark)
        except OrderRefused as refused:
            self._refuse(cid, side, order_type, qty, limit, symbol, refused.reason)
            raise
        engine.orders[cid] = self.orders[cid] = order
        await engine.send(order)
        return order

    async def cancel(self, order: Order | str) -> Order:
        target = self.orders.get(order if isinstance(order, str) else order.client_order_id)
        if target is None:
            raise OrderRefused(f"{self.strategy} has no order {order!r}")
        await self.engine.cancel(target)
        return target

    def position(self, symbol: str) -> Position:
        return self.book.position(symbol) if symbol in self.book.positions else Position(symbol)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [
            o for o in self.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)
        ]

    # -- fills, PnL, the kill switch ------------------------------------------------------------

    def on_fill(self, fill: Fill) -> None:
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

    def check_kill_switch(self) -> None:
        now = self.engine.clock.now()
        day = int(now // 86400)
        pnl = self.pnl()
        if self._day != day:
            self._day, self._day_start_pnl = day, pnl
        today = pnl - self._day_start_pnl
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
        for symbol, position in self.book.positions.items():
            if position.quantity:
                self.engine.marks[symbol] = await self.engine.exchange.last_price(symbol)
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
        """The ordered part of ``stop``: cancel open orders, optionally flatten, report."""
        report: list[str] = []
        with trio.CancelScope(shield=True):
            if self.limits.cancel_open_orders_on_stop:
                opened = self.open_orders()
                for order in opened:
                    await self.engine.cancel(order)
                if opened:
                    states = ", ".join(f"{o.client_order_id} {o.state.value}" for o in opened)
                    report.append(f"cancelled {len(opened)} open order(s): {states}")
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
        mark = await self.engine.exchange.last_price(symbol)
        self.engine.marks[symbol] = mark
        return mark

    async def _check_balance(
        self, side: Side, qty: Decimal, price: Decimal, base: str, quote: str
    ) -> None:
        balances = await self.engine.exchange.balances()
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
            open_orders=len(self.open_orders()),
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

    def _refuse(
        self,
        cid: str,
        side: Side,
        order_type: OrderType,
        qty: Decimal,
        price: Decimal | None,
        symbol: str,
        reason: str,
    ) -> None:
        """Publish a refusal; ``qty`` is 0 when the quantity itself could not be read."""
        log.warning("%s: order refused before sending: %s", self.strategy, reason)
        self.engine.publish(
            ev.OrderRejected(
                time=self.engine.clock.now(),
                strategy=self.strategy,
                client_order_id=cid,
                symbol=symbol,
                side=side.value,
                order_type=order_type.value,
                quantity=qty,
                price=price,
                reason=reason,
                sent=False,
            )
        )


def _check_filters(
    step: Decimal,
    tick: Decimal,
    min_qty: Decimal,
    min_notional: Decimal,
    qty: Decimal,
    price: Decimal | None,
    mark: Decimal,
) -> None:
    """Binance's LOT_SIZE, PRICE_FILTER and NOTIONAL rules, checked before sending."""
    if step and qty % step:
        raise OrderRefused(f"quantity {qty} is not a multiple of the step size {step}")
    if min_qty and qty < min_qty:
        raise OrderRefused(f"quantity {qty} is below the minimum {min_qty}")
    if price is not None and tick and price % tick:
        raise OrderRefused(f"price {price} is not a multiple of the tick size {tick}")
    if min_notional and qty * mark < min_notional:
        raise OrderRefused(
            f"order worth {qty * mark:.2f} is below the minimum notional {min_notional}"
        )
