"""What a replay is built from: its inputs checked, the strategy put on the data's series.

The rules this module keeps (the ones :mod:`trading.replay.session` states, checked here):

* Every bad input is a ValueError naming it: a rate that is not a number, a warmup outside the
  data, a command that is not a ``(bar index or time, text)`` pair or falls outside the data.
* The strategy runs on the data's symbol and interval: when its class says otherwise it is
  replaced by a subclass of the same name that says the data's (never resampled); parameters
  are typed values or ``set`` text, validated as ``set`` validates them.
* A symbol the simulated market does not list gets Binance-like filters fine enough for the
  data's prices, its quote asset read from its name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from trading.core.params import apply_params
from trading.exchanges.base import SymbolInfo
from trading.exchanges.paper import DEFAULT_SYMBOLS
from trading.replay.market import BarsMarket
from trading.runtime.strategy import Strategy, inspect_strategy

__all__ = [
    "DEFAULT_WARMUP",
    "Commands",
    "first_bar",
    "instance",
    "quote_of",
    "rate",
    "schedule",
    "symbol_info",
]

#: Replays give every strategy this much history before its first compute, unless told: the
#: default ``limit`` of ``ctx.history``.
DEFAULT_WARMUP = 100
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY")

Commands = Iterable[tuple[float | int, str]]


def rate(value: Decimal | str | float, what: str) -> Decimal:
    try:
        return Decimal(str(value))  # via str: 0.001 is 0.001, not its binary neighbour
    except ArithmeticError:
        raise ValueError(f"{what} {value!r} is not a number") from None


def first_bar(warmup: int | None, count: int) -> int:
    if warmup is None:
        return min(DEFAULT_WARMUP, count - 1)
    if not 0 <= warmup < count:
        raise ValueError(f"warmup must be in [0, {count - 1}] for {count} bars, not {warmup}")
    return warmup


def schedule(commands: Commands, market: BarsMarket) -> list[tuple[float, str]]:
    """``(when, text)`` sorted by time (stable: same-time commands keep their order)."""
    out: list[tuple[float, str]] = []
    for position, item in enumerate(commands):
        try:
            when, text = item
        except (TypeError, ValueError):
            raise ValueError(
                f"command {position} must be a (bar index or time, text) pair, not {item!r}"
            ) from None
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"command {position}: the text must be a command, not {text!r}")
        if isinstance(when, bool) or not isinstance(when, int | float):
            raise ValueError(f"command {position}: {when!r} is not a bar index or a time")
        if isinstance(when, int):
            if not -len(market.closes) <= when < len(market.closes):
                raise ValueError(
                    f"command {position} ({text!r}): bar {when} is outside the data "
                    f"({len(market.closes)} bars)"
                )
            at = market.closes[when]
        elif not math.isfinite(when):
            raise ValueError(f"command {position} ({text!r}): time {when!r} is not finite")
        else:
            at = float(when)
        out.append((at, text.strip()))
    out.sort(key=lambda pair: pair[0])
    return out


def instance(
    strategy: Strategy | type[Strategy], params: Mapping[str, Any] | None, market: BarsMarket
) -> Strategy:
    """The strategy on the data's series: its class's interval and symbols replaced by the
    data's when they differ (a subclass of the same name), its parameters applied."""
    cls = type(strategy) if isinstance(strategy, Strategy) else strategy
    spec = inspect_strategy(cls)  # StrategyDefinitionError for what cannot run
    if spec.interval != market.interval or spec.symbols != (market.symbol,):
        cls = type(
            cls.__name__,
            (cls,),
            {
                "interval": market.interval,
                "symbols": (market.symbol,),
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
                "__doc__": cls.__doc__,
            },
        )
    params = dict(params or {})
    text = {k: v for k, v in params.items() if isinstance(v, str)}
    typed = {k: v for k, v in params.items() if not isinstance(v, str)}
    if isinstance(strategy, Strategy):
        instance = strategy if cls is type(strategy) else _rebase(strategy, cls)
        if typed:
            text.update({k: str(v) for k, v in typed.items()})
    else:
        try:
            instance = cls(**typed)
        except TypeError as exc:
            raise ValueError(f"parameters for {spec.name}: {exc}") from None
    if text:
        apply_params(instance, text)  # ParamError (a ValueError) names the field
    return instance


def _rebase(strategy: Strategy, cls: type[Strategy]) -> Strategy:
    """A copy of ``strategy`` as an instance of ``cls`` (its subclass), same state."""
    clone = cls.__new__(cls)
    names = [a.name for a in getattr(type(strategy), "__attrs_attrs__", ())]
    for attribute in names:
        object.__setattr__(clone, attribute, getattr(strategy, attribute))
    for key, value in getattr(strategy, "__dict__", {}).items():
        object.__setattr__(clone, key, value)
    return clone


def quote_of(symbol: str) -> str:
    """The quote asset a symbol ends with (``BTCUSDT`` -> ``USDT``); ValueError if none."""
    known = DEFAULT_SYMBOLS.get(symbol)
    if known is not None:
        return known.quote
    quote = next((q for q in _QUOTES if symbol.endswith(q) and symbol != q), "")
    if not quote:
        raise ValueError(
            f"cannot tell the quote asset of {symbol!r}; pass symbols={{...: SymbolInfo(...)}}"
        )
    return quote


def symbol_info(market: BarsMarket) -> SymbolInfo:
    """Binance-like filters for the data's symbol: the simulated market's own for its symbols,
    else a tick and step fine enough for the data's prices."""
    known = DEFAULT_SYMBOLS.get(market.symbol)
    if known is not None:
        return known
    symbol = market.symbol
    quote = quote_of(symbol)
    low = min(bar.low for bar in market.bars[: min(len(market.bars), 10_000)])
    price_digits = max(2, 6 - math.floor(math.log10(max(low, 1e-12))))
    tick = Decimal(1).scaleb(-min(price_digits, 8))
    step = Decimal(1).scaleb(-min(8, max(0, math.floor(math.log10(max(low, 1e-12))) + 1)))
    return SymbolInfo(
        symbol=symbol,
        base=symbol[: -len(quote)],
        quote=quote,
        tick_size=tick,
        step_size=step,
        min_quantity=step,
        min_notional=Decimal(5),
    )
