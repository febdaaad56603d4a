"""KlineStream: Binance kline updates over one combined-streams WebSocket, kept connected.

The rules this class keeps:

* Every connection opens ``<ws_base>/stream?streams=a/b/c`` with *all* current subscriptions, so
  a reconnect restores every one of them without a message; a subscription added (removed) while
  connected is sent as ``SUBSCRIBE`` (``UNSUBSCRIBE``), batched, at most one message per
  ``send_interval``, under Binance's 5 incoming messages per second per connection; each stream
  is subscribed once per connection. Replies are checked: a refused SUBSCRIBE is logged and its
  streams dropped; no reply within ``reply_timeout`` means the connection is broken, and it is
  replaced.
* ``on_update`` gets every decoded kline, open or closed, exactly once per frame received, in
  the order received. ``on_reconnect`` is called after every reconnect (not the first connect),
  once the new connection is open, so the owner can fill what it missed from REST.
* Callbacks never raise into the stream and never block it for long: their exceptions are
  logged (rate-limited) and the stream goes on. A malformed or unexpected frame is logged
  (rate-limited) and skipped, never fatal.
* ``serverShutdown`` and the 24-hour limit replace the connection at once; a lost connection is
  replaced with backoff (see :mod:`trading.exchanges.binance.ws`).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable
from typing import NoReturn

import trio

from trading.core.bars import Interval
from trading.exchanges.binance.frames import (
    FrameError,
    KlineUpdate,
    ServerShutdown,
    SubscriptionReply,
    decode_market_frame,
    kline_stream_name,
)
from trading.exchanges.binance.ws import (
    Connection,
    Connector,
    RateLimitedLog,
    ReconnectBackoff,
    keep_connected,
    single_error,
    websockets_connector,
)
from trading.exchanges.links import Link

__all__ = ["MAX_STREAMS", "KlineStream", "SubscriptionTimeout"]

logger = logging.getLogger(__name__)

#: Binance's limit of streams on one connection.
MAX_STREAMS = 1024


class SubscriptionTimeout(ConnectionError):
    """No reply to a (UN)SUBSCRIBE in time: the connection is treated as lost and replaced."""


#: request id -> (SUBSCRIBE or UNSUBSCRIBE, its streams, the deadline for its reply).
_Pending = dict[int, tuple[str, list[str], float]]


def _nothing() -> None:
    pass


class KlineStream:
    """Kline updates for a changing set of (symbol, interval) pairs, across reconnects."""

    def __init__(
        self,
        ws_base: str,
        *,
        connect: Connector | None = None,
        backoff: ReconnectBackoff | None = None,
        send_interval: float = 0.25,
        reply_timeout: float = 10.0,
    ) -> None:
        self._ws_base = ws_base.rstrip("/")
        self._connect = connect or websockets_connector()
        self._backoff = backoff or ReconnectBackoff()
        self.link = Link("market stream")
        self._send_interval = send_interval
        self._reply_timeout = reply_timeout
        self._streams: dict[str, None] = {}  # ordered set of stream names
        # Changes made while connected that the server has not been sent yet (a name is in at
        # most one of them: undoing a change not sent yet just forgets it).
        self._unsent: dict[str, None] = {}  # to SUBSCRIBE
        self._unsent_unsubscribe: dict[str, None] = {}  # to UNSUBSCRIBE
        self._wake = trio.Event()
        self._connected = False
        self._opening: frozenset[str] = frozenset()  # the streams in the URL being opened
        self._ids = itertools.count(1)
        self._warn = RateLimitedLog(logger)
        self.connections = 0  # connections opened so far (for owners' status and tests)

    @property
    def connected(self) -> bool:
        """Whether a connection is open now (between connections it is not)."""
        return self._connected

    @property
    def streams(self) -> tuple[str, ...]:
        """The stream names subscribed, in subscription order."""
        return tuple(self._streams)

    def url(self) -> str:
        """The URL the next connection opens: every current subscription in it."""
        self._opening = frozenset(self._streams)
        if not self._streams:
            return f"{self._ws_base}/stream"
        return f"{self._ws_base}/stream?streams={'/'.join(self._streams)}"

    def subscribe(self, symbol: str, interval: Interval | str) -> None:
        """Add ``symbol``'s klines of ``interval``; idempotent. Never blocks: while connected the
        SUBSCRIBE is sent by the running stream; otherwise the next connection includes it.
        ValueError past Binance's 1024 streams per connection."""
        name = kline_stream_name(symbol, Interval.parse(interval))
        if name in self._streams:
            return
        if len(self._streams) >= MAX_STREAMS:
            raise ValueError(
                f"cannot subscribe to {name}: Binance allows {MAX_STREAMS} streams per "
                "connection; use a second KlineStream"
            )
        self._streams[name] = None
        if self._connected:
            if name in self._unsent_unsubscribe:
                del self._unsent_unsubscribe[name]  # the server never stopped sending it
            else:
                self._unsent[name] = None
                self._wake.set()

    def unsubscribe(self, symbol: str, interval: Interval | str) -> None:
        """Stop ``symbol``'s klines of ``interval``; a no-op if not subscribed. Never blocks:
        while connected an UNSUBSCRIBE is sent (updates already in flight may still arrive);
        otherwise the next connection leaves it out."""
        name = kline_stream_name(symbol, Interval.parse(interval))
        if name not in self._streams:
            return
        del self._streams[name]
        if self._connected:
            if name in self._unsent:
                del self._unsent[name]  # never sent: nothing to undo
            else:
                self._unsent_unsubscribe[name] = None
                self._wake.set()

    async def run(
        self,
        on_update: Callable[[KlineUpdate], None],
        on_reconnect: Callable[[], None] = _nothing,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Stream until cancelled. Signals readiness once the first connection is open (it keeps
        retrying until then). Cancelling it closes the connection; nothing else is undone.
        Raises only for what reconnecting cannot fix (e.g. the server refusing the URL)."""
        first = True

        async def session(conn: Connection) -> None:
            nonlocal first
            self.connections += 1
            # The URL carried every subscription made before it was built; any made during the
            # handshake still needs a SUBSCRIBE.
            self._unsent = {n: None for n in self._streams if n not in self._opening}
            self._unsent_unsubscribe = {n: None for n in self._opening if n not in self._streams}
            self._connected = True
            try:
                if first:
                    first = False
                    task_status.started()
                else:
                    self._call(on_reconnect)
                await self._session(conn, on_update)
            finally:
                self._connected = False

        await keep_connected(
            "kline stream",
            self.url,
            session,
            connect=self._connect,
            backoff=self._backoff,
            link=self.link,
        )

    async def _session(self, conn: Connection, on_update: Callable[[KlineUpdate], None]) -> None:
        pending: _Pending = {}
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._send_subscriptions, conn, pending)
                await self._read(conn, on_update, pending)
                nursery.cancel_scope.cancel(reason="server shutdown: reconnecting")
        except BaseExceptionGroup as group:
            raise single_error(group) from None

    async def _read(
        self,
        conn: Connection,
        on_update: Callable[[KlineUpdate], None],
        pending: _Pending,
    ) -> None:
        """Dispatch frames until the server announces its shutdown (then return)."""
        while True:
            raw = await conn.recv()
            self.link.heard()
            try:
                item = decode_market_frame(raw)
            except FrameError as exc:
                self._warn(logging.WARNING, "kline stream: skipped a bad frame: %s", exc)
                continue
            if isinstance(item, KlineUpdate):
                self._call(on_update, item)
            elif isinstance(item, SubscriptionReply):
                self._replied(item, pending)
            elif isinstance(item, ServerShutdown):
                logger.info("kline stream: the server announced a shutdown; reconnecting")
                return

    def _replied(self, reply: SubscriptionReply, pending: _Pending) -> None:
        entry = pending.pop(reply.id, None) if isinstance(reply.id, int) else None
        if entry is None:
            logger.debug("kline stream: reply to an unknown request id %r", reply.id)
            return
        method, streams, _ = entry
        if reply.error is not None:
            logger.error("kline stream: %s %s refused: %s", method, streams, reply.error)
            if method == "SUBSCRIBE":
                for name in streams:
                    self._streams.pop(name, None)

    async def _send_subscriptions(self, conn: Connection, pending: _Pending) -> None:
        """Send (UN)SUBSCRIBE for changes made while connected, one message per
        ``send_interval`` at most; fail if a reply is late."""
        while True:
            for method, unsent in (
                ("UNSUBSCRIBE", self._unsent_unsubscribe),
                ("SUBSCRIBE", self._unsent),
            ):
                if not unsent:
                    continue
                names = list(unsent)[:200]  # one message, well under 1024 streams
                for name in names:
                    del unsent[name]
                request_id = next(self._ids)
                pending[request_id] = (method, names, trio.current_time() + self._reply_timeout)
                message = {"method": method, "params": names, "id": request_id}
                await conn.send(json.dumps(message))
                await trio.sleep(self._send_interval)
                break
            else:
                await self._wait_for_changes(pending)

    async def _wait_for_changes(self, pending: _Pending) -> None:
        """Until a change is queued; SubscriptionTimeout if a reply is due first."""
        self._wake = trio.Event()
        with trio.move_on_at(min((d for *_, d in pending.values()), default=float("inf"))):
            await self._wake.wait()
        late = [(m, names) for m, names, d in pending.values() if d <= trio.current_time()]
        if late:
            method, names = late[0]
            raise SubscriptionTimeout(
                f"no reply to {method} {names} within {self._reply_timeout} s"
            )

    def _call(self, callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            self._warn(logging.ERROR, "kline stream: a callback raised", exc_info=True)
