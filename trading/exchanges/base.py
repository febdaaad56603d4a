"""What the runtime needs from a market: bar history, and an Exchange to route orders through.

Protocols and plain records only, so the simulated market, the paper broker, replay and live
exchanges are interchangeable behind them. The TradeEngine is the only caller of an Exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Protocol, runtime_checkable

import trio

from trading.core.bars import Bar, Interval
from trading.core.filters import SymbolInfo
from trading.core.records import Fill, OrderSpec
from trading.core.updates import ExchangeOrder

__all__ = [
    "Exchange",
    "ExchangeError",
    "ExchangeOrder",
    "ExchangeRejected",
    "MarketData",
    "OrderRequest",
    "OrderUpdate",
    "PriceSource",
    "Recoverable",
    "SymbolInfo",
    "UnknownSymbol",
]


class UnknownSymbol(LookupError):
    """A symbol the market does not list; the message names the ones it does."""


class MarketData(Protocol):
    """Bar history, what ``ctx.history`` reads. Read-only, so cancelling any call is safe."""

    @property
    def symbols(self) -> Sequence[str]:
        """The symbols it has bars for."""
        ...

    async def history(
        self, symbol: str, interval: Interval, *, end: float, limit: int
    ) -> list[Bar]:
        """The ``limit`` most recent bars that closed at or before ``end``, oldest first.

        Cancellable: implementations that do network IO must not swallow ``trio.Cancelled``.
        Raises UnknownSymbol for a symbol not in ``symbols``.
        """
        ...


@runtime_checkable
class PriceSource(Protocol):
    """The current price of a symbol at a time: what a paper broker fills against."""

    def price(self, symbol: str, t: float) -> float: ...


#: What is sent: the order's spec. ``client_order_id`` is ours, so a lost reply can be reconciled
#: by it. (One record, ``trading.core.records.OrderSpec``; this name is the exchange's view of it.)
OrderRequest = OrderSpec


class ExchangeError(Exception):
    """The exchange could not be asked (network, 5xx, timeout): the outcome is *unknown*.

    Raise this for failures you recognise; the engine treats *any* other exception from a call
    (a raw ``OSError``, a client's timeout, a decoder's ``ValueError``) the same way: the order
    becomes unknown and is reconciled by its client order id.
    """


class ExchangeRejected(Exception):
    """The exchange answered and refused; nothing was created. ``code`` is the exchange's own."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{reason} ({code})")
        self.code = code
        self.reason = reason


#: The callback ``Exchange.run`` pushes order changes to. It never raises (the engine logs and
#: drops a report it cannot use) and never blocks.
OrderUpdate = Callable[[ExchangeOrder], None]


class Exchange(Protocol):
    """Order routing, as the TradeEngine (its only caller) uses it.

    Every method may block on IO and is cancellable. The engine runs the state-changing calls
    (``submit``, ``cancel``) shielded, under a deadline of its own (``call_timeout``) that never
    outlives the caller's (a stop's) deadline; when the deadline passes the call is cancelled
    and the order's fate is asked with ``query``. So an implementation must tolerate being
    cancelled at any await (cancelling a call may leave the order placed or cancelled: the
    engine assumes exactly that, and never re-sends a submit). Updates may reach ``on_update``
    before, after, or instead of a call's answer, and more than once: the engine keeps only what
    moves an order forward.
    """

    async def run(
        self, on_update: OrderUpdate, *, task_status: trio.TaskStatus[None] = ...
    ) -> None:
        """Connect, then push order changes (fills of resting orders, expiries; pushing the
        answers of calls too is allowed) to ``on_update`` until cancelled. Signals readiness
        once ``symbol_info`` is valid. Cancelling it disconnects; nothing else is undone."""
        ...

    def symbol_info(self) -> Mapping[str, SymbolInfo]:
        """Trading rules per symbol; valid once ``run`` signalled readiness. Never blocks."""
        ...

    async def submit(self, request: OrderRequest) -> ExchangeOrder:
        """Place an order and return the exchange's report of it.

        Raises ExchangeRejected when the exchange refused it (nothing was placed). Anything
        else it raises (ExchangeError or not), or being cancelled, means the outcome is unknown.
        """
        ...

    async def cancel(self, symbol: str, client_order_id: str) -> ExchangeOrder:
        """Cancel an open order and return its final report.

        Raises ExchangeRejected if the exchange has no such *open* order (it may have filled).
        Anything else, or being cancelled, means the cancel may or may not have happened.
        """
        ...

    async def query(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        """The order as the exchange knows it, or None if it does not know it (yet: a request
        can still be in flight, so the engine waits a grace period before believing None).
        Read-only: cancelling it is always safe; any exception means "ask again"."""
        ...

    async def balances(self) -> Mapping[str, Decimal]:
        """Free balance per asset. Read-only; cancelling is safe; errors reach ``ctx.buy``."""
        ...

    async def last_price(self, symbol: str) -> Decimal:
        """The last traded price. Read-only; cancelling is safe."""
        ...


@runtime_checkable
class Recoverable(Protocol):
    """What crash recovery reads from an exchange (``trading.runtime.recovery``); optional.

    An :class:`Exchange` that also has these two methods lets a restarted run adopt the open
    orders and book the trades a crash (``kill -9``) left behind. Both are read-only: cancelling
    either is always safe, and recovery retries a call that raised (any exception means "ask
    again"). Neither may return a partial answer: a trade left out would be a wrong position, an
    order left out would be a resting order nobody tracks. Raise instead.
    """

    async def open_orders(self) -> list[ExchangeOrder]:
        """Every open order of the account, in every symbol (Binance: ``GET /api/v3/openOrders``
        without a symbol, weight 80), each with its ``client_order_id`` (``clientOrderId``),
        ``exchange_order_id``, spec fields, state, ``filled_quantity`` and ``average_price``.
        ``fills`` may be empty: recovery books trades from :meth:`trades_since`."""
        ...

    async def trades_since(self, symbol: str, since: float) -> list[Fill]:
        """Every trade of the account in ``symbol`` at or after ``since`` (epoch seconds), oldest
        first, paging as needed (Binance: ``GET /api/v3/myTrades`` with ``startTime`` then
        ``fromId``).

        Each trade is a :class:`Fill` *already matched to its order's client id*: Binance's
        myTrades carry ``orderId``, not ``clientOrderId``, so an implementation maps ``orderId``
        to ``clientOrderId`` (``GET /api/v3/order?orderId=`` or ``allOrders``; cache it). Fields:
        ``trade_id`` = ``str(id)``, ``quantity`` = ``qty``, ``fee``/``fee_asset`` =
        ``commission``/``commissionAsset`` as charged, ``side`` BUY if ``isBuyer``, ``time`` =
        ``time / 1000``. A trade whose order cannot be found keeps ``client_order_id=""``:
        recovery reports it and never books it.
        """
        ...
