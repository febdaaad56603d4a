"""trio-trade: live trading strategies you can command at any moment, on Trio.

The public API, re-exported flat. Everything else is an implementation detail.
"""

from trading.core.bars import Bar, Interval, IntervalError, parse_duration
from trading.core.commands import Command, CommandError, CommandResult, parse_command
from trading.core.events import (
    BarsSkipped,
    CommandHandled,
    Event,
    Recovered,
    StrategyError,
    StrategyFailed,
    StrategyStateChanged,
)
from trading.core.ledger import Position
from trading.core.orders import (
    Fill,
    Order,
    OrderError,
    OrderRefused,
    OrderState,
    OrderUnresolved,
    Side,
)
from trading.core.params import ParamError
from trading.core.restart import RestartPolicy
from trading.core.risk import RiskLimits
from trading.core.states import StrategyState
from trading.exchanges import MarketData, SimulatedMarket, UnknownSymbol
from trading.exchanges.defaults import simulated

# Last: the replay builds on everything above. ``trading.replay`` is the function; its package's
# modules are imported by name (``from trading.replay import ReplayResult``).
from trading.replay import ReplayResult, replay, replay_async
from trading.runtime.clock import Clock, VirtualClock, WallClock
from trading.runtime.recovery import RecoveryFailed
from trading.runtime.runner import Runner, RunnerNotRunning, RunnerThreadError, StartFailed
from trading.runtime.services import MarketUnavailable
from trading.runtime.strategy import Context, Strategy, StrategyDefinitionError
from trading.runtime.strategy_runner import StrategyRunner

__all__ = [
    "Bar",
    "BarsSkipped",
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
    "MarketUnavailable",
    "Order",
    "OrderError",
    "OrderRefused",
    "OrderState",
    "OrderUnresolved",
    "ParamError",
    "Position",
    "Recovered",
    "RecoveryFailed",
    "ReplayResult",
    "RestartPolicy",
    "RiskLimits",
    "Runner",
    "RunnerNotRunning",
    "RunnerThreadError",
    "Side",
    "SimulatedMarket",
    "StartFailed",
    "Strategy",
    "StrategyDefinitionError",
    "StrategyError",
    "StrategyFailed",
    "StrategyRunner",
    "StrategyState",
    "StrategyStateChanged",
    "UnknownSymbol",
    "VirtualClock",
    "WallClock",
    "parse_command",
    "parse_duration",
    "replay",
    "replay_async",
    "simulated",
]
__version__ = "0.1.0"
