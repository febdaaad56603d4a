"""What the runtime needs from a market: bar history, and an Exchange to route orders through.

Protocols and plain records only, so the simulated market, the paper broker, replay and live
exchanges are interchangeable behind them. The TradeEngine is the only caller of an Exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Protocol, runtime_checkable

import attrs
import trio

from trading.core.bars import Bar, Interval
from trading.core.orders import Fill, OrderState, OrderType, Side, TimeInForce

__all__ = [
    "Exchange",
    "ExchangeError",
    "ExchangeOrder",
    "ExchangeRejected",
    "MarketData",
    "OrderRequest",
    "OrderUpdate",
    "PriceSource",
    "SymbolInfo",
    "UnknownSymbol",
]


class UnknownSymbol(LookupError):
    """A symbol the market does not list; the message names the ones it does."""


class MarketData(Protocol):
    @property
    def symbols(self) -> Sequence[str]: ...

    async def history(
        self, symbol: str, interval: Interval, *, end: float, limit: int
    ) -> list[Bar]:
        """The ``limit`` most recent bars that closed at or before ``end``, oldest first.

        Cancellable: implementations that do network IO must not swallow ``trio.Cancelled``.
        """
        ...


@runtime_checkable
class PriceSource(Protocol):
    """The current price of a symbol at a time: what a paper broker fills against."""

    def price(self, symbol: str, t: float) -> float: ...


@attrs.frozen(slots=True)
class SymbolInfo:
    """Trading rules of one symbol, as Binance's exchangeInfo filters give them (0 = no rule)."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal = Decimal(0)
    step_size: Decimal = Decimal(0)
    min_quantity: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)


@attrs.frozen(slots=True, kw_only=True)
class OrderRequest:
    """What is sent. ``client_order_id`` is ours, so a lost reply can be reconciled by it."""

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC


@attrs.frozen(slots=True, kw_only=True)
class ExchangeOrder:
    """An order as the exchange reports it: after submit, cancel, query, or in a pushed update.

    ``fills`` holds the fills the exchange reports with this update (possibly all of them so far);
    receivers de-duplicate them by ``trade_id``.
    """

    client_order_id: str
    exchange_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    state: OrderState
    filled_quantity: Decimal = Decimal(0)
    average_price: Decimal | None = None
    fills: tuple[Fill, ...] = ()
    reason: str = ""


class ExchangeError(Exception):
    """The exchange could not be asked (network, 5xx, timeout): the outcome is *unknown*."""


class ExchangeRejected(Exception):
    """The exchange answered and refused; nothing was created. ``code`` is the exchange's own."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{reason} ({code})")
        self.code = code
        self.reason = reason


OrderUpdate = Callable[[ExchangeOrder], None]


class Exchange(Protocol):
    """Order routing. Every method may block on IO and is cancellable; state-changing calls
    (``submit``, ``cancel``) are run by the TradeEngine shielded under its own deadline."""

    async def run(
        self, on_update: OrderUpdate, *, task_status: trio.TaskStatus[None] = ...
    ) -> None:
        """Connect, then push every order change not returned by a call (fills of resting orders,
        expiries) to ``on_update`` until cancelled. Signals readiness once symbols are known."""
        ...

    def symbol_info(self) -> Mapping[str, SymbolInfo]:
        """Trading rules per symbol; valid once ``run`` signalled readiness."""
        ...

    async def submit(self, request: OrderRequest) -> ExchangeOrder:
        """Place an order. Raises ExchangeRejected (refused) or ExchangeError (outcome unknown)."""
        ...

    async def cancel(self, symbol: str, client_order_id: str) -> ExchangeOrder:
        """Cancel an open order. Raises ExchangeRejected if the exchange has no such open order."""
        ...

    async def query(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        """The order as the exchange knows it, or None if it never received it."""
        ...

    async def balances(self) -> Mapping[str, Decimal]:
        """Free balance per asset."""
        ...

    async def last_price(self, symbol: str) -> Decimal: ...
