"""Shared pieces of the exchange-sim server tests: a stepped simulator on 127.0.0.1 port 0, a
settable wall clock (signature timestamps and weight minutes never depend on the real time), and
signing helpers that produce exactly the bytes a client sends."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx2
import pytest
import trio

from trading.simulator.sim import ExchangeSim, SimConfig

KEY = "test-key-0123456789"
SECRET = "test-secret-abcdef"
#: Market time at start: 2025-01-01 00:00 UTC.
START_MS = 1_735_689_600_000
#: The wall clock the tests hand the simulator; 30 s into a minute so weight windows are stable.
WALL_S = 1_780_000_050.0


class WallClock:
    def __init__(self, t: float = WALL_S) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def ms(self) -> int:
        return int(self.t * 1000)


def make_config(wall: WallClock, **overrides: Any) -> SimConfig:
    options: dict[str, Any] = {
        "api_key": KEY,
        "api_secret": SECRET,
        "balances": {"USDT": Decimal(10000), "BTC": Decimal(1)},
        "symbols": ("BTCUSDT", "ETHUSDT"),
        "seed": 7,
        "start_ms": START_MS,
        "stepped": True,
        "wall_clock": wall,
    }
    options.update(overrides)
    return SimConfig(**options)


@pytest.fixture
def wall() -> WallClock:
    return WallClock()


@pytest.fixture
async def sim(nursery: trio.Nursery, wall: WallClock) -> ExchangeSim:
    started: ExchangeSim = await nursery.start(ExchangeSim(make_config(wall)).serve)
    return started


@pytest.fixture
async def http(sim: ExchangeSim) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=sim.base_url, timeout=5) as client:
        yield client


def sign(payload: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signed_query(params: str, wall: WallClock, secret: str = SECRET) -> str:
    """``params&timestamp=..&signature=..`` (all in the query string)."""
    payload = f"{params}&timestamp={wall.ms()}" if params else f"timestamp={wall.ms()}"
    return f"{payload}&signature={sign(payload, secret)}"
