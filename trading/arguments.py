"""Command-line value types shared by ``trio-trade``'s verbs: each refuses a bad value with a
message naming it (argparse then exits 2 with the usage line)."""

from __future__ import annotations

import argparse
import math
from decimal import Decimal, InvalidOperation

from trading.core.bars import IntervalError, parse_duration

__all__ = [
    "add_cost_arguments",
    "count",
    "duration",
    "non_negative_decimal",
    "port",
    "positive_float",
]


def duration(text: str) -> float:
    """``30s``, ``5m``, ``2h``: seconds."""
    try:
        return parse_duration(text)
    except IntervalError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def count(text: str) -> int:
    """A whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number greater than 0, not {text}")
    return value


def port(text: str) -> int:
    """0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, not {value}")
    return value


def non_negative_decimal(value: str, what: str) -> Decimal:
    """``value`` as an exact Decimal (cash, a fee rate, a slippage); ValueError naming ``what``
    for text that is not a finite number >= 0."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{what} {value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"{what} {value!r} must be a finite number >= 0")
    return number


def add_cost_arguments(parser: argparse.ArgumentParser) -> None:
    """``--cash``, ``--fee`` and ``--slippage`` of a replay (backtest and sweep take the same),
    kept as text and read with :func:`non_negative_decimal` so the error names the flag."""
    parser.add_argument(
        "--cash", default="10000", metavar="AMOUNT", help="starting quote balance (10000)"
    )
    parser.add_argument("--fee", default="0.001", metavar="RATE", help="fee rate (0.001)")
    parser.add_argument(
        "--slippage", default="0.0005", metavar="RATE", help="slippage of market orders (0.0005)"
    )
