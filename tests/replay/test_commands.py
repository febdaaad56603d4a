"""Scheduled commands in a replay go through the mailbox and the machine, bar for bar."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.replay.helpers import Closes, order_rows, walk
from trading.core.events import BarsSkipped, CommandHandled
from trading.core.orders import Side
from trading.replay import replay

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "strategies"))
from sma_cross import SmaCross


def test_a_scheduled_pause_suppresses_exactly_the_bars_until_the_resume() -> None:
    Closes.seen = []
    bars = walk(60)
    result = replay(
        Closes,
        bars,
        warmup=0,
        commands=[(10, "pause closes"), (20, "resume closes")],
        progress=False,
    )
    # pause at bar 10 lands before its compute; resume at bar 20 goes back to the schedule,
    # so the next compute is bar 21.
    assert Closes.seen == [b.close_time for i, b in enumerate(bars) if not 10 <= i <= 20]
    assert [(r.ok, r.state) for _, _, (r,) in result.replies] == [
        (True, "paused"),
        (True, "sleeping"),
    ]
    (skipped,) = [e for e in result.events if isinstance(e, BarsSkipped)]
    assert (skipped.count, skipped.first, skipped.last) == (
        11,
        bars[10].close_time,
        bars[20].close_time,
    )
    audit = [e for e in result.events if isinstance(e, CommandHandled) and e.source == "replay"]
    assert [(e.command, e.source) for e in audit] == [
        ("pause closes", "replay"),
        ("resume closes", "replay"),
    ]


def test_a_scheduled_set_changes_the_orders_from_that_bar_on() -> None:
    bars = walk(4_000, seed=5)
    plain = replay(SmaCross, bars, progress=False)
    at = 2_000
    changed = replay(SmaCross, bars, commands=[(at, "set sma_cross quantity=0.02")], progress=False)
    (reply,) = changed.replies
    assert reply[2][0].ok, reply
    cut = bars[at].close_time
    before = [o for o in changed.orders if o.created_at < cut]
    assert order_rows(tuple(before)) == order_rows(
        tuple(o for o in plain.orders if o.created_at < cut)
    )
    buys_before = {o.quantity for o in before if o.side is Side.BUY}
    buys_after = {o.quantity for o in changed.orders if o.created_at >= cut and o.side is Side.BUY}
    assert buys_before == {Decimal("0.01")} and buys_after == {Decimal("0.02")}


def test_commands_after_the_last_bar_are_reported_not_delivered() -> None:
    bars = walk(30)
    result = replay(
        Closes,
        bars,
        warmup=0,
        commands=[(bars[-1].close_time + 30, "pause closes")],
        progress=False,
    )
    assert result.replies == ()
    assert result.undelivered == ((bars[-1].close_time + 30, "pause closes"),)
    assert "not delivered" in result.summary()


def test_a_command_racing_the_first_compute_is_refused() -> None:
    with pytest.raises(ValueError, match="bar 3 or later"):
        replay(Closes, walk(20), warmup=2, commands=[(2, "pause closes")], progress=False)


def test_a_bad_command_is_answered_and_changes_nothing() -> None:
    Closes.seen = []
    bars = walk(20)
    result = replay(
        Closes,
        bars,
        warmup=0,
        commands=[(5, "frobnicate closes"), (6, "pause nobody")],
        progress=False,
    )
    assert Closes.seen == [b.close_time for b in bars]
    assert [r.ok for _, _, (r,) in result.replies] == [False, False]


def _expected(n: int, schedule: list[tuple[int, str]]) -> list[int]:
    """The model: commands at bar i land before its compute; a strategy computes bar i only
    if it was running before the commands at i and still is after them (a resume goes back
    to the schedule, so the bar it lands on is not computed)."""
    paused = False
    computed = []
    for i in range(n):
        before = paused
        for at, verb in schedule:
            if at == i and verb in ("pause", "resume"):
                paused = verb == "pause"
        if not before and not paused:
            computed.append(i)
    return computed


@settings(max_examples=30)
@given(
    st.lists(
        st.tuples(st.integers(1, 29), st.sampled_from(["pause", "resume", "wake-up"])),
        max_size=8,
    )
)
def test_any_pause_resume_schedule_computes_what_the_model_says(
    schedule: list[tuple[int, str]],
) -> None:
    bars = walk(30)
    ordered = sorted(schedule, key=lambda item: item[0])  # stable, as the replay sorts
    commands = [(at, f"{verb} closes") for at, verb in ordered]
    runs = []
    for _ in range(2):
        Closes.seen = []
        result = replay(Closes, bars, warmup=0, commands=commands, progress=False)
        runs.append((list(Closes.seen), [(t, x, r[0].ok) for t, x, r in result.replies]))
        assert len(result.replies) == len(commands)
    assert runs[0] == runs[1]  # deterministic, replies included
    assert runs[0][0] == [bars[i].close_time for i in _expected(len(bars), ordered)]
