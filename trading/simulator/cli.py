"""``trio-trade exchange-sim``: run the Binance-compatible simulator until Ctrl-C.

The rules this module keeps:

* Every bad value is refused before anything listens, with a message naming it, and exit
  status 2 (argparse's own convention); a port that cannot be bound is also status 2.
* The first Ctrl-C shuts down politely (``serverShutdown`` and close frames on every WebSocket,
  bounded) and exits 0; a second one forces the exit (130).
* A generated key pair is printed once at start, because the user needs it to connect; a key
  pair passed on the command line is not echoed back (only the key, never the secret).
"""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import string
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from trading.arguments import port, positive_float
from trading.simulator.intervals import INTERVAL_MS
from trading.simulator.symbols import DEFAULT_SYMBOLS

if TYPE_CHECKING:  # the server (trio, websockets, h11) is imported only to run it
    from trading.simulator.sim import ExchangeSim, SimConfig

__all__ = ["CCXT_HINT", "add_parser", "main", "run"]

EXIT_OK, EXIT_USAGE, EXIT_FORCED = 0, 2, 130

#: How to point ccxt's binance at the simulator (printed at start; the tests use the same).
CCXT_HINT = """\
trio-trade (another shell):
    BINANCE_API_KEY=KEY BINANCE_API_SECRET=SECRET trio-trade run sma_cross --exchange binance \\
        --live --base-url {base}
ccxt:
    ex = ccxt.binance({{"apiKey": KEY, "secret": SECRET, "options": {{
        "fetchMarkets": {{"types": ["spot"]}}, "fetchCurrencies": False, "fetchMargins": False}}}})
    ex.urls["api"]["public"] = ex.urls["api"]["private"] = "{base}/api/v3"
python-binance:
    client = Client(KEY, SECRET, ping=False); client.API_URL = "{base}/api"
binance-connector:  Spot(api_key=KEY, api_secret=SECRET, base_url="{base}")
binance-sdk-spot:   ConfigurationRestAPI(api_key=KEY, api_secret=SECRET, base_path="{base}")
"""


