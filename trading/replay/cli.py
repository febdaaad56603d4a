"""``trio-trade backtest NAME --data FILE``: replay a bar file through a strategy, print a summary.

The rules this module keeps:

* The strategy is found as ``trio-trade run`` finds it (:func:`trading.loader.load`), and it
  runs through :func:`trading.replay.replay`: the same code as a live run.
* ``--at "WHEN COMMAND"`` schedules an operator's command. ``WHEN`` is a bar index (``120``,
  counted from the first bar of the file), an ISO time in UTC (``2025-01-03T10:00``) or epoch
  seconds (``1735689600.5``); the rest of the text is the command, as typed at ``run``.
* Exit status: 0 the replay ran; 1 the strategy failed (its error is printed); 2 a usage error
  (a bad argument, a strategy that does not load, a data file that cannot be read — the message
  names the file and the line). Nothing is written but the summary (standard output) and the
  errors and the progress bar (standard error, a terminal only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from trading.arguments import add_cost_arguments, non_negative_decimal

__all__ = ["add_parser", "parse_at", "run"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``backtest`` verb to ``trio-trade``'s subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "backtest",
        help="replay a bar file through a strategy and print what it did",
        description=(
            "Replay historical bars through a strategy on the same code as 'run' (runner, "
            "commands, trade engine, paper broker), on a clock that jumps from close to close. "
            "Data: Binance's kline CSVs (e.g. BTCUSDT-1m-2025-01.csv or its .zip), a plain "
            "OHLCV CSV with a header, or Parquet. The strategy runs on the file's symbol and "
            "interval. Market orders fill at the bar's close worsened by --slippage; limit "
            "orders when a later bar's range reaches them."
        ),
        epilog=(
            "examples:\n"
            "  trio-trade backtest sma_cross --data BTCUSDT-1m-2025-01.csv\n"
            "  trio-trade backtest sma_cross --data bars.csv --symbol BTCUSDT --set fast=8 \\\n"
            '      --at "2000 pause sma_cross" --at "2025-01-03T00:00 resume sma_cross"\n'
            "exit status: 0 the replay ran; 1 the strategy failed; 2 a usage error."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("strategy", metavar="NAME", help="a strategy, as 'trio-trade list' shows")
    parser.add_argument("--data", type=Path, required=True, metavar="FILE", help="the bar file")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a strategy parameter, as 'set' takes it (repeat for more)",
    )
    parser.add_argument(
        "--at",
        action="append",
        default=[],
        metavar='"WHEN COMMAND"',
        help="a command at a bar index, an ISO UTC time or epoch seconds (repeat for more)",
    )
    parser.add_argument("--symbol", help="the data's symbol, when the file name does not say")
    parser.add_argument("--interval", help="the data's interval (1m, 15m, 1h, ...) if not named")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="fill gaps and drop identical duplicate rows (each repair is listed) instead of "
        "refusing the file",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        metavar="BARS",
        help="bars given as history only before the first compute (default 100)",
    )
    add_cost_arguments(parser)
    parser.add_argument(
        "--strategies-dir",
        type=Path,
        default=Path("strategies"),
        help="folder of strategy files (default: ./strategies)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar, even on a terminal"
    )
    return parser


def parse_at(text: str) -> tuple[float | int, str]:
    """``"WHEN COMMAND"`` -> ``(bar index or epoch time, command)``; ValueError naming it."""
    when, _, command = text.strip().partition(" ")
    if not command.strip():
        raise ValueError(f"--at {text!r}: expected 'WHEN COMMAND', e.g. '120 pause sma_cross'")
    if when.lstrip("-").isdigit():
        return int(when), command.strip()
    try:
        return float(when), command.strip()
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(when)
    except ValueError:
        raise ValueError(
            f"--at {text!r}: {when!r} is not a bar index, an ISO time (2025-01-03T10:00) or "
            "epoch seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp(), command.strip()


def run(args: argparse.Namespace) -> int:
    """Run the ``backtest`` verb; the exit status (see the module docstring)."""
    from trading.data import load_bars
    from trading.loader import StrategyLoadError, StrategyNotFound, load
    from trading.replay.session import replay
    from trading.runtime.strategy import StrategyDefinitionError

    try:
        spec = load(args.strategy, args.strategies_dir)
    except (StrategyNotFound, StrategyLoadError, StrategyDefinitionError) as exc:
        return _usage(str(exc))
    try:
        commands = [parse_at(text) for text in args.at]
        params: dict[str, str] = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"--set {item!r}: expected KEY=VALUE")
            params[key.strip()] = value.strip()
        cash = non_negative_decimal(args.cash, "--cash")
        fee = non_negative_decimal(args.fee, "--fee")
        slippage = non_negative_decimal(args.slippage, "--slippage")
        series = load_bars(
            args.data, symbol=args.symbol, interval=args.interval, repair=args.repair
        )
    except (OSError, ValueError, ImportError) as exc:
        return _usage(str(exc))
    for repair in getattr(series, "repairs", ()):
        print(f"repaired: {repair}", file=sys.stderr)
    try:
        result = replay(
            spec.cls,
            series.bars,
            name=spec.name,
            params=params,
            commands=commands,
            balances={_quote(series.symbol): cash},
            fee_rate=fee,
            slippage=slippage,
            warmup=args.warmup,
            progress=False if args.no_progress else None,
        )
    except ValueError as exc:
        return _usage(str(exc))
    except Exception as exc:  # the strategy's on_start raised: it never ran
        print(f"trio-trade backtest: {spec.name} did not start: {exc!r}", file=sys.stderr)
        return EXIT_FAILED
    print(result.summary())
    if result.equity and result.starting_equity > 0:  # the statistics, as trading.results has them
        from trading.results import summarise

        stats = summarise(
            result.equity,
            result.starting_equity,
            result.fills,
            interval=result.interval,
            quote=result.quote,
        )
        shown = ("bars", "equity")  # the summary above has them
        print("\n".join(line for line in stats.lines() if not line.startswith(shown)))
    return EXIT_FAILED if result.error else EXIT_OK


def _quote(symbol: str) -> str:
    from trading.replay.session import quote_of

    return quote_of(symbol)


def _usage(message: str) -> int:
    print(f"trio-trade backtest: {message}", file=sys.stderr)
    return EXIT_USAGE
