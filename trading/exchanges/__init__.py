"""The edges that talk to markets, and the protocols they implement.

Public extension points (DESIGN.md: edges depend on core and runtime, never the reverse):

* :class:`MarketData` — bar history for ``ctx.history``.
* :class:`Exchange` — order routing for the TradeEngine: ``run`` (pushes updates), ``symbol_info``,
  ``submit``, ``cancel``, ``query``, ``balances``, ``last_price``; each method's docstring says
  what it may raise and what cancelling it does.
* Records: :class:`OrderRequest` (the order's spec), :class:`ExchangeOrder` (a report),
  :class:`SymbolInfo`, :class:`~trading.core.records.Fill`; the callback type
  :data:`OrderUpdate`; :class:`PriceSource` (what a paper broker fills against);
  :class:`Recoverable` (what crash recovery reads: open orders, trades since).
* Errors: :class:`ExchangeRejected` (answered and refused: nothing placed), :class:`ExchangeError`
  (outcome unknown; any other exception means the same), :class:`UnknownSymbol`.

Implementations here: :class:`SimulatedMarket` (bars), :class:`PaperBroker` (an in-memory spot
account), and Binance in ``trading.exchanges.binance`` (``open_binance``).
``trading.testing.FaultyExchange`` wraps any Exchange with scripted faults.
"""

from trading.core.records import Fill
from trading.exchanges.base import (
    Exchange,
    ExchangeError,
    ExchangeOrder,
    ExchangeRejected,
    MarketData,
    OrderRequest,
    OrderUpdate,
    PriceSource,
    Recoverable,
    SymbolInfo,
    UnknownSymbol,
)
from trading.exchanges.paper import PaperBroker
from trading.exchanges.sim import SimulatedMarket

__all__ = [
    "Exchange",
    "ExchangeError",
    "ExchangeOrder",
    "ExchangeRejected",
    "Fill",
    "MarketData",
    "OrderRequest",
    "OrderUpdate",
    "PaperBroker",
    "PriceSource",
    "Recoverable",
    "SimulatedMarket",
    "SymbolInfo",
    "UnknownSymbol",
]
