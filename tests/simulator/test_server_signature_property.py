"""Property: however a client splits, orders and spells its parameters, a request signed over the
bytes it sends is accepted, and changing any byte after signing is refused (-1022 or earlier)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from urllib.parse import quote

import httpx2
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.simulator.server_helpers import KEY, WallClock, make_config, sign
from trading.simulator.sim import ExchangeSim

WALL = WallClock()

PARAMS = [
    ("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTC"),
    ("quantity", "0.01"), ("price", "50000.0"), ("newClientOrderId", "p-1"), ("orderId", "424242"),
]  # fmt: skip


@pytest.fixture(scope="module")
def client() -> Iterator[httpx2.Client]:
    """One simulator for every example, in a thread of its own (hypothesis runs examples
    synchronously; each would otherwise need a fresh Trio run)."""
    ready: queue.Queue[tuple[ExchangeSim, trio.lowlevel.TrioToken, trio.CancelScope]] = (
        queue.Queue()
    )

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            sim = await nursery.start(ExchangeSim(make_config(WALL)).serve)
            ready.put((sim, trio.lowlevel.current_trio_token(), nursery.cancel_scope))

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    sim, token, scope = ready.get(timeout=10)
    with httpx2.Client(base_url=sim.base_url, timeout=10) as http:
        yield http
    token.run_sync_soon(scope.cancel)
    thread.join(10)


@settings(max_examples=60, deadline=None)
@given(
    order=st.permutations(range(len(PARAMS) + 2)),
    split=st.integers(0, len(PARAMS) + 2),
    signature_in_query=st.booleans(),
    recv_window=st.sampled_from([None, "5000", "60000", "1234.5"]),
    method=st.sampled_from(["POST", "DELETE"]),
    tamper=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_any_split_of_signed_bytes_verifies(
    client: httpx2.Client, order: list[int], split: int, signature_in_query: bool,
    recv_window: str | None, method: str, tamper: int | None,
) -> None:  # fmt: skip
    extra = [("timestamp", str(WALL.ms())), ("recvWindow", recv_window or "")]
    items = [(PARAMS + extra)[i] for i in order]
    pairs = [f"{k}={quote(v, safe='')}" for k, v in items if v]
    query, body = "&".join(pairs[:split]), "&".join(pairs[split:])
    signature = f"signature={sign(query + body)}"
    if tamper is not None:
        sent = query + body
        i = tamper % len(sent)
        flipped = sent[:i] + ("X" if sent[i] != "X" else "Y") + sent[i + 1 :]
        query, body = flipped[: len(query)], flipped[len(query) :]
    if signature_in_query or not body:
        query = f"{query}&{signature}" if query else signature
    else:
        body = f"{body}&{signature}"
    path = "/api/v3/order/test" if method == "POST" else "/api/v3/order"
    headers = {"X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"}
    r = client.request(method, f"{path}?{query}", content=body, headers=headers)
    if tamper is None:
        # POST order/test validates only; DELETE of an unknown order is a -2011 *after* auth.
        expected = (200, None) if method == "POST" else (400, -2011)
        assert (r.status_code, r.json().get("code")) == expected, (query, body, r.text)
    else:
        assert r.status_code == 400 and r.json()["code"] in (
            -1022,
            -1100,
            -1101,
            -1102,
            -1021,
            -1131,
        ), r.text
