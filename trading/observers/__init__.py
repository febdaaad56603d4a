"""Observers of the event bus: the log, the SQLite recorder, the console notifier.

Each observer is fed by :class:`trading.runtime.bus.EventBus` through its own bounded channel and
task, so none of them can slow trading down (DESIGN.md rule 6). :class:`Observer` is the protocol
a user's own observer implements (``name``, ``lossless``, ``async handle(batch)``,
``async aclose()``).
"""

from trading.observers.log import LogObserver
from trading.observers.notifier import ConsoleNotifier
from trading.observers.queries import format_table, read_fills, read_orders, read_positions
from trading.observers.recorder import Recorder, RecorderError
from trading.observers.terminal import TerminalWriter
from trading.runtime.observer_queue import Observer

__all__ = [
    "ConsoleNotifier",
    "LogObserver",
    "Observer",
    "Recorder",
    "RecorderError",
    "TerminalWriter",
    "format_table",
    "read_fills",
    "read_orders",
    "read_positions",
]
