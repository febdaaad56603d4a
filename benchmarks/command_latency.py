"""Command latency, idle CPU, memory and start-up of trio-trade against the busy-poll baseline.

What it measures
    For N strategies (1, 1,000 and 10,000) that each sleep until their next bar close on the wall
    clock:

    * **command latency**: from sending ``pause NAME`` to the strategy leaving its sleep phase and
      being PAUSED (the ``StrategyStateChanged(new="paused")`` event reaching the ``publish``
      callback, where ``time.perf_counter()`` is recorded). One command in flight at a time, to a
      random strategy, followed by ``resume NAME``; so this is latency, not queueing. Two paths:
      the operator's path (``Runner.send("pause NAME")``: parse, look up, deliver) and the direct
      path (``StrategyRunner.send(Command(...))``).
    * **bar-close latency**: the same, for a command that arrives exactly at a bar close, when all
      N strategies wake at once (the thundering herd), plus how long the herd takes.
    * **idle CPU**: CPU seconds per wall second while all N strategies sleep on a 1h bar.
    * **memory**: RSS increase after starting N strategies, per strategy and in total.
    * **start-up**: wall time of ``await runner.add_many(...)`` for N strategies (concurrent
      starts, garbage collector paused meanwhile, nothing frozen; a plain ``add`` loop takes
      about 3x longer at 10,000), and the time to ``stop all`` of them, which every shutdown
      pays (the stops share their recorder flushes). ``--scale N`` measures only these two and
      the memory, as the median of three child runs, with the machine's load average.

    The same figures are measured for the design trio-trade replaces, reimplemented here: each
    strategy is an asyncio task that computes, then races ``asyncio.wait([sleep_task,
    checker_task], return_when=FIRST_COMPLETED)``, where the checker busy-polls the strategy's
    ``asyncio.Queue`` with ``get_nowait()`` / ``await asyncio.sleep(0)``; a command cancels the
    sleep task, and a paused strategy polls the same way until ``resume``. Its latency is from
    ``queue.put_nowait`` to the sleep task being cancelled and the strategy marked paused.

Why
    A strategy must obey ``pause``/``stop`` at once whatever it is doing, and a runner must host
    many strategies that mostly sleep. Busy polling buys responsiveness with a core of CPU and
    gets slower with every strategy added; cancel scopes should give both for free.

How to run
    . .venv/bin/activate
    python benchmarks/command_latency.py            # full run, < 5 minutes on 2 cores
    python benchmarks/command_latency.py --quick    # N in (1, 1000), fewer samples, < 60 s
    python benchmarks/command_latency.py --scale 10000 [--recorder]  # start/stop all, median of 3
    python benchmarks/command_latency.py --isolated [--isolated-n 100]  # across processes

    ``--isolated`` measures the isolated path (``benchmarks/isolated_latency.py``): ``pause`` of
    a strategy computing in its own process (p50/p99 across the process boundary, target p99
    <= 2 ms at 100 isolated strategies) next to the same in-process, and the memory of one
    isolated strategy (its child's RSS and USS); medians of ``--runs`` child runs.

    Each (design, N) runs in its own child process (this script re-invoked with ``--child``), one
    after the other, so memory and CPU figures do not contaminate each other. The children print
    one ``RESULT {json}`` line; the parent prints the figures, targets and a summary table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

RESULT_TAG = "RESULT "
WARMUP = 20  # pause/resume pairs discarded before timing

# Targets (trio-trade): printed as PASS/MISS next to the figures.
TARGET_P50_US = 200.0  # at N = 1,000, outside the bar-close moment
TARGET_P99_US = 1000.0  # strictly below, at N = 1,000
TARGET_IDLE_CPU = 0.001  # CPU seconds per wall second (0.1 % of a core)
TARGET_MEM_MB_10K = 150.0
TARGET_START_S_10K = 1.5
TARGET_STOP_ALL_S_10K = 1.0
# A command arriving on the close all N share (issue 6): p99, and better than the baseline.
TARGET_HERD_P99_US = {1000: 5_000.0, 10_000: 20_000.0}


@dataclass
class Plan:
    """What one child process measures."""

    design: str  # "trio" or "busypoll"
    n: int
    samples: int  # pause/resume pairs per path
    max_seconds: float  # wall-time cap on the sampling loop
    idle_seconds: float
    closes: int  # bar closes sampled for the thundering-herd figure
    herd_interval: str  # bar length of the herd strategies ("1s", "2s")
    seed: int = 1


# -- helpers shared by both children -----------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(values: list[float]) -> dict[str, float]:
    """Latencies in seconds -> p50/p99/max in microseconds, with the sample count."""
    return {
        "count": len(values),
        "p50_us": percentile(values, 50) * 1e6,
        "p99_us": percentile(values, 99) * 1e6,
        "max_us": max(values) * 1e6 if values else math.nan,
    }


def rss_bytes() -> int:
    return int(psutil.Process().memory_info().rss)


def interval_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return int(text[:-1]) * units[text[-1]]


def next_close(now: float, seconds: int) -> float:
    """The first bar close strictly after ``now`` (bars aligned to the epoch, as in trio-trade)."""
    return (math.floor(now / seconds) + 1) * seconds


def perf_at(wall: float) -> float:
    """The ``perf_counter()`` reading at which ``time.time()`` shows ``wall``."""
    return time.perf_counter() + (wall - time.time())


class GcTimer:
    """Counts garbage collections and their pause time, per generation."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = 0.0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        generation = info["generation"]
        self.count[generation] += 1
        self.seconds[generation] += pause
        self.longest = max(self.longest, pause)

    def reset(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = 0.0

    def report(self) -> dict[str, float]:
        return {
            "full_collections": self.count[2],
            "full_seconds": self.seconds[2],
            "total_seconds": sum(self.seconds),
            "longest_ms": self.longest * 1e3,
        }


class Sampler:
    """Collects pause latencies until ``samples`` or the wall-time cap is reached."""

    def __init__(self, plan: Plan, paths: tuple[str, ...]) -> None:
        self.plan = plan
        self.paths = paths
        self.latency: dict[str, list[float]] = {p: [] for p in paths}
        self.reply: dict[str, list[float]] = {p: [] for p in paths}
        self.rng = random.Random(plan.seed)
        self.capped = False
        self._deadline = 0.0
        self._i = 0

    def start(self) -> None:
        self._deadline = time.perf_counter() + self.plan.max_seconds

    def next_path(self) -> str | None:
        """The path of the next sample, or None when done; warm-up samples come first."""
        i = self._i
        self._i += 1
        if i >= WARMUP + self.plan.samples * len(self.paths):
            return None
        if i >= WARMUP and time.perf_counter() > self._deadline:
            self.capped = True
            return None
        return self.paths[i % len(self.paths)]

    def record(self, path: str, latency: float, reply: float) -> None:
        if self._i > WARMUP:
            self.latency[path].append(latency)
            self.reply[path].append(reply)

    def report(self) -> dict[str, Any]:
        return {
            "latency": {p: summarize(v) for p, v in self.latency.items()},
            "reply": {p: summarize(v) for p, v in self.reply.items()},
            "capped": self.capped,
        }


# -- trio-trade --------------------------------------------------------------------------------


def run_trio(plan: Plan) -> dict[str, Any]:
    import attrs
    import trio

    import trading
    from trading import Command, StrategyRunner, StrategyState, StrategyStateChanged

    herd_interval = plan.herd_interval

    def edges(clock: trading.Clock) -> dict[str, Any]:
        """The simulated market and paper broker (the Runner picks no edges itself)."""
        market, exchange = trading.simulated(clock)
        return {"market": market, "exchange": exchange}

    @attrs.define
    class Hourly(trading.Strategy):
        """Does nothing on a 1h bar: it sleeps through the whole measurement."""

        interval = "1h"

        async def next(self, ctx: trading.Context) -> None:
            return None

    @attrs.define
    class Herd(trading.Strategy):
        """Does nothing on a short bar, so every instance wakes on the same close."""

        interval = herd_interval

        async def next(self, ctx: trading.Context) -> None:
            return None

    class Probe:
        """The publish callback: timestamps the events the benchmark waits for, nothing else."""

        def __init__(self) -> None:
            self.watch = ""
            self.t_paused = 0.0
            self.computes = 0
            self.t_last_compute_done = 0.0
            self._expected = -1
            self._reached = trio.Event()

        def expect(self, computes: int) -> trio.Event:
            """Count computes from zero; the event is set once ``computes`` have finished."""
            self.computes, self._expected, self._reached = 0, computes, trio.Event()
            if computes <= 0:
                self._reached.set()
            return self._reached

        def __call__(self, event: trading.Event) -> None:
            if type(event) is StrategyStateChanged:
                if event.new == "paused":
                    if event.strategy == self.watch:
                        self.t_paused = time.perf_counter()
                elif event.old == "computing" and event.strategy != self.watch:
                    self.computes += 1
                    self.t_last_compute_done = time.perf_counter()
                    if self.computes == self._expected:
                        self._reached.set()

    def ok(results: list[trading.CommandResult], what: str) -> None:
        if len(results) != 1 or not results[0].ok:
            raise RuntimeError(f"{what}: {results}")

    async def pause_resume(
        runner: trading.Runner, sr: StrategyRunner, path: str, probe: Probe
    ) -> tuple[float, float]:
        """Pause ``sr`` and resume it; (seconds to PAUSED, seconds to the pause reply)."""
        name = sr.name
        probe.watch, probe.t_paused = name, 0.0
        t0 = time.perf_counter()
        if path == "text":
            results = await runner.send(f"pause {name}")
        else:
            results = [await sr.send(Command("pause", name, text=f"pause {name}"))]
        t_reply = time.perf_counter()
        ok(results, "pause")
        if probe.t_paused == 0.0 or sr.state is not StrategyState.PAUSED:
            raise RuntimeError(f"{name} replied to pause but is {sr.state}")
        latency = probe.t_paused - t0
        if path == "text":
            results = await runner.send(f"resume {name}")
        else:
            results = [await sr.send(Command("resume", name, text=f"resume {name}"))]
        ok(results, "resume")
        if sr.state.value != "sleeping":  # (a fresh read: the await above changed it)
            raise RuntimeError(f"{name} replied to resume but is {sr.state}")
        return latency, t_reply - t0

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {"design": "trio", "n": plan.n, "notes": []}
        probe = Probe()
        gct = GcTimer()
        clock = trading.WallClock()
        async with trading.Runner(clock=clock, publish=probe, **edges(clock)) as runner:
            gc.collect()
            rss0 = rss_bytes()
            gct.reset()
            all_asleep = probe.expect(plan.n)  # each computes once on start, then sleeps
            t = time.perf_counter()
            srs = await runner.add_many((f"s{i}", Hourly()) for i in range(plan.n))
            out["start_s"] = time.perf_counter() - t
            await all_asleep.wait()
            out["start_all_sleeping_s"] = time.perf_counter() - t
            out["gc_start"] = gct.report()
            gc.collect()
            grown = rss_bytes() - rss0
            out["rss_total_mb"] = grown / 1e6
            out["rss_per_strategy_kb"] = grown / plan.n / 1e3

            await trio.sleep(0.2)
            computes = probe.computes
            c0, w0 = time.process_time(), time.perf_counter()
            await trio.sleep(plan.idle_seconds)
            out["idle_cpu"] = (time.process_time() - c0) / (time.perf_counter() - w0)
            if probe.computes != computes:
                out["notes"].append("an hourly bar closed during the idle window")

            gct.reset()
            sampler = Sampler(plan, ("text", "direct"))
            sampler.start()
            while (path := sampler.next_path()) is not None:
                latency, reply = await pause_resume(runner, sampler.rng.choice(srs), path, probe)
                sampler.record(path, latency, reply)
            out["samples"] = sampler.report()
            out["gc_samples"] = gct.report()

            t = time.perf_counter()
            await runner.stop_all()
            out["stop_all_s"] = time.perf_counter() - t

        out["herd"] = await herd(clock, probe, gct)
        return out

    async def herd(clock: trading.WallClock, probe: Probe, gct: GcTimer) -> dict[str, Any]:
        """Latency of a command that arrives exactly on the bar close all N wake on."""
        seconds = interval_seconds(plan.herd_interval)
        latencies: list[float] = []
        durations: list[float] = []
        computes: list[int] = []
        rng = random.Random(plan.seed + 1)
        async with trading.Runner(clock=clock, publish=probe, **edges(clock)) as runner:
            all_asleep = probe.expect(plan.n)
            srs = await runner.add_many((f"h{i}", Herd()) for i in range(plan.n))
            await all_asleep.wait()
            # Let the first herd after start-up pass untimed: add_many can straddle a close.
            await clock.sleep_until(next_close(time.time() + 0.05, seconds) + seconds / 2)
            gct.reset()
            for _ in range(plan.closes):
                close = next_close(time.time() + 0.05, seconds)
                perf_close = perf_at(close)
                sr = rng.choice(srs)
                probe.watch, probe.t_paused = sr.name, 0.0
                others_done = probe.expect(plan.n - 1)
                await clock.sleep_until(close)
                # The operator's command arrives at the close: time it from then.
                ok(await runner.send(f"pause {sr.name}"), "pause at close")
                latencies.append(probe.t_paused - perf_close)
                ok(await runner.send(f"resume {sr.name}"), "resume")
                with trio.move_on_after(close + seconds * 0.9 - time.time()):
                    await others_done.wait()
                if plan.n > 1:
                    durations.append(probe.t_last_compute_done - perf_close)
                computes.append(probe.computes)
            gc_herd = gct.report()
        if any(c != plan.n - 1 for c in computes):
            raise RuntimeError(f"herd: expected {plan.n - 1} others to compute, saw {computes}")
        return {
            "interval": plan.herd_interval,
            "latency": summarize(latencies),
            "duration": summarize(durations),
            "gc": gc_herd,
        }

    return trio.run(main)


# -- the baseline: asyncio busy-poll -----------------------------------------------------------


class BusyPollCommand:
    __slots__ = ("reply", "verb")

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()


class BusyPollProbe:
    def __init__(self) -> None:
        self.watch: BusyPollStrategy | None = None
        self.t_paused = 0.0
        self.asleep = 0
        self.expected_asleep = -1
        self.computes = 0
        self.t_last_compute_done = 0.0
        self.all_asleep = asyncio.Event()
        self.others_done = asyncio.Event()
        self.expected = -1

    def expect(self, computes: int) -> asyncio.Event:
        self.computes, self.expected, self.others_done = 0, computes, asyncio.Event()
        if computes <= 0:
            self.others_done.set()
        return self.others_done

    def computed(self, strategy: BusyPollStrategy) -> None:
        if strategy is not self.watch:
            self.computes += 1
            self.t_last_compute_done = time.perf_counter()
            if self.computes == self.expected:
                self.others_done.set()


class BusyPollStrategy:
    """The design trio-trade replaces: compute, then race a sleep against a polling checker."""

    def __init__(self, name: str, interval: int, probe: BusyPollProbe) -> None:
        self.name = name
        self.interval = interval
        self.probe = probe
        self.queue: asyncio.Queue[BusyPollCommand] = asyncio.Queue()
        self.state = "created"

    async def compute(self) -> None:
        return None

    async def _check_commands(self) -> BusyPollCommand:
        while True:
            try:
                return self.queue.get_nowait()
            except asyncio.QueueEmpty:
                await asyncio.sleep(0)

    async def _computed(self) -> None:
        self.state = "computing"
        await self.compute()
        self.probe.computed(self)

    async def run(self) -> None:
        await self._computed()
        first = True
        while True:
            self.state = "sleeping"
            if first:
                self.probe.asleep += 1
                if self.probe.asleep == self.probe.expected_asleep:
                    self.probe.all_asleep.set()
                first = False
            now = time.time()
            sleep_task = asyncio.ensure_future(asyncio.sleep(next_close(now, self.interval) - now))
            checker_task = asyncio.ensure_future(self._check_commands())
            done, _ = await asyncio.wait(
                [sleep_task, checker_task], return_when=asyncio.FIRST_COMPLETED
            )
            if checker_task not in done:
                checker_task.cancel()
                await self._computed()
                continue
            command = checker_task.result()
            sleep_task.cancel()
            if command.verb == "stop":
                self.state = "stopped"
                command.reply.set_result("stopped")
                return
            if command.verb == "wake":
                command.reply.set_result("waking")
                await self._computed()
                continue
            if command.verb != "pause":
                command.reply.set_result(f"not paused ({self.state})")
                continue
            self.state = "paused"
            if self.probe.watch is self:
                self.probe.t_paused = time.perf_counter()
            command.reply.set_result("paused")
            while True:  # paused: poll the queue the same way until resume or stop
                command = await self._check_commands()
                if command.verb == "stop":
                    self.state = "stopped"
                    command.reply.set_result("stopped")
                    return
                if command.verb == "resume":
                    command.reply.set_result("resumed")
                    break
                command.reply.set_result("paused")


def run_busypoll(plan: Plan) -> dict[str, Any]:
    async def send(strategy: BusyPollStrategy, verb: str) -> str:
        command = BusyPollCommand(verb)
        strategy.queue.put_nowait(command)
        return await command.reply

    async def pause_resume(strategy: BusyPollStrategy, probe: BusyPollProbe) -> tuple[float, float]:
        probe.watch, probe.t_paused = strategy, 0.0
        command = BusyPollCommand("pause")
        t0 = time.perf_counter()
        strategy.queue.put_nowait(command)
        await command.reply
        t_reply = time.perf_counter()
        if probe.t_paused == 0.0 or strategy.state != "paused":
            raise RuntimeError(f"{strategy.name} replied to pause but is {strategy.state}")
        await send(strategy, "resume")
        return probe.t_paused - t0, t_reply - t0

    async def start(
        n: int, interval: int, probe: BusyPollProbe, prefix: str
    ) -> tuple[list[BusyPollStrategy], list[asyncio.Task[None]]]:
        strategies = [BusyPollStrategy(f"{prefix}{i}", interval, probe) for i in range(n)]
        probe.expected_asleep = n
        tasks = [asyncio.create_task(s.run()) for s in strategies]
        await probe.all_asleep.wait()
        return strategies, tasks

    async def stop(strategies: list[BusyPollStrategy], tasks: list[asyncio.Task[None]]) -> None:
        commands = []
        for strategy in strategies:
            command = BusyPollCommand("stop")
            strategy.queue.put_nowait(command)
            commands.append(command.reply)
        await asyncio.gather(*commands)
        await asyncio.gather(*tasks)

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {"design": "busypoll", "n": plan.n, "notes": []}
        probe = BusyPollProbe()
        gct = GcTimer()
        gc.collect()
        rss0 = rss_bytes()
        gct.reset()
        t = time.perf_counter()
        strategies, tasks = await start(plan.n, 3600, probe, "s")
        out["start_s"] = out["start_all_sleeping_s"] = time.perf_counter() - t
        out["gc_start"] = gct.report()
        gc.collect()
        grown = rss_bytes() - rss0
        out["rss_total_mb"] = grown / 1e6
        out["rss_per_strategy_kb"] = grown / plan.n / 1e3

        await asyncio.sleep(0.2)
        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(plan.idle_seconds)
        out["idle_cpu"] = (time.process_time() - c0) / (time.perf_counter() - w0)

        gct.reset()
        sampler = Sampler(plan, ("queue",))
        sampler.start()
        while (path := sampler.next_path()) is not None:
            latency, reply = await pause_resume(sampler.rng.choice(strategies), probe)
            sampler.record(path, latency, reply)
        out["samples"] = sampler.report()
        out["gc_samples"] = gct.report()

        t = time.perf_counter()
        await stop(strategies, tasks)
        out["stop_all_s"] = time.perf_counter() - t
        del strategies, tasks

        out["herd"] = await herd(gct)
        return out

    async def herd(gct: GcTimer) -> dict[str, Any]:
        seconds = interval_seconds(plan.herd_interval)
        probe = BusyPollProbe()
        strategies, tasks = await start(plan.n, seconds, probe, "h")
        rng = random.Random(plan.seed + 1)
        latencies: list[float] = []
        durations: list[float] = []
        lagging = 0
        gct.reset()
        for _ in range(plan.closes):
            close = next_close(time.time() + 0.05, seconds)
            perf_close = perf_at(close)
            strategy = rng.choice(strategies)
            probe.watch, probe.t_paused = strategy, 0.0
            others_done = probe.expect(plan.n - 1)
            await asyncio.sleep(close - time.time())
            command = BusyPollCommand("pause")
            strategy.queue.put_nowait(command)
            await command.reply
            latencies.append(probe.t_paused - perf_close)
            await send(strategy, "resume")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(others_done.wait(), close + seconds * 0.9 - time.time())
            if plan.n > 1:
                durations.append(probe.t_last_compute_done - perf_close)
            # The baseline can fall a whole bar behind under load (two closes' computes land in
            # one window): recorded, not fatal — it is the design being compared against.
            lagging += probe.computes != plan.n - 1
        gc_herd = gct.report()
        await stop(strategies, tasks)
        return {
            "interval": plan.herd_interval,
            "latency": summarize(latencies),
            "duration": summarize(durations),
            "gc": gc_herd,
            "closes_behind": lagging,
        }

    return asyncio.run(main())


# -- scale: start and `stop all` of N, medians of several child runs ----------------------------


def run_scale(n: int, recorder: bool) -> dict[str, Any]:
    """One child: start N idle strategies with ``add_many`` (time, RSS growth), then ``stop
    all`` of them (time, every reply checked). The Runner has the CLI's lossy LogObserver and,
    with ``recorder``, a SQLite Recorder that every stop flushes."""
    import tempfile

    import attrs
    import trio

    import trading
    from trading.observers import LogObserver, Recorder

    @attrs.define
    class Hourly(trading.Strategy):
        interval = "1h"

        async def next(self, ctx: trading.Context) -> None:
            return None

    async def main(db: str) -> dict[str, Any]:
        out: dict[str, Any] = {"n": n, "recorder": recorder}
        clock = trading.WallClock()
        market, exchange = trading.simulated(clock)
        observers: list[Any] = [LogObserver()]
        if recorder:
            observers.append(Recorder(db))
        async with trading.Runner(
            clock=clock, market=market, exchange=exchange, observers=observers
        ) as runner:
            gc.collect()
            rss0 = rss_bytes()
            t = time.perf_counter()
            await runner.add_many((f"s{i}", Hourly()) for i in range(n))
            out["start_s"] = time.perf_counter() - t
            gc.collect()
            out["rss_mb"] = (rss_bytes() - rss0) / 1e6
            await trio.sleep(0.5)  # every strategy computed once on start and went to sleep
            t = time.perf_counter()
            results = await runner.stop_all()
            out["stop_all_s"] = time.perf_counter() - t
            out["replies"] = len(results)
            out["replies_ok"] = sum(1 for r in results if r.ok and r.message.startswith("stopped"))
            out["flushes"] = runner._stop_flush.flushes
        return out

    with tempfile.TemporaryDirectory() as tmp:
        return trio.run(main, f"{tmp}/scale.db")


def scale_report(n: int, runs: int, recorder: bool) -> None:
    results: list[dict[str, Any]] = []
    for _ in range(runs):
        cmd = [sys.executable, __file__, "--scale-child", json.dumps([n, recorder])]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=True)
        line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith(RESULT_TAG))
        results.append(json.loads(line[len(RESULT_TAG) :]))

    def median(key: str) -> float:
        values = sorted(r[key] for r in results)
        return values[len(values) // 2]

    load = ", ".join(f"{x:.2f}" for x in psutil.getloadavg())
    what = "LogObserver + Recorder" if recorder else "LogObserver"
    print(f"scale, N = {n:,}, observers: {what}; median of {runs} child runs; load avg {load}")
    print(
        f"  start (add_many)   {median('start_s'):.3f} s   runs: "
        + ", ".join(f"{r['start_s']:.3f}" for r in results)
    )
    print(
        f"  memory (RSS)       {median('rss_mb'):.1f} MB   runs: "
        + ", ".join(f"{r['rss_mb']:.1f}" for r in results)
    )
    print(
        f"  stop all           {median('stop_all_s'):.3f} s   runs: "
        + ", ".join(f"{r['stop_all_s']:.3f}" for r in results)
    )
    print(
        f"  replies            {min(r['replies_ok'] for r in results):,} of {n:,} 'stopped…' ok;"
        f" recorder flushes per stop all: " + ", ".join(str(r["flushes"]) for r in results)
    )


# -- the parent: plans, child processes, the report --------------------------------------------


def plans(quick: bool) -> list[Plan]:
    sizes = (1, 1000) if quick else (1, 1000, 10_000)
    out: list[Plan] = []
    for n in sizes:
        herd_interval = "5s" if n >= 10_000 else "1s"
        if quick:
            samples = 200 if n == 1 else 500
            trio_plan = Plan("trio", n, samples, 10.0, 1.5, 3, herd_interval)
            base_plan = Plan("busypoll", n, min(samples, 200), 5.0, 1.5, 3, herd_interval)
        else:
            samples = 500 if n == 1 else 2000
            closes = 4 if n >= 10_000 else 8
            trio_plan = Plan("trio", n, samples, 30.0, 3.0, closes, herd_interval)
            base_samples = samples if n == 1 else (500 if n == 1000 else 200)
            base_cap = 20.0 if n >= 10_000 else 15.0
            base_plan = Plan("busypoll", n, base_samples, base_cap, 3.0, closes, herd_interval)
        out += [trio_plan, base_plan]
    return out


def median_result(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every figure over repeated child runs (notes are kept, deduplicated)."""
    out: dict[str, Any] = {}
    for key, first in runs[0].items():
        values = [r[key] for r in runs if key in r]
        if isinstance(first, dict):
            out[key] = median_result(values)
        elif isinstance(first, list):
            out[key] = sorted({str(note) for value in values for note in value})
        elif isinstance(first, bool) or not isinstance(first, int | float):
            out[key] = first
        else:
            finite = sorted(v for v in values if not math.isnan(v))
            out[key] = finite[len(finite) // 2] if finite else math.nan
    return out


def run_child(plan: Plan) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", json.dumps(asdict(plan))]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child {plan.design} N={plan.n} failed with exit code {proc.returncode}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            result: dict[str, Any] = json.loads(line[len(RESULT_TAG) :])
            result["child_wall_s"] = time.perf_counter() - t
            return result
    raise SystemExit(f"child {plan.design} N={plan.n} printed no result:\n{proc.stdout}")


def us(value: float) -> str:
    if math.isnan(value):
        return "-"
    if value >= 10_000:
        return f"{value / 1e3:,.1f} ms"
    return f"{value:,.0f} µs"


def ratio(base: float, trio_value: float) -> str:
    if math.isnan(base) or math.isnan(trio_value) or trio_value <= 0:
        return "-"
    value = base / trio_value
    return f"{value:,.0f}x" if value >= 10 else f"{value:.1f}x"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


PATH_LABELS = {
    "text": "Runner.send('pause NAME')",
    "direct": "StrategyRunner.send(Command)",
    "queue": "queue.put_nowait(pause)",
}


def print_child(r: dict[str, Any], plan: Plan) -> None:
    name = "trio-trade" if r["design"] == "trio" else "busy-poll baseline (asyncio)"
    s, gs, h = r["samples"], r["gc_samples"], r["herd"]
    print(f"\n{name}, N = {r['n']:,}  (child process: {r['child_wall_s']:.1f} s wall)")
    print(
        f"  start N strategies   {r['start_s']:.3f} s  (all asleep after"
        f" {r['start_all_sleeping_s']:.3f} s; {r['gc_start']['full_collections']} full GCs"
        f" took {r['gc_start']['full_seconds']:.3f} s of it)"
    )
    print(
        f"  memory               {r['rss_total_mb']:.1f} MB RSS increase,"
        f" {r['rss_per_strategy_kb']:.1f} kB per strategy"
    )
    print(f"  idle CPU             {r['idle_cpu'] * 100:.2f} % of a core (CPU s / wall s, 1h bars)")
    for path, lat in s["latency"].items():
        print(
            f"  pause latency via {PATH_LABELS[path]:<29} p50 {us(lat['p50_us'])}"
            f"  p99 {us(lat['p99_us'])}  max {us(lat['max_us'])}  (n={lat['count']};"
            f" reply p50 {us(s['reply'][path]['p50_us'])})"
        )
    if s["capped"]:
        taken = next(iter(s["latency"].values()))["count"]
        print(f"  NOTE: sampling capped at {plan.max_seconds:g} s: {taken}/{plan.samples} samples")
    print(
        f"  GC while sampling    {gs['total_seconds'] * 1e3:.1f} ms in total,"
        f" longest pause {gs['longest_ms']:.1f} ms"
    )
    print(f"  stop all             {r['stop_all_s']:.3f} s")
    print(
        f"  bar close ({h['interval']} bars, {h['latency']['count']} closes): pause arriving at"
        f" the close p50 {us(h['latency']['p50_us'])} max {us(h['latency']['max_us'])};"
        f" the other N-1 all computed after p50 {us(h['duration']['p50_us'])}"
        f" max {us(h['duration']['max_us'])}; GC {h['gc']['total_seconds']:.3f} s"
        f" (longest {h['gc']['longest_ms']:.0f} ms)"
    )
    if h.get("closes_behind"):
        print(f"  NOTE: at {h['closes_behind']:g} of the closes the herd ran a whole bar behind")
    for note in r["notes"]:
        print(f"  NOTE: {note}")


def summary(results: dict[tuple[str, int], dict[str, Any]], sizes: list[int]) -> int:
    """Print the summary table; returns the number of targets missed."""
    print("\nSummary (latency: pause command -> strategy PAUSED; ratio = busy-poll / trio-trade)")
    header = f"{'metric':<33}{'N':>7}{'trio-trade':>13}{'busy-poll':>13}{'ratio':>9}  target"
    print(header)
    print("-" * (len(header) + 22))
    misses = 0

    def row(
        metric: str, n: int, t: float, b: float, fmt: Callable[[float], str], goal: str
    ) -> None:
        print(f"{metric:<33}{n:>7,}{fmt(t):>13}{fmt(b):>13}{ratio(b, t):>9}  {goal}")

    def check(ok: bool, text: str) -> str:
        nonlocal misses
        misses += not ok
        return f"{text} {verdict(ok)}"

    def pct(v: float) -> str:
        return f"{v * 100:.2f} %"

    def sec(v: float) -> str:
        return f"{v:.3f} s"

    def num(v: float) -> str:
        return f"{v:.1f}"

    for n in sizes:
        t, b = results[("trio", n)], results[("busypoll", n)]
        tt, td = t["samples"]["latency"]["text"], t["samples"]["latency"]["direct"]
        bq = b["samples"]["latency"]["queue"]
        th, bh = t["herd"]["latency"], b["herd"]["latency"]
        at_1k = n == 1000
        at_10k = n == 10_000
        p50_target = check(tt["p50_us"] <= TARGET_P50_US, "<= 200 µs") if at_1k else ""
        p99_target = check(tt["p99_us"] < TARGET_P99_US, "< 1 ms") if at_1k else ""
        if b["samples"]["capped"]:
            p99_target += "  (busy-poll capped)"
        row("pause p50, Runner.send", n, tt["p50_us"], bq["p50_us"], us, p50_target)
        row("pause p99, Runner.send", n, tt["p99_us"], bq["p99_us"], us, p99_target)
        row("pause p50, StrategyRunner.send", n, td["p50_us"], bq["p50_us"], us, "")
        row("pause p99, StrategyRunner.send", n, td["p99_us"], bq["p99_us"], us, "")
        row("pause at bar close, p50", n, th["p50_us"], bh["p50_us"], us, "")
        herd_goal = TARGET_HERD_P99_US.get(n)
        herd_target = (
            check(
                th["p99_us"] <= herd_goal and th["p99_us"] < bh["p99_us"],
                f"<= {herd_goal / 1e3:g} ms and < baseline",
            )
            if herd_goal is not None
            else ""
        )
        row("pause at bar close, p99", n, th["p99_us"], bh["p99_us"], us, herd_target)
        cpu_target = check(t["idle_cpu"] <= TARGET_IDLE_CPU, "<= 0.1 %")
        row("idle CPU, % of a core", n, t["idle_cpu"], b["idle_cpu"], pct, cpu_target)
        if n > 1:
            kb_t, kb_b = t["rss_per_strategy_kb"], b["rss_per_strategy_kb"]
            row("memory, kB per strategy", n, kb_t, kb_b, num, "")
            mem_ok = t["rss_total_mb"] <= TARGET_MEM_MB_10K
            mem_target = check(mem_ok, "<= 150 MB") if at_10k else ""
            row("memory, MB total", n, t["rss_total_mb"], b["rss_total_mb"], num, mem_target)
        start_target = check(t["start_s"] <= TARGET_START_S_10K, "<= 1.5 s") if at_10k else ""
        row("start N strategies", n, t["start_s"], b["start_s"], sec, start_target)
        stop_target = check(t["stop_all_s"] <= TARGET_STOP_ALL_S_10K, "<= 1 s") if at_10k else ""
        row("stop all", n, t["stop_all_s"], b["stop_all_s"], sec, stop_target)
        print()
    return misses


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N in (1, 1000), fewer samples")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--scale",
        type=int,
        metavar="N",
        help="only start and `stop all` of N strategies (median of --runs child runs)",
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="child runs per design and N (the median is shown)"
    )
    parser.add_argument("--recorder", action="store_true", help="--scale with a SQLite Recorder")
    parser.add_argument("--scale-child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--isolated", action="store_true", help="the isolated path: pause across processes"
    )
    parser.add_argument("--isolated-n", type=int, default=100, metavar="N")
    args = parser.parse_args()
    if args.isolated:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from isolated_latency import report

        raise SystemExit(report(args.runs, args.isolated_n))
    if args.scale_child:
        n, recorder = json.loads(args.scale_child)
        print(RESULT_TAG + json.dumps(run_scale(n, recorder)), flush=True)
        return
    if args.scale:
        scale_report(args.scale, args.runs, args.recorder)
        return
    if args.child:
        plan = Plan(**json.loads(args.child))
        measure: Callable[[Plan], dict[str, Any]] = (
            run_trio if plan.design == "trio" else run_busypoll
        )
        print(RESULT_TAG + json.dumps(measure(plan)), flush=True)
        return

    t_all = time.perf_counter()
    print(
        f"command_latency: trio-trade vs the asyncio busy-poll baseline"
        f" ({'quick' if args.quick else 'full'} run; Python {sys.version.split()[0]},"
        f" {psutil.cpu_count()} CPUs; one child process per design and N, run one at a time)"
    )
    results: dict[tuple[str, int], dict[str, Any]] = {}
    all_plans = plans(args.quick)
    loads: list[str] = []
    for plan in all_plans:
        runs = []
        for k in range(args.runs):
            runs.append(run_child(plan))
            loads.append(", ".join(f"{x:.2f}" for x in psutil.getloadavg()))
            last = runs[-1]
            herd = last["herd"]["latency"]
            pause = next(iter(last["samples"]["latency"].values()))
            print(
                f"  run {k + 1}/{args.runs}: {plan.design} N={plan.n:,}: pause p50"
                f" {us(pause['p50_us'])}, at bar close p99 {us(herd['p99_us'])},"
                f" stop all {last['stop_all_s']:.3f} s"
            )
        results[(plan.design, plan.n)] = result = median_result(runs)
        print_child(result, plan)

    print(f"\nEvery figure below is the median of {args.runs} child runs per design and N.")
    print(f"Load average (1, 5, 15 min) after each child: first {loads[0]}; last {loads[-1]}")
    misses = summary(results, sorted({p.n for p in all_plans}))
    if args.quick:
        print("--quick: no N = 10,000 run, so the memory and start-up targets are not checked.")
    for p in all_plans:
        taken = results[(p.design, p.n)]["samples"]["latency"]
        if p.design == "busypoll" and p.n > 1:
            print(
                f"Busy-poll N={p.n:,}: capped at {p.samples} samples and {p.max_seconds:g} s of"
                f" sampling (took {taken['queue']['count']}): every command waits for whole rounds"
                " of N polling tasks."
            )
    print(
        "Bar close latency is timed from the close itself (a command arriving then): it\n"
        "includes the herd of wake-ups ahead of it, and trio's timer lateness of ~1-2 ms (epoll\n"
        "timeouts are whole milliseconds, rounded up); the busy-poll loop never blocks in epoll."
    )
    print(f"Targets missed: {misses}.  Total wall time {time.perf_counter() - t_all:.0f} s.")


if __name__ == "__main__":
    main()
