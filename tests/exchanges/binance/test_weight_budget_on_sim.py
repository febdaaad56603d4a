"""Several clients on one API key in one process share one request-weight budget: the exchange
(exchange-sim, which counts weight per key per minute as Binance does) never sees the limit
exceeded, and never has to answer 429."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from trading.exchanges.binance.rest import BinanceRest, Credentials
from trading.exchanges.binance.weights import SAFETY_MARGIN, budget_for
from trading.testing import ExchangeSim, SimConfig

pytestmark = pytest.mark.timeout(60)

KEY, SECRET = "budget-key", "budget-secret"
LIMIT = 400  # the exchange's REQUEST_WEIGHT per minute, as its exchangeInfo says


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSim]:
    config = SimConfig(
        api_key=KEY, api_secret=SECRET, stepped=True, ping_interval=None, weight_limit=LIMIT
    )
    async with trio.open_nursery() as nursery:
        yield await nursery.start(ExchangeSim(config).serve)
        nursery.cancel_scope.cancel()


async def test_five_clients_on_one_key_never_exceed_the_exchanges_limit(sim: ExchangeSim) -> None:
    calls = [0] * 5
    refused: list[BaseException] = []

    async def hammer(i: int, rest: BinanceRest) -> None:
        while True:
            try:
                await rest.account()  # weight 20
            except Exception as exc:  # a 429 or 418 would land here
                refused.append(exc)
            calls[i] += 1

    async with trio.open_nursery() as nursery:
        clients = []
        for _ in range(5):
            rest = BinanceRest(sim.base_url, credentials=Credentials(KEY, SECRET))
            clients.append(rest)
        await clients[0].exchange_info()  # learns the exchange's limit
        assert budget_for(KEY, sim.base_url).limit == int(LIMIT * SAFETY_MARGIN)
        assert all(c.budget is clients[0].budget for c in clients)  # one budget, shared
        for i, rest in enumerate(clients):
            nursery.start_soon(hammer, i, rest)
        await trio.sleep(3)  # real time: they want far more than the minute's budget
        nursery.cancel_scope.cancel()
    for rest in clients:
        await rest.aclose()
    usage = sim.weight_used(KEY)
    assert refused == []  # no 429, no 418
    assert usage.max_seen <= LIMIT
    # they were held back, not refused: together they sent about the budget, not more
    assert 20 * sum(calls) <= int(LIMIT * SAFETY_MARGIN)
    assert sum(calls) >= 10
