"""The narrow port an Account routes orders through (the TradeEngine implements it).

It exists so that ``account.py`` does not import ``engine.py``: the account decides (validation,
risk, books), the router talks to the exchange. A test may give an Account any object with
these members.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Protocol

from trading.core.events import Event
from trading.core.orders import Order
from trading.exchanges.base import SymbolInfo
from trading.runtime.clock import Clock

__all__ = ["OrderRouter"]


class OrderRouter(Protocol):
    """What an Account needs from the engine."""

    @property
    def clock(self) -> Clock:
        """The strategy clock: event times and the kill switch's day."""
        ...

    @property
    def marks(self) -> dict[str, Decimal]:
        """Last known price per symbol (from fills and price lookups); shared by accounts."""
        ...

    def publish(self, event: Event) -> None:
        """Publish an event; never blocks."""
        ...

    async def wait_for_capacity(self) -> None:
        """Backpressure: returns at once unless the observers are far behind."""
        ...

    def symbols(self) -> Mapping[str, SymbolInfo]: ...

    def symbol(self, symbol: str) -> SymbolInfo:
        """The rules of ``symbol``; raises OrderRefused for one the exchange does not list."""
        ...

    def new_order_id(self, strategy: str) -> str: ...

    async def send(self, order: Order) -> None:
        """Track and submit ``order``; returns with it in a known state (see TradeEngine.send)."""
        ...

    async def cancel(self, order: Order) -> None:
        """Cancel ``order``; never raises; afterwards its state says what happened."""
        ...

    async def last_price(self, symbol: str) -> Decimal: ...

    async def balances(self) -> Mapping[str, Decimal]: ...
