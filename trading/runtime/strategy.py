"""The strategy author's API: :class:`Strategy` to subclass and the :class:`Context` it is handed.

A strategy decides; the runner owns its time. Authors write ``next(ctx)`` and never sleep, poll for
commands or start tasks of their own that outlive a call: the runner interrupts ``next()`` by
cancelling it, so any ``await`` in it is a point where a ``stop`` or ``pause`` may land.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import attrs
import trio
import trio_parallel

from trading.core.bars import Bar, Interval, IntervalError
from trading.core.commands import BUILTIN_VERBS, VERB_RE, Command, CommandError
from trading.core.ledger import Position
from trading.core.orders import Order, Side, TimeInForce
from trading.core.risk import RiskLimits
from trading.exchanges.base import MarketData
from trading.runtime.clock import Clock

if TYPE_CHECKING:
    from trading.runtime.account import Account

__all__ = ["Context", "Strategy", "StrategyDefinitionError", "StrategySpec", "inspect_strategy"]

T = TypeVar("T")


class Strategy:
    """Subclass this, decorate the subclass with ``@attrs.define``, and implement :meth:`next`.

    Class attributes (plain assignments, not annotated fields)::

        interval = "15m"            # bar length; next() runs at each close
        symbols = ("BTCUSDT",)      # what the strategy trades
        custom_commands = {"boost": "boost NAME FACTOR: double position size for a bar"}

    Typed attrs fields are the *parameters*: validated at construction and changed at runtime by
    ``set NAME key=value`` (converted to the field's type, validators re-run, all-or-nothing).
    Other instance state may be set freely on ``self``.
    """

    name: ClassVar[str] = ""
    interval: ClassVar[str | Interval] = "15m"
    symbols: ClassVar[Sequence[str]] = ("BTCUSDT",)
    custom_commands: ClassVar[Mapping[str, str]] = {}
    compute_on_start: ClassVar[bool] = True
    risk: ClassVar[RiskLimits | None] = None

    async def on_start(self, ctx: Context) -> None:
        """Set up (open connections, load state). A stop may cancel it; then on_stop won't run."""

    async def next(self, ctx: Context) -> None:
        """One compute: read data, decide, place or cancel orders. Cancelled by stop, pause and
        flatten only. An ``OrderRefused`` left to propagate out of it is not a failure: it is
        logged (the account published ``OrderRejected``) and next() runs again at the next bar."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `async def next(self, ctx)`"
        )

    async def on_stop(self, ctx: Context) -> None:
        """Clean up. Runs shielded from cancellation under the runner's stop deadline."""

    async def on_command(self, ctx: Context, command: Command) -> str:
        """Handle a verb from ``custom_commands``; return the reply text, raise to reply an error.

        Runs between phases, like ``set``, so it never races ``next()``. Only ``stop`` and
        ``pause`` interrupt it (cancelling it; the reply says which); ``set``, ``wake`` and
        ``resume`` arriving meanwhile wait behind it.
        """
        raise CommandError(
            f"{type(self).__name__} declares {command.verb!r} but does not handle it"
        )


class StrategyDefinitionError(TypeError):
    """A strategy class that cannot run as written; raised at load, naming the class and the fix."""


@attrs.frozen(slots=True)
class StrategySpec:
    """What the runner needs to know about a strategy class, checked once at load."""

    cls: type[Strategy]
    name: str
    interval: Interval
    symbols: tuple[str, ...]
    description: str
    custom_commands: Mapping[str, str]


def default_name(cls: type) -> str:
    """``SmaCross`` -> ``sma_cross``, ``RSIStrategy`` -> ``rsi_strategy``."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", cls.__name__)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def inspect_strategy(cls: type[Strategy], *, name: str | None = None) -> StrategySpec:
    """Check a strategy class and describe it; every problem is a StrategyDefinitionError.

    Cached per class: adding 10,000 instances of one class inspects it once.
    """
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyDefinitionError(
            f"{cls!r} is not a subclass of trading.Strategy (pass the class, not an instance)"
        )
    spec = _CLASS_SPECS.get(cls)
    if spec is None:
        spec = _CLASS_SPECS[cls] = _inspect_class(cls)
    return spec if name is None or name == spec.name else attrs.evolve(spec, name=name)


_CLASS_SPECS: weakref.WeakKeyDictionary[type[Strategy], StrategySpec] = weakref.WeakKeyDictionary()


def _inspect_class(cls: type[Strategy]) -> StrategySpec:
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyDefinitionError(
            f"{cls!r} is not a subclass of trading.Strategy (pass the class, not an instance)"
        )
    where = f"{cls.__module__}.{cls.__qualname__}"
    if cls.next is Strategy.next:
        raise StrategyDefinitionError(f"{where} does not implement `async def next(self, ctx)`")
    for hook in ("on_start", "next", "on_stop", "on_command"):
        if not inspect.iscoroutinefunction(getattr(cls, hook)):
            raise StrategyDefinitionError(f"{where}.{hook} must be `async def`")
    annotations: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        if klass not in (Strategy, object):
            annotations.update(inspect.get_annotations(klass))
    params = {key for key, value in annotations.items() if "ClassVar" not in str(value)}
    for attr in ("interval", "symbols", "name", "custom_commands", "compute_on_start", "risk"):
        if attr in params:
            raise StrategyDefinitionError(
                f"{where}: {attr!r} must be a class attribute: write `{attr} = ...` without an "
                "annotation (annotated names become parameters)"
            )
    if params and not attrs.has(cls):
        raise StrategyDefinitionError(
            f"{where} declares parameters ({', '.join(sorted(params))}) but is not an "
            "attrs class: decorate it with @attrs.define"
        )
    try:
        interval = Interval.parse(cls.interval)
    except IntervalError as exc:
        raise StrategyDefinitionError(f"{where}: {exc}") from None
    symbols = cls.symbols
    if (
        isinstance(symbols, str)
        or not symbols
        or not all(isinstance(s, str) and s for s in symbols)
    ):
        raise StrategyDefinitionError(
            f"{where}: symbols must be a tuple of symbol strings such as ('BTCUSDT',), "
            f"not {symbols!r}"
        )
    unusable = [verb for verb in cls.custom_commands if not VERB_RE.fullmatch(verb)]
    if unusable:
        raise StrategyDefinitionError(
            f"{where}: custom command names {unusable} cannot be typed: use lowercase letters, "
            "digits, '-' and '_', starting with a letter"
        )
    clashes = set(cls.custom_commands) & set(BUILTIN_VERBS)
    if clashes:
        raise StrategyDefinitionError(
            f"{where}: custom commands {sorted(clashes)} clash with built-in commands"
        )
    doc = inspect.getdoc(cls) or ""
    if cls.__doc__ is None or doc == inspect.getdoc(Strategy):
        doc = ""
    return StrategySpec(
        cls=cls,
        name=cls.name or default_name(cls),
        interval=interval,
        symbols=tuple(symbols),
        description=doc.strip().splitlines()[0] if doc.strip() else "",
        custom_commands=dict(cls.custom_commands),
    )


class Context:
    """What ``next()`` may touch: time, data, a logger and ways to run heavy work off the loop.

    One Context lives as long as one start of the strategy (it is rebuilt on restart).
    """

    def __init__(
        self,
        *,
        spec: StrategySpec,
        clock: Clock,
        market: MarketData,
        log: logging.Logger,
        account: Account | None = None,
    ) -> None:
        self._account = account
        self.spec = spec
        self.clock = clock
        self.market = market
        self.log = log
        self.bar_close: float | None = None
        """Epoch time of the bar close this compute is for; None before the first close."""
        self.history_end: float | None = None
        """Where ``history`` ends: the close a scheduled compute is for, None (now) for a wake."""
        self.computes = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def interval(self) -> Interval:
        return self.spec.interval

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.spec.symbols

    @property
    def now(self) -> float:
        return self.clock.now()

    @property
    def time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.now(), tz=dt.UTC)

    async def history(
        self, symbol: str | None = None, *, limit: int = 100, interval: Interval | str | None = None
    ) -> list[Bar]:
        """The last ``limit`` closed bars of ``symbol`` (default: the first of ``symbols``).

        In a compute for a bar close they end at that close, even when the compute runs late
        (a live bar that came late, a close computed at once after a slow compute): the
        strategy computes each close on the bars of that close. In a ``wake`` they end now.
        """
        return await self.market.history(
            symbol or self.symbols[0],
            Interval.parse(interval) if interval is not None else self.interval,
            end=self.clock.now() if self.history_end is None else self.history_end,
            limit=limit,
        )

    @property
    def account(self) -> Account:
        """This strategy's account at the trade engine: orders, positions, PnL."""
        if self._account is None:
            raise RuntimeError("this runner has no trade engine: give Runner an exchange")
        return self._account

    async def buy(
        self,
        quantity: Decimal | int | float | str,
        symbol: str | None = None,
        *,
        price: Decimal | int | float | str | None = None,
    ) -> Order:
        """Buy at market, or at ``price`` (a limit order). Returns once the exchange answered.

        Raises OrderRefused (validation, balance, risk limits, reduce-only, or the exchange's own
        refusal) with the reason; nothing is sent for a pre-trade refusal.
        """
        return await self.account.submit(Side.BUY, quantity, symbol or self.symbols[0], price)

    async def sell(
        self,
        quantity: Decimal | int | float | str,
        symbol: str | None = None,
        *,
        price: Decimal | int | float | str | None = None,
    ) -> Order:
        """Sell at market, or at ``price`` (a limit order); see :meth:`buy`."""
        return await self.account.submit(Side.SELL, quantity, symbol or self.symbols[0], price)

    async def submit(
        self,
        side: Side | str,
        quantity: Decimal | int | float | str,
        symbol: str | None = None,
        *,
        price: Decimal | int | float | str | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
    ) -> Order:
        return await self.account.submit(
            Side(side), quantity, symbol or self.symbols[0], price, time_in_force
        )

    async def cancel(self, order: Order | str) -> Order:
        """Cancel an open order (shielded: a stop cannot leave it half-cancelled)."""
        return await self.account.cancel(order)

    def position(self, symbol: str | None = None) -> Position:
        return self.account.position(symbol or self.symbols[0])

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self.account.open_orders(symbol)

    async def run_in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker thread; a stop or pause stops *waiting* for it at once.

        The thread itself cannot be killed and runs to completion in the background, so use this
        for work that releases the GIL (NumPy, I/O-bound libraries) and for short calls.
        """
        return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)

    async def run_in_process(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker process that a stop or pause *kills* (trio-parallel).

        For pure-Python CPU-bound compute: the event loop stays free, commands land within
        milliseconds, and a cancelled computation stops burning CPU. ``fn`` and ``args`` must be
        picklable (a module-level function of your strategy file is).
        """
        result: T = await trio_parallel.run_sync(fn, *args, kill_on_cancel=True)
        return result