def _balance(text: str) -> tuple[str, Decimal]:
    asset, sep, amount = text.partition("=")
    if not sep or not asset.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected ASSET=AMOUNT, e.g. USDT=10000")
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r}: {amount!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the amount must be 0 or more")
    return asset.strip().upper(), value


def _symbol(text: str) -> str:
    symbol = text.strip().upper()
    if symbol not in DEFAULT_SYMBOLS:
        raise argparse.ArgumentTypeError(
            f"unknown symbol {text!r}; listed: {', '.join(DEFAULT_SYMBOLS)}"
        )
    return symbol


def _interval(text: str) -> str:
    if text not in INTERVAL_MS:
        raise argparse.ArgumentTypeError(f"bad interval {text!r}; one of {', '.join(INTERVAL_MS)}")
    return text


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``exchange-sim`` verb on ``parser.add_subparsers()``'s result."""
    p = subparsers.add_parser(
        "exchange-sim",
        help="run a local Binance-compatible exchange to test bots against",
        description=(
            "Serve a simulated Binance spot exchange on one port: REST under /api/v3, market "
            "streams at /ws/<stream> and /stream?streams=, the WebSocket API (user data stream) "
            "at /ws-api/v3, and fault switches at /_sim/faults. Prices follow a deterministic "
            "path (--seed); orders match against a synthetic order book. Ctrl-C stops it."
        ),
        epilog="exit status: 0 stopped by Ctrl-C; 2 a bad argument or a port in use; 130 forced",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=port, default=0, help="port (default 0: any free port)")
    p.add_argument("--api-key", help="the account's API key (default: a generated pair)")
    p.add_argument("--api-secret", help="the account's secret (with --api-key)")
    p.add_argument(
        "--balance", type=_balance, action="append", metavar="ASSET=AMOUNT",
        help="fund the account; repeatable (default USDT=10000 BTC=1)",
    )  # fmt: skip
    p.add_argument(
        "--symbol", type=_symbol, action="append", metavar="SYMBOL",
        help="list a symbol; repeatable (default BTCUSDT ETHUSDT; known: "
        + ", ".join(DEFAULT_SYMBOLS) + ")",
    )  # fmt: skip
    p.add_argument(
        "--interval", type=_interval, default="1m",
        help="the bar interval shown in the connection hints (every interval is served)",
    )  # fmt: skip
    p.add_argument(
        "--speed", type=positive_float, default=1.0,
        help="market seconds per real second (default 1: real time)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=7, help="price path seed (default 7)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every connection")
    return p  # type: ignore[no-any-return]


def _config(args: argparse.Namespace) -> tuple[SimConfig, bool]:
    from trading.simulator.sim import SimConfig

    if (args.api_key is None) != (args.api_secret is None):
        raise ValueError("give both --api-key and --api-secret, or neither (a pair is generated)")
    generated = args.api_key is None
    alphabet = string.ascii_letters + string.digits
    key = args.api_key or "".join(secrets.choice(alphabet) for _ in range(64))
    secret = args.api_secret or "".join(secrets.choice(alphabet) for _ in range(64))
    balances = dict(args.balance) if args.balance else {"USDT": Decimal(10000), "BTC": Decimal(1)}
    symbols = tuple(dict.fromkeys(args.symbol)) if args.symbol else ("BTCUSDT", "ETHUSDT")
    config = SimConfig(
        api_key=key, api_secret=secret, balances=balances, symbols=symbols, seed=args.seed,
        speed=args.speed, host=args.host, port=args.port,
    )  # fmt: skip
    return config, generated


def _banner(sim: ExchangeSim, args: argparse.Namespace, generated: bool) -> str:
    cfg = sim.config
    sym = cfg.symbols[0].lower()
    lines = [
        f"exchange-sim: {', '.join(cfg.symbols)} at speed {cfg.speed:g}, seed {cfg.seed}",
        f"  REST        {sim.base_url}/api/v3",
        f"  streams     {sim.ws_url}/ws/{sym}@kline_{args.interval}",
        f"              {sim.ws_url}/stream?streams={sym}@kline_{args.interval}",
        f"  user data   {sim.ws_url}/ws-api/v3  (userDataStream.subscribe.signature)",
        f"  faults      POST {sim.base_url}/_sim/faults",
        f"  API key     {cfg.api_key}",
    ]
    if generated:
        lines.append(f"  API secret  {cfg.api_secret}  (generated for this run)")
    balances = " ".join(f"{a}={v}" for a, v in cfg.balances.items())
    lines.append(f"  balances    {balances}")
    lines.append(CCXT_HINT.format(base=sim.base_url))
    lines.append("Ctrl-C to stop.")
    return "\n".join(lines)


async def _serve(config: SimConfig, args: argparse.Namespace, generated: bool) -> int:
    import trio

    from trading.simulator.sim import ExchangeSim

    sim = ExchangeSim(config)
    forced = False
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def serve_then_stop(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
                await sim.serve(task_status=task_status)
                nursery.cancel_scope.cancel(reason="exchange-sim: stopped")

            async def on_signals() -> None:
                nonlocal forced
                async for _ in signals:
                    if not forced and not sim.closing:
                        print("exchange-sim: stopping (Ctrl-C again to force)", file=sys.stderr)
                        await sim.aclose()
                    else:
                        forced = True
                        nursery.cancel_scope.cancel(reason="exchange-sim: forced")

            try:
                await nursery.start(serve_then_stop)
            except OSError as exc:
                print(f"trio-trade exchange-sim: cannot listen on {args.host}:{args.port}: "
                      f"{exc.strerror or exc}", file=sys.stderr)  # fmt: skip
                return EXIT_USAGE
            print(_banner(sim, args, generated), flush=True)
            nursery.start_soon(on_signals)
    return EXIT_FORCED if forced else EXIT_OK


def run(args: argparse.Namespace) -> int:
    """Run ``exchange-sim`` with parsed arguments; returns the exit status."""
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not args.verbose:
        logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        config, generated = _config(args)
    except ValueError as exc:
        print(f"trio-trade exchange-sim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    import trio

    try:
        return trio.run(_serve, config, args, generated)
    except KeyboardInterrupt:
        return EXIT_FORCED


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trading.simulator.cli``: the verb on its own, before the lead wires it in."""
    parser = argparse.ArgumentParser(prog="trio-trade")
    add_parser(parser.add_subparsers(dest="verb", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
