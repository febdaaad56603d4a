"""A small Telegram Bot API client on httpx2: the calls the bot and the notifier make.

The rules this module keeps:

* It speaks what api.telegram.org speaks: ``POST {api_base}/bot{token}/{method}`` with a JSON
  body, answered by the envelope ``{"ok": true, "result": ...}`` or ``{"ok": false,
  "error_code", "description", "parameters"?}``. Any server speaking that (a self-hosted Bot
  API server, :mod:`trading.testing.telegram_server`) works through ``api_base``.
* Every failure is one of :mod:`trading.control.telegram_errors`' kinds, decided by the
  envelope's ``error_code`` when there is one, else the HTTP status: 429 -> RetryAfter
  (``parameters.retry_after``), 409 -> Conflict, 401 and 404 -> Unauthorized (Telegram answers
  404 to a malformed token), 400/403 -> BadRequest, anything else, a body that is not the
  envelope, a refused or dropped connection and a timeout -> TelegramNetworkError.
* The token is a secret: it is in no repr, exception or log line of ours, and httpx2's own
  request log line (INFO, with the full URL) is rewritten by a filter on the ``httpx2`` logger
  to show ``bot<token>`` as ``bot***``.
* ``get_updates`` long-polls: the HTTP read timeout is the poll's ``timeout`` plus
  :data:`POLL_MARGIN`, so a silent server is noticed, and an answer is never cut short.
* Cancelling any call abandons its request (httpx2 closes that connection); the client stays
  usable.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import httpx2

from trading.control.telegram_errors import (
    BadRequest,
    Conflict,
    RetryAfter,
    TelegramError,
    TelegramNetworkError,
    Unauthorized,
)
from trading.control.telegram_updates import utf16_len

__all__ = ["DEFAULT_API_BASE", "POLL_MARGIN", "BotApi"]

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.telegram.org"
POLL_MARGIN = 10.0  # seconds a long poll may overrun its timeout before it counts as lost
REQUEST_TIMEOUT = 15.0  # seconds for every call that is not a long poll
_TOKEN_IN_PATH = re.compile(r"/bot[^/?#\s]+")


def redact(text: str) -> str:
    """``text`` with every ``/bot<token>`` path segment shown as ``/bot***``."""
    return _TOKEN_IN_PATH.sub("/bot***", text)


class _NoTokenInLogs(logging.Filter):
    """httpx2 logs each request's URL at INFO; a Bot API URL holds the token in its path."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(a, httpx2.URL) and "/bot" in a.path for a in record.args
        ):
            record.args = tuple(
                redact(str(a)) if isinstance(a, httpx2.URL) else a for a in record.args
            )
        return True


_httpx_logger = logging.getLogger("httpx2")
if not any(isinstance(f, _NoTokenInLogs) for f in _httpx_logger.filters):
    _httpx_logger.addFilter(_NoTokenInLogs())


def error_for(method: str, status: int, body: bytes) -> TelegramError:
    """The exception for a failed call: by the envelope's error_code, else the HTTP status."""
    code, description, retry_after = status, f"HTTP {status}", None
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):
        envelope = None
    if isinstance(envelope, dict) and envelope.get("ok") is False:
        if isinstance(envelope.get("error_code"), int):
            code = envelope["error_code"]
        if isinstance(envelope.get("description"), str):
            description = redact(envelope["description"][:300])
        parameters = envelope.get("parameters")
        if isinstance(parameters, dict) and isinstance(parameters.get("retry_after"), int | float):
            retry_after = float(parameters["retry_after"])
    elif status < 400:
        return TelegramNetworkError(f"{method}: the answer is not the Bot API envelope")
    message = f"{method}: {code} {description}"
    if code == 429:
        return RetryAfter(message, retry_after if retry_after is not None else 1.0)
    if code == 409:
        return Conflict(message, code=code)
    if code in (401, 404):
        return Unauthorized(message, code=code)
    if code in (400, 403):
        return BadRequest(message, code=code)
    return TelegramNetworkError(message, code=code)


