"""The simulated market's price path and its klines: deterministic, stateless, O(1) per price.

Rules this module keeps:

* The price of a symbol is a pure function of ``(seed, symbol, t_ms)``. At each whole minute it
  equals ``trading.exchanges.sim.SimulatedMarket``'s price for the same seed (slow waves plus minute
  noise), rounded to the symbol's tick; between two minutes it moves in a straight line. So two runs
  with the same seed see the same market, and any bar can be computed without replaying history.
* Because the path is straight between minute knots, the highest and lowest price over any time
  range lies on its ends or on a knot inside it: a bar's high and low are exact (no sampling), and
  every price the matching engine ever trades a resting order against lies inside the bar that
  contains it. Rounding to the tick is monotone: rounded extremes are extremes of rounded prices.
* A bar covers ``[open_ms, close_ms]`` with ``close_ms = open_ms + interval - 1`` (Binance's
  ``closeTime``); its close is the price at ``close_ms``. A partial bar up to ``upto_ms`` has the
  close ``price(upto_ms)`` and the high and low so far; the bar at ``upto_ms = close_ms`` is the
  closed bar, so an ``x: false`` update never contradicts the ``x: true`` one that follows.
* Volume is synthetic (a rate per minute that grows with the minute's price jump, prorated to
  the millisecond); it grows with ``upto_ms`` and does not include the account's own trades.
* Bars are aligned to the Unix epoch, as ``trading.core.bars`` aligns them (weekly bars therefore
  open on Thursdays, not Mondays as on Binance).
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Mapping
from decimal import Decimal

import attrs

from trading.core.bars import Interval
from trading.simulator.symbols import DEFAULT_SYMBOLS, INVALID_SYMBOL, SimError, SymbolRules

__all__ = ["DEFAULT_PRICES", "KlineRow", "PricePath"]

# Typical prices in the quote asset; BTCUSDT, ETHUSDT and SOLUSDT as in trading.exchanges.sim.
DEFAULT_PRICES: Mapping[str, float] = {
    "BTCUSDT": 60_000.0,
    "ETHUSDT": 3_000.0,
    "SOLUSDT": 150.0,
    "BNBUSDT": 600.0,
    "XRPUSDT": 0.6,
    "DOGEUSDT": 0.15,
    "ETHBTC": 0.05,
}
# The same waves and noise as trading.exchanges.sim (kept in step by a test).
_WAVES = ((3.7 * 3600, 0.006), (9.1 * 3600, 0.012), (27.0 * 3600, 0.02), (5.3 * 86400, 0.04))
_NOISE = 0.0015
_MASK64 = (1 << 64) - 1
_MINUTE_MS = 60_000
# Synthetic volume: quote turnover per minute, as a multiple of the symbol's typical price.
_QUOTE_PER_MINUTE = 2_000_000.0
_BLOCKS = (60, 1440)  # cached knot blocks: hours and days, in minutes
_CACHE_LIMIT = 500_000


def unit(seed: int, k: int) -> float:
    """A deterministic uniform number in [-1, 1) for key ``k`` (splitmix64)."""
    z = (seed + 0x9E3779B97F4A7C15 * (k + 1)) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return (z / 2**63) - 1.0


def _weight_of(noise: float) -> float:
    """A minute's volume rate (mean 1) from its noise draw: busy minutes are the jumpy ones."""
    return 0.4 + 1.2 * abs(noise)


