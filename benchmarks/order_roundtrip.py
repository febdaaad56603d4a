"""Order round trip against exchange-sim: submit -> acknowledged -> filled (issue 7).

What it measures
    ``trio-trade exchange-sim`` runs in its own process (pinned to CPU 0), in real time, with
    BTCUSDT and a deep account. This process (pinned to CPU 1) sends MARKET orders of 0.001 BTC,
    alternately buying and selling, one at a time, and times each with ``time.perf_counter``:

    * ``ours ack``: ``await BinanceExchange.submit(request)``, i.e. ``BinanceRest.new_order``
      (signed ``POST /api/v3/order`` with ``newOrderRespType=FULL`` over httpx2, the weight
      budget, the answer decoded into an ``ExchangeOrder``). A market order's FULL answer is
      already FILLED, so ack and fill are one reply on REST;
    * ``ours push``: from the same start to the FILLED ``executionReport`` reaching the engine's
      callback through ``UserDataStream`` (WebSocket API, ``userDataStream.subscribe.signature``)
      and ``BinanceExchange`` (what the engine waits for when it trusts pushes);
    * ``ccxt``: ``await ccxt.async_support.binance.create_order(symbol, "market", side, amount)``
      against the same server (aiohttp on asyncio; its answer is parsed into ccxt's order dict).

    Each run opens fresh clients, sends ``--warmup`` orders untimed, then times ``--orders``.
    ours and ccxt take turns, ``--runs`` times; the figures are the medians of the runs' p50 and
    p99. Target: ours ack no slower than ccxt (p50 ratio <= 1.0).

How to run
    . .venv/bin/activate
    python benchmarks/order_roundtrip.py            # 3 runs x 300 orders each: ~1 minute
    python benchmarks/order_roundtrip.py --quick    # 3 runs x 60 orders
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import trio

KEY, SECRET = "bench-key", "bench-secret"
SYMBOL, AMOUNT = "BTCUSDT", Decimal("0.001")
SERVER_CPU, CLIENT_CPU = 0, 1


def pin(cpu: int, pid: int = 0) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(pid, {cpu})


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return 1000 * statistics.median(samples), 1000 * cuts[98]


# -- our path --------------------------------------------------------------------------------------


async def ours(base: str, warmup: int, orders: int) -> dict[str, list[float]]:
    from trading.core.records import OrderState, OrderType, Side
    from trading.core.updates import ExchangeOrder
    from trading.exchanges.base import OrderRequest
    from trading.exchanges.binance.exchange import BinanceExchange
    from trading.exchanges.binance.rest import BinanceRest, Credentials
    from trading.exchanges.binance.user_stream import UserDataStream
    from trading.exchanges.binance.venue import stream_urls

    filled: dict[str, trio.Event] = {}
    pushed_at: dict[str, float] = {}

    def on_update(report: ExchangeOrder) -> None:
        cid = report.client_order_id
        if report.state is OrderState.FILLED and cid not in pushed_at:
            pushed_at[cid] = time.perf_counter()
            if cid in filled:
                filled[cid].set()

    credentials = Credentials(KEY, SECRET)
    ack: list[float] = []
    push: list[float] = []
    ids = itertools.count()
    async with BinanceRest(base, credentials=credentials) as rest, trio.open_nursery() as nursery:
        user = UserDataStream(stream_urls(base)[1], credentials, now_ms=rest.server_now_ms)
        exchange = BinanceExchange(rest, user, symbols=(SYMBOL,))
        await nursery.start(exchange.run, on_update)
        for i in range(warmup + orders):
            if i == warmup:
                cpu0 = time.process_time()
            cid = f"bench-{os.getpid()}-{next(ids)}"
            side = Side.BUY if i % 2 == 0 else Side.SELL
            request = OrderRequest(
                client_order_id=cid, symbol=SYMBOL, side=side, type=OrderType.MARKET,
                quantity=AMOUNT,
            )  # fmt: skip
            filled[cid] = trio.Event()
            start = time.perf_counter()
            report = await exchange.submit(request)
            acked = time.perf_counter()
            assert report.state is OrderState.FILLED, report
            with trio.fail_after(10):
                await filled[cid].wait()
            if i >= warmup:
                ack.append(acked - start)
                push.append(pushed_at[cid] - start)
            del filled[cid]
        cpu = (time.process_time() - cpu0) / orders
        nursery.cancel_scope.cancel()
    return {"ours ack": ack, "ours push": push, "ours cpu": [cpu]}


# -- ccxt ------------------------------------------------------------------------------------------


async def with_ccxt(base: str, warmup: int, orders: int) -> dict[str, list[float]]:
    import ccxt.async_support as ccxt_async  # type: ignore[import-untyped]

    exchange: Any = ccxt_async.binance(
        {
            "apiKey": KEY,
            "secret": SECRET,
            "enableRateLimit": False,
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
        }
    )
    exchange.urls["api"]["public"] = exchange.urls["api"]["private"] = f"{base}/api/v3"
    times: list[float] = []
    try:
        await exchange.load_markets()
        for i in range(warmup + orders):
            if i == warmup:
                cpu0 = time.process_time()
            side = "buy" if i % 2 == 0 else "sell"
            start = time.perf_counter()
            order = await exchange.create_order("BTC/USDT", "market", side, float(AMOUNT))
            elapsed = time.perf_counter() - start
            assert order["status"] == "closed", order
            if i >= warmup:
                times.append(elapsed)
        cpu = (time.process_time() - cpu0) / orders
    finally:
        await exchange.close()
    return {"ccxt": times, "ccxt cpu": [cpu]}


# -- the parent ------------------------------------------------------------------------------------


def start_server() -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable, "-m", "trading", "exchange-sim", "--symbol", SYMBOL,
        "--api-key", KEY, "--api-secret", SECRET,
        "--balance", "USDT=100000000", "--balance", "BTC=10000",
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    pin(SERVER_CPU, server.pid)
    assert server.stdout is not None
    for line in server.stdout:
        found = re.search(r"REST\s+(http://\S+)/api/v3", line)
        if found:
            return server, found.group(1)
    raise RuntimeError("exchange-sim did not print its address")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 orders per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--orders", type=int, default=300, help="timed orders per run")
    parser.add_argument("--warmup", type=int, default=20, help="untimed orders first")
    opt = parser.parse_args()
    if opt.quick:
        opt.orders = 60
    server, base = start_server()
    pin(CLIENT_CPU)
    try:
        print(
            f"exchange-sim at {base} (CPU {SERVER_CPU}); client on CPU {CLIENT_CPU}; "
            f"{opt.runs} runs x {opt.orders} MARKET orders after {opt.warmup} untimed"
        )
        figures: dict[str, list[tuple[float, float]]] = {}
        cpus: dict[str, list[float]] = {}
        for run in range(opt.runs):
            order = ("ours", "ccxt") if run % 2 == 0 else ("ccxt", "ours")
            for name in order:
                if name == "ours":
                    results = trio.run(ours, base, opt.warmup, opt.orders)
                else:
                    results = asyncio.run(with_ccxt(base, opt.warmup, opt.orders))
                for label, samples in results.items():
                    if label.endswith("cpu"):
                        cpus.setdefault(label, []).append(1e6 * samples[0])
                        print(f"  run {run + 1} {label:10} {cpus[label][-1]:6.0f} µs per order")
                        continue
                    p50, p99 = percentiles(samples)
                    figures.setdefault(label, []).append((p50, p99))
                    print(
                        f"  run {run + 1} {label:10} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
                        f"  load {os.getloadavg()[0]:.2f}"
                    )
    finally:
        server.terminate()
        server.wait(10)
    med = {k: (statistics.median(p for p, _ in v), statistics.median(q for _, q in v))
           for k, v in figures.items()}  # fmt: skip
    print(f"\nmedians of {opt.runs} runs:")
    for label, (p50, p99) in med.items():
        print(f"  {label:10} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")
    for label, values in cpus.items():
        print(f"  {label:10} {statistics.median(values):6.0f} µs per order (client process time)")
    ratio50 = med["ours ack"][0] / med["ccxt"][0]
    ratio99 = med["ours ack"][1] / med["ccxt"][1]
    verdict = "PASS" if ratio50 <= 1.0 else "MISS"
    print(
        f"ours ack / ccxt: p50 {ratio50:.2f}x, p99 {ratio99:.2f}x "
        f"(target: no slower than ccxt, p50 <= 1.0): {verdict}"
    )
    push = med["ours push"][0] / med["ccxt"][0]
    print(f"ours push (fill on the user stream) / ccxt: p50 {push:.2f}x")


if __name__ == "__main__":
    main()
