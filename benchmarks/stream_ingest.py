"""Kline messages per second from exchange-sim to strategies (issue 7).

What it measures
    exchange-sim runs in its own process (pinned to CPU 0) in real-time mode at ``--speed``,
    serving 1s and 1m klines of seven symbols on one combined-streams connection
    (``/stream?streams=``): each tick of its clock (every 20 ms of real time) emits every 1s bar
    that closed since the previous tick, so the feed is a steady stream of ~350-byte frames.
    Each client runs in a fresh process (pinned to CPU 1) and counts the messages it handled
    over ``--window`` seconds after a warm-up, with its own CPU time over the window:

    * ``ours``: what a live Runner does per message. ``BinanceMarket`` (REST for the exchange
      info and the marks' seed, then its ``KlineStream`` over websockets' Trio client), the seven
      1s series watched through the market's ``FeedClock`` (as ``Runner.add`` does), each frame
      decoded by ``frames.decode_market_frame`` and dispatched to ``BarFeed.on_bar``;
    * ``trio-recv``: websockets' Trio client, ``recv()`` only (what our path costs before
      decoding);
    * ``asyncio-recv``: the baseline, ``websockets.asyncio.client.connect``, ``recv()`` only;
    * ``asyncio-json``: the baseline plus ``json.loads`` of every message.

    Then each client's loop is blocked for ``--stall`` seconds (a stalled consumer) and the next
    ``--burst`` messages, already waiting in its socket buffers, are timed: the client's own
    speed. The clients take turns against the same server, ``--runs`` times; figures are
    medians. The server's CPU share is printed too: near 100 % means the server set the pace.
    Target: ours >= 0.8x asyncio-json (decoding included on both sides) in *capacity*, messages
    per second of client CPU in the burst (1 / CPU per message): the burst's wall-clock rate is
    printed too, but on a shared machine it also waits for the server. ``--profile`` runs
    ``ours`` once more under cProfile and says where its time goes.

How to run
    . .venv/bin/activate
    python benchmarks/stream_ingest.py            # 3 runs x 4 clients x 5 s: ~2 minutes
    python benchmarks/stream_ingest.py --quick    # 1 run x 2 s windows: ~25 s
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import faulthandler
import io
import json
import os
import pstats
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psutil
import trio

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT", "ETHBTC")
STREAMS = [f"{s.lower()}@kline_{i}" for i in ("1m", "1s") for s in SYMBOLS]
CLIENTS = ("ours", "trio-recv", "asyncio-recv", "asyncio-json")
TARGET = 0.8
SERVER_CPU, CLIENT_CPU = 0, 1


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


# -- the server process ----------------------------------------------------------------------------


async def serve(speed: float) -> None:
    from trading.testing import ExchangeSim, SimConfig

    # A deep outbox: a client slower than the feed falls behind instead of being dropped.
    config = SimConfig(symbols=SYMBOLS, speed=speed, outbox_size=2_000_000, ping_interval=None)
    async with trio.open_nursery() as nursery:
        sim: ExchangeSim = await nursery.start(ExchangeSim(config).serve)
        print("PORT", sim.server.port, flush=True)


# -- the client processes --------------------------------------------------------------------------


class Meter:
    """Counts handled messages; ``reached`` is called when the count hits ``target``."""

    def __init__(self, reached: Callable[[], None]) -> None:
        self.count = 0
        self.target = -1
        self.reached = reached

    def hit(self) -> None:
        self.count += 1
        if self.count == self.target:
            self.reached()

    def start(self) -> tuple[int, float, float]:
        return self.count, time.perf_counter(), time.process_time()

    def since(self, mark: tuple[int, float, float]) -> list[float]:
        n0, t0, c0 = mark
        return [self.count - n0, time.perf_counter() - t0, time.process_time() - c0]


#: Receive buffer of every client's socket (the kernel doubles it, up to net.core.rmem_max):
#: deep enough that a stalled client finds thousands of frames waiting when it resumes.
RCVBUF = 8 * 2**20


def big_buffer_socket(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)  # before connect: window scale
    sock.connect(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def trio_connector(port: int) -> Any:
    """websockets' Trio client as :func:`websockets_connector` makes it, on such a socket."""
    from websockets.trio.client import connect

    def connector(url: str) -> Any:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(big_buffer_socket(port)))
        return connect(url, stream=stream, max_size=2**20, ping_interval=20.0, ping_timeout=20.0)

    return connector


async def phases(
    meter: Meter,
    opt: argparse.Namespace,
    sleep: Callable[[float], Awaitable[None]],
    new_event: Callable[[], Any],  # trio.Event or asyncio.Event: set() and await wait()
) -> dict[str, list[float]]:
    """Live window, then a stall (the loop blocked) and the time to drain ``burst`` messages."""
    await sleep(opt.warmup)
    mark = meter.start()
    await sleep(opt.window)
    live = meter.since(mark)
    done = new_event()
    meter.reached = done.set
    time.sleep(opt.stall)  # noqa: ASYNC251 (on purpose: the server keeps sending into the buffers)
    mark = meter.start()
    meter.target = meter.count + opt.burst
    await done.wait()
    return {"live": live, "burst": meter.since(mark)}


