"""The ``trio-trade`` command: ``list`` the strategies, ``run`` some of them.

While ``run`` runs, every line typed on standard input is a command (``pause sma_cross``) and its
reply is printed on standard output; logs go to standard error. The end of standard input does not
stop the run (so ``trio-trade run x < commands.txt`` and ``nohup`` work); Ctrl-C or SIGTERM stops
every strategy cleanly, and a second one forces the exit.

Exit status: 0 when the run ended cleanly; 1 when a strategy failed for good (gave up restarting)
at any time during the run, or could not start; 2 for a usage error (a bad argument, a strategy
file that does not import, a database that cannot be used or read); 130 when forced.

Standard input is read as bytes, a line at a time and at most :data:`MAX_COMMAND_LENGTH` bytes
of it: a longer line or one that is not UTF-8 gets an error reply and the run goes on. Replies,
logs and notifications reach the terminal through :class:`TerminalWriter`, so a stalled reader
(a pager, a pipe nobody reads) costs dropped lines, counted, never a stalled run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from trading.arguments import count, duration, positive_float
from trading.audit import add_parsers as add_audit
from trading.audit import run as run_audit
from trading.config_cli import add_config_option, resolve_run_args
from trading.config_cli import add_parser as add_config_parser
from trading.config_cli import run as run_config
from trading.control.client import add_parser as add_ctl
from trading.control.client import add_run_arguments
from trading.core.restart import RestartPolicy
from trading.loader import available
from trading.observers.queries import (
    FILL_COLUMNS,
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    format_table,
    read_fills,
    read_orders,
    read_positions,
)
from trading.serve import EXIT_FAILED, EXIT_OK, EXIT_USAGE, run
from trading.tui import add_view_arguments

__all__ = ["main"]

DEFAULT_DB = Path("trio-trade.db")
# What each table shows: the recorded columns, less the bookkeeping ones (ids, stamps).
_BOOKKEEPING = frozenset({"exchange_order_id", "created_at", "updated_at"})
TABLES: dict[str, tuple[Callable[[Path, str | None], list[dict[str, Any]]], tuple[str, ...]]] = {
    "orders": (
        read_orders,
        tuple(c for c in ORDER_COLUMNS if c not in _BOOKKEEPING),
    ),
    "fills": (read_fills, FILL_COLUMNS),
    "positions": (read_positions, POSITION_COLUMNS),
}


def _version() -> str:
    try:
        return importlib.metadata.version("trio-trade")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-trade",
        description="Run trading strategies you can command at any moment.",
    )
    parser.add_argument("--version", action="version", version=f"trio-trade {_version()}")
    sub = parser.add_subparsers(
        dest="verb",
        required=True,
        metavar="{list,run,backtest,sweep,ctl,config,orders,fills,positions,events,commands,exchange-sim}",
    )
    dir_help = "folder of strategy files (default: ./strategies)"

    p_list = sub.add_parser("list", help="list the strategies found in the strategies folder")
    p_list.add_argument("--strategies-dir", type=Path, default=Path("strategies"), help=dir_help)

    p_run = sub.add_parser(
        "run",
        help="run strategies; type commands on standard input",
        description=(
            "Run strategies on the built-in simulated market (prices are deterministic; bars come "
            "fast so you see signals within seconds). Type commands such as 'status', "
            "'pause NAME', 'resume NAME', 'wake NAME', 'set NAME key=value', 'stop NAME' or "
            "'help' and press Enter. Ctrl-C stops every strategy cleanly; a second Ctrl-C forces."
        ),
        epilog=(
            "exit status: 0 the run ended cleanly; 1 a strategy failed for good (gave up "
            "restarting) at any time during the run, or could not start; 2 a usage error (bad "
            "argument, a strategy file that does not import, a database that cannot be used); "
            "130 forced by a second Ctrl-C"
        ),
    )
    p_run.add_argument(
        "strategies",
        nargs="*",
        metavar="NAME",
        help="strategy file name, NAME:Class or module:Class (default: the config's strategies)",
    )
    # Defaults of None: a flag left out does not override the configuration file.
    add_config_option(p_run)
    p_run.add_argument("--strategies-dir", type=Path, help=dir_help)
    p_run.add_argument(
        "--for",
        dest="duration",
        type=duration,
        metavar="DURATION",
        help="stop cleanly after this long (wall time), e.g. 30s, 5m, 2h",
    )
    p_run.add_argument(
        "--speed",
        type=positive_float,
        help="simulated seconds per real second (default: one bar of the shortest interval per "
        "second, e.g. 900 for 15m bars); 1 runs in real time",
    )
    p_run.add_argument("--seed", type=int, help="simulated market seed (default 7)")
    venue = p_run.add_argument_group(
        "exchange",
        "Where bars come from and orders go. Default: the built-in simulated market and paper "
        "broker. With --exchange binance: Binance's public market data (no keys needed) and the "
        "paper broker filling at its streamed prices (a dry run); --live sends real orders.",
    )
    venue.add_argument(
        "--exchange",
        choices=("sim", "binance"),
        help="sim (default) or binance (also a testnet or `trio-trade exchange-sim`: --base-url)",
    )
    venue.add_argument(
        "--symbol",
        action="append",
        metavar="SYMBOL",
        help="run the strategies on this symbol (repeatable), e.g. BTCUSDT; default: each "
        "strategy's own",
    )
    venue.add_argument(
        "--live",
        action="store_true",
        help="send real orders (keys from BINANCE_API_KEY and BINANCE_API_SECRET); without it "
        "orders go to the paper broker",
    )
    venue.add_argument(
        "--base-url",
        metavar="URL",
        help="REST base URL (default https://api.binance.com; e.g. https://testnet.binance.vision "
        "or the URL `trio-trade exchange-sim` prints)",
    )
    venue.add_argument(
        "--ws-url",
        metavar="URL",
        help="WebSocket base URL for streams and the WebSocket API (default: derived from "
        "--base-url)",
    )
    p_run.add_argument(
        "--stop-timeout",
        type=positive_float,
        metavar="SECONDS",
        help="how long a stop may take as a whole: on_stop (at most half of it), cancelling "
        "open orders and the recorder flush share this deadline; what it cut short is named "
        "(default 10)",
    )
    p_run.add_argument(
        "--max-restarts",
        type=count,
        metavar="N",
        help="restarts of a failing strategy within an hour before it is left failed for good "
        f"(the run then exits with status 1; default {RestartPolicy().max_restarts})",
    )
    p_run.add_argument(
        "--db",
        type=Path,
        help=f"SQLite file recording orders, fills, positions and commands (default {DEFAULT_DB})",
    )
    p_run.add_argument(
        "--no-db", action="store_true", help="record nothing (the console notifier still prints)"
    )
    add_run_arguments(p_run)
    add_view_arguments(p_run)  # --plain
    p_run.add_argument(
        "--isolate",
        action="store_true",
        default=None,
        help="run each strategy in its own process (only configuration crosses; ctx calls "
        "come back to this one)",
    )
    p_run.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log every event and state change; -vv also every HTTP request and WebSocket "
        "connection",
    )
    p_run.add_argument(
        "--logfile", metavar="PATH", help="also write the log to this file (appended)"
    )
    p_run.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="text (default) or json: one JSON object per line, for log collectors",
    )
    for verb, what in (
        ("orders", "print the recorded orders, in the order they were placed"),
        ("fills", "print the recorded fills, in the order they happened"),
        ("positions", "print each strategy's latest recorded position per symbol, with PnL"),
    ):
        p_table = sub.add_parser(verb, help=what, description=what)
        p_table.add_argument(
            "--db", type=Path, default=DEFAULT_DB, help=f"the run's database (default {DEFAULT_DB})"
        )
        p_table.add_argument("--strategy", metavar="NAME", help="only this strategy's")
    from trading.simulator.cli import add_parser as add_exchange_sim

    add_exchange_sim(sub)
    from trading.replay.cli import add_parser as add_backtest
    from trading.sweep.cli import add_parser as add_sweep

    add_backtest(sub)
    add_sweep(sub)
    add_audit(sub, DEFAULT_DB)
    add_ctl(sub)
    add_config_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verb == "list":
        return _list(args.strategies_dir)
    if args.verb in TABLES:
        return _table(args.verb, args.db, args.strategy)
    if args.verb in ("events", "commands"):
        return run_audit(args)
    if args.verb == "ctl":
        from trading.control.client import run as run_ctl

        return run_ctl(args)
    if args.verb == "exchange-sim":
        from trading.simulator.cli import run as run_exchange_sim

        return run_exchange_sim(args)
    if args.verb == "config":
        return run_config(args)
    if args.verb == "backtest":
        from trading.replay.cli import run as run_backtest

        return run_backtest(args)
    if args.verb == "sweep":
        from trading.sweep.cli import run as run_sweep

        return run_sweep(args)
    resolved = resolve_run_args(args)
    return resolved if isinstance(resolved, int) else run(resolved)


def _table(verb: str, db: Path, strategy: str | None) -> int:
    reader, columns = TABLES[verb]
    try:
        rows = reader(db, strategy)
    except (OSError, ValueError, sqlite3.Error) as exc:  # missing, foreign, unreadable, locked
        print(f"trio-trade: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not rows:
        who = f" for strategy {strategy!r}" if strategy else ""
        print(f"no {verb} recorded{who} in {db}", file=sys.stderr)
        return EXIT_OK
    for row in rows:
        if isinstance(row.get("time"), float):
            row["time"] = f"{dt.datetime.fromtimestamp(row['time'], tz=dt.UTC):%Y-%m-%d %H:%M:%S}"
    print(format_table(rows, columns))
    return EXIT_OK


def _list(directory: Path) -> int:
    listings = available(directory)
    if not listings:
        print(
            f"no strategies in {directory}/ (each strategy is a NAME.py file there)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    width = max(len(item.name) for item in listings)
    for item in listings:
        if item.spec is None:
            print(f"{item.name:<{width}}  !!    cannot load: {item.error}")
        else:
            spec = item.spec
            print(f"{item.name:<{width}}  {spec.interval.text:<5} {spec.description}")
    return EXIT_OK
