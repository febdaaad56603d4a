"""Tests for event records and their one-line descriptions (core: no event loop)."""

from __future__ import annotations

import attrs
import pytest

from trading.core.events import (
    CommandHandled,
    Event,
    StrategyFailed,
    StrategyStateChanged,
    describe,
)


def test_state_change() -> None:
    event = StrategyStateChanged(time=1.0, strategy="sma_cross", old="sleeping", new="paused")
    assert describe(event) == "sma_cross: sleeping -> paused"


def test_state_change_with_reason() -> None:
    event = StrategyStateChanged(1.0, "sma_cross", "computing", "stopping", reason="command: stop")
    assert describe(event) == "sma_cross: computing -> stopping (command: stop)"


def test_command_ok() -> None:
    event = CommandHandled(
        time=1.0, strategy="sma_cross", command="pause sma_cross", source="telegram", ok=True,
        message="paused",
    )
    assert describe(event) == "sma_cross: command 'pause sma_cross' from telegram: ok: paused"


def test_command_error() -> None:
    event = CommandHandled(2.0, "sma_cross", "set sma_cross fast=x", "stdin", False, "bad value")
    assert describe(event) == (
        "sma_cross: command 'set sma_cross fast=x' from stdin: error: bad value"
    )


def test_strategy_failed_with_restart() -> None:
    event = StrategyFailed(
        time=3.0, strategy="sma_cross", phase="next", error="ZeroDivisionError: division by zero",
        traceback="Traceback ...", failures=2, restart_in=2.5,
    )
    assert describe(event) == (
        "sma_cross: failed in next (ZeroDivisionError: division by zero); "
        "failure 2, restart in 2.5s"
    )


def test_strategy_failed_gave_up() -> None:
    event = StrategyFailed(3.0, "sma_cross", "on_start", "boom", "tb", 6, None)
    assert describe(event) == "sma_cross: failed in on_start (boom); failure 6, gave up"


def test_whole_second_restart_has_no_trailing_zeros() -> None:
    event = StrategyFailed(3.0, "x", "next", "boom", "tb", 1, 4.0)
    assert describe(event).endswith("restart in 4s")


def test_event_without_strategy_is_the_runner() -> None:
    event = CommandHandled(1.0, "", "help", "stdin", True, "listed")
    assert describe(event).startswith("runner: command 'help'")


def test_unknown_event_falls_back_to_repr() -> None:
    @attrs.frozen
    class Custom(Event):
        detail: str

    event = Custom(time=5.0, strategy="s", detail="something")
    assert describe(event) == f"s: {event!r}"
    assert "something" in describe(event)


def test_descriptions_are_one_line() -> None:
    events: list[Event] = [
        StrategyStateChanged(1.0, "a", "created", "starting"),
        CommandHandled(1.0, "a", "status", "api", True, "sleeping"),
        StrategyFailed(1.0, "a", "next", "boom", "Traceback\n  line 1\n  line 2\n", 1, 1.0),
    ]
    for event in events:
        assert "\n" not in describe(event)


def test_events_are_frozen() -> None:
    event = StrategyStateChanged(1.0, "a", "created", "starting")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.new = "stopped"  # type: ignore[misc]


def test_strategy_error_is_a_deprecated_alias_of_strategy_failed() -> None:
    from trading.core.events import StrategyError

    assert StrategyError is StrategyFailed
