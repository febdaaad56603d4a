"""The edges that talk to markets: the MarketData/Exchange protocols and their implementations."""

from __future__ import annotations

from trading.exchanges.base import MarketData, UnknownSymbol
from trading.exchanges.paper import PaperBroker
from trading.exchanges.sim import SimulatedMarket
from trading.runtime.clock import Clock

__all__ = ["MarketData", "PaperBroker", "SimulatedMarket", "UnknownSymbol", "simulated"]


def simulated(clock: Clock, *, seed: int = 7) -> tuple[SimulatedMarket, PaperBroker]:
    """The usual simulated set-up: a seeded market and a paper broker filling against it on
    ``clock`` (pass the Runner's clock). Use as
    ``market, exchange = simulated(clock); Runner(clock=clock, market=market, exchange=exchange)``.
    """
    market = SimulatedMarket(seed=seed)
    return market, PaperBroker(market, clock)
