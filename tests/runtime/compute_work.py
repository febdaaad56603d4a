"""Module-level work for worker processes (importable by name, as pickling needs)."""

from __future__ import annotations

import time
from pathlib import Path


def spin_and_tick(path: str, seconds: float) -> int:
    """Burn CPU for ``seconds``, appending a tick to ``path`` about every 50 ms."""
    ticks = 0
    end = time.monotonic() + seconds
    next_tick = time.monotonic()
    while time.monotonic() < end:
        if time.monotonic() >= next_tick:
            with Path(path).open("a") as f:
                f.write(".")
            ticks += 1
            next_tick += 0.05
    return ticks
