"""The status table as the terminal view draws it: the ctl table's cells, coloured by Rich, and
nothing from outside ever reaching the terminal as a control sequence."""

from __future__ import annotations

import re
from decimal import Decimal

import pyte
from hypothesis import given
from hypothesis import strategies as st

from trading.control.status_table import COLUMNS, StatusRow, cells
from trading.tui.table import printable, render_rows

SGR = re.compile(r"\x1b\[[0-9;]*m")


def screen_of(text: str, width: int = 100) -> list[str]:
    screen = pyte.Screen(width, 20)
    pyte.Stream(screen).feed(text.replace("\n", "\r\n"))
    return [line.rstrip() for line in screen.display if line.strip()]


ROWS = [
    StatusRow("holder", "sleeping", 1_735_689_600.0, "BTCUSDT 0.01", Decimal("12.3456"), None),
    StatusRow("loser", "paused", None, "flat", Decimal("-4"), None),
    StatusRow("broken", "failed", None, "flat", None, "next: ValueError: one\ntwo: the cause"),
]


def test_the_same_cells_as_ctl_status_under_the_same_header() -> None:
    lines = screen_of(render_rows(ROWS, 100))
    assert lines[0].split() == " ".join(COLUMNS).split()
    for row, line in zip(ROWS, lines[2:], strict=True):  # header, rule, rows
        assert line.split() == " ".join(cells(row)).split()
    assert "two: the cause" in lines[4]


def test_state_and_pnl_are_coloured() -> None:
    text = render_rows(ROWS, 100)
    assert "\x1b[33mpaused" in text  # yellow
    assert "\x1b[1;31mfailed" in text  # bold red
    assert "\x1b[32m+12.35" in text and "\x1b[31m-4.00" in text


def test_no_strategies_and_dropped_lines_are_said() -> None:
    assert screen_of(render_rows([], 80)) == ["no strategies"]
    lines = screen_of(render_rows([], 80, dropped=7))
    assert lines[1] == "7 log lines dropped: the view was not keeping up"


def test_a_narrow_terminal_gets_a_table_no_wider_than_itself() -> None:
    text = render_rows(ROWS, 40)
    assert all(len(SGR.sub("", line)) <= 40 for line in text.splitlines())


@given(st.text(max_size=80), st.text(max_size=80))
def test_names_and_errors_never_reach_the_terminal_as_control_sequences(
    name: str, error: str
) -> None:
    row = StatusRow(name or "x", "failed", None, "flat", None, error)
    text = SGR.sub("", render_rows([row], 100))  # our own colours aside
    assert not set(text) & ({chr(c) for c in range(0x20)} - {"\n"} | {"\x7f", "\x9b"})


def test_markup_in_an_error_is_shown_not_interpreted() -> None:
    row = StatusRow("s", "failed", None, "flat", None, "[bold red]boom[/] \x1b[2J")
    lines = screen_of(render_rows([row], 100))
    assert "[bold red]boom[/] ?[2J" in lines[2]


def test_printable_keeps_tabs_and_text() -> None:
    assert printable("a\tb é ✓") == "a\tb é ✓"
    assert printable("\x1b[31mred\x07\r\x9b") == "?[31mred???"