async def ours(opt: argparse.Namespace) -> dict[str, list[float]]:
    from trading.core.bars import Interval
    from trading.exchanges.binance.frames import KlineUpdate
    from trading.exchanges.binance.market import BinanceMarket
    from trading.exchanges.binance.rest import BinanceRest
    from trading.exchanges.binance.stream import KlineStream

    first = trio.Event()
    meter = Meter(first.set)
    meter.target = 1

    class CountingMarket(BinanceMarket):
        def _on_update(self, update: KlineUpdate) -> None:
            meter.hit()
            super()._on_update(update)

    base = f"127.0.0.1:{opt.port}"
    async with BinanceRest(f"http://{base}") as rest, trio.open_nursery() as nursery:
        stream = KlineStream(f"ws://{base}", connect=trio_connector(opt.port))
        for symbol in SYMBOLS:  # one connection URL, as the baseline's
            stream.subscribe(symbol, "1s")
        market = CountingMarket(rest, stream, symbols=SYMBOLS)
        await nursery.start(market.run)
        await first.wait()  # the exchange's clock is known from the stream (see README)
        for symbol in SYMBOLS:
            market.clock.watch(symbol, Interval.parse("1s"))  # what Runner.add does
        out = await phases(meter, opt, trio.sleep, trio.Event)
        nursery.cancel_scope.cancel()
    return out


async def trio_recv(opt: argparse.Namespace) -> dict[str, list[float]]:
    meter = Meter(lambda: None)

    async def reader(conn: Any) -> None:
        while True:
            await conn.recv()
            meter.hit()

    url = f"ws://127.0.0.1:{opt.port}/stream?streams={'/'.join(STREAMS)}"
    # Leave by cancelling the connection too: websockets 17.4's Trio client, closed politely
    # while more than 16 messages wait unread, never returns (its reader waits for a recv()
    # to resume reading, so the server's close frame is never read; see README).
    with trio.CancelScope() as scope:
        async with trio_connector(opt.port)(url) as conn, trio.open_nursery() as nursery:
            nursery.start_soon(reader, conn)
            out = await phases(meter, opt, trio.sleep, trio.Event)
            scope.cancel()
    return out


async def asyncio_client(opt: argparse.Namespace, decode: bool) -> dict[str, list[float]]:
    from websockets.asyncio.client import connect

    meter = Meter(lambda: None)

    async def reader(ws: Any) -> None:
        while True:
            message = await ws.recv()
            if decode:
                json.loads(message)
            meter.hit()

    url = f"ws://127.0.0.1:{opt.port}/stream?streams={'/'.join(STREAMS)}"
    sock = big_buffer_socket(opt.port)
    async with connect(url, sock=sock, max_size=2**20, ping_interval=20.0, ping_timeout=20.0) as ws:
        task = asyncio.create_task(reader(ws))
        out = await phases(meter, opt, asyncio.sleep, asyncio.Event)
        task.cancel()
    return out


def run_client(opt: argparse.Namespace) -> dict[str, list[float]]:
    if opt.client == "ours":
        return trio.run(ours, opt)
    if opt.client == "trio-recv":
        return trio.run(trio_recv, opt)
    return asyncio.run(asyncio_client(opt, decode=opt.client == "asyncio-json"))


GROUPS = (  # (where, what): the first whose ``where`` is in the file name or function wins
    (("websockets",), "websockets (framing, assembling, its Trio glue)"),
    (("/trio/", "socket"), "trio (scheduling, sockets; idle epoll waits left out)"),
    (("json",), "json.loads"),
    (("frames.py", "fields.py", "bars.py", "attrs generated"), "decoding (frames, fields, Bar)"),
    (("bar_feed.py", "market.py", "stream.py"), "dispatch (KlineStream, BinanceMarket, BarFeed)"),
)


def profile_ours(opt: argparse.Namespace) -> None:
    """Run ``ours`` under cProfile; own time grouped by layer, then the top functions."""
    profiler = cProfile.Profile()
    profiler.enable()
    run_client(opt)
    profiler.disable()
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    for (filename, _, func), (_, _, tottime, _, _) in stats.items():
        where = f"{filename} {func}"
        if "time.sleep" in where or "epoll" in where:  # the stall and idle waits, not work
            continue
        if "builtins.sorted" in where:
            where = "bar_feed.py (its trim sorts every series' bars)"
        key = next((k for ws, k in GROUPS if any(w in where for w in ws)), "other (builtins)")
        groups[key] = groups.get(key, 0.0) + tottime
    total = sum(groups.values())
    print("\nwhere our client's time goes (cProfile, own time, live window + burst):")
    for key, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * seconds / total:5.1f} %  {key}")
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(12)
    print("\n".join(text.getvalue().splitlines()[6:]))


