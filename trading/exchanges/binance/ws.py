"""The reconnecting WebSocket seam under the Binance streams.

The rules this module keeps:

* One seam: a :data:`Connector` maps a URL to an async context manager yielding a
  :class:`Connection` (``recv`` / ``send`` / ``aclose``). The default is websockets' Trio client;
  tests and other transports swap it without patching classes (as httpx's ``MockTransport`` does).
* Answering the server's pings is websockets' job: its reader task answers them while our task is
  elsewhere, as long as fewer than ``max_queue`` (16) messages wait unread. Our streams read
  continuously and run callbacks synchronously, so a callback that blocks the event loop delays
  the pong by as long as it blocks (Binance waits a minute).
* :func:`keep_connected` reconnects forever, in real monotonic time (``trio.sleep``; never a busy
  loop): exponential backoff with jitter after failures, reset once a connection lived
  ``stable_after`` seconds; a planned reconnect (the 24-hour limit, ``serverShutdown``) after a
  stable connection reconnects at once. Errors that retrying cannot fix (a refused handshake,
  a refused subscription, a bug) end it with that error.
* Logs are rate-limited (:class:`RateLimitedLog`): a server spewing bad frames cannot flood them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import NoReturn, Protocol

import attrs
import trio
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)
from websockets.trio.client import connect as _ws_connect

from trading.exchanges.links import Link

__all__ = [
    "BINANCE_MAX_AGE",
    "Connection",
    "Connector",
    "RateLimitedLog",
    "ReconnectBackoff",
    "StreamError",
    "describe",
    "is_transient",
    "keep_connected",
    "single_error",
    "websockets_connector",
]

logger = logging.getLogger(__name__)

#: Binance closes a connection after 24 hours; reconnect ten minutes before it does.
BINANCE_MAX_AGE = 23 * 3600 + 50 * 60


class Connection(Protocol):
    """What the streams need from an open WebSocket (websockets' ``ClientConnection`` is one)."""

    async def recv(self) -> str | bytes:
        """The next message; raises ConnectionClosed at the end. Cancelling it loses nothing."""
        ...

    async def send(self, message: str) -> None: ...

    async def aclose(self) -> None: ...


#: url -> an async context manager that opens the connection and closes it on exit.
Connector = Callable[[str], AbstractAsyncContextManager[Connection]]


class StreamError(Exception):
    """A stream failed in a way reconnecting cannot fix; ``run()`` ends with it."""


def websockets_connector(
    *,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    max_size: int = 2**20,
    open_timeout: float = 10.0,
    close_timeout: float = 5.0,
    logger: logging.Logger | None = None,
) -> Connector:
    """websockets' Trio client with our limits: ``max_size`` bounds one message (Binance's are
    small), the keepalive ping detects a dead peer our side (the server's pings are answered
    regardless). ``logger`` replaces websockets' own (which logs frames at DEBUG)."""

    def connector(url: str) -> AbstractAsyncContextManager[Connection]:
        return _ws_connect(
            url,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_size=max_size,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            logger=logger,
        )

    return connector


@attrs.frozen(slots=True, kw_only=True)
class ReconnectBackoff:
    """How long to wait before reconnecting, and when a connection is old enough to replace.

    The ``n``-th consecutive failure waits ``initial_delay * factor**n`` capped at ``max_delay``,
    of which the last ``jitter`` fraction is random (so many clients do not reconnect in step).
    """

    initial_delay: float = attrs.field(default=0.5, validator=attrs.validators.gt(0))
    max_delay: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    factor: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    jitter: float = attrs.field(
        default=0.5, validator=[attrs.validators.ge(0), attrs.validators.le(1)]
    )
    stable_after: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))
    max_age: float = attrs.field(default=BINANCE_MAX_AGE, validator=attrs.validators.gt(0))

    def delay(self, failures: int, rand: float) -> float:
        """The wait after ``failures`` consecutive failures (0 = the first); ``rand`` in [0, 1)."""
        exponent = min(failures, 64)  # past this the cap applies anyway; no float overflow
        base = min(self.initial_delay * self.factor**exponent, self.max_delay)
        return base * (1 - self.jitter * rand)


