"""A WebSocket connection's outgoing frames: a bounded queue and the one task that writes them.

The rules this module keeps:

* Publishing never blocks and never raises: the market clock and the matching engine put frames
  in, one writer task per connection takes them out in order.
* The queue is bounded (:data:`OUTBOX_SIZE`); a client too slow to keep up is disconnected
  (Binance drops slow consumers too) instead of growing the simulator's memory.
* ``put(..., notify=True)`` returns an event set once the frame was handed to the socket, so a
  REST answer can be held until a push went out first (the push-before-answer fault).
"""

from __future__ import annotations

import logging

import trio
from websockets.exceptions import ConnectionClosed
from websockets.trio.server import ServerConnection

__all__ = ["OUTBOX_SIZE", "Outbox"]

log = logging.getLogger(__name__)

OUTBOX_SIZE = 4096


class Outbox:
    def __init__(self, conn: ServerConnection, size: int = OUTBOX_SIZE) -> None:
        self.conn = conn
        self._send, self._receive = trio.open_memory_channel[tuple[str, trio.Event | None]](size)
        self.overflowed = False
        self.closed = trio.Event()
        self._pending = 0
        self._drained = trio.Event()
        self._drained.set()

    def put(self, text: str, *, notify: bool = False) -> trio.Event | None:
        """Queue one text frame; with ``notify``, an event set once it was written (or lost)."""
        done = trio.Event() if notify else None
        if self.closed.is_set():
            if done is not None:
                done.set()
            return done
        try:
            self._send.send_nowait((text, done))
            self._pending += 1
            if self._drained.is_set():
                self._drained = trio.Event()
        except trio.WouldBlock:
            self.overflowed = True
            log.warning("client too slow: %s frames queued, disconnecting it", self._pending)
            self.close()
            if done is not None:
                done.set()
        return done

    def close(self) -> None:
        """Stop writing; frames still queued are dropped."""
        self.closed.set()
        self._drained.set()
        self._send.close()

    async def drained(self) -> None:
        """Wait until every queued frame was handed to the socket (or the outbox closed).

        The socket's own buffer then pushes back on a client that does not read, so waiting for
        this paces a producer to its slowest reader. Cancelling it is safe."""
        while not self._drained.is_set():
            await self._drained.wait()

    async def run(self, scope: trio.CancelScope | None = None) -> None:
        """Write queued frames until closed, then cancel ``scope`` (the connection's scope).

        Cancelling it stops writing at a frame boundary as far as this side knows (the frame in
        flight may or may not reach the client)."""
        try:
            async for text, done in self._receive:
                try:
                    await self.conn.send(text)
                finally:
                    if done is not None:
                        done.set()
                    self._pending -= 1
                    if self._pending == 0:
                        self._drained.set()
        except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self.closed.set()
            self._drained.set()
            # Wake every waiter whose frame will never be written.
            while True:
                try:
                    _, done = self._receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
                if done is not None:
                    done.set()
            if self.overflowed:
                with trio.move_on_after(1):
                    await self.conn.aclose(1008, "client too slow")
            if scope is not None:
                scope.cancel()
