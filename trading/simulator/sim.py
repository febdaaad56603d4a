"""ExchangeSim: the Binance-compatible simulator as one object, for tests and for the CLI.

The rules this module keeps:

* One port serves REST (``/api/v3``), market streams (``/ws/<stream>``, ``/stream``), the
  WebSocket API (``/ws-api/v3``) and the fault switches (``/_sim/faults``).
* Two clocks. *Market time* (:meth:`ExchangeSim.now_ms`) drives prices, klines and matching:
  stepped (it moves only by ``await sim.advance(s)``, for tests) or real monotonic time times
  ``speed`` from ``start_ms`` (the CLI). The *wall clock* is the clock clients sign with: the
  ``timestamp``/``recvWindow`` rule and ``serverTime`` follow it, so an unmodified client whose
  clock is right is never refused for time, however fast the market runs.
* Every move of market time goes through one place (``_advance_to``): the engine fills what the
  path crossed, its events go to the user stream, then the market streams emit the bars that
  closed and one update of the open bar.
* ``serve`` signals readiness with the running simulator (``await nursery.start(sim.serve)``);
  cancelling it, or ``await sim.aclose()``, says ``serverShutdown`` and closes every WebSocket
  politely (bounded by two seconds), then closes the listener.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
import trio

from trading.simulator.engine import MatchingEngine
from trading.simulator.faults import Faults
from trading.simulator.market import PricePath
from trading.simulator.orders import Event
from trading.simulator.rate_limits import WeightLedger, WeightUsage
from trading.simulator.rest_api import RestApi, error_response
from trading.simulator.rest_endpoints import Endpoints
from trading.simulator.server import HttpRequest, HttpResponse, HttpServer
from trading.simulator.streams import MarketStreams
from trading.simulator.symbols import DEFAULT_SYMBOLS
from trading.simulator.ws_api import PATH as WS_API_PATH
from trading.simulator.ws_api import WsApi

__all__ = ["ExchangeSim", "SimConfig"]

log = logging.getLogger(__name__)

DROP_STREAMS_PATH = "/_sim/drop_streams"
ROTATE_STREAMS_PATH = "/_sim/rotate_streams"


def _symbols(value: Sequence[str]) -> tuple[str, ...]:
    return tuple(s.upper() for s in value)


@attrs.frozen(slots=True)
class SimConfig:
    """How the simulator runs. ``start_ms`` None starts the market at the wall clock's now."""

    api_key: str = "sim-api-key"
    api_secret: str = attrs.field(default="sim-api-secret", repr=False)
    balances: Mapping[str, Decimal] = attrs.field(
        factory=lambda: {"USDT": Decimal(10000), "BTC": Decimal(1)}
    )
    symbols: tuple[str, ...] = attrs.field(default=("BTCUSDT", "ETHUSDT"), converter=_symbols)
    seed: int = 7
    start_ms: int | None = None
    speed: float = 1.0
    stepped: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    weight_limit: int = 6000
    #: Market time between two ``x: false`` kline updates when running in real time.
    update_ms: int = 2000
    #: Frames queued for one WebSocket before a client too slow to read them is dropped.
    outbox_size: int = 4096
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 60.0
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    #: Wall clock in seconds (signature timestamps, weight minutes); injectable for tests.
    wall_clock: Callable[[], float] = time.time

    def __attrs_post_init__(self) -> None:
        unknown = [s for s in self.symbols if s not in DEFAULT_SYMBOLS]
        if unknown:
            raise ValueError(
                f"unknown symbol(s) {', '.join(unknown)}; listed: {', '.join(DEFAULT_SYMBOLS)}"
            )
        if not self.symbols:
            raise ValueError("at least one symbol is needed")
        if not self.speed > 0:
            raise ValueError(f"speed must be positive, not {self.speed}")
        if not self.api_key or not self.api_secret:
            raise ValueError("api_key and api_secret must not be empty")
        for asset, amount in self.balances.items():
            if Decimal(amount) < 0:
                raise ValueError(f"balance of {asset} must not be negative")


