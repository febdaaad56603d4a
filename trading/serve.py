"""``trio-trade run``: the composition root of a run — which market, which exchange, which clock,
which observers — and the run itself (commands on standard input, signals, exit status).

Venues: the built-in simulated market with a paper broker (the default, nothing to configure), or
Binance (``--exchange binance``): its public market data with the paper broker (a dry run), or real
orders with ``--live``. ``--base-url``/``--ws-url`` point it at a testnet or at
``trio-trade exchange-sim``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Sequence

import attrs
import trio

from trading.console import print_results, read_commands
from trading.control.local import ControlSocketInUse, default_socket_path, serve_control
from trading.control.telegram import serve_telegram
from trading.control.telegram_run import notifying
from trading.core.events import Event, StrategyFailed
from trading.core.ids import new_run_id
from trading.core.params import ParamError, apply_params, validate_params
from trading.core.restart import RestartPolicy
from trading.isolation import isolate
from trading.loader import StrategyNotFound, load
from trading.observers.log import LogObserver
from trading.observers.notifier import ConsoleNotifier
from trading.observers.recorder import Recorder, RecorderError
from trading.observers.terminal import TerminalWriter
from trading.runtime.bus import Observer
from trading.runtime.clock import Clock, VirtualClock
from trading.runtime.runner import Runner
from trading.runtime.strategy import StrategyDefinitionError, StrategySpec
from trading.tui import TerminalView, wants_view
from trading.venue_setup import VenueUnavailable, open_venue

__all__ = ["EXIT_FAILED", "EXIT_FORCED", "EXIT_OK", "EXIT_USAGE", "SIM_START", "run"]

log = logging.getLogger("trading.cli")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_FORCED = 0, 1, 2, 130
# 2025-01-04 08:00 UTC: a stretch of the simulated history where sma_cross buys after about 2 s
# and sells after about 10 s, so a first run shows a whole round trip.
SIM_START = 1_735_977_600.0


def run(args: argparse.Namespace) -> int:
    """Run the strategies ``args`` names until they end, a signal or ``--for``; the exit status."""
    specs: list[StrategySpec] = []
    for reference in args.strategies:
        try:
            specs.append(load(reference, args.strategies_dir))
        except (StrategyNotFound, StrategyDefinitionError) as exc:
            print(f"trio-trade: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if getattr(args, "symbol", None):
        specs = [_on_symbols(spec, tuple(args.symbol)) for spec in specs]
    names = [spec.name for spec in specs]
    # Parameters from the configuration's [[strategies]], checked now as `set` would: all or none.
    params = dict(zip(names, getattr(args, "strategy_params", None) or [], strict=False))
    for spec in specs:
        if params.get(spec.name):
            try:
                validate_params(spec.cls(), params[spec.name])
            except ParamError as exc:
                print(f"trio-trade: {spec.name}: {exc}", file=sys.stderr)
                return EXIT_USAGE
    args.strategy_params = params
    # Strategies in their own processes: [[strategies]] isolate = true, or --isolate for all.
    flags = getattr(args, "strategy_isolate", None) or []
    isolated = {n for n, on in zip(names, flags, strict=False) if on}
    args.strategy_isolate = set(names) if getattr(args, "isolate", False) else isolated
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        print(f"trio-trade: {', '.join(duplicates)} named more than once", file=sys.stderr)
        return EXIT_USAGE
    # The live view when stdin and stdout are terminals (trading/tui); plain lines otherwise.
    view = None
    if wants_view(getattr(args, "plain", False), os.environ, sys.stdin, sys.stdout):
        view = TerminalView()
        out, err = view.out, view.err
    else:
        out = TerminalWriter.for_fd(sys.stdout.fileno(), name="stdout")
        err = TerminalWriter.for_fd(sys.stderr.fileno(), name="stderr")
    try:
        _set_up_logging(args, err)
    except OSError as exc:
        print(f"trio-trade: cannot write the log file: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _run_specs(args, specs, out, err, view)
    finally:
        # Bounded: a terminal nobody reads must not keep the process from ending.
        out.drain(1.0)
        err.drain(1.0)


class JsonLines(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the
    traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def _set_up_logging(args: argparse.Namespace, err: TerminalWriter) -> None:
    """-v: every event and state change; -vv: also HTTP requests and WebSocket connections;
    ``--logfile`` adds a file (appended) beside standard error; ``--log-format json``."""
    verbosity = int(getattr(args, "verbose", 0) or 0)
    text = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    formatter = JsonLines() if getattr(args, "log_format", None) == "json" else text
    handlers: list[logging.Handler] = [logging.StreamHandler(err)]
    logfile = getattr(args, "logfile", None)
    if logfile:
        handlers.append(logging.FileHandler(logfile, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
    logging.basicConfig(level=logging.DEBUG if verbosity else logging.INFO, handlers=handlers)
    if verbosity < 1:
        logging.getLogger("trading.observers.log").setLevel(logging.WARNING)
    if verbosity < 2:
        # One line per HTTP request or WebSocket frame is noise even at -v (-vv shows it).
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        logging.getLogger("websockets").setLevel(logging.WARNING)


def _run_specs(
    args: argparse.Namespace,
    specs: list[StrategySpec],
    out: TerminalWriter,
    err: TerminalWriter,
    view: TerminalView | None = None,
) -> int:
    """The run, on the venue ``args`` picks."""
    if args.exchange != "binance" and (args.live or args.symbol):
        flag = "--live" if args.live else "--symbol"
        print(f"trio-trade: {flag} needs --exchange binance", file=sys.stderr)
        return EXIT_USAGE
    if args.exchange == "binance" and args.live:
        from trading.exchanges.binance.rest import Credentials

        try:
            if Credentials.from_env(getattr(args, "credentials_env", os.environ)) is None:
                raise ValueError(
                    "--live needs API keys: set BINANCE_API_KEY and BINANCE_API_SECRET "
                    "(without --live, orders go to the paper broker)"
                )
        except ValueError as exc:
            print(f"trio-trade: {exc}", file=sys.stderr)
            return EXIT_USAGE
    clock: Clock | None = None
    if args.exchange == "sim":
        speed = args.speed or float(min(spec.interval.seconds for spec in specs))
        # The simulated market replays a fixed stretch of its deterministic history, so every
        # run of the same command shows the same bars and signals.
        clock = VirtualClock(start=SIM_START, speed=speed)
    try:
        return trio.run(_serve, specs, clock, args, out, err, view)
    except KeyboardInterrupt:
        return EXIT_FORCED
    except VenueUnavailable as exc:
        log.error("%s", exc)
        return EXIT_FAILED


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
    clock: Clock | None,
    args: argparse.Namespace,
    out: TerminalWriter,
    err: TerminalWriter,
    view: TerminalView | None = None,
) -> int:
    # Signals are caught from the first instant, so a Ctrl-C during start-up also stops cleanly.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        exit_code = EXIT_OK
        watch = _FailureWatch()
        observers: list[Observer] = [LogObserver(), ConsoleNotifier(err), watch]
        if view is not None:
            observers.append(view.observer)
        # One run id: the recorder keys its rows by the id that ends every client order id.
        run_id = new_run_id()
        if not args.no_db:
            try:
                observers.append(Recorder(args.db, run_id=run_id))
            except (RecorderError, OSError, sqlite3.Error) as exc:
                log.error("cannot record into %s: %s", args.db, exc)
                return EXIT_USAGE
            log.info("recording into %s (see: trio-trade orders --db %s)", args.db, args.db)
        telegram = getattr(getattr(args, "config", None), "telegram", None)
        async with (
            open_venue(args, specs, clock) as (clock, market, exchange),
            # Outside the nursery the run cancels when it ends, and around the Runner: it
            # flushes what the wind-down publishes (bounded by its own close timeout).
            notifying(telegram, observers),
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
                        strategy = spec.cls()
                        if changes := getattr(args, "strategy_params", {}).get(spec.name):
                            apply_params(strategy, changes)
                        if spec.name in getattr(args, "strategy_isolate", ()):
                            strategy = isolate(strategy)
                        await runner.add(strategy, name=spec.name)
                    except Exception as exc:
                        log.error("%s could not start: %s: %s", spec.name, type(exc).__name__, exc)
                        exit_code = EXIT_FAILED
            if not runner.names():
                nursery.cancel_scope.cancel()
                return EXIT_FAILED
            # After the strategies: a signal during start-up must find them started.
            if not await _control_socket(args, runner, nursery):
                print_results(out, await runner.stop_all(source="cli"))
                nursery.cancel_scope.cancel()
                return EXIT_USAGE
            if telegram is not None:  # no token: nothing runs; a refused one: one error line
                await nursery.start(serve_telegram, runner, telegram)
            if view is None:
                nursery.start_soon(read_commands, runner, out)
            else:
                nursery.start_soon(view.run, runner)
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


async def _control_socket(args: argparse.Namespace, runner: Runner, nursery: trio.Nursery) -> bool:
    """Serve ``trio-trade ctl`` unless ``--no-socket``; False if the ``--socket`` given is
    unusable (a default path in use by another run only costs this run its socket)."""
    if args.no_socket:
        return True
    path = args.socket or getattr(args, "socket_default", None) or default_socket_path()
    try:
        await nursery.start(serve_control, runner, path)
    except (ControlSocketInUse, OSError) as exc:
        if args.socket:
            log.error("cannot serve the control socket: %s", exc)
            return False
        log.warning("no control socket: %s", exc)
    return True


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


def _on_symbols(spec: StrategySpec, symbols: tuple[str, ...]) -> StrategySpec:
    """The strategy run on ``symbols`` instead of the ones its class names."""
    cls = type(
        spec.cls.__name__, (spec.cls,), {"symbols": symbols, "__module__": spec.cls.__module__}
    )
    return attrs.evolve(spec, cls=cls, symbols=symbols)
