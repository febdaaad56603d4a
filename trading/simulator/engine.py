"""The matching engine: one account's orders, balances and trades against the simulated market.

Rules this module keeps:

* Sans-IO and single-threaded: every method is a plain function of the engine's state and the
  market time ``now_ms`` the caller passes (integer ms). Time never goes backwards: an earlier
  ``now_ms`` is treated as the latest time seen.
* ``place`` and ``cancel`` first advance the market to ``now_ms`` (matching resting orders on the
  way), so an order only ever trades against prices after it was placed and before it was
  cancelled. Their event lists therefore may hold other orders' fills, oldest first.
* Refusals raise :class:`SimError` with Binance's code and message and change nothing.
* Balances are exact Decimals: a buy locks ``price * quantity`` of the quote asset, a sell locks
  the quantity of the base asset; a fill moves exactly ``price * qty`` of quote against ``qty`` of
  base, and the commission (``taker_fee`` / ``maker_fee`` of what is received) is charged in the
  asset received. ``locked`` is always what the open orders reserve, and nothing goes negative.
* An order's executed quantity only grows; a closed order (FILLED, CANCELED, EXPIRED) never trades.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from decimal import Decimal

from trading.simulator.book import Book, BookShape
from trading.simulator.market import PricePath
from trading.simulator.orders import (
    AccountPosition,
    Event,
    ExecutionReport,
    NewOrder,
    OrderRecord,
    TradeRecord,
)
from trading.simulator.symbols import DEFAULT_SYMBOLS, SimError, SymbolRules

__all__ = [
    "AccountPosition",
    "BookShape",
    "Event",
    "ExecutionReport",
    "MatchingEngine",
    "NewOrder",
    "OrderRecord",
    "SimError",
    "TradeRecord",
]

_ID_CHARS = string.ascii_letters + string.digits


class MatchingEngine:
    """One account on the simulated exchange (see the module docstring for the rules it keeps).

    ``balances`` funds the account (free); ``depth`` shapes the synthetic book
    (``trading.simulator.book``); ``seed`` makes generated client order ids reproducible.
    """

    def __init__(
        self,
        *,
        balances: Mapping[str, Decimal],
        symbols: Mapping[str, SymbolRules] = DEFAULT_SYMBOLS,
        prices: PricePath,
        maker_fee: Decimal = Decimal("0.001"),
        taker_fee: Decimal = Decimal("0.001"),
        depth: BookShape | None = None,
        start_ms: int = 0,
        seed: int = 0,
    ) -> None:
        self.symbols = dict(symbols)
        self.prices = prices
        self.book = Book(prices, depth)
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.now_ms = start_ms
        self._random = random.Random(seed)
        self._free = {a: Decimal(v) for a, v in balances.items()}
        self._locked = dict.fromkeys(self._free, Decimal(0))

    def new_client_order_id(self) -> str:
        """A Binance-like generated id: 22 letters and digits."""
        return "".join(self._random.choices(_ID_CHARS, k=22))

    def place(self, req: NewOrder, now_ms: int) -> tuple[OrderRecord, list[Event]]:
        """Validate and execute a new order; its record (with this call's fills) and the events.

        Raises :class:`SimError` (nothing changed): -1121 unknown symbol, -1117 side, -1116 type,
        -1115 timeInForce, -1102 a missing mandatory parameter (named), -1106 one not taken by
        the type, -1013 filters, -2010 insufficient balance / duplicate open clientOrderId /
        LIMIT_MAKER that would take.
        """
        raise NotImplementedError

    def cancel(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
        new_client_order_id: str | None = None,
        now_ms: int,
    ) -> tuple[OrderRecord, list[Event]]:
        """Cancel an open order (looked up by ``order_id``, else ``client_order_id``).

        -2011 "Unknown order sent." if there is no such open order. ``new_client_order_id`` is
        the cancel's own id (generated if None): the CANCELED report carries it as ``c``.
        """
        raise NotImplementedError

    def get(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> OrderRecord:
        """Any order, open or closed; -2013 "Order does not exist." if unknown."""
        raise NotImplementedError

    def open_orders(self, symbol: str | None = None) -> list[OrderRecord]:
        """Open orders, oldest first (of one symbol, or all)."""
        raise NotImplementedError

    def trades(
        self,
        symbol: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
    ) -> list[TradeRecord]:
        """``myTrades``: oldest first; ``from_id`` wins over times; without either, the latest."""
        raise NotImplementedError

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Every asset the account has held: ``(free, locked)``."""
        return {a: (self._free[a], self._locked[a]) for a in sorted(self._free)}

    def advance(self, now_ms: int) -> list[Event]:
        """Move market time to ``now_ms``, filling resting orders the path crosses; the events."""
        raise NotImplementedError
