"""trio-trade's exchange simulator: a Binance-compatible exchange for testing bots.

The sans-IO core (no trio, no IO; a test keeps it so):

* :class:`MatchingEngine` — one account's orders, balances and trades (``engine.py``; its parts:
  ``validation.py`` checks a new order, ``account.py`` keeps balances and trades,
  ``resting.py`` decides which resting orders trade at each step).
* :class:`PricePath` and :class:`KlineRow` — the deterministic market and its klines
  (``market.py``); :class:`Book` / :class:`BookShape` — the synthetic order book (``book.py``).
* :class:`SymbolRules` and :data:`DEFAULT_SYMBOLS` — listed pairs and their filters
  (``symbols.py``); :class:`SimError` — a refusal with Binance's code and message.
* Records: :class:`NewOrder`, :class:`OrderRecord`, :class:`TradeRecord`, and the user-stream
  events :class:`ExecutionReport` and :class:`AccountPosition` (``orders.py``).

The server (Trio: h11 for HTTP, websockets' Trio implementation for WebSockets) is
:class:`ExchangeSim` with its :class:`SimConfig` (``sim.py``), also ``trading.testing``'s and
``trio-trade exchange-sim``'s.
"""

from trading.simulator.book import STEP_MS, Book, BookShape
from trading.simulator.engine import MatchingEngine
from trading.simulator.market import DEFAULT_PRICES, KlineRow, PricePath
from trading.simulator.orders import (
    AccountPosition,
    Event,
    ExecutionReport,
    NewOrder,
    OrderRecord,
    TradeRecord,
)
from trading.simulator.sim import ExchangeSim, SimConfig
from trading.simulator.symbols import DEFAULT_SYMBOLS, SimError, SymbolRules

__all__ = [
    "DEFAULT_PRICES",
    "DEFAULT_SYMBOLS",
    "STEP_MS",
    "AccountPosition",
    "Book",
    "BookShape",
    "Event",
    "ExchangeSim",
    "ExecutionReport",
    "KlineRow",
    "MatchingEngine",
    "NewOrder",
    "OrderRecord",
    "PricePath",
    "SimConfig",
    "SimError",
    "SymbolRules",
    "TradeRecord",
]
