"""The paper broker: an in-memory spot account that fills against a price source, like Binance.

It exists so a strategy can run end to end (engine, portfolio, recorder, notifier) without keys or
money, and so the engine's tests meet an exchange that refuses what Binance refuses, with Binance's
own codes and messages: code written against it handles the real ``ExchangeRejected`` cases.

Model, deliberately simple and deterministic:

* MARKET orders (and LIMIT orders that are marketable on arrival) fill at once, in full, as taker
  at the current price worsened by ``slippage`` and rounded to the tick *against* the trader, so a
  paper result never flatters the strategy.
* Other LIMIT orders rest (``SUBMITTED``, Binance's NEW) and lock their funds; ``run`` polls them
  every ``poll_interval`` clock seconds and fills them, in full, at the limit price as maker.
* Fees are ``fee_rate * notional``, always charged in the quote asset (the portfolio assumes it).
* Every async method does its work synchronously after one checkpoint (``_checkpoint``: a full
  ``trio.lowlevel.checkpoint()`` here; a replay's broker only checks for cancellation, so an
  order costs no task switch): a cancelled call did nothing, a completed one did everything.
  The uncertain cases (an order placed but its reply lost) are the job of ``trading.testing``,
  not of this broker.

Decimal everywhere; float prices from the source are cut to 8 places and rounded to the tick.
"""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from types import MappingProxyType
from typing import Final

import attrs
import trio

from trading.core.ids import CLIENT_ORDER_ID_RE
from trading.core.records import Fill, OrderState, OrderType, Side, TimeInForce
from trading.exchanges.base import (
    ExchangeOrder,
    ExchangeRejected,
    OrderRequest,
    OrderUpdate,
    PriceSource,
    SymbolInfo,
)
from trading.runtime.clock import Clock

__all__ = ["DEFAULT_BALANCES", "DEFAULT_SYMBOLS", "PaperBroker"]

_TICK: Final = Decimal("0.01")
_MIN_NOTIONAL: Final = Decimal(5)


def _usdt_pair(base: str, step: str) -> SymbolInfo:
    return SymbolInfo(
        symbol=f"{base}USDT",
        base=base,
        quote="USDT",
        tick_size=_TICK,
        step_size=Decimal(step),
        min_quantity=Decimal(step),
        min_notional=_MIN_NOTIONAL,
    )


#: Filters close to Binance's for the simulated market's symbols.
DEFAULT_SYMBOLS: Final[Mapping[str, SymbolInfo]] = MappingProxyType(
    {
        info.symbol: info
        for info in (
            _usdt_pair("BTC", "0.00001"),
            _usdt_pair("ETH", "0.0001"),
            _usdt_pair("SOL", "0.001"),
        )
    }
)
DEFAULT_BALANCES: Final[Mapping[str, Decimal]] = MappingProxyType({"USDT": Decimal(10_000)})

# Binance's codes and messages (errors.md), so callers branch on the same values as in production.
_INVALID_SYMBOL = ("-1121", "Invalid symbol.")
_INSUFFICIENT = ("-2010", "Account has insufficient balance for requested action.")
_DUPLICATE = ("-2010", "Duplicate order sent.")
_UNKNOWN_ORDER = ("-2011", "Unknown order sent.")


