"""``trio-trade config init|show`` and the ``--config`` of ``run``: which file, and what it means
for the run's arguments.

Rules it keeps: a configuration problem is exit status 2 with one line on standard error naming
it (never a traceback); ``config init`` never overwrites a file without ``--force``; ``config show``
masks every secret; an explicit ``--config`` that does not exist is an error, while the default
``./trio-trade.toml`` is only read when it exists.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from trading.config import Config, ConfigError, default_config, load_config, merge_flags, render
from trading.config_example import EXAMPLE

__all__ = ["DEFAULT_CONFIG", "add_config_option", "add_parser", "resolve_run_args", "run"]

DEFAULT_CONFIG = Path("trio-trade.toml")
EXIT_OK, EXIT_USAGE = 0, 2


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help=f"configuration file (default ./{DEFAULT_CONFIG} if it exists); flags override it",
    )


def add_parser(sub: Any) -> None:
    """Add ``config`` (with ``init`` and ``show``) to the ``trio-trade`` subparsers ``sub``."""
    p_config = sub.add_parser("config", help="write or show the configuration file")
    verbs = p_config.add_subparsers(dest="config_verb", required=True, metavar="{init,show}")
    p_init = verbs.add_parser("init", help="write a commented example configuration")
    p_init.add_argument(
        "path", nargs="?", type=Path, default=DEFAULT_CONFIG, help=f"(default ./{DEFAULT_CONFIG})"
    )
    p_init.add_argument("--force", action="store_true", help="overwrite an existing file")
    p_show = verbs.add_parser("show", help="print the effective configuration, secrets masked")
    add_config_option(p_show)


def _fail(message: str) -> int:
    print(f"trio-trade: {message}", file=sys.stderr)
    return EXIT_USAGE


def resolve(path: Path | None) -> Config:
    """The configuration ``--config path`` (or its absence) means. Raises ConfigError."""
    if path is None:
        return load_config(DEFAULT_CONFIG) if DEFAULT_CONFIG.is_file() else default_config()
    if not path.exists():
        raise ConfigError(f"config file {path} not found (write one with: trio-trade config init)")
    return load_config(path)


def run(args: argparse.Namespace) -> int:
    """``config init`` or ``config show``; the exit status."""
    if args.config_verb == "init":
        target: Path = args.path
        if target.exists() and not args.force:
            return _fail(f"{target} exists; use --force to overwrite it")
        try:
            target.write_text(EXAMPLE, encoding="utf-8")
        except OSError as exc:
            return _fail(f"cannot write {target}: {exc}")
        print(f"wrote {target}", file=sys.stderr)
        return EXIT_OK
    try:
        config = resolve(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    sys.stdout.write(render(config))
    return EXIT_OK


def resolve_run_args(args: argparse.Namespace) -> argparse.Namespace | int:
    """``run``'s arguments with the configuration under them: flags given win, the file fills the
    rest. An exit status (2, after printing why) when the file is missing or bad."""
    try:
        config = merge_flags(resolve(args.config), args)
    except ConfigError as exc:
        return _fail(str(exc))
    if not config.strategies:
        where = args.config or DEFAULT_CONFIG
        return _fail(f"name a strategy to run, or list some under [[strategies]] in {where}")
    resolved = to_run_args(config, getattr(args, "duration", None))
    # The control socket: --socket (an error if unusable), else [control] socket (default_socket()
    # when unset; only a warning if another run holds it).
    resolved.socket = getattr(args, "socket", None)
    resolved.socket_default = config.control.socket
    resolved.no_socket = bool(getattr(args, "no_socket", False))
    resolved.verbose = max(resolved.verbose, int(getattr(args, "verbose", 0) or 0))  # -vv
    return resolved


def to_run_args(config: Config, duration: float | None = None) -> argparse.Namespace:
    """The ``argparse.Namespace`` :func:`trading.serve.run` reads, from ``config``."""
    ex = config.exchange
    environ = {}
    if ex.api_key:
        environ["BINANCE_API_KEY"] = ex.api_key
    if ex.api_secret:
        environ["BINANCE_API_SECRET"] = ex.api_secret
    return argparse.Namespace(
        strategies=[entry.name for entry in config.strategies],
        strategy_params=[dict(entry.params) for entry in config.strategies],
        strategy_isolate=[entry.isolate for entry in config.strategies],
        strategies_dir=Path(config.strategies_dir),
        duration=duration,
        speed=config.simulator.speed,
        seed=config.simulator.seed,
        exchange=ex.kind,
        symbol=list(ex.symbols) or None,
        live=ex.live,
        base_url=ex.base_url,
        ws_url=ex.ws_url,
        credentials_env=environ,
        stop_timeout=config.stop_timeout,
        max_restarts=config.max_restarts,
        db=Path(config.database.path),
        no_db=not config.database.enabled,
        verbose=int(config.logging.level == "DEBUG"),
        logfile=config.logging.file,
        log_format=config.logging.format,
        paper={
            "balances": dict(config.paper.balances),
            "fee_rate": config.paper.fee_rate,
            "slippage": config.paper.slippage,
        },
        config=config,
    )
