"""trio-trade: live trading strategies you can command at any moment, on Trio.

The public API, re-exported flat. Everything else is an implementation detail.
"""

from trading.bars import Bar, Interval, IntervalError, parse_duration
from trading.clock import Clock, VirtualClock, WallClock
from trading.commands import Command, CommandError, CommandResult, parse_command
from trading.events import CommandHandled, Event, StrategyError, StrategyStateChanged
from trading.exchanges import MarketData, SimulatedMarket, UnknownSymbol
from trading.params import ParamError
from trading.restart import RestartPolicy
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
    "Interval",
    "IntervalError",
    "MarketData",
    "ParamError",
    "RestartPolicy",
    "Runner",
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
