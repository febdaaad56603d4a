"""UserDataStream: order and balance pushes over Binance's WebSocket API, kept subscribed.

Since February 2026 the user data stream is a subscription on the WebSocket API
(``/ws-api/v3``): ``userDataStream.subscribe.signature`` with ``apiKey``, ``timestamp`` and an
HMAC signature over the sorted parameters; the REST listen keys are retired. The rules this
class keeps:

* The timestamp comes from the injected ``now_ms`` (the owner's server-time-corrected clock), so
  a tracked server-time offset applies. A -1021 answer (timestamp outside the window) calls
  ``resync`` when given and retries once on the same connection with a fresh timestamp, then
  falls back to reconnecting with backoff.
* An answer refusing the keys or the request (4xx other than 418 and 429) ends ``run()`` with
  :class:`UserStreamRefused` carrying the exchange's code and message: retrying cannot fix it.
  5xx, 418, 429, a failing ``resync`` and lost connections reconnect with backoff and subscribe
  again.
* Events arrive as ``{"subscriptionId": N, "event": {...}}``; events of our subscription are
  decoded and given to ``on_order`` / ``on_account``; ``eventStreamTerminated`` means subscribe
  again (on a new connection). ``on_resubscribed`` is called after every successful
  resubscription (not the first), so the owner reconciles orders whose pushes were missed.
* Malformed frames and events are logged (rate-limited) and skipped; callbacks' exceptions are
  logged and never reach the stream. The API key, the secret and the signature are never
  logged, put in a repr or in an exception.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import NoReturn, Protocol

import trio

from trading.core.updates import ExchangeOrder
from trading.exchanges.binance.frames import (
    AccountUpdate,
    ApiReply,
    FrameError,
    StreamTerminated,
    UserEventFrame,
    decode_api_frame,
    decode_user_event,
)
from trading.exchanges.binance.signing import ws_api_signature
from trading.exchanges.binance.ws import (
    Connection,
    Connector,
    RateLimitedLog,
    ReconnectBackoff,
    StreamError,
    keep_connected,
    websockets_connector,
)
from trading.exchanges.links import Link

__all__ = ["ApiKeys", "SubscribeFailed", "UserDataStream", "UserStreamRefused"]

logger = logging.getLogger(__name__)

#: The connection's own logger. websockets logs frames at DEBUG, and the subscribe request holds
#: the API key and a signature: this logger never logs below INFO, whatever the root level.
wire_logger = logging.getLogger(__name__ + ".wire")
wire_logger.setLevel(logging.INFO)

#: Binance's code for a timestamp outside ``recvWindow``.
TIMESTAMP_OUTSIDE_WINDOW = -1021


class ApiKeys(Protocol):
    """The credentials the subscription is signed with (``rest.Credentials`` is one)."""

    @property
    def api_key(self) -> str: ...

    @property
    def api_secret(self) -> str: ...


class UserStreamRefused(StreamError):
    """The exchange refused the subscription (bad key or signature, a malformed request)."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"user data stream refused: {msg} (code {code}, status {status})")
        self.status = status
        self.code = code
        self.msg = msg


class SubscribeFailed(ConnectionError):
    """The subscription failed in a way a new connection may fix (5xx, 429, -1021, no answer)."""


def _nothing() -> None:
    pass


def _ignore_account(update: AccountUpdate) -> None:
    pass


