"""How times, spans and parameter values read in replies to operators. Core module, pure."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

__all__ = ["clock_time", "show", "span"]


def clock_time(when: float) -> str:
    return dt.datetime.fromtimestamp(when, tz=dt.UTC).strftime("%H:%M:%S UTC")


def span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def show(value: object) -> str:
    """Parameters as an operator would type them back: Decimal('0.01') reads as 0.01."""
    return str(value) if isinstance(value, Decimal | int | float | bool) else repr(value)