class ExchangeSim:
    """A running (or ready to run) simulated Binance; see the module docstring."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config = config or SimConfig()
        self.start_ms = (
            config.start_ms if config.start_ms is not None else int(config.wall_clock() * 1000)
        )
        rules = {s: DEFAULT_SYMBOLS[s] for s in config.symbols}
        self.prices = PricePath(config.seed, symbols=rules)
        self.engine = MatchingEngine(
            balances={a: Decimal(v) for a, v in config.balances.items()},
            symbols=rules,
            prices=self.prices,
            maker_fee=config.maker_fee,
            taker_fee=config.taker_fee,
            start_ms=self.start_ms,
            seed=config.seed,
        )
        self.faults = Faults()
        self.ledger = WeightLedger(config.weight_limit, config.wall_clock)
        secrets = {config.api_key: config.api_secret}
        self._stepped_ms = self.start_ms
        self._t0: float | None = None
        self.streams = MarketStreams(
            self.engine.book, self.faults, self.now_ms, config.outbox_size, self._drop_one
        )
        self.ws_api = WsApi(secrets, self.ledger, self.faults, self.wall_ms, self._drop_one)
        self.endpoints = Endpoints(self.engine, self._market_now, self._publish)
        self.endpoints.market.weight_limit = config.weight_limit
        self.rest = RestApi(
            self.endpoints.routes(), secrets, self.ledger, self.faults, self.wall_ms
        )
        self.server = HttpServer(
            self._http,
            self._websocket,
            lambda path: path == WS_API_PATH or MarketStreams.is_path(path),
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
        )
        self._stop = trio.Event()

    def __repr__(self) -> str:
        return f"ExchangeSim(port={self.server.port}, symbols={self.config.symbols})"

    # -- addresses and clocks -----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self._host()}:{self.server.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self._host()}:{self.server.port}"

    def _host(self) -> str:
        host = self.config.host
        return f"[{host}]" if ":" in host else host

    def wall_ms(self) -> int:
        return int(self.config.wall_clock() * 1000)

    def now_ms(self) -> int:
        """Market time in ms (stepped, or real time times ``speed`` since ``serve`` started)."""
        if self.config.stepped or self._t0 is None:
            return self._stepped_ms
        elapsed = trio.current_time() - self._t0
        return self.start_ms + int(elapsed * self.config.speed * 1000)

    def _market_now(self) -> int:
        # Requests see the market as of now; stepped time never moves by itself.
        return self.now_ms()

    def weight_used(self, api_key: str) -> WeightUsage:
        """Request weight counted for ``api_key``: this minute's, and the most in any minute."""
        return self.ledger.usage(f"key:{api_key}")

    # -- running --------------------------------------------------------------------------------

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and run the market until cancelled or :meth:`aclose`; readiness gives ``self``.

        Cancelling it shuts down as :meth:`aclose` does (the goodbye is shielded and bounded by
        about two seconds), then returns."""
        async with trio.open_nursery() as guard:
            run_scope = trio.CancelScope(shield=True)
            await guard.start(self._run, run_scope)
            task_status.started(self)
            try:
                await self._stop.wait()
            finally:
                with trio.CancelScope(shield=True):
                    await self._goodbye()
                    run_scope.cancel(reason="exchange-sim: shut down")

    async def _run(self, scope: trio.CancelScope, *, task_status: Any) -> None:
        with scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.server.serve, self.config.host, self.config.port)
                self._t0 = trio.current_time()
                if not self.config.stepped:
                    nursery.start_soon(self._clock_task)
                log.info("exchange-sim listening on %s", self.base_url)
                task_status.started()

    @property
    def closing(self) -> bool:
        """True once :meth:`aclose` was called."""
        return self._stop.is_set()

    async def aclose(self) -> None:
        """Ask ``serve`` to shut down politely (``serverShutdown``, close frames, then the
        listener) and return at once; ``serve`` returns when it is done (within ~2 s)."""
        self._stop.set()
        await trio.lowlevel.checkpoint()

    async def _goodbye(self) -> None:
        await self.rotate_stream_connections()

    async def _clock_task(self) -> None:
        real_period = max(self.config.update_ms / 1000 / self.config.speed, 0.02)
        while True:
            await trio.sleep(real_period)
            self._advance_to(self.now_ms())

    async def advance(self, seconds: float) -> None:
        """Stepped mode: move market time forward, fill what the path crosses, emit klines.

        Returns once the events are queued on every open connection (not yet necessarily
        received). Cancelling it is safe: the market has either moved or not.
        """
        if not self.config.stepped:
            raise RuntimeError("advance() is for stepped mode (SimConfig(stepped=True))")
        if seconds < 0:
            raise ValueError("market time never goes backwards")
        self._stepped_ms += round(seconds * 1000)
        self._advance_to(self._stepped_ms)
        await trio.lowlevel.checkpoint()

    async def flush_streams(self) -> None:
        """Wait until every market-stream frame queued so far was written to its socket.

        For producers that must not outrun their readers (benchmarks, long stepped runs): a
        client that reads keeps up; one that does not blocks this until its queue overflows and
        it is dropped, so bound the wait (``trio.fail_after``). Cancelling it is safe."""
        await self.streams.flushed()

    def _advance_to(self, now_ms: int) -> None:
        self._publish(self.endpoints.engine.advance(now_ms))
        self.streams.tick(now_ms)

    def _publish(self, events: Sequence[Event]) -> list[trio.Event]:
        self.endpoints.remember(events)
        written: list[trio.Event] = []
        for event in events:
            written += self.ws_api.publish(self.config.api_key, event.to_json())
        return written

    async def _websocket(self, conn: Any, path: str, query: str, client: str) -> None:
        if path == WS_API_PATH:
            await self.ws_api.serve(conn, client)
        else:
            await self.streams.serve(conn, path, query)

    def _drop_one(self, conn: Any) -> None:
        self.server.drop_websocket(conn)

    async def _http(self, request: HttpRequest) -> HttpResponse | None:
        if request.path in (DROP_STREAMS_PATH, ROTATE_STREAMS_PATH):
            if request.method != "POST":
                return error_response(405, -1000, f"use POST on {request.path}")
            if request.path == DROP_STREAMS_PATH:
                n = await self.drop_stream_connections()
                return HttpResponse(200, json.dumps({"dropped": n}).encode())
            n = await self.rotate_stream_connections()
            return HttpResponse(200, json.dumps({"closed": n}).encode())
        return await self.rest(request)

    async def rotate_stream_connections(self) -> int:
        """What Binance does at a connection's 24-hour mark or before maintenance:
        ``serverShutdown`` on every market stream, then a close frame (1001) on every WebSocket;
        the server stays up, so clients reconnect. Returns how many were closed (bounded, ~2 s).
        """
        n = len(self.server.websockets)
        with trio.move_on_after(2):
            self.streams.shutdown_notice()
            with trio.move_on_after(1):
                await self.streams.flushed()
            await self.server.close_websockets()
        return n

    async def drop_stream_connections(self) -> int:
        """Close every WebSocket abruptly (no close frame), as a network failure would; returns
        how many. Cancelling it is safe: the drops are requested before it first yields."""
        n = self.server.drop_websockets()
        await trio.lowlevel.checkpoint()
        return n
