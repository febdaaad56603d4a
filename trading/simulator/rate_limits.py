"""Request weight and order counts, as Binance counts and punishes them. Sans-IO.

The rules this module keeps:

* Weight is counted per API key for requests that carry a valid key, per client IP otherwise,
  in fixed windows aligned to the wall-clock minute (as ``X-MBX-USED-WEIGHT-1M`` is). Every
  request is counted, refused ones included.
* When a request takes the minute past the limit it is refused with 429 and ``Retry-After``
  (seconds to the next minute). A client that sends again while told to wait is banned: 418 with
  ``Retry-After``, 120 s for the first ban and doubling for each further one (Binance says
  "2 minutes to 3 days"), capped at 3 days. A ban outlives the minute.
* Order counts (``X-MBX-ORDER-COUNT-10S`` / ``-1D``) are counted per key, not enforced.
* ``usage(key)`` gives the current minute's weight and the largest minute ever seen, which is
  what a test needs to prove a process never went over its budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs

__all__ = ["BAN_MAX_S", "BAN_START_S", "Verdict", "WeightLedger", "WeightUsage"]

BAN_START_S = 120
BAN_MAX_S = 3 * 86400


@attrs.frozen(slots=True)
class WeightUsage:
    """Weight used in the current minute, and the most ever used in one minute."""

    current: int
    max_seen: int


@attrs.frozen(slots=True)
class Verdict:
    """``status`` 200 means go ahead; 429 / 418 come with ``retry_after`` seconds."""

    status: int
    used: int
    retry_after: int = 0
    banned_until_ms: int = 0


@attrs.define(slots=True)
class _Account:
    minute: int = -1
    used: int = 0
    max_seen: int = 0
    told_to_wait_until: float = 0.0
    banned_until: float = 0.0
    bans: int = 0
    orders_10s: dict[int, int] = attrs.Factory(dict)
    orders_day: dict[int, int] = attrs.Factory(dict)


class WeightLedger:
    """Per-caller weight windows. ``now`` is wall-clock seconds (injectable for tests)."""

    def __init__(self, limit: int = 6000, now: Callable[[], float] | None = None) -> None:
        import time

        self.limit = limit
        self._now = now or time.time
        self._accounts: dict[str, _Account] = {}

    def _account(self, who: str, now: float) -> _Account:
        acc = self._accounts.setdefault(who, _Account())
        minute = math.floor(now / 60)
        if acc.minute != minute:
            acc.minute, acc.used = minute, 0
        return acc

    def charge(self, who: str, weight: int) -> Verdict:
        """Count ``weight`` for ``who`` and say whether the request may proceed."""
        now = self._now()
        acc = self._account(who, now)
        acc.used += weight
        acc.max_seen = max(acc.max_seen, acc.used)
        if now < acc.banned_until:
            return Verdict(
                418, acc.used, math.ceil(acc.banned_until - now), int(acc.banned_until * 1000)
            )
        if now < acc.told_to_wait_until:
            acc.bans += 1
            length = min(BAN_START_S * 2 ** (acc.bans - 1), BAN_MAX_S)
            acc.banned_until = now + length
            return Verdict(418, acc.used, length, int(acc.banned_until * 1000))
        if acc.used > self.limit:
            next_minute = (acc.minute + 1) * 60
            acc.told_to_wait_until = next_minute
            return Verdict(429, acc.used, max(1, math.ceil(next_minute - now)))
        return Verdict(200, acc.used)

    def used(self, who: str) -> int:
        """Weight used by ``who`` in the current minute (0 for a stranger)."""
        now = self._now()
        if who not in self._accounts:
            return 0
        return self._account(who, now).used

    def usage(self, who: str) -> WeightUsage:
        if who not in self._accounts:
            return WeightUsage(0, 0)
        acc = self._account(who, self._now())
        return WeightUsage(acc.used, acc.max_seen)

    def count_order(self, who: str) -> tuple[int, int]:
        """Count one new order; returns the counts for the 10-second window and the day."""
        now = self._now()
        acc = self._account(who, now)
        w10, day = math.floor(now / 10), math.floor(now / 86400)
        acc.orders_10s = {w10: acc.orders_10s.get(w10, 0) + 1}
        acc.orders_day = {day: acc.orders_day.get(day, 0) + 1}
        return acc.orders_10s[w10], acc.orders_day[day]

    def order_counts(self, who: str) -> tuple[int, int]:
        now = self._now()
        acc = self._accounts.get(who)
        if acc is None:
            return 0, 0
        return acc.orders_10s.get(math.floor(now / 10), 0), acc.orders_day.get(
            math.floor(now / 86400), 0
        )
