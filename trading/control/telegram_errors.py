"""What can go wrong talking to the Telegram Bot API, as exceptions that say what to do next.

The Bot API answers ``{"ok": false, "error_code", "description", "parameters"?}``. The caller's
choice depends only on the kind: wait ``retry_after`` seconds (:class:`RetryAfter`, 429), stop
polling because another instance polls or a webhook is set (:class:`Conflict`, 409), give up
because the token is wrong (:class:`Unauthorized`, 401/404 on the bot path), retry later with
backoff (:class:`TelegramNetworkError`: no answer, a dropped connection, a 5xx, a body that is
not the envelope), or drop this one request (:class:`BadRequest`: 400/403, e.g. a chat that
blocked the bot). Messages never contain the token.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "Conflict",
    "RetryAfter",
    "TelegramError",
    "TelegramNetworkError",
    "Unauthorized",
]


class TelegramError(Exception):
    """Base class; ``code`` is the Bot API's ``error_code`` when there was one."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RetryAfter(TelegramError):
    """429: flood control; nothing more may be sent for ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, code=429)
        self.retry_after = retry_after


class Conflict(TelegramError):
    """409: another getUpdates poller, or a webhook is set."""


class Unauthorized(TelegramError):
    """401 (or 404 on the bot's path): the token is wrong or revoked."""


class BadRequest(TelegramError):
    """400/403: this request cannot succeed as sent (bad chat, bot blocked, text too long)."""


class TelegramNetworkError(TelegramError):
    """No usable answer: connection refused or dropped, a timeout, a 5xx, not the envelope."""
