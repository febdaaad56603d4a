"""The built-in simulated market: a deterministic price path, so a fresh install has data at once.

Prices are a pure function of (seed, symbol, time): a few slow waves (trends that moving averages
can cross on) plus interpolated minute noise. Any bar of any interval at any time can be computed
in O(1) with no state and no network, so two runs with the same seed see the same bars, and a
strategy asking for 500 bars of history gets them immediately.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Mapping, Sequence

from trading.core.bars import Bar, Interval
from trading.exchanges.base import UnknownSymbol

__all__ = ["SimulatedMarket"]

DEFAULT_PRICES: Mapping[str, float] = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0, "SOLUSDT": 150.0}
# (period in seconds, amplitude in log-price): trends over hours to days, as on a real market.
_WAVES = ((3.7 * 3600, 0.006), (9.1 * 3600, 0.012), (27.0 * 3600, 0.02), (5.3 * 86400, 0.04))
_NOISE = 0.0015
_MASK64 = (1 << 64) - 1
_SAMPLES_PER_BAR = 6


def _unit(seed: int, k: int) -> float:
    """A deterministic uniform number in [-1, 1) for knot ``k`` (splitmix64)."""
    z = (seed + 0x9E3779B97F4A7C15 * (k + 1)) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return (z / 2**63) - 1.0


class SimulatedMarket:
    """Bars on demand for a few symbols. ``prices`` maps symbol to its typical price."""

    def __init__(self, seed: int = 7, prices: Mapping[str, float] | None = None) -> None:
        self.seed = seed
        self._base = dict(prices or DEFAULT_PRICES)
        self._symbol_seed: dict[str, int] = {}
        self._phases: dict[str, tuple[float, ...]] = {}
        for symbol in self._base:
            digest = hashlib.blake2b(f"{seed}:{symbol}".encode(), digest_size=8).digest()
            sym_seed = struct.unpack("<Q", digest)[0]
            self._symbol_seed[symbol] = sym_seed
            self._phases[symbol] = tuple(
                math.pi * (_unit(sym_seed, -i - 1) + 1.0) for i in range(len(_WAVES))
            )

    @property
    def symbols(self) -> Sequence[str]:
        return tuple(self._base)

    def _check(self, symbol: str) -> None:
        if symbol not in self._base:
            known = ", ".join(self._base)
            raise UnknownSymbol(f"the simulated market has no symbol {symbol!r}; it lists {known}")

    def price(self, symbol: str, t: float) -> float:
        """The price at epoch time ``t``."""
        self._check(symbol)
        x = 0.0
        for (period, amplitude), phase in zip(_WAVES, self._phases[symbol], strict=True):
            x += amplitude * math.sin(2 * math.pi * t / period + phase)
        minute, frac = divmod(t / 60.0, 1.0)
        seed = self._symbol_seed[symbol]
        k = int(minute)
        x += _NOISE * ((1 - frac) * _unit(seed, k) + frac * _unit(seed, k + 1))
        return self._base[symbol] * math.exp(x)

    def bar(self, symbol: str, interval: Interval, open_time: float) -> Bar:
        step = interval.seconds / _SAMPLES_PER_BAR
        samples = [self.price(symbol, open_time + i * step) for i in range(_SAMPLES_PER_BAR + 1)]
        volume = 100.0 * (1.5 + _unit(self._symbol_seed[symbol] ^ 0xB0B, int(open_time)))
        return Bar(
            symbol=symbol,
            interval=interval,
            open_time=open_time,
            open=samples[0],
            high=max(samples),
            low=min(samples),
            close=samples[-1],
            volume=volume * interval.seconds / 60.0,
        )

    def bars(self, symbol: str, interval: Interval, *, end: float, limit: int) -> list[Bar]:
        self._check(symbol)
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        last_open = interval.last_close(end) - interval.seconds
        first_open = last_open - (limit - 1) * interval.seconds
        return [self.bar(symbol, interval, first_open + i * interval.seconds) for i in range(limit)]

    async def history(
        self, symbol: str, interval: Interval, *, end: float, limit: int
    ) -> list[Bar]:
        return self.bars(symbol, interval, end=end, limit=limit)
