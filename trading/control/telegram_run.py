"""Telegram in a run: the notifier an operator gets with a token, composed for ``serve.py``.

The control bot is :func:`trading.control.telegram.serve_telegram`; this module opens the
notifier, which must outlive the Runner it observes (it flushes what the Runner's wind-down
publishes, bounded by its ``close_timeout``), so it is entered *before* the Runner and closed
after it. No token, ``notify = false`` or no chat to send to: nothing is opened.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from trading.config import TelegramConfig
from trading.control.telegram_api import BotApi
from trading.observers.telegram_notifier import TelegramNotifier
from trading.runtime.bus import Observer

__all__ = ["notifying"]

log = logging.getLogger(__name__)


@asynccontextmanager
async def notifying(
    config: TelegramConfig | None, observers: list[Observer]
) -> AsyncIterator[TelegramNotifier | None]:
    """Open the Telegram notifier and append it to ``observers`` (for the Runner built next)."""
    if config is None or not config.token or not config.notify:
        yield None
        return
    chats = config.notify_chats or config.allowed_chats
    if not chats:
        log.info("telegram: no chat to notify ([telegram] notify_chats / allowed_chats)")
        yield None
        return
    async with (
        BotApi(config.token, config.api_base) as api,
        TelegramNotifier(api, chats, thread_id=config.topic) as notifier,
    ):
        observers.append(notifier)
        yield notifier
