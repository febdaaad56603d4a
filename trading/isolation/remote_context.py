"""The ``ctx`` an isolated strategy sees in its own process: the parent's Context, by request.

The rules this module keeps (DESIGN.md rule 9; the Context's own promises):

* Data and orders stay in the parent: ``history``, ``buy``, ``sell``, ``submit`` and ``cancel``
  are requests answered by the parent's real Context (one engine, one rate-limit budget, one
  recorder, one set of connections). Their errors come back with their type's name; an
  ``OrderRefused`` is an ``OrderRefused`` here too.
* ``position()`` and ``open_orders()`` stay synchronous: they read a snapshot the parent sends
  with every call and with every answer to an order request, so after ``await ctx.buy(...)``
  they show that order. Fills landing in the middle of a compute show from the next request on.
* ``ctx.now`` is the parent's strategy-clock time at the start of the call, moved on by the real
  seconds since, times the clock's speed.
* ``ctx.log`` is forwarded to the parent's logger of the strategy (level and message).
* ``run_in_thread`` and ``run_in_process`` run here, in the child, as they would in-process.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import trio
import trio_parallel

from trading.core.bars import Bar, Interval
from trading.core.commands import CommandError
from trading.core.ledger import Position
from trading.core.orders import Order, Side, TimeInForce
from trading.core.records import OrderRefused

__all__ = ["RemoteContext", "RemoteError", "remote_error"]

T = TypeVar("T")
Request = Callable[[str, tuple[Any, ...], dict[str, Any]], Awaitable[Any]]
_KNOWN: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        OrderRefused,
        CommandError,
        ValueError,
        RuntimeError,
        TypeError,
        LookupError,
        ArithmeticError,
        AssertionError,
        NotImplementedError,
    )
}
_REMOTE_CLASSES: dict[tuple[str, type[Exception]], type[Exception]] = {}
_MAX_REMOTE_CLASSES = 256


class RemoteError(Exception):
    """An error raised on the other side of the process boundary, by its type's name."""


def remote_error(names: object, message: str) -> Exception:
    """An error of the other side rebuilt from its class names (its MRO, most derived first)
    and message. Known types are themselves (an OrderRefused stays one, a CommandError or
    ValueError is still caught as one); others become a RemoteError subclass of that name and
    of its nearest known base, so reports and ``except`` clauses read as they would in-process.
    """
    mro = [str(n) for n in names] if isinstance(names, list | tuple) else [str(names)]
    name = mro[0] if mro and mro[0].isidentifier() else "RemoteError"
    if name in _KNOWN and name != "KeyError":
        return _KNOWN[name](message)
    base = next((_KNOWN[n] for n in mro[1:] if n in _KNOWN), Exception)
    cls = _REMOTE_CLASSES.get((name, base))
    if cls is None:
        if len(_REMOTE_CLASSES) >= _MAX_REMOTE_CLASSES:
            return RemoteError(f"{name}: {message}")
        bases = (RemoteError,) if base is Exception else (base, RemoteError)
        cls = _REMOTE_CLASSES[(name, base)] = type(name, bases, {"__module__": __name__})
    return cls(message)


def _plain(value: object) -> object:
    """What may cross to the parent: Orders by client id, enums by value, numbers as they are."""
    if isinstance(value, Order):
        return value.client_order_id
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Interval):
        return value.text
    return value


class RemoteContext:
    """The child's ``ctx``: attributes as :class:`~trading.runtime.strategy.Context` has them."""

    def __init__(
        self,
        *,
        name: str,
        interval: Interval,
        symbols: tuple[str, ...],
        request: Request,
        log: logging.Logger,
    ) -> None:
        self.name = name
        self.interval = interval
        self.symbols = symbols
        self.log = log
        self._request = request
        self.bar_close: float | None = None
        self.history_end: float | None = None
        self.computes = 0
        self._now = 0.0
        self._speed = 1.0
        self._since = time.monotonic()
        self._positions: dict[str, Position] = {}
        self._open_orders: list[Order] = []
        self._no_account: str | None = None

    def update(self, state: dict[str, Any]) -> None:
        """Take the parent's view (sent with each call): times, counters and the snapshot."""
        if "now" in state:
            self._now = float(state["now"])
            self._speed = float(state.get("speed", 1.0))
            self._since = time.monotonic()
        for key in ("bar_close", "history_end", "computes"):
            if key in state:
                setattr(self, key, state[key])
        self.take_snapshot(state.get("snapshot"))

    def take_snapshot(self, snapshot: Any) -> None:
        if snapshot is None:
            return
        self._no_account = snapshot.get("no_account")
        self._positions = dict(snapshot.get("positions", {}))
        self._open_orders = list(snapshot.get("open_orders", []))

    @property
    def now(self) -> float:
        return self._now + (time.monotonic() - self._since) * self._speed

    @property
    def time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now, tz=dt.UTC)

    @property
    def account(self) -> Any:
        raise RuntimeError(
            f"{self.name} runs in its own process: use ctx.position(), ctx.open_orders(), "
            "ctx.buy/sell/cancel (the account lives in the parent)"
        )

    @property
    def market(self) -> Any:
        raise RuntimeError(f"{self.name} runs in its own process: use ctx.history()")

    async def history(
        self, symbol: str | None = None, *, limit: int = 100, interval: Interval | str | None = None
    ) -> list[Bar]:
        bars: list[Bar] = await self._request(
            "history", (symbol,), {"limit": limit, "interval": _plain(interval)}
        )
        return bars

    async def _order(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Order:
        order: Order = await self._request(
            method, tuple(_plain(a) for a in args), {k: _plain(v) for k, v in kwargs.items()}
        )
        return order

    async def buy(
        self,
        quantity: Decimal | int | float | str,
        symbol: str | None = None,
        *,
        price: Decimal | int | float | str | None = None,
    ) -> Order:
        return await self._order("buy", (quantity, symbol), {"price": price})

    async def sell(
        self,
        quantity: Decimal | int | float | str,
        symbol: str | None = None,
        *,
        price: Decimal | int | float | str | None = None,
    ) -> Order:
        return await self._order("sell", (quantity, symbol), {"price": price})

    async def submit(
        self,
        side: Side | str,
        quantity: Decimal | int | float | str,
        symbol: str | None = None,
        *,
        price: Decimal | int | float | str | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
    ) -> Order:
        kwargs = {"price": price, "time_in_force": time_in_force}
        return await self._order("submit", (side, quantity, symbol), kwargs)

    async def cancel(self, order: Order | str) -> Order:
        return await self._order("cancel", (order,), {})

    def position(self, symbol: str | None = None) -> Position:
        if self._no_account:
            raise RuntimeError(self._no_account)
        symbol = symbol or self.symbols[0]
        try:
            return self._positions[symbol]
        except KeyError:
            raise LookupError(
                f"{self.name} runs in its own process and sees the positions of its symbols "
                f"({', '.join(self.symbols)}), not {symbol!r}"
            ) from None

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        if self._no_account:
            raise RuntimeError(self._no_account)
        return [o for o in self._open_orders if symbol is None or o.symbol == symbol]

    async def run_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """As in-process: a pause stops waiting at once; the thread runs on (in this child)."""
        return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)

    async def run_in_process(self, fn: Callable[..., T], *args: Any) -> T:
        """As in-process: a worker process that a stop or pause kills."""
        result: T = await trio_parallel.run_sync(fn, *args, kill_on_cancel=True)
        return result
