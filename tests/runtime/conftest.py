"""Fixtures for the order-path tests: a paper broker behind a FaultyExchange, a running engine,
and one account on it. Modules with their own ``broker``/``fx`` fixtures override these."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

import trading
from tests.conftest import EventLog
from trading.core import events as ev
from trading.core.orders import Order, Side
from trading.exchanges.paper import PaperBroker
from trading.runtime.account import Account
from trading.runtime.engine import TradeEngine
from trading.testing.exchange import FaultyExchange


class Prices:
    def __init__(self) -> None:
        self.prices = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0}

    def price(self, symbol: str, t: float) -> float:
        return self.prices[symbol]


@pytest.fixture
def broker(vclock: trading.VirtualClock) -> PaperBroker:
    return PaperBroker(Prices(), vclock)


@pytest.fixture
def fx(broker: PaperBroker) -> FaultyExchange:
    return FaultyExchange(broker)


async def start_engine(
    nursery: trio.Nursery, fx: FaultyExchange, clock: trading.Clock, events: EventLog
) -> TradeEngine:
    engine = TradeEngine(fx, clock=clock, publish=events)
    await nursery.start(engine.run)
    return engine


@pytest.fixture
async def engine(
    clock: MockClock,
    nursery: trio.Nursery,
    fx: FaultyExchange,
    vclock: trading.VirtualClock,
    events: EventLog,
) -> TradeEngine:
    return await start_engine(nursery, fx, vclock, events)


@pytest.fixture
def account(engine: TradeEngine) -> Account:
    return engine.account("t")


def kinds(events: EventLog, cid: str) -> list[str]:
    return [
        type(e).__name__
        for e in events
        if isinstance(e, ev.OrderEvent) and e.client_order_id == cid
    ]


async def buy(account: Account, qty: str = "0.01", price: str | None = None) -> Order:
    return await account.submit(Side.BUY, qty, "BTCUSDT", price)
