"""A scriptable, faulty Exchange for testing rule 4 of DESIGN.md: orders are never abandoned.

A real exchange fails in the ways that matter between "the order reached the matching engine" and
"we learned that it did". :class:`FaultyExchange` wraps a working exchange (usually a
``PaperBroker``) and lets a test choose, call by call, which of those failures happens, then
count how often each client order id really reached the inner exchange. With it a test can assert
that a stop landing anywhere in a submission leaves exactly one order, or none, never two.

Usage::

    fx = FaultyExchange(broker)
    fx.script("submit", AcceptThenHang())   # the next submit is placed, its reply never comes
    fx.script("query", Delay(2))            # the next query answers, 2 seconds late
    fx.read_faults = 3                      # the next 3 open_orders/trades_since reads fail
    ... run the engine ...
    assert fx.placed["tt-x-000001-r1"] == 1

Faults are consumed one per call of that method, in order; calls with no fault left pass through.
Every call is recorded in ``calls``. ``on_await`` is awaited at each await point the double adds,
with a label from :data:`AWAIT_POINTS`, so a test can cancel something at precisely that moment.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Final, Literal, TypeAlias, TypeVar, cast

import attrs
import trio

from trading.core.records import Fill
from trading.exchanges.base import (
    Exchange,
    ExchangeError,
    ExchangeOrder,
    ExchangeRejected,
    OrderRequest,
    OrderUpdate,
    Recoverable,
    SymbolInfo,
)

__all__ = [
    "AWAIT_POINTS",
    "AcceptThenDelay",
    "AcceptThenFail",
    "AcceptThenHang",
    "AcceptThenRaise",
    "Delay",
    "FailBefore",
    "Fault",
    "FaultyExchange",
    "Hang",
    "Method",
    "NotFound",
    "PassThrough",
    "PushThenAnswer",
    "PushThenFail",
    "RaiseBefore",
    "Reject",
    "WithoutFills",
]

Method: TypeAlias = Literal["submit", "cancel", "query"]
METHODS: Final[tuple[Method, ...]] = ("submit", "cancel", "query")

#: The labels ``on_await`` receives, per method, in the order they happen. ``before`` is reached
#: before anything is forwarded (a stop there must leave nothing placed); ``after`` once the inner
#: exchange has answered (a stop there leaves the order placed and its reply unread).
AWAIT_POINTS: Final[Mapping[Method, tuple[str, str]]] = {
    m: (f"{m}:before", f"{m}:after") for m in METHODS
}


@attrs.frozen
class PassThrough:
    """No fault for this call: lets a script skip calls (``PassThrough(), Hang()``)."""


@attrs.frozen
class Delay:
    """Answer correctly, ``seconds`` late: the request waits before it is forwarded."""

    seconds: float


@attrs.frozen
class Hang:
    """Never answer, and never forward: the exchange did not receive the request."""


@attrs.frozen
class FailBefore:
    """A network error before sending: nothing happened, but the caller cannot know."""

    message: str = "connection refused"


@attrs.frozen
class Reject:
    """The exchange refuses with ``code``/``reason``; nothing is forwarded, nothing placed."""

    code: str
    reason: str


@attrs.frozen
class AcceptThenHang:
    """Forward (the order IS placed / cancelled), then never answer: the lost-reply case."""


@attrs.frozen
class AcceptThenDelay:
    """Forward, then hold the reply ``seconds``: slower than the caller's deadline."""

    seconds: float


@attrs.frozen
class AcceptThenFail:
    """Forward, then raise ExchangeError: the caller does not learn the outcome."""

    message: str = "connection reset"


@attrs.frozen
class RaiseBefore:
    """Raise ``error`` (any exception: a raw ``ConnectionResetError``, a client's timeout, a
    decoder's ``ValueError``) before forwarding: nothing happened, the caller cannot know."""

    error: Exception


@attrs.frozen
class AcceptThenRaise:
    """Forward, then raise ``error`` (any exception): the order IS placed, the answer lost."""

    error: Exception


@attrs.frozen
class NotFound:
    """(query) Answer "no such order" without asking ``inner``: the exchange does not know the
    order *yet* (a request still in flight, a lagging replica)."""


@attrs.frozen
class WithoutFills:
    """(query) Answer as Binance's ``GET /api/v3/order`` does: the state and the cumulative
    filled quantity and price, but no trades (those come from ``myTrades`` or the stream)."""


@attrs.frozen
class PushThenAnswer:
    """Forward, push the answer on the stream (``on_update``) first, then return it: the
    stream beats the REST answer."""


@attrs.frozen
class PushThenFail:
    """Forward, push the answer on the stream, then raise ExchangeError: the REST answer is
    lost after the stream told everything."""

    message: str = "connection reset"


Fault: TypeAlias = (
    PassThrough
    | Delay
    | Hang
    | FailBefore
    | RaiseBefore
    | Reject
    | NotFound
    | WithoutFills
    | AcceptThenHang
    | AcceptThenDelay
    | AcceptThenFail
    | AcceptThenRaise
    | PushThenAnswer
    | PushThenFail
)

_T = TypeVar("_T")


async def _no_hook(label: str) -> None:
    """The default ``on_await``: adds no checkpoint, so timing is the inner exchange's own."""