class BotApi:
    """The Bot API of one bot. ``transport`` is the httpx2 seam (MockTransport in unit tests).

    Use as ``async with BotApi(token) as api:`` or call :meth:`aclose`.
    """

    def __init__(
        self,
        token: str,
        api_base: str = DEFAULT_API_BASE,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        if not token or any(ch in token for ch in "/?# \t\r\n"):
            raise ValueError("the Telegram token is empty or holds characters a URL path cannot")
        base = api_base.rstrip("/")
        if base.endswith("/bot"):  # python-telegram-bot's base_url style: the path's /bot given
            base = base[: -len("/bot")]
        self._base = f"{base}/bot{token}/"
        self.api_base = base
        self._client = httpx2.AsyncClient(transport=transport, timeout=REQUEST_TIMEOUT)

    def __repr__(self) -> str:
        return f"BotApi({self.api_base!r}, token=***)"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Cancelling it may leave sockets to the garbage collector."""
        await self._client.aclose()

    async def call(
        self, method: str, params: dict[str, Any], *, time_limit: float = REQUEST_TIMEOUT
    ) -> Any:
        """One Bot API call; its ``result``, or a :class:`TelegramError`. ``time_limit``
        (seconds) bounds each phase of the request (connect, write, read). Cancelling it
        abandons the request."""
        try:
            response = await self._client.post(
                self._base + method,
                content=json.dumps(params, separators=(",", ":")).encode(),
                headers={"Content-Type": "application/json"},
                timeout=time_limit,
            )
        except httpx2.RequestError as exc:  # connect, timeouts, dropped, undecodable
            log.debug("telegram %s: %s", method, type(exc).__name__)
            raise TelegramNetworkError(
                f"{method}: {type(exc).__name__}: {redact(str(exc))[:200]}"
            ) from None
        body = response.content
        if response.status_code >= 400:
            raise error_for(method, response.status_code, body)
        try:
            envelope = json.loads(body)
        except (ValueError, RecursionError):
            raise TelegramNetworkError(
                f"{method}: HTTP {response.status_code} body is not JSON"
            ) from None
        if not isinstance(envelope, dict) or "ok" not in envelope:
            raise TelegramNetworkError(f"{method}: the answer is not the Bot API envelope")
        if envelope["ok"] is not True:
            raise error_for(method, response.status_code, body)
        return envelope.get("result")

    async def get_me(self) -> dict[str, Any]:
        """The bot's own User (``id``, ``username``). Unauthorized for a bad token.
        Cancelling it abandons the request."""
        result = await self.call("getMe", {})
        if not isinstance(result, dict):
            raise TelegramNetworkError("getMe: the result is not a User")
        return result

    async def get_updates(
        self,
        offset: int | None,
        timeout: float,  # noqa: ASYNC109 - the Bot API's long-poll parameter, not a deadline
        limit: int = 100,
        allowed_updates: Sequence[str] | None = ("message",),
    ) -> list[Any]:
        """Long-poll for Updates (raw dicts; :func:`trading.control.telegram_updates.
        parse_update` reads them). ``offset`` confirms every update below it. Waits up to
        ``timeout`` seconds for the first one; cancelling it loses nothing (unconfirmed
        updates are served again)."""
        params: dict[str, Any] = {"timeout": int(timeout), "limit": limit}
        if offset is not None:
            params["offset"] = offset
        if allowed_updates is not None:
            params["allowed_updates"] = list(allowed_updates)
        result = await self.call("getUpdates", params, time_limit=timeout + POLL_MARGIN)
        if not isinstance(result, list):
            raise TelegramNetworkError("getUpdates: the result is not a list")
        return result

    async def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        thread_id: int | None = None,
        monospace: bool = False,
    ) -> None:
        """Send ``text`` (1-4096 characters; longer is BadRequest) as plain text to ``chat_id``,
        in forum topic ``thread_id`` when given. ``monospace``: the whole text as one ``pre``
        entity, so a table keeps its columns on a phone (an entity, not parse_mode: nothing
        in the text needs escaping). Cancelling it may or may not have sent it."""
        params: dict[str, Any] = {"chat_id": chat_id, "text": text}
        if thread_id is not None:
            params["message_thread_id"] = thread_id
        if monospace:
            params["entities"] = [{"type": "pre", "offset": 0, "length": utf16_len(text)}]
        await self.call("sendMessage", params)
