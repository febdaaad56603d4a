"""Tests for strategy checking at load (inspect_strategy) and Context.history."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import attrs
import pytest

from trading.core.bars import Interval
from trading.core.commands import BUILTIN_VERBS
from trading.exchanges.sim import SimulatedMarket
from trading.runtime.clock import VirtualClock
from trading.runtime.strategy import Context, Strategy, StrategyDefinitionError, inspect_strategy

T0 = 1_704_067_200.0  # 2024-01-01 00:00 UTC


@attrs.define
class SmaCrossLike(Strategy):
    """Moving-average cross.

    More text that is not the description.
    """

    interval = "1h"
    symbols = ("ETHUSDT", "BTCUSDT")
    custom_commands: ClassVar[dict[str, str]] = {"boost": "boost NAME: more"}

    fast: int = 5

    async def next(self, ctx: Context) -> None:
        pass


def test_good_strategy_spec() -> None:
    spec = inspect_strategy(SmaCrossLike)
    assert spec.cls is SmaCrossLike
    assert spec.name == "sma_cross_like"
    assert spec.interval == Interval.parse("1h")
    assert spec.symbols == ("ETHUSDT", "BTCUSDT")
    assert spec.description == "Moving-average cross."
    assert spec.custom_commands == {"boost": "boost NAME: more"}


def test_name_class_attribute_wins_over_class_name() -> None:
    class Whatever(Strategy):
        name = "custom_name"

        async def next(self, ctx: Context) -> None:
            pass

    assert inspect_strategy(Whatever).name == "custom_name"
    assert inspect_strategy(Whatever, name="explicit").name == "explicit"


@pytest.mark.parametrize(
    ("class_name", "expected"),
    [
        ("SmaCross", "sma_cross"),
        ("MyStrategy", "my_strategy"),
        ("Simple", "simple"),
        ("ABC", "abc"),
    ],
)
def test_default_name_is_snake_case(class_name: str, expected: str) -> None:
    async def next_(self: Any, ctx: Context) -> None:
        pass

    cls = type(class_name, (Strategy,), {"next": next_})
    assert inspect_strategy(cls).name == expected


def test_defaults_from_the_base_class() -> None:
    class Plain(Strategy):
        async def next(self, ctx: Context) -> None:
            pass

    spec = inspect_strategy(Plain)
    assert spec.interval == Interval.parse("15m")
    assert spec.symbols == ("BTCUSDT",)
    assert spec.description == ""  # not the base class's docstring
    assert spec.custom_commands == {}


def test_interval_may_be_an_interval_and_symbols_a_list() -> None:
    class Listy(Strategy):
        interval = Interval.parse("4h")
        symbols = ["SOLUSDT"]

        async def next(self, ctx: Context) -> None:
            pass

    spec = inspect_strategy(Listy)
    assert spec.interval.seconds == 4 * 3600
    assert spec.symbols == ("SOLUSDT",)


def test_description_skips_leading_blank_lines() -> None:
    class Doc(Strategy):
        """

        First real line.
        Second.
        """

        async def next(self, ctx: Context) -> None:
            pass

    assert inspect_strategy(Doc).description == "First real line."


def _message(cls: Any) -> str:
    with pytest.raises(StrategyDefinitionError) as info:
        inspect_strategy(cls)
    return str(info.value)


def test_bad_interval_is_a_clear_error_at_load() -> None:
    class BadInterval(Strategy):
        interval = "15x"

        async def next(self, ctx: Context) -> None:
            pass

    message = _message(BadInterval)
    assert "BadInterval" in message
    assert "'15x'" in message
    assert "'15m'" in message  # the accepted form


def test_next_not_implemented() -> None:
    class Lazy(Strategy):
        pass

    message = _message(Lazy)
    assert "Lazy" in message
    assert "async def next(self, ctx)" in message


def test_next_not_async() -> None:
    class Sync(Strategy):
        def next(self, ctx: Context) -> None:  # type: ignore[override]
            pass

    message = _message(Sync)
    assert "Sync.next" in message
    assert "async def" in message


def test_other_hooks_must_be_async() -> None:
    class SyncStart(Strategy):
        def on_start(self, ctx: Context) -> None:  # type: ignore[override]
            pass

        async def next(self, ctx: Context) -> None:
            pass

    assert "SyncStart.on_start must be `async def`" in _message(SyncStart)


def test_annotated_interval_must_be_a_class_attribute() -> None:
    @attrs.define
    class Annotated(Strategy):
        interval: str = "15m"  # type: ignore[misc]

        async def next(self, ctx: Context) -> None:
            pass

    message = _message(Annotated)
    assert "Annotated" in message
    assert "'interval' must be a class attribute" in message
    assert "without an annotation" in message


def test_annotated_symbols_without_attrs_must_be_a_class_attribute() -> None:
    class AnnotatedSymbols(Strategy):
        symbols: tuple[str, ...] = ("BTCUSDT",)  # type: ignore[misc]

        async def next(self, ctx: Context) -> None:
            pass

    assert "'symbols' must be a class attribute" in _message(AnnotatedSymbols)


def test_classvar_annotations_are_fine() -> None:
    class WithClassVar(Strategy):
        interval: ClassVar[str] = "5m"  # type: ignore[misc]

        async def next(self, ctx: Context) -> None:
            pass

    assert inspect_strategy(WithClassVar).interval.seconds == 300


def test_annotated_fields_need_attrs_define() -> None:
    class NoAttrs(Strategy):
        fast: int = 5
        slow: int = 20

        async def next(self, ctx: Context) -> None:
            pass

    message = _message(NoAttrs)
    assert "NoAttrs" in message
    assert "fast, slow" in message
    assert "@attrs.define" in message


def test_symbols_as_a_bare_string() -> None:
    class Bare(Strategy):
        symbols = "BTCUSDT"

        async def next(self, ctx: Context) -> None:
            pass

    message = _message(Bare)
    assert "Bare" in message
    assert "('BTCUSDT',)" in message  # the fix
    assert "'BTCUSDT'" in message


def test_symbols_with_an_empty_name() -> None:
    class Empty(Strategy):
        symbols = ("BTCUSDT", "")

        async def next(self, ctx: Context) -> None:
            pass

    assert "symbols must be a tuple of symbol strings" in _message(Empty)


@pytest.mark.parametrize("verb", sorted(BUILTIN_VERBS))
def test_custom_command_clashing_with_a_builtin(verb: str) -> None:
    class Clash(Strategy):
        custom_commands: ClassVar[dict[str, str]] = {verb: "mine", "boost": "fine"}

        async def next(self, ctx: Context) -> None:
            pass

    message = _message(Clash)
    assert "Clash" in message
    assert repr(verb) in message
    assert "boost" not in message
    assert "clash with built-in commands" in message


def test_not_a_strategy_subclass() -> None:
    class NotAStrategy:
        async def next(self, ctx: Context) -> None:
            pass

    message = _message(NotAStrategy)
    assert "NotAStrategy" in message
    assert "not a subclass of trading.Strategy" in message


def test_error_is_a_type_error() -> None:
    assert issubclass(StrategyDefinitionError, TypeError)


def test_an_instance_instead_of_a_class() -> None:
    message = _message(SmaCrossLike())
    assert "not a subclass of trading.Strategy" in message


# -- Context --------------------------------------------------------------------------------------


def _context(cls: type[Strategy], start: float) -> tuple[Context, SimulatedMarket]:
    """A Context on a VirtualClock; tests take ``autojump_clock`` so trio time (and so ``now``)
    only moves when a test sleeps."""
    market = SimulatedMarket(seed=11)
    ctx = Context(
        spec=inspect_strategy(cls),
        clock=VirtualClock(start=start),
        market=market,
        log=logging.getLogger("test"),
    )
    return ctx, market


async def test_context_history_defaults_to_first_symbol_and_interval(autojump_clock: Any) -> None:
    now = T0 + 1000.0
    ctx, market = _context(SmaCrossLike, now)
    bars = await ctx.history(limit=10)
    assert len(bars) == 10
    assert {b.symbol for b in bars} == {"ETHUSDT"}
    assert {b.interval for b in bars} == {Interval.parse("1h")}
    assert bars == market.bars("ETHUSDT", Interval.parse("1h"), end=now, limit=10)
    assert bars[-1].close_time == T0  # the last complete bar at 00:16:40


async def test_context_history_other_symbol_and_interval(autojump_clock: Any) -> None:
    ctx, market = _context(SmaCrossLike, T0)
    bars = await ctx.history("BTCUSDT", limit=5, interval="15m")
    assert {b.symbol for b in bars} == {"BTCUSDT"}
    assert bars == market.bars("BTCUSDT", Interval.parse("15m"), end=T0, limit=5)
    assert len(await ctx.history()) == 100  # the default limit


async def test_context_history_follows_the_clock(autojump_clock: Any) -> None:
    ctx, _ = _context(SmaCrossLike, T0 + 10.0)
    before = await ctx.history(limit=1)
    await ctx.clock.sleep_until(T0 + 3 * 3600 + 10.0)
    after = await ctx.history(limit=1)
    assert after[-1].close_time == before[-1].close_time + 3 * 3600


async def test_context_properties(autojump_clock: Any) -> None:
    ctx, _ = _context(SmaCrossLike, T0)
    assert ctx.name == "sma_cross_like"
    assert ctx.interval == Interval.parse("1h")
    assert ctx.symbols == ("ETHUSDT", "BTCUSDT")
    assert ctx.now == T0
    assert ctx.time.isoformat() == "2024-01-01T00:00:00+00:00"
    assert ctx.bar_close is None
    assert ctx.computes == 0