# -- the parent ------------------------------------------------------------------------------------


def child(args: list[str], cpu: int, **kw: Any) -> subprocess.Popen[str]:
    command = [sys.executable, __file__, "--pin", str(cpu), *args]
    return subprocess.Popen(command, text=True, **kw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 run, 2 s windows")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--window", type=float, default=5.0, help="seconds of live feed counted")
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--stall", type=float, default=3.0, help="seconds the client is blocked")
    parser.add_argument("--burst", type=int, default=8_000, help="messages drained after it")
    parser.add_argument("--speed", type=float, default=4000.0, help="market seconds per second")
    parser.add_argument("--profile", action="store_true", help="then profile our client")
    parser.add_argument("--pin", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    opt = parser.parse_args()
    if opt.pin is not None:
        pin(opt.pin)
    if opt.serve:
        trio.run(serve, opt.speed)
        return
    if opt.client:
        faulthandler.dump_traceback_later(opt.warmup + opt.window + opt.stall + 30, exit=True)
        print(json.dumps(run_client(opt)))
        return
    if opt.quick:
        opt.runs, opt.window = 1, 2.0
    server = child(["--serve", "--speed", str(opt.speed)], SERVER_CPU, stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        opt.port = int(server.stdout.readline().split()[1])
        measure(opt, psutil.Process(server.pid))
        if opt.profile:
            pin(CLIENT_CPU)
            opt.client = "ours"
            profile_ours(opt)
    finally:
        server.terminate()
        server.wait(10)


def measure(opt: argparse.Namespace, server: psutil.Process) -> None:
    print(
        f"exchange-sim on :{opt.port} (CPU {SERVER_CPU}), speed {opt.speed:g}, "
        f"{len(STREAMS)} streams; clients on CPU {CLIENT_CPU}; {opt.window:g} s live windows, "
        f"bursts of {opt.burst:,} after a {opt.stall:g} s stall"
    )
    rows: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for run in range(opt.runs):
        for name in CLIENTS if run % 2 == 0 else tuple(reversed(CLIENTS)):
            before, started = server.cpu_times(), time.perf_counter()
            flags = ["--client", name, "--port", str(opt.port)]
            for flag in ("window", "warmup", "stall", "burst"):
                flags += [f"--{flag}", str(getattr(opt, flag))]
            proc = child(flags, CLIENT_CPU, stdout=subprocess.PIPE)
            out, _ = proc.communicate(timeout=opt.window + opt.warmup + opt.stall + 90)
            after, wall = server.cpu_times(), time.perf_counter() - started
            if proc.returncode != 0 or not out.strip():
                print(f"  run {run + 1} {name:13} FAILED (exit {proc.returncode}); not counted")
                continue
            busy = 100 * (after.user + after.system - before.user - before.system) / wall
            line = f"  run {run + 1} {name:13}"
            for phase, (count, seconds, cpu) in json.loads(out.strip().splitlines()[-1]).items():
                rate, per_msg = count / seconds, 1e6 * cpu / max(count, 1)
                rows.setdefault((name, phase), []).append((rate, per_msg))
                line += f" {phase} {rate:7,.0f}/s {per_msg:5.1f} µs/msg;"
            print(f"{line} server CPU {busy:3.0f} %, load {os.getloadavg()[0]:.2f}")
    failed = [c for c in CLIENTS if (c, "live") not in rows]
    if failed:
        raise SystemExit(f"every run of {', '.join(failed)} failed")
    med = {k: tuple(statistics.median(x[i] for x in v) for i in (0, 1)) for k, v in rows.items()}
    print(f"\nmedians of {opt.runs} run(s): msg/s (client CPU µs per message)")
    print(f"  {'client':13} {'live feed':>20} {'burst':>20} {'capacity':>9}")
    capacity = {c: 1e6 / med[(c, "burst")][1] for c in CLIENTS}
    for c in CLIENTS:
        (lr, lc), (br, bc) = med[(c, "live")], med[(c, "burst")]
        print(f"  {c:13} {lr:10,.0f} ({lc:5.1f} µs) {br:10,.0f} ({bc:5.1f} µs) {capacity[c]:9,.0f}")
    print("  (capacity: messages per second of client CPU in the burst, 1 / CPU per message)")
    for phase in ("live", "burst"):
        ratio = med[("ours", phase)][0] / med[("asyncio-json", phase)][0]
        plain = med[("ours", phase)][0] / med[("asyncio-recv", phase)][0]
        print(f"{phase:8}: ours / asyncio-json {ratio:.2f}x, ours / asyncio-recv {plain:.2f}x")
    ratio = capacity["ours"] / capacity["asyncio-json"]
    verdict = "PASS" if ratio >= TARGET else "MISS"
    print(
        f"capacity: ours / asyncio-json {ratio:.2f}x, ours / asyncio-recv "
        f"{capacity['ours'] / capacity['asyncio-recv']:.2f}x  target >= {TARGET}: {verdict}"
    )


if __name__ == "__main__":
    main()
