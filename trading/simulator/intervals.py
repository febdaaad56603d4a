"""Binance's kline intervals as the simulator serves them. Sans-IO, no dependencies.

Intervals of fixed length only: ``1M`` (a calendar month) is not simulated and is refused like any
unknown interval (-1120 on REST, an error reply on SUBSCRIBE).
"""

from __future__ import annotations

from typing import Final

__all__ = ["INTERVAL_MS"]

INTERVAL_MS: Final[dict[str, int]] = {
    "1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000,
    "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000,
    "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000,
    "3d": 259_200_000, "1w": 604_800_000,
}  # fmt: skip
