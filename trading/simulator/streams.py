"""Market streams: ``/ws/<stream>``, ``/stream?streams=a/b`` and live (UN)SUBSCRIBE.

The rules this module keeps, from Binance's WebSocket stream documentation:

* ``/ws/<name>`` sends raw events; ``/stream`` wraps each as ``{"stream": name, "data": event}``.
  ``/ws/<anything>`` connects even when the name is unknown (clients subscribe afterwards).
* ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` reply ``{"result": ..., "id": id}``
  with the id echoed unchanged, whatever its JSON type. A bad request gets
  ``{"error": {"code", "msg"}, "id": id}`` and the connection stays open.
* Kline streams ``<symbol>@kline_<interval>``: on every tick of market time (every 2 s of market
  time when running in real time; every ``advance`` in stepped mode) each subscribed stream gets,
  in order, exactly one ``x: true`` event for each of its bars that closed since the previous
  tick, then one ``x: false`` update of the bar now open. ``<symbol>@bookTicker`` sends the best
  bid and ask on every tick.
* On shutdown every connection gets ``{"e": "serverShutdown", "E": ms}`` before its close frame.
* A malformed-frame fault inserts an unparseable frame; nothing real is dropped for it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import parse_qs

import trio
from websockets.exceptions import ConnectionClosed
from websockets.trio.server import ServerConnection

from trading.core.bars import Interval
from trading.simulator.book import Book
from trading.simulator.faults import Faults
from trading.simulator.intervals import INTERVAL_MS
from trading.simulator.ws_outbox import OUTBOX_SIZE, Outbox

__all__ = ["INTERVAL_MS", "MALFORMED_FRAME", "MarketStreams"]

log = logging.getLogger(__name__)

MALFORMED_FRAME: Final = '{"e":"kline","k":{"t":'
MAX_STREAMS = 1024


class _Client:
    def __init__(
        self,
        conn: ServerConnection,
        combined: bool,
        outbox_size: int,
        drop: Callable[[ServerConnection], None],
    ) -> None:
        self.conn = conn
        self.drop = drop
        self.combined = combined
        self.outbox = Outbox(conn, outbox_size)
        self.streams: list[str] = []  # subscription order, as LIST_SUBSCRIPTIONS reports it

    def send(self, stream: str, data: dict[str, Any], faults: Faults) -> None:
        if self.outbox.closed.is_set():
            return
        if faults.take("drop", stream="market") is not None:
            self.outbox.close()
            self.drop(self.conn)
            return
        if faults.take("malformed", stream="market") is not None:
            self.outbox.put(MALFORMED_FRAME)
        payload = {"stream": stream, "data": data} if self.combined else data
        self.outbox.put(json.dumps(payload, separators=(",", ":")))


class MarketStreams:
    """Every market-stream connection and what it subscribed to."""

    def __init__(
        self,
        book: Book,
        faults: Faults,
        now_ms: Callable[[], int],
        outbox_size: int = OUTBOX_SIZE,
        drop: Callable[[ServerConnection], None] = lambda conn: None,
    ) -> None:
        self.outbox_size = outbox_size
        self.drop = drop
        self.book = book
        self.prices = book.prices
        self.faults = faults
        self.now_ms = now_ms
        self._clients: set[_Client] = set()
        self._last_tick_ms = now_ms()

    @staticmethod
    def is_path(path: str) -> bool:
        return path == "/stream" or path.startswith("/ws/") or path == "/ws"

    def check_stream(self, name: str) -> str | None:
        """None if ``name`` is a stream we serve, else why not."""
        symbol, _, kind = name.partition("@")
        if symbol.upper() not in self.prices.symbols or symbol != symbol.lower():
            return f"unknown symbol in stream {name!r} (symbols are lower case)"
        if kind == "bookTicker":
            return None
        if kind.startswith("kline_") and kind[len("kline_") :] in INTERVAL_MS:
            return None
        return f"unsupported stream {name!r}: <symbol>@kline_<interval> or <symbol>@bookTicker"

    async def serve(self, conn: ServerConnection, path: str, query: str) -> None:
        """Run one connection until the client leaves. Cancelling it drops the connection."""
        combined = path == "/stream"
        client = _Client(conn, combined, self.outbox_size, self.drop)
        if combined:
            wanted = "/".join(parse_qs(query).get("streams", []))
        else:
            wanted = path[len("/ws/") :] if path.startswith("/ws/") else ""
        for name in filter(None, wanted.split("/")):
            if self.check_stream(name) is None and name not in client.streams:
                client.streams.append(name)
            else:
                log.info("ignoring unknown stream %r in the URL", name)
        self._clients.add(client)
        try:
            async with trio.open_nursery() as nursery:
                # Either side ending (the client left, or was too slow) ends the connection.
                nursery.start_soon(client.outbox.run, nursery.cancel_scope)
                await self._read(client)
                nursery.cancel_scope.cancel()
        finally:
            self._clients.discard(client)
            client.outbox.close()

    async def _read(self, client: _Client) -> None:
        while True:
            try:
                raw = await client.conn.recv()
            except ConnectionClosed:
                return
            if client.outbox.closed.is_set():
                return
            client.outbox.put(json.dumps(self._answer(client, raw)))

    def _answer(self, client: _Client, raw: str | bytes) -> dict[str, Any]:
        try:
            message = json.loads(raw)
        except ValueError:
            return {
                "error": {"code": 3, "msg": "Invalid JSON: the message is not JSON"},
                "id": None,
            }
        if not isinstance(message, dict):
            return {"error": {"code": 3, "msg": "Invalid JSON: expected an object"}, "id": None}
        request_id = message.get("id")
        method, params = message.get("method"), message.get("params", [])

        def error(code: int, msg: str) -> dict[str, Any]:
            return {"error": {"code": code, "msg": msg}, "id": request_id}

        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(client.streams), "id": request_id}
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            return error(2, f"Invalid request: unknown method {method!r}")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return error(1, "Invalid value type: params must be a list of stream names")
        if method == "SUBSCRIBE":
            for name in params:
                why = self.check_stream(name)
                if why is not None:
                    return error(2, f"Invalid request: {why}")
            if len(set(client.streams) | set(params)) > MAX_STREAMS:
                return error(2, f"Invalid request: at most {MAX_STREAMS} streams per connection")
            client.streams += [p for p in dict.fromkeys(params) if p not in client.streams]
        else:
            client.streams = [s for s in client.streams if s not in params]
        return {"result": None, "id": request_id}

    def tick(self, now_ms: int) -> None:
        """Emit the events between the previous tick and ``now_ms`` (see the module rules)."""
        prev, self._last_tick_ms = self._last_tick_ms, max(self._last_tick_ms, now_ms)
        if now_ms <= prev or not self._clients:
            return
        cache: dict[str, list[dict[str, Any]]] = {}
        for client in list(self._clients):
            for name in client.streams:
                if name not in cache:
                    cache[name] = self._events(name, prev, now_ms)
                for event in cache[name]:
                    client.send(name, event, self.faults)

    def _events(self, name: str, prev: int, now: int) -> list[dict[str, Any]]:
        sym, _, kind = name.partition("@")
        symbol = sym.upper()
        if kind == "bookTicker":
            return [self._book_ticker(symbol, now)]
        interval = Interval.parse(kind[len("kline_") :])
        step = INTERVAL_MS[interval.text]
        events = []
        # Bars [open, open + step) whose end lies in (prev, now]: each closes exactly once.
        for open_ms in range((prev // step) * step, now - step + 1, step):
            close = open_ms + step
            if prev < close <= now:
                row = self.prices.kline(symbol, interval, open_ms)
                events.append(row.to_stream(symbol, interval, True, close))
        open_ms = (now // step) * step
        row = self.prices.kline(symbol, interval, open_ms, upto_ms=now)
        events.append(row.to_stream(symbol, interval, False, now))
        return events

    def _book_ticker(self, symbol: str, now: int) -> dict[str, Any]:
        rules = self.prices.rules(symbol)
        bids, asks = self.book.levels(symbol, now)
        p, q = rules.quote_precision, rules.base_precision
        return {
            "u": now, "s": symbol,
            "b": f"{bids[0][0]:.{p}f}", "B": f"{bids[0][1]:.{q}f}",
            "a": f"{asks[0][0]:.{p}f}", "A": f"{asks[0][1]:.{q}f}",
        }  # fmt: skip

    async def flushed(self) -> None:
        """Wait until every connection's queued frames were written (see ``Outbox.drained``)."""
        for client in list(self._clients):
            await client.outbox.drained()

    def shutdown_notice(self) -> None:
        """Tell every client the server is going away (``serverShutdown``)."""
        frame = json.dumps({"e": "serverShutdown", "E": self.now_ms()})
        for client in list(self._clients):  # a connection event: never wrapped
            client.outbox.put(frame)

    @property
    def connection_count(self) -> int:
        return len(self._clients)
