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
import logging
import math
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import trio

from trading.console import print_results, read_commands
from trading.core.bars import IntervalError, parse_duration
from trading.core.events import Event, StrategyFailed
from trading.core.ids import new_run_id
from trading.core.restart import RestartPolicy
from trading.exchanges.defaults import simulated
from trading.loader import StrategyNotFound, available, load
from trading.observers.log import LogObserver
from trading.observers.notifier import ConsoleNotifier
from trading.observers.queries import (
    FILL_COLUMNS,
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    format_table,
    read_fills,
    read_orders,
    read_positions,
)
from trading.observers.recorder import Recorder, RecorderError
from trading.observers.terminal import TerminalWriter
from trading.runtime.bus import Observer
from trading.runtime.clock import Clock, VirtualClock
from trading.runtime.runner import Runner
from trading.runtime.strategy import StrategyDefinitionError, StrategySpec

__all__ = ["main"]

log = logging.getLogger(__name__)
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_FORCED = 0, 1, 2, 130
# 2025-01-04 08:00 UTC: a stretch of the simulated history where sma_cross buys after about 2 s
# and sells after about 10 s, so a first run shows a whole round trip.
SIM_START = 1_735_977_600.0
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


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except IntervalError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-trade",
        description="Run trading strategies you can command at any moment.",
    )
    sub = parser.add_subparsers(
        dest="verb", required=True, metavar="{list,run,orders,fills,positions}"
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
        nargs="+",
        metavar="NAME",
        help="strategy file name, NAME:Class or module:Class",
    )
    p_run.add_argument("--strategies-dir", type=Path, default=Path("strategies"), help=dir_help)
    p_run.add_argument(
        "--for",
        dest="duration",
        type=_duration,
        metavar="DURATION",
        help="stop cleanly after this long (wall time), e.g. 30s, 5m, 2h",
    )
    p_run.add_argument(
        "--speed",
        type=_positive_float,
        help="simulated seconds per real second (default: one bar of the shortest interval per "
        "second, e.g. 900 for 15m bars); 1 runs in real time",
    )
    p_run.add_argument("--seed", type=int, default=7, help="simulated market seed (default 7)")
    p_run.add_argument(
        "--stop-timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="how long a stop may take as a whole: on_stop (at most half of it), cancelling "
        "open orders and the recorder flush share this deadline; what it cut short is named "
        "(default 10)",
    )
    p_run.add_argument(
        "--max-restarts",
        type=_count,
        default=RestartPolicy().max_restarts,
        metavar="N",
        help="restarts of a failing strategy within an hour before it is left failed for good "
        f"(the run then exits with status 1; default {RestartPolicy().max_restarts})",
    )
    p_run.add_argument(
        "--db",
        type=Path,
        default=DEFAULT_DB,
        help=f"SQLite file recording orders, fills, positions and commands (default {DEFAULT_DB})",
    )
    p_run.add_argument(
        "--no-db", action="store_true", help="record nothing (the console notifier still prints)"
    )
    p_run.add_argument(
        "-v", "--verbose", action="store_true", help="log every event and state change"
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verb == "list":
        return _list(args.strategies_dir)
    if args.verb in TABLES:
        return _table(args.verb, args.db, args.strategy)
    return _run(args)


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


def _run(args: argparse.Namespace) -> int:
    specs: list[StrategySpec] = []
    for reference in args.strategies:
        try:
            specs.append(load(reference, args.strategies_dir))
        except (StrategyNotFound, StrategyDefinitionError) as exc:
            print(f"trio-trade: {exc}", file=sys.stderr)
            return EXIT_USAGE
    names = [spec.name for spec in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        print(f"trio-trade: {', '.join(duplicates)} named more than once", file=sys.stderr)
        return EXIT_USAGE
    out = TerminalWriter.for_fd(sys.stdout.fileno(), name="stdout")
    err = TerminalWriter.for_fd(sys.stderr.fileno(), name="stderr")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=err,
    )
    if not args.verbose:
        logging.getLogger("trading.observers.log").setLevel(logging.WARNING)
    try:
        return _run_specs(args, specs, out, err)
    finally:
        # Bounded: a terminal nobody reads must not keep the process from ending.
        out.drain(1.0)
        err.drain(1.0)


def _run_specs(
    args: argparse.Namespace, specs: list[StrategySpec], out: TerminalWriter, err: TerminalWriter
) -> int:
    speed = args.speed or float(min(spec.interval.seconds for spec in specs))
    # The simulated market replays a fixed stretch of its deterministic history, so every run of
    # the same command shows the same bars and signals.
    clock: Clock = VirtualClock(start=SIM_START, speed=speed)
    try:
        return trio.run(_serve, specs, clock, args, out, err)
    except KeyboardInterrupt:
        return EXIT_FORCED


class _FailureWatch:
    """A lossless observer noting whether any strategy failed for good during the run (exit 1),
    even if it was later resumed or stopped: ``given_up`` at the end would miss those."""

    name = "failure-watch"
    lossless = True

    def __init__(self) -> None:
        self.gave_up: set[str] = set()

    async def handle(self, batch: Sequence[tuple[int, Event]]) -> None:
        for _, event in batch:
            if isinstance(event, StrategyFailed) and event.restart_in is None:
                self.gave_up.add(event.strategy)

    async def aclose(self) -> None:
        pass


async def _serve(
    specs: list[StrategySpec],
    clock: Clock,
    args: argparse.Namespace,
    out: TerminalWriter,
    err: TerminalWriter,
) -> int:
    # Signals are caught from the first instant, so a Ctrl-C during start-up also stops cleanly.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        market, exchange = simulated(clock, seed=args.seed)
        shortest = min(specs, key=lambda s: s.interval.seconds).interval
        pace = shortest.seconds / getattr(clock, "speed", 1.0)
        log.info(
            "simulated market (seed %d) from %s: one %s bar every %.3gs of real time; "
            "type 'help' for commands",
            args.seed,
            f"{dt.datetime.fromtimestamp(clock.now(), tz=dt.UTC):%Y-%m-%d %H:%M} UTC",
            shortest,
            pace,
        )
        exit_code = EXIT_OK
        watch = _FailureWatch()
        observers: list[Observer] = [LogObserver(), ConsoleNotifier(err), watch]
        # One run id: the recorder keys its rows by the id that ends every client order id.
        run_id = new_run_id()
        if not args.no_db:
            try:
                observers.append(Recorder(args.db, run_id=run_id))
            except (RecorderError, OSError, sqlite3.Error) as exc:
                log.error("cannot record into %s: %s", args.db, exc)
                return EXIT_USAGE
            log.info("recording into %s (see: trio-trade orders --db %s)", args.db, args.db)
        async with (
            trio.open_nursery() as nursery,
            Runner(
                clock=clock,
                market=market,
                exchange=exchange,
                stop_timeout=args.stop_timeout,
                observers=observers,
                restart_policy=RestartPolicy(max_restarts=args.max_restarts),
                run_id=run_id,
            ) as runner,
        ):
            starting = trio.CancelScope()  # a signal during start-up cancels the rest of it
            # Set once a signal's `stop all` printed its replies: the run waits for them (its
            # strategies end before that stop's single flush is done and its replies printed).
            reported = trio.Event()
            nursery.start_soon(_handle_signals, signals, runner, out, starting, reported)
            with starting:
                for spec in specs:
                    try:
                        await runner.add(spec.cls(), name=spec.name)
                    except Exception as exc:
                        log.error("%s could not start: %s: %s", spec.name, type(exc).__name__, exc)
                        exit_code = EXIT_FAILED
            if not runner.names():
                nursery.cancel_scope.cancel()
                return EXIT_FAILED
            nursery.start_soon(read_commands, runner, out)
            with trio.move_on_after(args.duration if args.duration is not None else math.inf):
                await runner.wait_idle()
            if args.duration is not None and not _all_finished(runner):
                log.info("--for %gs elapsed: stopping", args.duration)
            print_results(out, await runner.stop_all(source="cli"))
            if starting.cancel_called:  # a signal's stop all is under way: let it report
                with trio.move_on_after(args.stop_timeout + 1):
                    await reported.wait()
            if any(runner[name].given_up for name in runner.names()):
                exit_code = EXIT_FAILED
            nursery.cancel_scope.cancel(reason="run finished")
        # The bus has drained every observer by now, the watch included.
        if watch.gave_up:
            log.error("failed for good during the run: %s", ", ".join(sorted(watch.gave_up)))
            exit_code = EXIT_FAILED
        return exit_code


def _all_finished(runner: Runner) -> bool:
    return all(runner[name].finished.is_set() for name in runner.names())


async def _handle_signals(
    signals: AsyncIterator[int],
    runner: Runner,
    out: TerminalWriter,
    starting: trio.CancelScope,
    reported: trio.Event,
) -> None:
    count = 0
    async for signum in signals:
        count += 1
        if count == 1:
            log.warning("%s: stopping every strategy (again to force)", signal.Signals(signum).name)
            starting.cancel(reason="signal during start-up")
            runner.nursery.start_soon(_stop_and_report, runner, out, reported)
        else:
            log.error("forced exit: on_stop and in-flight work abandoned")
            # Bounded, like every exit: a stalled terminal does not hold a forced exit.
            await trio.to_thread.run_sync(out.drain, 0.5, abandon_on_cancel=True)
            os._exit(EXIT_FORCED)


async def _stop_and_report(runner: Runner, out: TerminalWriter, reported: trio.Event) -> None:
    try:
        print_results(out, await runner.stop_all(source="signal"))
    finally:
        reported.set()
