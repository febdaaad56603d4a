"""``trio-trade events`` and ``trio-trade commands``: reading back what a run recorded.

The recorder keeps every event (with its own fields as JSON) and every command with its source and
reply; these verbs print them, oldest first, across runs. A strategy's failure prints its
traceback in full, the one place an operator can read it after the fact.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from trading.core.bars import IntervalError, parse_duration
from trading.observers.queries import COMMAND_COLUMNS, format_table, read_commands, read_events

__all__ = ["add_parsers", "run"]

EXIT_OK, EXIT_USAGE = 0, 2


def _since(text: str) -> float:
    """``2h`` (that long ago) or an ISO date/time (UTC unless it says otherwise)."""
    try:
        return dt.datetime.now(dt.UTC).timestamp() - parse_duration(text)
    except IntervalError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a duration ago (30m, 2h, 1d) or a date/time "
            "(2026-11-25 or 2026-11-25T17:00)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def add_parsers(sub: Any, default_db: Path) -> None:
    """The ``events`` and ``commands`` verbs on ``trio-trade``'s subparsers."""
    p = sub.add_parser(
        "events",
        help="print the recorded events (the audit trail), with tracebacks of failures",
        description="Every recorded event, oldest first, across runs; a failure's traceback "
        "is printed in full under it.",
    )
    p.add_argument("--db", type=Path, default=default_db, help=f"(default {default_db})")
    p.add_argument("--strategy", metavar="NAME", help="only this strategy's")
    p.add_argument("--kind", metavar="KIND", help="only this kind, e.g. StrategyFailed")
    p.add_argument("--since", type=_since, metavar="WHEN", help="30m, 2h, 1d ago, or a date/time")
    p = sub.add_parser(
        "commands",
        help="print the recorded commands: who sent what, and the reply",
        description="Every command handled, oldest first, across runs.",
    )
    p.add_argument("--db", type=Path, default=default_db, help=f"(default {default_db})")
    p.add_argument("--strategy", metavar="NAME", help="only this strategy's")


def _when(t: float) -> str:
    return f"{dt.datetime.fromtimestamp(t, tz=dt.UTC):%Y-%m-%d %H:%M:%S}"


def _event_lines(row: dict[str, Any]) -> list[str]:
    try:
        fields = json.loads(row["payload"])
    except (TypeError, ValueError):
        fields = {"payload": row["payload"]}
    traceback = fields.pop("traceback", "") if isinstance(fields, dict) else ""
    if isinstance(fields, dict):
        for noise in ("time", "strategy"):
            fields.pop(noise, None)
        detail = ", ".join(f"{k}={v}" for k, v in fields.items())
    else:
        detail = str(fields)
    head = f"{_when(row['time'])}  {row['run']}  {row['strategy']}  {row['kind']}: {detail}"
    lines = [head]
    if traceback:
        lines += ["    " + line for line in str(traceback).rstrip().splitlines()]
    return lines


def run(args: argparse.Namespace) -> int:
    try:
        if args.verb == "events":
            rows = read_events(args.db, args.strategy, args.kind, args.since)
        else:
            rows = read_commands(args.db, args.strategy)
    except (OSError, ValueError, sqlite3.Error) as exc:
        print(f"trio-trade: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not rows:
        print(f"no {args.verb} recorded in {args.db} for that selection", file=sys.stderr)
        return EXIT_OK
    if args.verb == "events":
        for row in rows:
            print("\n".join(_event_lines(row)))
        return EXIT_OK
    for row in rows:
        row["time"] = _when(row["time"])
        row["ok"] = "ok" if row["ok"] else "error"
    print(format_table(rows, COMMAND_COLUMNS))
    return EXIT_OK
