"""How fast ``stop`` interrupts a strategy that is busy computing, and what keeps burning after.

What it measures
    A strategy whose ``next()`` runs ~5 s of pure-Python CPU-bound work, three ways:

    * ``process``: ``await ctx.run_in_process(burn, 5.0)`` (trio-parallel, the worker is killed
      on cancel);
    * ``thread``: ``await ctx.run_in_thread(burn, 5.0)`` (``abandon_on_cancel=True``: the await
      returns at once, but a thread cannot be killed, so it keeps burning CPU and holding the
      GIL until the work is done);
    * ``inline``: ``burn(5.0)`` called directly in ``next()``: the event loop is blocked, so the
      command cannot even be read until the work finishes.

    About 0.5 s into the compute, ``stop NAME`` is sent and the script measures the wall time to
    the stop reply and to the StrategyRunner being finished (``sr.finished``), then the CPU use
    of the whole process tree (this process and its children, psutil) and the event loop's lag
    over the following second, and whether the worker process is gone. The process variant's
    worker pool is warmed first, so worker start-up is not counted in the stop latency; the
    cold start-up and a warm round trip are reported separately.

    For ``process`` and ``thread`` the stop is sent from a trio task. For ``inline`` no trio task
    can run while ``next()`` holds the loop, so the stop comes from an operator thread through
    ``Runner.send_from_thread`` (as a Telegram or console front end would), timed in that thread.

Why
    DESIGN.md rule 5: compute that holds the CPU runs elsewhere, so that a command still lands
    within milliseconds. This shows that it does for worker processes, and what the other two
    ways cost. Target: stop within 50 ms for the process variant.

How to run
    . .venv/bin/activate
    python benchmarks/interrupt_compute.py           # about a minute
    python benchmarks/interrupt_compute.py --repeats 2
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib.metadata import version

import attrs
import psutil
import trio
import trio_parallel

import trading

WORK_SECONDS = 5.0  # length of the CPU-bound compute
STOP_AFTER = 0.5  # seconds of computing before the stop is sent
AFTER_WINDOW = 1.0  # seconds of CPU and loop-lag measurement after the stop reply
TARGET_STOP_S = 0.050  # process variant


def burn(seconds: float) -> int:
    """Pure-Python CPU-bound work for about ``seconds`` (holds the GIL, as such code does)."""
    deadline = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < deadline:
        for i in range(10_000):
            total += i * i % 7
    return total


def noop() -> int:
    return os.getpid()


class ThreadWork:
    """``burn`` run in a thread, telling us when it really ends (after the strategy stopped)."""

    def __init__(self) -> None:
        self.finished = threading.Event()
        self.t_end = 0.0

    def __call__(self, seconds: float) -> int:
        try:
            return burn(seconds)
        finally:
            self.t_end = time.perf_counter()
            self.finished.set()


@dataclass
class Shared:
    """What the strategy and the measuring code share (one run at a time)."""

    started: threading.Event = field(default_factory=threading.Event)
    t_started: float = 0.0
    thread_work: ThreadWork = field(default_factory=ThreadWork)


SHARED = Shared()


@attrs.define
class Crunch(trading.Strategy):
    """Runs ~5 s of pure-Python compute in next(), in a worker process, a thread or inline."""

    interval = "1h"

    mode: str = "process"
    seconds: float = WORK_SECONDS

    async def next(self, ctx: trading.Context) -> None:
        SHARED.t_started = time.perf_counter()
        SHARED.started.set()
        if self.mode == "process":
            await ctx.run_in_process(burn, self.seconds)
        elif self.mode == "thread":
            await ctx.run_in_thread(SHARED.thread_work, self.seconds)
        else:
            burn(self.seconds)


@dataclass
class Outcome:
    mode: str
    stop_reply_s: float = math.nan
    finished_s: float = math.nan
    reply: str = ""
    after_cpu: float = math.nan  # CPU seconds per wall second, process tree, after the reply
    loop_lag_max_s: float = math.nan  # worst lateness of a 20 ms trio.sleep in that window
    worker_pid: int | None = None
    worker_cpu_before: float = math.nan
    worker_gone: bool | None = None
    work_ran_on_s: float = math.nan  # thread: how long after the stop the work really ended


def tree_cpu_seconds(procs: dict[int, psutil.Process], last: dict[int, float]) -> float:
    """Total CPU seconds of this process and all its children; dead ones keep their last value."""
    me = psutil.Process()
    for child in me.children(recursive=True):
        procs.setdefault(child.pid, child)
    for pid, proc in procs.items():
        try:
            times = proc.cpu_times()
            last[pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    mine = me.cpu_times()
    return float(mine.user + mine.system) + sum(last.values())


def children_cpu() -> dict[int, float]:
    out: dict[int, float] = {}
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        out[child.pid] = times.user + times.system
    return out


async def after_stop_window() -> tuple[float, float]:
    """(CPU s per wall s of the process tree, worst loop lag) over the next AFTER_WINDOW s."""
    procs: dict[int, psutil.Process] = {}
    last: dict[int, float] = {}
    c0, w0 = tree_cpu_seconds(procs, last), time.perf_counter()
    worst = 0.0
    while time.perf_counter() - w0 < AFTER_WINDOW:
        t = time.perf_counter()
        await trio.sleep(0.02)
        worst = max(worst, time.perf_counter() - t - 0.02)
    return (tree_cpu_seconds(procs, last) - c0) / (time.perf_counter() - w0), worst


async def run_process_or_thread(mode: str) -> Outcome:
    out = Outcome(mode)
    SHARED.started.clear()
    SHARED.thread_work = ThreadWork()
    async with trading.Runner(publish=lambda event: None) as runner:
        sr = await runner.add(Crunch(mode=mode), name="crunch")
        await trio.to_thread.run_sync(SHARED.started.wait)
        before = children_cpu()
        await trio.sleep(max(0.0, STOP_AFTER - (time.perf_counter() - SHARED.t_started)))
        if mode == "process":
            busy = {pid: cpu - before.get(pid, 0.0) for pid, cpu in children_cpu().items()}
            if busy:
                out.worker_pid = max(busy, key=lambda pid: busy[pid])
                out.worker_cpu_before = busy[out.worker_pid] / (
                    time.perf_counter() - SHARED.t_started
                )
        t0 = time.perf_counter()
        results = await runner.send("stop crunch")
        out.stop_reply_s = time.perf_counter() - t0
        await sr.finished.wait()
        out.finished_s = time.perf_counter() - t0
        out.reply = str(results[0])
        if out.worker_pid is not None:
            out.worker_gone = not psutil.pid_exists(out.worker_pid)
        out.after_cpu, out.loop_lag_max_s = await after_stop_window()
        if mode == "thread":
            await trio.to_thread.run_sync(SHARED.thread_work.finished.wait)
            out.work_ran_on_s = SHARED.thread_work.t_end - t0
    return out


async def run_inline() -> Outcome:
    out = Outcome("inline")
    SHARED.started.clear()
    sent = threading.Event()
    t_sent: list[float] = []
    runner = trading.Runner(publish=lambda event: None)

    def operator() -> None:
        """A front end in its own thread: it sends ``stop`` 0.5 s into the compute."""
        if not SHARED.started.wait(timeout=30):
            return
        time.sleep(max(0.0, STOP_AFTER - (time.perf_counter() - SHARED.t_started)))
        t_sent.append(time.perf_counter())
        sent.set()
        results = runner.send_from_thread("stop crunch", source="operator")
        out.stop_reply_s = time.perf_counter() - t_sent[0]
        out.reply = str(results[0])

    async with runner, trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, operator)
        await trio.sleep(0.05)  # the operator thread is up before next() takes the loop
        sr = await runner.add(Crunch(mode="inline"), name="crunch")
        await sr.finished.wait()
        await trio.to_thread.run_sync(sent.wait)
        out.finished_s = time.perf_counter() - t_sent[0]
    out.after_cpu, out.loop_lag_max_s = await after_stop_window()
    return out


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    return f"{seconds * 1e3:,.1f} ms"


def report(out: Outcome) -> None:
    line = (
        f"  {out.mode:<8} stop reply {ms(out.stop_reply_s):>11}   finished {ms(out.finished_s):>11}"
        f"   next {AFTER_WINDOW:g} s: process tree CPU {out.after_cpu * 100:5.1f} % of a core,"
        f" loop lag max {ms(out.loop_lag_max_s)}"
    )
    print(line)
    if out.worker_pid is not None:
        gone = "gone (killed and reaped)" if out.worker_gone else "STILL ALIVE"
        print(
            f"           worker pid {out.worker_pid} used {out.worker_cpu_before * 100:.0f} % of a"
            f" core before the stop; after the reply it is {gone}"
        )
    if not math.isnan(out.work_ran_on_s):
        print(
            f"           the abandoned thread kept computing until {out.work_ran_on_s:.2f} s"
            " after the stop"
        )
    print(f"           reply: {out.reply}")


def summarize(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return ms(values[0])
    return f"{ms(statistics.median(values))} (max {ms(max(values))})"


async def main(repeats: int) -> None:
    print(
        f"interrupt_compute: stop a strategy {STOP_AFTER:g} s into a {WORK_SECONDS:g} s pure-Python"
        f" compute (Python {sys.version.split()[0]}, {psutil.cpu_count()} CPUs,"
        f" trio-parallel {version('trio-parallel')})"
    )

    t = time.perf_counter()
    pid = await trio_parallel.run_sync(noop)
    cold = time.perf_counter() - t
    warm: list[float] = []
    for _ in range(20):
        t = time.perf_counter()
        await trio_parallel.run_sync(noop)
        warm.append(time.perf_counter() - t)
    print(
        f"\nworker process: cold start + first call {ms(cold)} (pid {pid});"
        f" warm round trip p50 {ms(statistics.median(warm))}, max {ms(max(warm))}"
    )

    results: dict[str, list[Outcome]] = {"process": [], "thread": [], "inline": []}
    print(f"\nprocess: ctx.run_in_process(burn) ({repeats} runs, each with a warm worker waiting)")
    rewarm: list[float] = []
    for i in range(repeats):
        if i:  # the last run's worker was killed: start a fresh one outside the measurement
            t = time.perf_counter()
            await trio_parallel.run_sync(noop)
            rewarm.append(time.perf_counter() - t)
        results["process"].append(out := await run_process_or_thread("process"))
        report(out)
    if rewarm:
        print(
            f"  (a killed worker is not reused: each following run first waited"
            f" {summarize(rewarm)} for a new one)"
        )
    thread_runs = max(1, repeats // 2)
    print(f"\nthread: ctx.run_in_thread(burn) ({thread_runs} runs)")
    for _ in range(thread_runs):
        results["thread"].append(out := await run_process_or_thread("thread"))
        report(out)
    print(f"\ninline: burn() called in next() ({thread_runs} runs; stop sent from a thread)")
    for _ in range(thread_runs):
        results["inline"].append(out := await run_inline())
        report(out)

    print("\nSummary (median, max over runs)")
    header = (
        f"{'variant':<9}{'stop reply':>29}{'finished':>29}{'CPU after stop':>16}"
        f"{'work continues':>17}  target"
    )
    print(header)
    print("-" * (len(header) + 22))
    for mode, outs in results.items():
        reply = [o.stop_reply_s for o in outs]
        target = ""
        if mode == "process":
            ok = max(reply) <= TARGET_STOP_S and all(o.worker_gone for o in outs)
            target = f"<= {TARGET_STOP_S * 1e3:.0f} ms, worker killed: {'PASS' if ok else 'MISS'}"
        cpu = max(o.after_cpu for o in outs)
        continues = {
            "process": "no (killed)",
            "thread": f"{statistics.median(o.work_ran_on_s for o in outs):.2f} s more",
            "inline": "n/a (ran out)",
        }[mode]
        print(
            f"{mode:<9}{summarize(reply):>29}{summarize([o.finished_s for o in outs]):>29}"
            f"{cpu * 100:>14.1f} %{continues:>17}  {target}"
        )
    print(
        f"\n'CPU after stop' is the worst run's process-tree CPU over the {AFTER_WINDOW:g} s after"
        " the stop reply\n(100 % = one core busy). 'stop reply' is from sending `stop crunch`"
        " to its reply;\n'finished' to `sr.finished` being set."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="process runs (thread/inline: half)")
    args = parser.parse_args()
    trio.run(main, args.repeats)
