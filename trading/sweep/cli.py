"""``trio-trade sweep NAME --data FILE --param fast=5,8,12 --param slow=20,30,50``.

Prints one row per combination (the replay's statistics, or its error), best first by
``--sort``; ``--csv`` writes the table, ``--heatmap`` a PNG over two parameters. Exit status: 0
every combination ran, 1 some failed (the others are still reported), 2 usage: an unknown
strategy or parameter, a bad value list, a bad data file, an unreachable scheduler.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

from trading.arguments import add_cost_arguments, non_negative_decimal
from trading.config_cli import add_config_option

__all__ = ["add_parser", "run"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sweep",
        help="replay a strategy over a grid of parameters, on local processes or a Dask cluster",
        description=(
            "Replay NAME once per combination of --param values (the same code as backtest) "
            "and print a table of the results."
        ),
        epilog="exit status: 0 every combination ran; 1 some failed; 2 usage",
    )
    parser.add_argument("strategy", metavar="NAME", help="a strategy, as 'trio-trade list' shows")
    parser.add_argument("--data", type=Path, required=True, metavar="FILE", help="the bar file")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="a parameter and its values (repeatable): every combination is replayed",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a Dask scheduler (tcp://host:8786); default: worker processes on this machine",
    )
    where.add_argument("--inline", action="store_true", help="one after the other, here")
    parser.add_argument("--workers", type=int, metavar="N", help="local worker processes")
    parser.add_argument("--sort", default="sharpe", metavar="METRIC", help="order rows by it")
    parser.add_argument("--csv", type=Path, metavar="PATH", help="write the table as CSV")
    parser.add_argument(
        "--heatmap", type=Path, metavar="PNG", help="a heatmap of --sort over the two parameters"
    )
    add_cost_arguments(parser)
    parser.add_argument(
        "--strategies-dir", type=Path, default=Path("strategies"), help="(default ./strategies)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress line")
    add_config_option(parser)  # [sweep] scheduler / workers, under the flags
    return parser


def run(args: argparse.Namespace) -> int:
    from trading.config import ConfigError
    from trading.config_cli import resolve
    from trading.data import load_bars
    from trading.loader import StrategyLoadError, StrategyNotFound, load
    from trading.replay.session import quote_of
    from trading.runtime.strategy import StrategyDefinitionError
    from trading.sweep.grid import GridError, parse_params
    from trading.sweep.job import COLUMNS
    from trading.sweep.sweep import sweep

    try:
        settings = resolve(args.config).sweep
    except ConfigError as exc:
        return _usage(str(exc))
    scheduler = args.scheduler or (None if args.inline else settings.scheduler)
    workers = args.workers if args.workers is not None else settings.workers
    try:
        spec = load(args.strategy, args.strategies_dir)
        grid = parse_params(args.param)
        if args.heatmap is not None and len(grid) != 2:
            raise GridError("--heatmap needs exactly two --param")
        if args.sort not in COLUMNS:
            raise GridError(f"--sort {args.sort!r}: one of {', '.join(COLUMNS)}")
        if workers is not None and workers < 1:
            raise GridError("--workers must be at least 1")
        series = load_bars(args.data)
        options = {
            "balances": {quote_of(series.symbol): non_negative_decimal(args.cash, "--cash")},
            "fee_rate": non_negative_decimal(args.fee, "--fee"),
            "slippage": non_negative_decimal(args.slippage, "--slippage"),
        }
        result = sweep(
            args.strategy,
            series,
            grid,
            strategies_dir=args.strategies_dir,
            executor="inline" if args.inline else "processes",
            workers=workers,
            scheduler=scheduler,
            progress=False if args.no_progress else None,
            **options,
        )
    except (StrategyNotFound, StrategyLoadError, StrategyDefinitionError) as exc:
        return _usage(str(exc))
    except (GridError, ValueError, OSError) as exc:
        return _usage(str(exc))
    print(f"{spec.name}: {len(result.rows)} combinations on {result.executor}")
    print(result.text(args.sort))
    if args.csv is not None:
        with args.csv.open("w", newline="") as handle:
            records = result.records()
            writer = csv.DictWriter(handle, fieldnames=list(records[0]) if records else [])
            writer.writeheader()
            writer.writerows(records)
    if args.heatmap is not None:
        x, y = list(grid)
        result.heatmap(x, y, args.sort).savefig(args.heatmap)
    for row in result.failed:
        print(f"failed: {row.params}: {row.error}", file=sys.stderr)
    return EXIT_FAILED if result.failed else EXIT_OK


def _usage(message: str) -> int:
    print(f"trio-trade sweep: {message}", file=sys.stderr)
    return EXIT_USAGE