class RateLimitedLog:
    """At most one record per ``interval`` seconds; the next one says how many were held back."""

    def __init__(
        self,
        log: logging.Logger,
        interval: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._interval = interval
        self._clock = clock
        self._next = -float("inf")
        self.suppressed = 0

    def __call__(self, level: int, msg: str, *args: object, exc_info: bool = False) -> None:
        now = self._clock()
        if now < self._next:
            self.suppressed += 1
            return
        if self.suppressed:
            msg += f" ({self.suppressed} similar messages suppressed)"
            self.suppressed = 0
        self._next = now + self._interval
        self._log.log(level, msg, *args, exc_info=exc_info)


def is_transient(exc: BaseException) -> bool:
    """Whether reconnecting may help: network errors, closed connections, a server that is busy
    (5xx, 429). Not: a bad URL, a refused handshake (401, 403, 404), our own StreamError, bugs."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return status >= 500 or status == 429
    if isinstance(exc, InvalidURI | StreamError):
        return False
    return isinstance(
        exc,
        OSError | EOFError | ConnectionClosed | InvalidHandshake | trio.BrokenResourceError,
    )


def describe(exc: BaseException) -> str:
    """A one-line account of why a connection ended."""
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    if isinstance(exc, ConnectionClosed) and cause is not None and str(cause):
        text += f" ({cause})"  # "no close frame received or sent" says little without it
    return text


def single_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error a nursery's group stands for (Cancelled siblings dropped), else the group:
    so a session's failure reaches :func:`is_transient` as itself, not wrapped."""
    rest = [e for e in group.exceptions if not isinstance(e, trio.Cancelled)]
    if len(rest) != 1:
        return group
    only = rest[0]
    return single_error(only) if isinstance(only, BaseExceptionGroup) else only


Session = Callable[[Connection], Awaitable[None]]

#: How long closing a connection may take before it is dropped (seconds).
CLOSE_GRACE = 5.0


async def keep_connected(
    name: str,
    url: Callable[[], str],
    session: Session,
    *,
    connect: Connector,
    backoff: ReconnectBackoff,
    rand: Callable[[], float] = random.random,
    link: Link | None = None,
) -> NoReturn:
    """Run ``session`` on a connection to ``url()``, again and again, forever.

    ``url`` is called for each connection (subscriptions may have changed). ``session`` returning
    means "reconnect now" (planned); raising a transient error means the connection was lost;
    any other error ends this function with it. A session older than ``backoff.max_age`` is
    cancelled and replaced.

    Cancelling it closes the current connection (without waiting for the close handshake when
    the cancellation is already delivered) and returns nothing else to undo. ``link``, when
    given, records each connection coming up and going down (for health reports).
    """
    failures = 0
    while True:
        opened_at: float | None = None
        planned = False
        try:
            # The close handshake is bounded: websockets' Trio client does not read the close
            # frame while 16 or more messages sit unread, so a polite close could wait forever.
            with trio.CancelScope() as closing:
                async with connect(url()) as conn:
                    opened_at = trio.current_time()
                    if link is not None:
                        link.up()
                    try:
                        with trio.move_on_after(backoff.max_age) as age:
                            await session(conn)
                        planned = True
                        if age.cancelled_caught:
                            logger.info("%s: replacing the connection before its age limit", name)
                    finally:
                        closing.deadline = trio.current_time() + CLOSE_GRACE
        except Exception as exc:
            if link is not None:
                link.down(describe(exc))
            if not is_transient(exc):
                raise
            logger.warning("%s: connection lost: %s", name, describe(exc))
        else:
            if link is not None:
                link.down("reconnecting (planned)")
        lived = trio.current_time() - opened_at if opened_at is not None else 0.0
        stable = lived >= backoff.stable_after
        if stable:
            failures = 0
        if planned and stable:
            delay = 0.0
        else:
            delay = backoff.delay(failures, rand())
            failures += 1
        if delay:
            logger.info("%s: reconnecting in %.2f s", name, delay)
        await trio.sleep(delay)