@attrs.frozen(slots=True)
class KlineRow:
    """One kline as ``/api/v3/klines`` serves it; ``trades`` is a synthetic count."""

    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_ms: int
    quote_volume: Decimal
    trades: int
    taker_base: Decimal
    taker_quote: Decimal
    base_precision: int = 8
    quote_precision: int = 8

    def to_json(self) -> list[object]:
        """Binance's 12-element row: times and count as integers, decimals as strings."""
        p, q = self.quote_precision, self.base_precision
        return [
            self.open_ms,
            f"{self.open:.{p}f}",
            f"{self.high:.{p}f}",
            f"{self.low:.{p}f}",
            f"{self.close:.{p}f}",
            f"{self.volume:.{q}f}",
            self.close_ms,
            f"{self.quote_volume:.{p}f}",
            self.trades,
            f"{self.taker_base:.{q}f}",
            f"{self.taker_quote:.{p}f}",
            "0",
        ]

    def to_stream(
        self, symbol: str, interval: Interval, closed: bool, event_ms: int
    ) -> dict[str, object]:
        """The ``<symbol>@kline_<interval>`` event (unwrapped; ``/stream`` wraps it)."""
        p, q = self.quote_precision, self.base_precision
        first = self.open_ms // 1000 * 1000 if self.trades else -1
        return {
            "e": "kline",
            "E": event_ms,
            "s": symbol,
            "k": {
                "t": self.open_ms,
                "T": self.close_ms,
                "s": symbol,
                "i": interval.text,
                "f": first,
                "L": first + self.trades - 1 if self.trades else -1,
                "o": f"{self.open:.{p}f}",
                "c": f"{self.close:.{p}f}",
                "h": f"{self.high:.{p}f}",
                "l": f"{self.low:.{p}f}",
                "v": f"{self.volume:.{q}f}",
                "n": self.trades,
                "x": closed,
                "q": f"{self.quote_volume:.{p}f}",
                "V": f"{self.taker_base:.{q}f}",
                "Q": f"{self.taker_quote:.{p}f}",
                "B": "0",
            },
        }


class _Symbol:
    """Per-symbol constants of the path (seeded phases, tick as float, typical price)."""

    __slots__ = ("base", "phases", "rules", "seed", "step_f", "tick_f", "waves")

    def __init__(self, seed: int, rules: SymbolRules, base: float) -> None:
        digest = hashlib.blake2b(f"{seed}:{rules.symbol}".encode(), digest_size=8).digest()
        self.seed: int = struct.unpack("<Q", digest)[0]
        self.phases = tuple(math.pi * (unit(self.seed, -i - 1) + 1.0) for i in range(len(_WAVES)))
        # (radians per minute, amplitude, phase) of each wave
        self.waves = tuple(
            (2 * math.pi * 60.0 / period, amplitude, phase)
            for (period, amplitude), phase in zip(_WAVES, self.phases, strict=True)
        )
        self.rules = rules
        self.base = base
        self.tick_f = float(rules.tick_size)
        self.step_f = float(rules.step_size)


