"""The weight budget: never more than the limit in any minute, shared by every client on a key."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx2
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from trading.core.records import OrderSpec, OrderType, Side
from trading.exchanges.binance.rest import BinanceRest, Credentials
from trading.exchanges.binance.weights import (
    DEFAULT_LIMIT,
    Reservation,
    WeightBudget,
    WeightWindow,
    budget_for,
    used_weight,
)

WINDOW = 60.0


def max_in_any_window(sends: list[tuple[float, int]], window: float = WINDOW) -> int:
    """The most weight sent in any half-open interval [t, t + window)."""
    times = sorted(sends)
    best = 0
    for i, (start, _) in enumerate(times):
        best = max(best, sum(w for t, w in times[i:] if t < start + window))
    return best


# ------------------------------------------------------------------ the sans-IO core


def test_weight_up_to_the_limit_goes_now_then_waits_for_the_oldest_to_leave() -> None:
    core = WeightWindow(limit=10)
    assert core.reserve(6, now=0).at == 0
    assert core.reserve(4, now=5).at == 5
    late = core.reserve(3, now=6)
    assert late.at == 60  # the 6 sent at 0 leaves the window (t - 60, t] at t = 60
    assert core.reserve(1, now=7).at == 60  # first come, first served: never ahead of `late`
    assert core.reserve(4, now=8).at == 65


def test_a_weight_no_window_can_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        WeightWindow(limit=10).reserve(11, now=0)
    with pytest.raises(ValueError):
        WeightWindow(limit=10).reserve(0, now=0)


def test_the_servers_count_wins_when_higher() -> None:
    core = WeightWindow(limit=100)
    core.reserve(10, now=0)
    core.observe(90, now=1)  # another process on the same key used 80
    assert core.used(1) == 90
    assert core.reserve(20, now=2).at == 60  # 90 + 20 > 100 until the first 10 leave at 60
    core.observe(5, now=3)  # lower than what we know: ignored
    assert core.used(3) == 90


def test_a_ban_holds_everyone_until_it_ends() -> None:
    core = WeightWindow(limit=100)
    early = core.reserve(1, now=0)
    core.ban_until(30, now=0)
    assert core.valid(early) is False  # granted before the ban, for a time inside it
    assert core.reserve(1, now=1).at == 30
    core.ban_until(5, now=2)  # a shorter ban never shortens the longer one
    assert core.banned_until == 30


def test_release_gives_the_weight_back() -> None:
    core = WeightWindow(limit=10)
    ticket = core.reserve(10, now=0)
    core.release(ticket)
    assert core.reserve(10, now=1).at == 1


ops = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(1, 40), st.floats(0, 30)),
        st.tuples(st.just("observe"), st.integers(0, 150), st.floats(0, 30)),
        st.tuples(st.just("ban"), st.integers(0, 120), st.floats(0, 30)),
        st.tuples(st.just("release"), st.integers(0, 50), st.floats(0, 30)),
    ),
    max_size=60,
)


@given(ops=ops, limit=st.integers(40, 120))
def test_no_interleaving_sends_more_than_the_limit_in_any_minute(
    ops: list[tuple[str, int, float]], limit: int
) -> None:
    core = WeightWindow(limit=limit)
    now = 0.0
    held: list[Reservation] = []
    last_at = float("-inf")
    for kind, value, dt in ops:
        now += dt
        if kind == "reserve":
            floor = max(now, last_at, core.banned_until)
            ticket = core.reserve(value, now)
            assert floor <= ticket.at <= floor + WINDOW  # never early, never needlessly late
            last_at = ticket.at
            held.append(ticket)
        elif kind == "observe":
            core.observe(value, now)
            assert core.used(now) >= value
        elif kind == "ban":
            core.ban_until(value, now)
            # what the Trio front-end does: a grant not yet sent that a ban covers is re-queued
            for ticket in [t for t in held if t.at > now and not core.valid(t)]:
                held.remove(ticket)
                core.release(ticket)
                again = core.reserve(ticket.weight, now)
                assert again.at >= core.banned_until
                last_at = max(last_at, again.at)
                held.append(again)
        elif held:
            ticket = held[value % len(held)]
            if ticket.at > now:  # only a grant still waiting can be given back
                held.remove(ticket)
                core.release(ticket)
        sends = [(t.at, t.weight) for t in held]
        assert max_in_any_window(sends) <= limit
        recent = [s for s in sends if s[0] > now - WINDOW]
        assert sorted(s for s in core.sent() if s[0] > now - WINDOW) == sorted(recent)


# ------------------------------------------------------------------ the Trio front-end


async def test_acquire_sleeps_until_the_window_has_room(clock: trio.testing.MockClock) -> None:
    budget = WeightBudget(limit=10)
    start = trio.current_time()
    await budget.acquire(10)
    await budget.acquire(5)
    assert trio.current_time() - start == pytest.approx(60)


async def test_cancelling_a_waiting_acquire_gives_its_reservation_back(
    clock: trio.testing.MockClock,
) -> None:
    budget = WeightBudget(limit=10)
    start = trio.current_time()
    await budget.acquire(10)
    with trio.move_on_after(1):
        await budget.acquire(10)  # would wait until start + 60, then own the next minute
    await budget.acquire(10)
    assert trio.current_time() - start == pytest.approx(60)  # not 120: the cancelled one is gone


async def test_a_ban_makes_waiting_and_new_callers_wait_it_out(
    clock: trio.testing.MockClock,
) -> None:
    budget = WeightBudget(limit=10)
    start = trio.current_time()
    await budget.acquire(10)
    woke: list[float] = []

    async def user() -> None:
        await budget.acquire(1)
        woke.append(trio.current_time() - start)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(user)  # granted for start + 60
        await trio.sleep(1)
        budget.ban(100)  # until start + 101
        nursery.start_soon(user)
    assert woke == [pytest.approx(101), pytest.approx(101)]


def test_used_weight_header_parsing() -> None:
    assert used_weight(httpx2.Headers({"X-MBX-USED-WEIGHT-1M": "42"})) == 42
    assert used_weight({"x-mbx-used-weight-1m": "42"}) == 42
    assert used_weight({"X-Mbx-Used-Weight-1m": "7"}) == 7
    for bad in ("", "-1", "1.5", "lots", "9" * 40):
        assert used_weight({"X-MBX-USED-WEIGHT-1M": bad}) is None
    assert used_weight({}) is None


def test_one_budget_per_key_and_ip_per_process_and_the_key_stays_out_of_its_repr() -> None:
    key = "KEY-SECRET-ish-abcdef0123456789"
    a = budget_for(key, "https://weights.test")
    assert budget_for(key, "https://weights.test/") is a
    # Binance counts request weight per IP: other keys and unsigned calls spend the same budget
    assert budget_for("other", "https://weights.test") is a
    assert budget_for(None, "https://weights.test") is a
    assert budget_for(key, "https://other.test") is not a
    assert key not in repr(a) and key not in a.name
    rest = BinanceRest("https://weights.test", credentials=Credentials(key, "s"))
    assert rest.budget is a


# ------------------------------------------------------- five clients sharing one key


class CountingExchange:
    """A MockTransport handler that answers like Binance and counts weight per request time."""

    WEIGHTS = {"/api/v3/time": 1, "/api/v3/order": 4, "/api/v3/account": 20, "/api/v3/klines": 2}

    def __init__(self) -> None:
        self.sends: list[tuple[float, int]] = []
        self.minute_counts: dict[int, int] = {}

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        now = trio.current_time()
        weight = self.WEIGHTS[request.url.path]
        if request.method == "POST":
            weight = 1
        self.sends.append((now, weight))
        minute = int(now // 60)
        self.minute_counts[minute] = self.minute_counts.get(minute, 0) + weight
        await trio.sleep(0.05)  # latency: answers arrive after other clients sent
        headers = {"X-MBX-USED-WEIGHT-1M": str(self.minute_counts[minute])}
        path = request.url.path
        if path == "/api/v3/time":
            return httpx2.Response(200, json={"serverTime": 1_735_689_600_000}, headers=headers)
        if path == "/api/v3/account":
            return httpx2.Response(200, json={"balances": []}, headers=headers)
        if path == "/api/v3/klines":
            return httpx2.Response(200, json=[], headers=headers)
        body = {
            "symbol": "BTCUSDT",
            "orderId": 1,
            "clientOrderId": "c",
            "price": "0",
            "origQty": "1",
            "executedQty": "0",
            "cummulativeQuoteQty": "0",
            "status": "NEW",
            "type": "MARKET",
            "side": "BUY",
        }
        return httpx2.Response(200, content=json.dumps(body).encode(), headers=headers)


async def test_five_clients_on_one_key_never_exceed_the_limit(
    clock: trio.testing.MockClock,
) -> None:
    exchange = CountingExchange()
    limit = 200
    budget = WeightBudget(limit=limit)
    creds = Credentials("k", "s")
    spec = OrderSpec(
        client_order_id="c",
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        quantity=Decimal(1),
    )
    start = trio.current_time()

    async def strategy(n: int) -> None:
        async with BinanceRest(
            "https://api.test",
            credentials=creds,
            budget=budget,
            transport=httpx2.MockTransport(exchange),
        ) as rest:
            for i in range(30):
                if (i + n) % 3 == 0:
                    await rest.account()  # 20
                elif (i + n) % 3 == 1:
                    await rest.get_order("BTCUSDT", "c")  # 4
                else:
                    await rest.new_order(spec)  # 1

    async with trio.open_nursery() as nursery:
        for n in range(5):
            nursery.start_soon(strategy, n)
    total = sum(w for _, w in exchange.sends)
    assert total > 3 * limit  # enough traffic that the budget had to hold clients back
    assert max_in_any_window(exchange.sends) <= limit
    assert max(exchange.minute_counts.values()) <= limit
    assert trio.current_time() - start >= 60 * (total // limit - 1)


def test_default_limit_keeps_a_safety_margin_below_binances_6000() -> None:
    assert DEFAULT_LIMIT == 4800


def test_a_budget_starts_afresh_in_a_new_trio_run() -> None:
    # each run's clock has its own origin: times booked in one run mean nothing in the next
    budget = WeightBudget(limit=10)
    clock = trio.testing.MockClock(autojump_threshold=0)

    async def banned() -> None:
        await budget.acquire(10)
        budget.ban(3600)

    async def fresh() -> None:
        start = trio.current_time()
        await budget.acquire(10)
        assert trio.current_time() == start

    trio.run(banned, clock=clock)
    trio.run(fresh, clock=trio.testing.MockClock(autojump_threshold=0))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["reserve", "observe", "ban", "release"]),
            st.integers(1, 400),
            st.floats(0, 90, allow_nan=False),
        ),
        max_size=60,
    )
)
def test_the_running_total_agrees_with_counting_the_window(
    steps: list[tuple[str, int, float]],
) -> None:
    """The O(1) shortcuts (a running total of the books) give what counting every entry gives."""
    core = WeightWindow(1000, 60.0)
    now = 0.0
    tickets = []
    for action, weight, dt in steps:
        now += dt
        if action == "reserve":
            tickets.append(core.reserve(weight, now))
        elif action == "observe":
            core.observe(weight, now)
        elif action == "ban":
            core.ban_until(weight / 100, now)
        elif tickets:
            core.release(tickets.pop(0))
        entries = core._entries  # the invariant is about the books themselves
        assert core._total == sum(e[2] for e in entries)
        assert core.used(now) == sum(w for t, _, w, _ in entries if now - 60.0 < t <= now)
