"""The request-weight budget: one per process and IP, shared by every client and every API key.

Binance counts request weight per minute and answers 429, then 418 (an IP ban of minutes to days)
to clients that keep going. Peers that run one bot per process get banned when users run several
strategies on one key; here every ``BinanceRest`` (every strategy) on a key reserves from one
budget — and since Binance counts REQUEST_WEIGHT per IP, so does every other key and the unsigned
market-data calls to the same base URL. The rules this module keeps:

* Sans-IO core (:class:`WeightWindow`), fed monotonic seconds; a thin Trio front-end
  (:class:`WeightBudget`) that sleeps with ``trio.sleep_until`` (never polls).
* Reserve before sending. A reservation is granted at the earliest time ``t`` (never earlier than
  ``now``, than any earlier reservation — first come, first served — or than a ban's end) at
  which the weight in the sliding window ``(t - 60, t]`` plus the new weight stays within the
  limit. A sliding window is stricter than Binance's fixed minutes, so the server's count of a
  minute can never exceed the limit because of us (a property test checks the window).
* The server's count wins when it is higher: ``observe`` reads ``X-MBX-USED-WEIGHT-1M`` and, if the
  server counted more than we sent in the last minute (another process, the same IP), books the
  difference as used now.
* A 429 / 418 bans the whole budget: ``ban_until`` makes every user of it (every key) wait out
  ``Retry-After``, including reservations already granted for a time inside the ban (they are
  taken back and granted again after it).
* A budget belongs to one ``trio.run`` at a time: trio's clock has a new origin in every run, so
  a budget first used by a later run starts with an empty window.
* Default limit: 6000 per minute (Binance spot's REQUEST_WEIGHT) × 0.8 safety margin.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Mapping
from typing import Final

import attrs
import trio

__all__ = [
    "DEFAULT_LIMIT",
    "ENDPOINT_WEIGHTS",
    "SAFETY_MARGIN",
    "WINDOW",
    "Reservation",
    "WeightBudget",
    "WeightWindow",
    "budget_for",
    "used_weight",
]

logger = logging.getLogger(__name__)

WINDOW: Final = 60.0
BINANCE_LIMIT: Final = 6000
SAFETY_MARGIN: Final = 0.8
DEFAULT_LIMIT: Final = int(BINANCE_LIMIT * SAFETY_MARGIN)
USED_WEIGHT_HEADER: Final = "x-mbx-used-weight-1m"

#: Weight per (method, path), from Binance's spot REST documentation.
ENDPOINT_WEIGHTS: Final[Mapping[tuple[str, str], int]] = {
    ("GET", "/api/v3/ping"): 1,
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/klines"): 2,
    ("GET", "/api/v3/ticker/price"): 2,  # 4 without a symbol
    ("POST", "/api/v3/order"): 1,
    ("DELETE", "/api/v3/order"): 1,
    ("GET", "/api/v3/order"): 4,
    ("GET", "/api/v3/openOrders"): 6,  # 80 without a symbol: see OPEN_ORDERS_ALL_WEIGHT
    ("GET", "/api/v3/account"): 20,
    ("GET", "/api/v3/myTrades"): 20,
    ("GET", "/api/v3/allOrders"): 20,
}
OPEN_ORDERS_ALL_WEIGHT: Final = 80


@attrs.frozen(slots=True, eq=False)
class Reservation:
    """A grant of ``weight`` at monotonic time ``at``; identity is the ticket."""

    at: float
    weight: int


class WeightWindow:
    """The sans-IO budget: reservations on a sliding one-minute window, a ban, observations.

    Every method takes ``now`` (monotonic seconds) and never blocks or reads a clock.
    """

    def __init__(self, limit: int = DEFAULT_LIMIT, window: float = WINDOW) -> None:
        if limit <= 0 or window <= 0:
            raise ValueError(f"weight limit and window must be positive, got {limit}, {window}")
        self.limit = limit
        self.window = window
        self.banned_until = float("-inf")
        self.last_used_header: int | None = None
        # (time, seq, weight, ticket): sorted by time; ticket None for the server's extra count.
        self._entries: list[tuple[float, int, int, Reservation | None]] = []
        self._total = 0  # the weight of every entry, so the usual request costs O(log n)
        self._seq = 0
        self._last_at = float("-inf")

    def __repr__(self) -> str:
        return f"WeightWindow(limit={self.limit}, entries={len(self._entries)})"

    def _prune(self, now: float) -> None:
        # Entries that can no longer share a window with anything granted from now on.
        horizon = now - self.window
        cut = 0
        while cut < len(self._entries) and self._entries[cut][0] <= horizon:
            cut += 1
        if cut:
            self._total -= sum(e[2] for e in self._entries[:cut])
            del self._entries[:cut]

    def _add(self, at: float, weight: int, ticket: Reservation | None) -> None:
        self._seq += 1
        self._total += weight
        bisect.insort(self._entries, (at, self._seq, weight, ticket), key=lambda e: (e[0], e[1]))

    def used(self, now: float) -> int:
        """Weight booked in ``(now - window, now]`` (granted-and-due plus observed extra)."""
        entries = self._entries
        if not entries or (entries[-1][0] <= now and entries[0][0] > now - self.window):
            return self._total  # everything on the books is in the window
        return sum(w for t, _, w, _ in self._entries if now - self.window < t <= now)

    def reserve(self, weight: int, now: float) -> Reservation:
        """Book ``weight`` at the earliest allowed time (see the module's rules) and return the
        ticket; the caller sends at ``ticket.at``. ValueError for a weight no window can hold."""
        if not 0 < weight <= self.limit:
            raise ValueError(f"request weight {weight} does not fit a limit of {self.limit}")
        self._prune(now)
        t = max(now, self._last_at, self.banned_until)
        entries = self._entries
        if (
            t == now
            and self._total + weight <= self.limit
            and (not entries or entries[-1][0] <= now)
        ):
            # The usual case: pruned, nothing booked ahead, room now (the slow path below would
            # find the same).
            ticket = Reservation(at=t, weight=weight)
            self._add(t, weight, ticket)
            self._last_at = t
            return ticket
        # Everything booked is at or before t (grants are first come first served, observations
        # are booked at ``now``): while the window (t - window, t] is too heavy, move t just
        # past its oldest entry.
        in_window = [e for e in self._entries if e[0] > t - self.window]
        total = sum(e[2] for e in in_window)
        for oldest in in_window:
            if total + weight <= self.limit:
                break
            t = max(t, oldest[0] + self.window)
            total -= oldest[2]
        ticket = Reservation(at=t, weight=weight)
        self._add(t, weight, ticket)
        self._last_at = t
        return ticket

    def release(self, ticket: Reservation) -> None:
        """Take back a reservation that was not sent (its waiter was cancelled, or a ban came)."""
        for i, entry in enumerate(self._entries):
            if entry[3] is ticket:
                self._total -= entry[2]
                del self._entries[i]
                break

    def valid(self, ticket: Reservation) -> bool:
        """False when a ban that began after the grant covers the ticket's time."""
        return ticket.at >= self.banned_until

    def observe(self, used: int, now: float) -> None:
        """The server's ``X-MBX-USED-WEIGHT-1M``: book what it counted beyond our own sends."""
        self.last_used_header = used
        self._prune(now)
        ours = self.used(now)
        if used > ours:
            self._add(now, used - ours, None)

    def ban_until(self, retry_after: float, now: float) -> None:
        """Nobody sends before ``now + retry_after`` (429 / 418 ``Retry-After``)."""
        self.banned_until = max(self.banned_until, now + max(0.0, retry_after))

    def sent(self) -> list[tuple[float, int]]:
        """Our own grants still on the books (time, weight): for tests and diagnostics."""
        return [(t, w) for t, _, w, ticket in self._entries if ticket is not None]


class WeightBudget:
    """The Trio front-end: ``await acquire(weight)`` before every request.

    Uses Trio's clock (real monotonic time in production), because the exchange counts in real
    time whatever clock a strategy's bars follow.
    """

    def __init__(self, limit: int = DEFAULT_LIMIT, *, name: str = "") -> None:
        self.limit = limit
        self.name = name  # the base URL; never a key
        self._core = WeightWindow(limit)
        self._run: object = None

    def __repr__(self) -> str:
        return f"WeightBudget({self.name!r}, limit={self.limit})"

    def adopt_exchange_limit(self, per_minute: int) -> None:
        """The exchange published its REQUEST_WEIGHT limit (exchangeInfo ``rateLimits``): budget
        that, less the safety margin, instead of the default. Never raises the limit above what
        the exchange allows; a nonsensical figure is ignored."""
        if per_minute <= 0:
            return
        limit = max(1, int(per_minute * SAFETY_MARGIN))
        if limit != self.limit:
            self.limit = limit
            self.core.limit = limit

    @property
    def core(self) -> WeightWindow:
        """The sans-IO window, for this ``trio.run``: each run's clock has its own origin, so a
        budget used by a later run (a process-wide one, across test runs) starts afresh."""
        token = trio.lowlevel.current_trio_token()
        if token is not self._run:
            if self._run is not None:
                self._core = WeightWindow(self.limit)
            self._run = token
        return self._core

    async def acquire(self, weight: int) -> None:
        """Wait until ``weight`` may be sent, then return (the weight counts as sent now).

        Cancelling it while it waits gives the reservation back: nothing was sent.
        """
        core = self.core
        while True:
            ticket = core.reserve(weight, trio.current_time())
            try:
                if ticket.at > trio.current_time():
                    logger.info(
                        "weight budget %s: waiting %.1f s for %d weight",
                        self.name,
                        ticket.at - trio.current_time(),
                        weight,
                    )
                await trio.sleep_until(ticket.at)
            except BaseException:
                core.release(ticket)
                raise
            if core.valid(ticket):
                return
            core.release(ticket)  # a ban began while we waited: queue again after it

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take the server's count from a response's headers (ignored when absent/unreadable)."""
        used = used_weight(headers)
        if used is not None:
            self.core.observe(used, trio.current_time())

    def ban(self, retry_after: float) -> None:
        """Every user of this budget waits ``retry_after`` seconds from now."""
        logger.warning("weight budget %s: banned for %.1f s", self.name, retry_after)
        self.core.ban_until(retry_after, trio.current_time())


def used_weight(headers: Mapping[str, str]) -> int | None:
    """``X-MBX-USED-WEIGHT-1M`` as an int, or None when absent or not a non-negative integer."""
    raw = headers.get(USED_WEIGHT_HEADER)
    if raw is None:
        raw = next((v for k, v in headers.items() if k.lower() == USED_WEIGHT_HEADER), None)
    if raw is None or not raw.strip().isdigit() or len(raw) > 12:
        return None
    return int(raw)


_BUDGETS: dict[str, WeightBudget] = {}


def budget_for(api_key: str | None, base_url: str, *, limit: int = DEFAULT_LIMIT) -> WeightBudget:
    """The process's one budget for ``api_key`` on ``base_url`` (``None``: unsigned calls).

    The same object for the same key and base URL, so every strategy on the key shares it. And
    the same object for *every* key on that base URL: Binance counts REQUEST_WEIGHT per IP, not
    per key (its ``X-MBX-USED-WEIGHT-1M`` is the IP's count, and a 418 bans the IP), so two keys
    in one process, or a key and the unsigned market-data calls, spend one budget. The key is not
    kept. ``limit`` applies when the budget is first made.
    """
    del api_key  # weight is per IP; the parameter says who asks, for the contract's sake
    url = base_url.rstrip("/")
    budget = _BUDGETS.get(url)
    if budget is None:
        budget = WeightBudget(limit, name=url)
        _BUDGETS[url] = budget
    return budget