def _mandatory(name: str) -> ExchangeRejected:
    return ExchangeRejected(
        "-1102", f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _filter_failure(name: str) -> ExchangeRejected:
    return ExchangeRejected("-1013", f"Filter failure: {name}")


def _to_tick(value: Decimal, tick: Decimal, rounding: str) -> Decimal:
    """Round to a multiple of ``tick``; ``quantize`` alone would only handle powers of ten."""
    if tick == 0:
        return value
    return (value / tick).to_integral_value(rounding=rounding) * tick


def _positive(value: Decimal | None) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and value > 0


@attrs.define
class _Order:
    """The broker's own mutable book entry; callers only ever see ``report()`` snapshots."""

    request: OrderRequest
    exchange_order_id: str
    state: OrderState = OrderState.SUBMITTED
    fills: list[Fill] = attrs.Factory(list)
    locked_asset: str = ""
    locked_amount: Decimal = Decimal(0)

    @property
    def key(self) -> tuple[str, str]:
        return self.request.symbol, self.request.client_order_id

    def report(self) -> ExchangeOrder:
        filled = sum((f.quantity for f in self.fills), Decimal(0))
        notional = sum((f.quantity * f.price for f in self.fills), Decimal(0))
        return ExchangeOrder.of(
            self.request,
            exchange_order_id=self.exchange_order_id,
            state=self.state,
            filled_quantity=filled,
            average_price=notional / filled if filled else None,
            fills=tuple(self.fills),
        )


class PaperBroker:
    """An :class:`~trading.exchanges.base.Exchange` that keeps a spot account in memory."""

    #: Its account dies with the object: a Runner does not recover against it by default
    #: (``recover=True`` when the same broker outlives a Runner, as in tests).
    outlives_process = False
    #: Where every async method yields (see the module docstring).
    _checkpoint = staticmethod(trio.lowlevel.checkpoint)

    def __init__(
        self,
        prices: PriceSource,
        clock: Clock,
        *,
        balances: Mapping[str, Decimal] = DEFAULT_BALANCES,
        fee_rate: Decimal = Decimal("0.001"),
        slippage: Decimal = Decimal("0.0005"),
        symbols: Mapping[str, SymbolInfo] | None = None,
        poll_interval: float = 60.0,
        keep_finished: int = 10_000,
    ) -> None:
        if not Decimal(0) <= fee_rate < 1:
            raise ValueError(f"fee_rate must be in [0, 1), not {fee_rate!r}")
        if not Decimal(0) <= slippage < 1:
            raise ValueError(f"slippage must be in [0, 1), not {slippage!r}")
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0, not {poll_interval!r}")
        negative = sorted(asset for asset, amount in balances.items() if amount < 0)
        if negative:
            raise ValueError(f"balances must not be negative: {', '.join(negative)}")
        self._prices = prices
        self._clock = clock
        self._fee_rate = fee_rate
        self._slippage = slippage
        self._poll_interval = poll_interval
        self._symbols: Mapping[str, SymbolInfo] = MappingProxyType(
            dict(DEFAULT_SYMBOLS if symbols is None else symbols)
        )
        self._free: defaultdict[str, Decimal] = defaultdict(
            Decimal, {asset: Decimal(amount) for asset, amount in balances.items()}
        )
        self._locked: defaultdict[str, Decimal] = defaultdict(Decimal)
        # Latest order per (symbol, client id): Binance lets a final order's id be reused. Only
        # the ``keep_finished`` most recent finished orders stay queryable (an exchange does not
        # keep every order at hand either), so a long paper run does not grow without bound.
        self._orders: dict[tuple[str, str], _Order] = {}
        self._finished: deque[tuple[str, str]] = deque()
        self._keep_finished = keep_finished
        self._open: dict[tuple[str, str], _Order] = {}
        self._order_ids: Iterator[int] = itertools.count(1)
        self._trade_ids: defaultdict[str, Iterator[int]] = defaultdict(lambda: itertools.count(1))
        # Every trade, oldest first, for ``trades_since`` (Binance's myTrades); bounded like the
        # finished orders, so a long paper run does not grow without bound.
        self._trades: deque[Fill] = deque(maxlen=10 * keep_finished)

    # ------------------------------------------------------------------ Exchange protocol

    async def run(
        self,
        on_update: OrderUpdate,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Ready at once (symbols are local); then fill resting orders on a fixed clock schedule.

        The schedule is anchored at start (``+= poll_interval``) rather than "now + interval" so a
        slow ``on_update`` does not make polls drift, which would make replays non-reproducible.
        """
        task_status.started()
        next_poll = self._clock.now() + self._poll_interval
        while True:
            await self._clock.sleep_until(next_poll)
            self._poll(on_update)
            next_poll += self._poll_interval

    def symbol_info(self) -> Mapping[str, SymbolInfo]:
        return self._symbols

    async def submit(self, request: OrderRequest) -> ExchangeOrder:
        await self._checkpoint()
        return self._submit(request)

    async def cancel(self, symbol: str, client_order_id: str) -> ExchangeOrder:
        await self._checkpoint()
        order = self._open.pop((symbol, client_order_id), None)
        if order is None:
            raise ExchangeRejected(*_UNKNOWN_ORDER)
        self._release(order)
        order.state = OrderState.CANCELLED
        self._retire(order)
        return order.report()

    async def query(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        await self._checkpoint()
        order = self._orders.get((symbol, client_order_id))
        return None if order is None else order.report()

    async def balances(self) -> Mapping[str, Decimal]:
        await self._checkpoint()
        return dict(self._free)

    async def last_price(self, symbol: str) -> Decimal:
        await self._checkpoint()
        return self._market_price(self._info(symbol))

    # ------------------------------------------------------------------ beyond the protocol

    async def open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]:
        """Binance's GET /openOrders, what recovery starts from (``Recoverable``)."""
        await self._checkpoint()
        return [o.report() for o in self._open.values() if symbol in (None, o.request.symbol)]

    async def trades_since(self, symbol: str, since: float) -> list[Fill]:
        """Binance's GET /myTrades from ``since`` on (``Recoverable``): every trade in ``symbol``
        at or after ``since``, oldest first, each carrying its order's client id."""
        await self._checkpoint()
        return [f for f in self._trades if f.symbol == symbol and f.time >= since]

    @property
    def locked(self) -> Mapping[str, Decimal]:
        """Funds held by resting orders (Binance's ``locked``), nonzero assets only."""
        return {asset: amount for asset, amount in self._locked.items() if amount}

    # ------------------------------------------------------------------ internals

    def _info(self, symbol: str) -> SymbolInfo:
        info = self._symbols.get(symbol)
        if info is None:
            raise ExchangeRejected(*_INVALID_SYMBOL)
        return info

    def _market_price(self, info: SymbolInfo) -> Decimal:
        raw = self._prices.price(info.symbol, self._clock.now())
        return _to_tick(Decimal(str(round(raw, 8))), info.tick_size, ROUND_HALF_EVEN)

    def _taker_price(self, info: SymbolInfo, side: Side, market: Decimal) -> Decimal:
        """Slippage and tick rounding both go against the taker: buys pay up, sells get less."""
        if side is Side.BUY:
            return _to_tick(market * (1 + self._slippage), info.tick_size, ROUND_CEILING)
        return _to_tick(market * (1 - self._slippage), info.tick_size, ROUND_FLOOR)

    def _validate(self, request: OrderRequest) -> SymbolInfo:
        """Binance's checks, roughly in its order: parameters, symbol, filters, then the account."""
        info = self._info(request.symbol)
        if not CLIENT_ORDER_ID_RE.fullmatch(request.client_order_id):
            raise ExchangeRejected(
                "-1100",
                "Illegal characters found in parameter 'newClientOrderId'; "
                f"legal range is '{CLIENT_ORDER_ID_RE.pattern}'.",
            )
        if not _positive(request.quantity):
            raise _mandatory("quantity")
        if request.type is OrderType.LIMIT:
            if not _positive(request.price):
                raise _mandatory("price")
        elif request.price is not None:
            raise ExchangeRejected("-1106", "Parameter 'price' sent when not required.")
        return info

    def _check_filters(self, info: SymbolInfo, request: OrderRequest, price: Decimal) -> None:
        if request.price is not None and info.tick_size and request.price % info.tick_size:
            raise _filter_failure("PRICE_FILTER")
        qty = request.quantity
        if qty < info.min_quantity or (info.step_size and qty % info.step_size):
            raise _filter_failure("LOT_SIZE")
        if qty * price < info.min_notional:
            raise _filter_failure("NOTIONAL")

    def _submit(self, request: OrderRequest) -> ExchangeOrder:
        """All checks before any change, so a rejection leaves the account exactly as it was."""
        info = self._validate(request)
        market = self._market_price(info)
        limit = request.price
        self._check_filters(info, request, market if limit is None else limit)
        if (request.symbol, request.client_order_id) in self._open:
            raise ExchangeRejected(*_DUPLICATE)
        side, qty = request.side, request.quantity
        taker = self._taker_price(info, side, market)
        if limit is None:
            fill_price: Decimal | None = taker
        elif side is Side.BUY:
            fill_price = min(limit, taker) if limit >= market else None
        else:
            fill_price = max(limit, taker) if limit <= market else None
        # Funds are checked at the price that would be charged, or locked for a resting order.
        if side is Side.BUY:
            cost = qty * (taker if limit is None else limit) * (1 + self._fee_rate)
            asset, amount = info.quote, cost
        else:
            asset, amount = info.base, qty
        if self._free.get(asset, Decimal(0)) < amount:
            raise ExchangeRejected(*_INSUFFICIENT)

        order = _Order(request=request, exchange_order_id=str(next(self._order_ids)))
        self._orders[order.key] = order
        if fill_price is not None:
            self._fill(order, info, fill_price)
        elif request.time_in_force is not TimeInForce.GTC:
            order.state = OrderState.EXPIRED  # IOC/FOK that cannot trade now: Binance's EXPIRED.
            self._retire(order)
        else:
            order.locked_asset, order.locked_amount = asset, amount
            self._free[asset] -= amount
            self._locked[asset] += amount
            self._open[order.key] = order
        return order.report()

    def _release(self, order: _Order) -> None:
        if order.locked_amount:
            self._locked[order.locked_asset] -= order.locked_amount
            self._free[order.locked_asset] += order.locked_amount
            order.locked_amount = Decimal(0)

    def _fill(self, order: _Order, info: SymbolInfo, price: Decimal) -> Fill:
        """Fill the whole order at ``price`` and move the money; the order becomes FILLED."""
        request = order.request
        qty = request.quantity
        notional = qty * price
        fee = notional * self._fee_rate
        self._release(order)
        if request.side is Side.BUY:
            self._free[info.quote] -= notional + fee
            self._free[info.base] += qty
        else:
            self._free[info.base] -= qty
            self._free[info.quote] += notional - fee
        fill = Fill(
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            quantity=qty,
            price=price,
            fee=fee,
            fee_asset=info.quote,
            time=self._clock.now(),
            trade_id=str(next(self._trade_ids[request.symbol])),
        )
        order.fills.append(fill)
        self._trades.append(fill)
        order.state = OrderState.FILLED
        self._retire(order)
        return fill

    def _retire(self, order: _Order) -> None:
        """A finished order stays queryable until ``keep_finished`` newer ones finished."""
        self._finished.append(order.key)
        while len(self._finished) > self._keep_finished:
            key = self._finished.popleft()
            old = self._orders.get(key)
            if old is not None and old.state is not OrderState.SUBMITTED:
                del self._orders[key]

    def _poll(self, on_update: OrderUpdate) -> None:
        """Fill every resting order the price has crossed, at its limit (maker), oldest first."""
        for key, order in list(self._open.items()):
            info = self._symbols[order.request.symbol]
            limit = order.request.price
            assert limit is not None
            market = self._market_price(info)
            crossed = market <= limit if order.request.side is Side.BUY else market >= limit
            if crossed:
                del self._open[key]
                self._fill(order, info, limit)
                on_update(order.report())
