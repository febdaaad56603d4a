"""``trio-trade run --exchange binance`` as a user runs it, against exchange-sim on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from trading.testing import ExchangeSim, SimConfig

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]
KEY, SECRET = "cli-key", "cli-secret"


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trading", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
async def sim() -> AsyncIterator[ExchangeSim]:
    # real time at 900x: one 15-minute bar per second, as a user would watch it
    config = SimConfig(api_key=KEY, api_secret=SECRET, speed=900.0, ping_interval=None)
    async with trio.open_nursery() as nursery:
        yield await nursery.start(ExchangeSim(config).serve)
        nursery.cancel_scope.cancel()


async def test_sma_cross_runs_live_on_exchange_sim_and_computes_on_its_bars(
    sim: ExchangeSim,
) -> None:
    args = ("run", "sma_cross", "--exchange", "binance", "--symbol", "ETHUSDT", "--live",
            "--base-url", sim.base_url, "--for", "4s", "--no-db")  # fmt: skip
    env = {"BINANCE_API_KEY": KEY, "BINANCE_API_SECRET": SECRET}
    done = await trio.to_thread.run_sync(lambda: run_cli(*args, env=env))
    assert done.returncode == 0, done.stderr
    assert "LIVE orders" in done.stderr
    computes = [line for line in done.stderr.splitlines() if "ETHUSDT close" in line]
    assert len(computes) >= 2, done.stderr  # one per streamed 15m close
    assert KEY not in done.stderr + done.stdout and SECRET not in done.stderr + done.stdout


def test_live_without_keys_is_a_usage_error() -> None:
    env = {"BINANCE_API_KEY": "", "BINANCE_API_SECRET": ""}
    done = run_cli("run", "sma_cross", "--exchange", "binance", "--live", env=env)
    assert done.returncode == 2
    assert "BINANCE_API_KEY and BINANCE_API_SECRET" in done.stderr
    done = run_cli("run", "sma_cross", "--exchange", "binance", "--live",
                   env={"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": ""})  # fmt: skip
    assert done.returncode == 2 and "BINANCE_API_SECRET" in done.stderr


def test_binance_flags_without_the_binance_exchange_are_refused() -> None:
    done = run_cli("run", "sma_cross", "--live", "--no-db")
    assert done.returncode == 2 and "--live needs --exchange binance" in done.stderr


def test_an_unreachable_exchange_is_one_clear_line_and_exit_1() -> None:
    done = run_cli("run", "sma_cross", "--exchange", "binance", "--base-url",
                   "http://127.0.0.1:9", "--for", "1s", "--no-db")  # fmt: skip
    assert done.returncode == 1
    assert "cannot start on http://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr


async def test_refused_keys_and_unknown_symbols_are_named(sim: ExchangeSim) -> None:
    base = ("run", "sma_cross", "--exchange", "binance", "--base-url", sim.base_url,
            "--for", "1s", "--no-db")  # fmt: skip
    wrong = {"BINANCE_API_KEY": "wrong", "BINANCE_API_SECRET": SECRET}
    done = await trio.to_thread.run_sync(lambda: run_cli(*base, "--live", env=wrong))
    assert done.returncode == 1 and "Invalid API-key" in done.stderr, done.stderr
    assert "wrong" not in done.stderr
    done = await trio.to_thread.run_sync(lambda: run_cli(*base, "--symbol", "NOPEUSDT"))
    assert done.returncode == 1 and "Invalid symbol" in done.stderr, done.stderr