class UserDataStream:
    """Order reports and balances of one account, pushed, across reconnects."""

    def __init__(
        self,
        ws_api_url: str,
        credentials: ApiKeys,
        *,
        now_ms: Callable[[], int],
        connect: Connector | None = None,
        backoff: ReconnectBackoff | None = None,
        resync: Callable[[], Awaitable[None]] | None = None,
        recv_window_ms: int | None = None,
        reply_timeout: float = 10.0,
    ) -> None:
        self._url = ws_api_url
        self._credentials = credentials
        self._now_ms = now_ms
        self._connect = connect or websockets_connector(logger=wire_logger)
        self._backoff = backoff or ReconnectBackoff()
        self.link = Link("user data stream")
        self._resync = resync
        self._recv_window_ms = recv_window_ms
        self._reply_timeout = reply_timeout
        self._warn = RateLimitedLog(logger)
        self.subscriptions = 0  # successful subscriptions so far (for owners' status and tests)

    def __repr__(self) -> str:  # never the credentials
        return f"UserDataStream({self._url!r})"

    async def run(
        self,
        on_order: Callable[[ExchangeOrder], None],
        on_account: Callable[[AccountUpdate], None] = _ignore_account,
        on_resubscribed: Callable[[], None] = _nothing,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Stream until cancelled. Signals readiness once the first subscription is confirmed
        (it keeps retrying transient failures until then). Raises UserStreamRefused when the
        exchange refuses the keys or the request. Cancelling it closes the connection."""
        first = True

        async def session(conn: Connection) -> None:
            nonlocal first
            subscription = await self._subscribe(conn)
            self.subscriptions += 1
            if first:
                first = False
                task_status.started()
            else:
                self._call(on_resubscribed)
            await self._read(conn, subscription, on_order, on_account)

        await keep_connected(
            "user data stream",
            lambda: self._url,
            session,
            connect=self._connect,
            backoff=self._backoff,
            link=self.link,
        )

    def _request(self) -> tuple[str, str]:
        """The subscribe request's id and text, signed with a fresh timestamp."""
        params: dict[str, object] = {"apiKey": self._credentials.api_key}
        if self._recv_window_ms is not None:
            params["recvWindow"] = self._recv_window_ms
        timestamp = self._now_ms()
        signature = ws_api_signature(
            self._credentials.api_secret, {**params, "timestamp": timestamp}
        )
        # The key and the signature sit in the middle, the timestamp last: anything that logs a
        # frame's beginning and end (as websockets does) shows neither.
        params.update(signature=signature, timestamp=timestamp)
        request_id = str(uuid.uuid4())
        message = {"id": request_id, "method": "userDataStream.subscribe.signature"}
        return request_id, json.dumps({**message, "params": params})

    async def _subscribe(self, conn: Connection) -> int:
        """Subscribe on ``conn``; the subscription id. Retries a -1021 once after ``resync``."""
        for attempt in range(2):
            request_id, text = self._request()
            await conn.send(text)
            reply = await self._answer(conn, request_id)
            if reply.ok:
                return self._subscription_id(reply)
            code = reply.error_code if reply.error_code is not None else 0
            if code == TIMESTAMP_OUTSIDE_WINDOW:
                logger.warning(
                    "user data stream: timestamp outside recvWindow: %s", reply.error_msg
                )
                if self._resync is not None and attempt == 0:
                    try:
                        await self._resync()
                    except Exception as exc:  # e.g. REST down: try again on a new connection
                        raise SubscribeFailed(f"resyncing the server time failed: {exc}") from exc
                    continue
                raise SubscribeFailed(f"{reply.error_msg} (code {code})")
            if reply.status >= 500 or reply.status in (418, 429):
                raise SubscribeFailed(f"{reply.error_msg} (code {code}, status {reply.status})")
            raise UserStreamRefused(reply.status, code, reply.error_msg)
        raise AssertionError("unreachable")

    @staticmethod
    def _subscription_id(reply: ApiReply) -> int:
        result = reply.result
        sub = result.get("subscriptionId") if isinstance(result, dict) else None
        if type(sub) is not int:
            raise SubscribeFailed(f"subscribe answer without an integer subscriptionId: {result!r}")
        return sub

    async def _answer(self, conn: Connection, request_id: str) -> ApiReply:
        """Wait for the answer to ``request_id``; other frames before it are skipped."""
        with trio.move_on_after(self._reply_timeout):
            while True:
                raw = await conn.recv()
                try:
                    frame = decode_api_frame(raw)
                except FrameError as exc:
                    self._warn(logging.WARNING, "user data stream: skipped a bad frame: %s", exc)
                    continue
                if isinstance(frame, ApiReply) and frame.id == request_id:
                    return frame
                logger.debug("user data stream: skipped a frame while subscribing")
        raise SubscribeFailed(f"no answer to the subscription within {self._reply_timeout} s")

    async def _read(
        self,
        conn: Connection,
        subscription: int,
        on_order: Callable[[ExchangeOrder], None],
        on_account: Callable[[AccountUpdate], None],
    ) -> None:
        """Dispatch events until the server ends the subscription (then return: resubscribe)."""
        while True:
            raw = await conn.recv()
            self.link.heard()
            try:
                frame = decode_api_frame(raw)
                if not isinstance(frame, UserEventFrame):
                    logger.debug("user data stream: an answer to no request: %r", frame.id)
                    continue
                if frame.subscription_id != subscription:
                    logger.debug(
                        "user data stream: event of subscription %d", frame.subscription_id
                    )
                    continue
                item = decode_user_event(frame.event)
            except FrameError as exc:
                self._warn(logging.WARNING, "user data stream: skipped a bad frame: %s", exc)
                continue
            if isinstance(item, ExchangeOrder):
                self._call(on_order, item)
            elif isinstance(item, AccountUpdate):
                self._call(on_account, item)
            elif isinstance(item, StreamTerminated):
                logger.info("user data stream: the server ended the subscription; resubscribing")
                return

    def _call(self, callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            self._warn(logging.ERROR, "user data stream: a callback raised", exc_info=True)
