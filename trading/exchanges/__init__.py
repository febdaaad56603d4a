"""The edges that talk to markets: the MarketData/Exchange protocols and their implementations."""

from trading.exchanges.base import MarketData, UnknownSymbol
from trading.exchanges.paper import PaperBroker
from trading.exchanges.sim import SimulatedMarket

__all__ = ["MarketData", "PaperBroker", "SimulatedMarket", "UnknownSymbol"]
