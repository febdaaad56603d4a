"""The one status table (`ctl status`, Telegram's /status, the terminal view): its rows read from a
real Runner on the simulated market, and its fixed-width text."""

from __future__ import annotations

from decimal import Decimal

import attrs
import trio
from trio.testing import MockClock

import trading
from tests.conftest import T0, sim
from trading.control.status_table import (
    COLUMNS,
    ERROR_WIDTH,
    StatusRow,
    cells,
    render_text,
    row_json,
    status_rows,
)


@attrs.define
class BuysOnce(trading.Strategy):
    interval = "15m"
    symbols = ("BTCUSDT",)

    async def next(self, ctx: trading.Context) -> None:
        if not ctx.position().quantity:
            await ctx.buy("0.01")


@attrs.define
class FailsLoudly(trading.Strategy):
    interval = "15m"
    symbols = ("BTCUSDT",)

    async def next(self, ctx: trading.Context) -> None:
        raise ValueError("the first line\n" + "x" * 200 + "\nthe cause, on the last line")


async def _settled(runner: trading.Runner) -> list[StatusRow]:
    with trio.fail_after(60):
        while True:
            rows = {row.strategy: row for row in status_rows(runner)}
            if rows["holder"].position != "flat" and rows["broken"].state == "failed":
                return status_rows(runner)
            await trio.sleep(0.01)


async def test_rows_of_a_strategy_holding_a_position_and_of_one_failed(clock: MockClock) -> None:
    vclock = trading.VirtualClock(start=T0)
    policy = trading.RestartPolicy(max_restarts=0)
    async with trading.Runner(clock=vclock, restart_policy=policy, **sim(vclock)) as runner:
        await runner.add(BuysOnce(), name="holder")
        await runner.add(FailsLoudly(), name="broken")
        holder, broken = await _settled(runner)
        await runner.stop_all()

    assert holder.strategy == "holder" and holder.state == "sleeping"
    assert holder.position == "BTCUSDT 0.01"
    assert holder.next_wake is not None and holder.next_wake > T0
    assert isinstance(holder.pnl, Decimal) and holder.pnl < 0  # the fee, at least
    assert holder.last_error is None
    assert broken.state == "failed" and broken.position == "flat"
    assert broken.last_error is not None and broken.last_error.startswith(
        "next: ValueError: the first"
    )

    holder_cells, broken_cells = cells(holder), cells(broken)
    assert holder_cells[3:6] == ("BTCUSDT 0.01", f"{holder.pnl:+.2f}", "-")
    assert holder_cells[2].count(":") == 2  # HH:MM:SS
    # A multi-line error shows its last line (where a traceback names the exception), clipped.
    assert broken_cells[5] == "the cause, on the last line"
    assert broken_cells[2] == "-"  # a failed strategy has no next wake

    text = render_text([holder, broken]).splitlines()
    assert len(text) == 3  # a header and a line per row: the error's lines never break a row
    assert text[0].split() == [
        "strategy",
        "state",
        "next",
        "wake",
        "position",
        "pnl",
        "last",
        "error",
    ]
    assert text[1].startswith("holder ") and text[2].startswith("broken ")
    # Columns line up: each row's state starts where the header's does.
    assert text[1].index("sleeping") == text[0].index("state") == text[2].index("failed")
    assert row_json(holder)["pnl"] == str(holder.pnl)
    assert row_json(broken)["last_error"] == broken.last_error


def test_no_strategies() -> None:
    assert render_text([]) == "no strategies"


def test_a_long_one_line_error_is_clipped_to_the_table_width() -> None:
    row = StatusRow("s", "failed", None, "flat", None, "E" * 500)
    error = cells(row)[5]
    assert len(error) == ERROR_WIDTH and error.endswith("…")
    assert len(cells(row)) == len(COLUMNS)
    blank = StatusRow("s", "failed", None, "flat", None, "   \n  ")
    assert cells(blank)[5] == "-" and cells(blank)[4] == "-"
