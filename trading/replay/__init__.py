"""Replay: history through the same strategy code, runner, commands, engine and paper broker.

``trading.replay(SmaCross, bars, commands=[(100, "pause sma_cross")])`` returns a
:class:`ReplayResult`; :func:`replay_async` is the same inside a running trio run. See
:mod:`trading.replay.session` for the rules a replay keeps.
"""

from trading.replay.broker import ReplayBroker
from trading.replay.clock import ReplayClock
from trading.replay.market import BarsMarket
from trading.replay.result import ReplayResult
from trading.replay.session import replay, replay_async

__all__ = ["BarsMarket", "ReplayBroker", "ReplayClock", "ReplayResult", "replay", "replay_async"]