class PricePath:
    """Prices and klines for the listed symbols, a pure function of ``seed`` and time.

    ``base_prices`` gives each symbol's typical price; every symbol in ``symbols`` needs one.
    Knot values and hourly/daily extremes are cached (bounded), so long bars are cheap after the
    first request; the cache changes speed only, never a result.
    """

    def __init__(
        self,
        seed: int = 7,
        *,
        symbols: Mapping[str, SymbolRules] = DEFAULT_SYMBOLS,
        base_prices: Mapping[str, float] = DEFAULT_PRICES,
    ) -> None:
        missing = [s for s in symbols if s not in base_prices]
        if missing:
            raise ValueError(f"no typical price for {', '.join(missing)}: pass base_prices")
        self.seed = seed
        self.symbols: Mapping[str, SymbolRules] = dict(symbols)
        self._sym = {s: _Symbol(seed, r, base_prices[s]) for s, r in symbols.items()}
        self._knots: dict[tuple[str, int], float] = {}
        self._blocks: dict[tuple[str, int, int], tuple[float, float, float]] = {}

    def rules(self, symbol: str) -> SymbolRules:
        """The symbol's filters; -1121 "Invalid symbol." for one not listed."""
        try:
            return self.symbols[symbol]
        except KeyError:
            raise SimError(INVALID_SYMBOL.code, INVALID_SYMBOL.msg) from None

    def symbol_seed(self, symbol: str) -> int:
        """The symbol's own 64-bit seed (derived from ``seed`` and the name), for other streams."""
        return self._s(symbol).seed

    def _s(self, symbol: str) -> _Symbol:
        try:
            return self._sym[symbol]
        except KeyError:
            raise SimError(INVALID_SYMBOL.code, INVALID_SYMBOL.msg) from None

    # -- the path ---------------------------------------------------------------------------

    @staticmethod
    def _raw_knot(s: _Symbol, m: int, noise: float) -> float:
        """The path's value at minute ``m`` (the one formula; the caches only remember it).

        ``noise`` is ``unit(s.seed, m)``, passed in because the volume weight shares it.
        """
        x = _NOISE * noise
        for omega, amplitude, phase in s.waves:
            x += amplitude * math.sin(omega * m + phase)
        return s.base * math.exp(x)

    def _knot(self, s: _Symbol, symbol: str, m: int) -> float:
        key = (symbol, m)
        value = self._knots.get(key)
        if value is None:
            value = self._raw_knot(s, m, unit(s.seed, m))
            if len(self._knots) >= _CACHE_LIMIT:
                self._knots.clear()
            self._knots[key] = value
        return value

    def _value(self, s: _Symbol, symbol: str, t_ms: int) -> float:
        m, r = divmod(t_ms, _MINUTE_MS)
        a = self._knot(s, symbol, m)
        if r == 0:
            return a
        b = self._knot(s, symbol, m + 1)
        return a + (b - a) * (r / _MINUTE_MS)

    def ticks(self, symbol: str, t_ms: int) -> int:
        """The price at ``t_ms`` as a whole number of ticks (the engine's fast path)."""
        s = self._s(symbol)
        return max(1, round(self._value(s, symbol, t_ms) / s.tick_f))

    def price(self, symbol: str, t_ms: int) -> Decimal:
        """The price at ``t_ms``, rounded to the symbol's tick."""
        return self.ticks(symbol, t_ms) * self._s(symbol).rules.tick_size

    def _block(self, s: _Symbol, symbol: str, size: int, index: int) -> tuple[float, float, float]:
        """min, max of the knots ``[index*size, (index+1)*size)`` and their volume weights."""
        key = (symbol, size, index)
        hit = self._blocks.get(key)
        if hit is None:
            first = index * size
            if size == _BLOCKS[0]:
                raw, seed = self._raw_knot, s.seed
                noises = [unit(seed, m) for m in range(first, first + size)]
                values = [
                    raw(s, m, u) for m, u in zip(range(first, first + size), noises, strict=True)
                ]
                weights = sum(_weight_of(u) for u in noises)
                hit = (min(values), max(values), weights)
            else:
                small = _BLOCKS[0]
                parts = [
                    self._block(s, symbol, small, first // small + i) for i in range(size // small)
                ]
                hit = (min(p[0] for p in parts), max(p[1] for p in parts), sum(p[2] for p in parts))
            if len(self._blocks) >= _CACHE_LIMIT:
                self._blocks.clear()
            self._blocks[key] = hit
        return hit

    def _weight(self, s: _Symbol, m: int) -> float:
        """Minute ``m``'s volume rate, relative (mean 1)."""
        return _weight_of(unit(s.seed, m))

    def _knot_stats(self, s: _Symbol, symbol: str, m0: int, m1: int) -> tuple[float, float, float]:
        """min, max and summed volume weight of the knots/minutes ``m0 .. m1 - 1``."""
        lo, hi, weight = math.inf, -math.inf, 0.0
        m = m0
        while m < m1:
            for size in reversed(_BLOCKS):
                if m % size == 0 and m + size <= m1:
                    b = self._block(s, symbol, size, m // size)
                    lo, hi, weight = min(lo, b[0]), max(hi, b[1]), weight + b[2]
                    m += size
                    break
            else:
                v = self._knot(s, symbol, m)
                lo, hi, weight = min(lo, v), max(hi, v), weight + self._weight(s, m)
                m += 1
        return lo, hi, weight

    def range_ticks(self, symbol: str, start_ms: int, end_ms: int) -> tuple[int, int]:
        """Lowest and highest price over ``[start_ms, end_ms]`` (inclusive), in ticks."""
        s = self._s(symbol)
        a, b = self._value(s, symbol, start_ms), self._value(s, symbol, end_ms)
        lo, hi = min(a, b), max(a, b)
        inner_first = start_ms // _MINUTE_MS + 1
        inner_end = -(-end_ms // _MINUTE_MS)  # knots strictly before end_ms's minute boundary
        if inner_first < inner_end:
            klo, khi, _ = self._knot_stats(s, symbol, inner_first, inner_end)
            lo, hi = min(lo, klo), max(hi, khi)
        return max(1, round(lo / s.tick_f)), max(1, round(hi / s.tick_f))

    def _volume(self, s: _Symbol, symbol: str, start_ms: int, end_ms: int) -> float:
        """Synthetic base volume traded in ``[start_ms, end_ms)``."""
        if end_ms <= start_ms:
            return 0.0
        m0, r0 = divmod(start_ms, _MINUTE_MS)
        m1, r1 = divmod(end_ms, _MINUTE_MS)
        if m0 == m1:
            weight = self._weight(s, m0) * (r1 - r0) / _MINUTE_MS
        else:
            weight = self._weight(s, m0) * (_MINUTE_MS - r0) / _MINUTE_MS
            weight += self._knot_stats(s, symbol, m0 + 1, m1)[2]
            weight += self._weight(s, m1) * r1 / _MINUTE_MS
        return weight * _QUOTE_PER_MINUTE / s.base

    # -- klines -------------------------------------------------------------------------------

    def kline(
        self, symbol: str, interval: Interval, open_ms: int, *, upto_ms: int | None = None
    ) -> KlineRow:
        """The bar opening at ``open_ms`` (aligned to the interval), partial up to ``upto_ms``.

        ``upto_ms`` None or at/after the bar's close gives the closed bar. ``ValueError`` if
        ``open_ms`` is not aligned or ``upto_ms`` is before the open.
        """
        s = self._s(symbol)
        length = interval.seconds * 1000
        if open_ms % length:
            raise ValueError(f"{open_ms} is not the open of a {interval.text} bar")
        close_ms = open_ms + length - 1
        end = close_ms if upto_ms is None else min(upto_ms, close_ms)
        if end < open_ms:
            raise ValueError(f"upto_ms {upto_ms} is before the bar's open {open_ms}")
        rules = s.rules
        tick = rules.tick_size
        lo, hi = self.range_ticks(symbol, open_ms, end)
        o, c = self.ticks(symbol, open_ms), self.ticks(symbol, end)
        volume_f = self._volume(s, symbol, open_ms, end + 1)
        steps = round(volume_f / s.step_f)
        volume = steps * rules.step_size
        mean = (o + hi + lo + c) / 4 * s.tick_f
        quote = volume_f * mean
        taker = 0.45 + 0.1 * (unit(s.seed ^ 0x7A4E, open_ms // 1000) + 1.0) / 2
        places = Decimal(1).scaleb(-rules.quote_precision)
        return KlineRow(
            open_ms=open_ms,
            open=o * tick,
            high=hi * tick,
            low=lo * tick,
            close=c * tick,
            volume=volume,
            close_ms=close_ms,
            quote_volume=Decimal(repr(quote)).quantize(places),
            trades=int(quote / (float(rules.min_notional) * 100)),
            taker_base=round(steps * taker) * rules.step_size,
            taker_quote=Decimal(repr(quote * taker)).quantize(places),
            base_precision=rules.base_precision,
            quote_precision=rules.quote_precision,
        )

    def klines(
        self,
        symbol: str,
        interval: Interval,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
        now_ms: int,
    ) -> list[KlineRow]:
        """``GET /api/v3/klines``: oldest first; the last row may be the still-open bar.

        Bars opening at or after ``start_ms`` and at or before ``end_ms`` and ``now_ms``; with
        no ``start_ms``, the latest ``limit`` of them. ``limit`` is clamped to 1..1000.
        """
        self._s(symbol)
        limit = min(max(limit, 1), 1000)
        length = interval.seconds * 1000
        last = now_ms // length * length
        if end_ms is not None:
            last = min(last, end_ms // length * length)
        if start_ms is not None:
            first = -(-start_ms // length) * length
            last = min(last, first + (limit - 1) * length)
        else:
            first = last - (limit - 1) * length
        return [
            self.kline(symbol, interval, t, upto_ms=now_ms if t + length - 1 > now_ms else None)
            for t in range(first, last + 1, length)
        ]
