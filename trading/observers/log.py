"""LogObserver: one log line per event, off the trading path.

Named ``log`` rather than ``logging`` so ``import logging`` keeps meaning the standard library
everywhere, including in this package.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from trading.core.events import (
    Event,
    OrderRejected,
    OrderUnknown,
    RiskBreached,
    StrategyFailed,
    StrategyStateChanged,
    describe,
)

__all__ = ["LogObserver", "level_of"]


def level_of(event: Event) -> int:
    """How loud an event is: what needs a human is louder than routine state flips."""
    if isinstance(event, StrategyFailed):
        return logging.ERROR
    if isinstance(event, RiskBreached | OrderRejected | OrderUnknown):
        return logging.WARNING
    if isinstance(event, StrategyStateChanged):
        return logging.DEBUG
    return logging.INFO


class LogObserver:
    """Lossy with a big buffer: logging is for people, and a log line is not worth slowing
    trading for. Events the bus dropped are logged as one warning with the count."""

    lossless = False
    buffer = 10_000
    max_batch = 1_000

    def __init__(self, logger: logging.Logger | None = None, *, name: str = "log") -> None:
        self.name = name
        self.logger = logger if logger is not None else logging.getLogger(__name__)

    def note_dropped(self, count: int) -> None:
        self.logger.warning("%d events dropped under load (log buffer %d)", count, self.buffer)

    async def handle(self, batch: Sequence[tuple[int, Event]]) -> None:
        logger = self.logger
        for seq, event in batch:
            level = level_of(event)
            if logger.isEnabledFor(level):
                logger.log(level, "#%d %s", seq, describe(event))

    async def aclose(self) -> None:
        """Nothing to release: the logging handlers belong to the application."""
