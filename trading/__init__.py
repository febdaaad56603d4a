"""trio-trade: live trading strategies you can command at any moment, on Trio.

The public API, re-exported flat. Everything else is an implementation detail.
"""

from trading.bars import Bar, Interval, IntervalError, parse_duration
from trading.clock import Clock, VirtualClock, WallClock
from trading.commands import Command, CommandError, CommandResult, parse_command
from trading.events import CommandHandled, Event, StrategyError, StrategyStateChanged
from trading.exchanges import MarketData, SimulatedMarket, UnknownSymbol
from trading.orders import Fill, Order, OrderError, OrderRefused, OrderState, Side
from trading.params import ParamError
from trading.portfolio import Position
from trading.restart import RestartPolicy
from trading.risk import RiskLimits
from trading.runner import StrategyRunner
from trading.states import StrategyState
from trading.strategy import Context, Strategy, StrategyDefinitionError
from trading.supervisor import Runner

__all__ = [
    "Bar",
    "Clock",
    "Command",
    "CommandError",
    "CommandHandled",
    "CommandResult",
    "Context",
    "Event",
    "Fill",
    "Interval",
    "IntervalError",
    "MarketData",
    "Order",
    "OrderError",
    "OrderRefused",
    "OrderState",
    "ParamError",
    "Position",
    "RestartPolicy",
    "RiskLimits",
    "Runner",
    "Side",
    "SimulatedMarket",
    "Strategy",
    "StrategyDefinitionError",
    "StrategyError",
    "StrategyRunner",
    "StrategyState",
    "StrategyStateChanged",
    "UnknownSymbol",
    "VirtualClock",
    "WallClock",
    "parse_command",
    "parse_duration",
]
__version__ = "0.1.0"
