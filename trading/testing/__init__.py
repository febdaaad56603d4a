"""Doubles for users' own tests, shipped with the package as ``trio.testing`` is.

:class:`FaultyExchange` is a scriptable exchange whose answers can be delayed, lost, refused or
failed at any point of an order's life, for testing what a strategy does when the network does not
behave.
"""

from trading.testing.exchange import *  # noqa: F403
from trading.testing.exchange import __all__ as __all__

# isort: split
# The Binance-compatible exchange simulator, for users' own tests (``trading.simulator``).
from trading.simulator.sim import ExchangeSim, SimConfig

__all__ = [*__all__, "ExchangeSim", "SimConfig"]

# isort: split
# A fake Telegram Bot API server (``trading.testing.telegram_server``).
from trading.testing.telegram_server import SentMessage, TelegramServer

__all__ = [*__all__, "SentMessage", "TelegramServer"]