class FaultyExchange:
    """An :class:`~trading.exchanges.base.Exchange` that forwards to ``inner`` with scripted faults.

    ``calls`` lists every ``(method, client_order_id)`` in call order (``submit`` included even if
    it never reached ``inner``). ``placed`` counts, per client order id, the submits that ``inner``
    accepted: a value above 1 is a duplicate order. ``forwarded`` counts every call of any method
    that ``inner`` answered, keyed by ``(method, client_order_id)``.
    """

    def __init__(
        self,
        inner: Exchange,
        *,
        on_await: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.inner = inner
        self.on_await: Callable[[str], Awaitable[None]] = on_await or _no_hook
        self.calls: list[tuple[str, str]] = []
        self.placed: Counter[str] = Counter()
        self.forwarded: Counter[tuple[str, str]] = Counter()
        self._faults: dict[Method, deque[Fault]] = {m: deque() for m in METHODS}
        self._on_update: OrderUpdate | None = None
        #: How many of the next recovery reads (``open_orders``, ``trades_since``) fail.
        self.read_faults = 0

    def script(self, method: Method, *faults: Fault) -> None:
        """Queue ``faults`` for the next calls of ``method``, one per call."""
        if method not in self._faults:
            raise ValueError(f"can only script {', '.join(METHODS)}, not {method!r}")
        self._faults[method].extend(faults)

    def pending(self, method: Method) -> tuple[Fault, ...]:
        """Faults not used yet: a test can assert its script was played out."""
        return tuple(self._faults[method])

    # ------------------------------------------------------------------ Exchange protocol

    async def run(
        self,
        on_update: OrderUpdate,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        self._on_update = on_update
        await self.inner.run(on_update, task_status=task_status)

    def push(self, report: ExchangeOrder) -> None:
        """Push ``report`` on the stream now, as the exchange would (a test may push stale or
        duplicate reports). Requires ``run`` to have started."""
        if self._on_update is None:
            raise RuntimeError("push() before run(): nothing listens yet")
        self._on_update(report)

    def symbol_info(self) -> Mapping[str, SymbolInfo]:
        return self.inner.symbol_info()

    async def submit(self, request: OrderRequest) -> ExchangeOrder:
        return await self._call(
            "submit", request.client_order_id, lambda: self.inner.submit(request)
        )

    async def cancel(self, symbol: str, client_order_id: str) -> ExchangeOrder:
        return await self._call(
            "cancel", client_order_id, lambda: self.inner.cancel(symbol, client_order_id)
        )

    async def query(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        return await self._call(
            "query", client_order_id, lambda: self.inner.query(symbol, client_order_id)
        )

    async def balances(self) -> Mapping[str, Decimal]:
        return await self.inner.balances()

    async def last_price(self, symbol: str) -> Decimal:
        return await self.inner.last_price(symbol)

    # ------------------------------------------------------------------ Recoverable

    @property
    def outlives_process(self) -> bool:
        """The inner exchange's (see ``trading.runtime.recovery.recovery_for``)."""
        return getattr(self.inner, "outlives_process", True) is not False

    async def open_orders(self) -> list[ExchangeOrder]:
        """The inner exchange's open orders (it must be ``Recoverable``); ``read_faults``
        makes the next reads fail first, as a down exchange would at a restart."""
        return await self._read(lambda inner: inner.open_orders())

    async def trades_since(self, symbol: str, since: float) -> list[Fill]:
        """The inner exchange's trades since ``since``; subject to ``read_faults`` too."""
        return await self._read(lambda inner: inner.trades_since(symbol, since))

    async def _read(self, call: Callable[[Recoverable], Awaitable[_T]]) -> _T:
        inner = self.inner
        if not isinstance(inner, Recoverable):
            raise TypeError(f"{type(inner).__name__} cannot list open orders or trades")
        await trio.lowlevel.checkpoint()
        if self.read_faults:
            self.read_faults -= 1
            raise ExchangeError("recovery read failed (scripted)")
        return await call(inner)

    # ------------------------------------------------------------------ internals

    async def _call(
        self, method: Method, client_order_id: str, forward: Callable[[], Awaitable[_T]]
    ) -> _T:
        self.calls.append((method, client_order_id))
        queue = self._faults[method]
        fault: Fault = queue.popleft() if queue else PassThrough()
        before, after = AWAIT_POINTS[method]

        await self.on_await(before)
        match fault:
            case Delay(seconds=seconds):
                await trio.sleep(seconds)
            case Hang():
                await trio.sleep_forever()
            case FailBefore(message=message):
                raise ExchangeError(message)
            case RaiseBefore(error=error):
                raise error
            case Reject(code=code, reason=reason):
                raise ExchangeRejected(code, reason)
            case NotFound():
                return None  # type: ignore[return-value]  # only scripted for query

        result = await forward()
        self.forwarded[method, client_order_id] += 1
        if method == "submit":
            self.placed[client_order_id] += 1

        await self.on_await(after)
        match fault:
            case AcceptThenHang():
                await trio.sleep_forever()
            case AcceptThenDelay(seconds=seconds):
                await trio.sleep(seconds)
            case AcceptThenFail(message=message):
                raise ExchangeError(message)
            case AcceptThenRaise(error=error):
                raise error
            case WithoutFills() if isinstance(result, ExchangeOrder):
                return cast(_T, attrs.evolve(result, fills=()))
            case PushThenAnswer() | PushThenFail() if isinstance(result, ExchangeOrder):
                self.push(result)
                if isinstance(fault, PushThenFail):
                    raise ExchangeError(fault.message)
        return result
