"""No child outlives its parent (even one holding the CPU); the configuration turns isolation on."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import trio

from tests.isolation.helpers import Watched, eventually, gone, real_time_runner, until_gone
from tests.isolation.strategies import Trader
from trading.config import from_dict, merge_flags, render
from trading.config_cli import to_run_args
from trading.isolation import isolate

STRATEGY = '''
import trading

class Hold(trading.Strategy):
    """Computes and does nothing."""
    interval = "1d"

    async def next(self, ctx):
        ctx.log.info("computed")
'''

HOG = '''
from pathlib import Path

import trading

class Hog(trading.Strategy):
    """Holds the CPU without a checkpoint: it cannot notice its channel closing."""
    interval = "1d"

    async def next(self, ctx):
        Path("hogging").touch()
        while True:
            pass
'''


async def test_kill_9_of_the_parent_leaves_no_child(tmp_path: Path) -> None:
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "hold.py").write_text(STRATEGY)
    (tmp_path / "strategies" / "hog.py").write_text(HOG)
    (tmp_path / "run.toml").write_text(
        'strategies_dir = "strategies"\n[database]\nenabled = false\n'
        '[[strategies]]\nname = "hold"\nisolate = true\n'
        '[[strategies]]\nname = "hog"\nisolate = true\n'
    )
    parent = await trio.lowlevel.open_process(
        [sys.executable, "-m", "trading", "run", "--config", "run.toml", "--no-socket"],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await eventually(lambda: len(psutil.Process(parent.pid).children()) == 2, 30)
        await eventually((tmp_path / "hogging").exists, 30)  # only PR_SET_PDEATHSIG ends it
        children = psutil.Process(parent.pid).children()
        pids = [child.pid for child in children]
        assert all("trading.isolation.child" in " ".join(c.cmdline()) for c in children)
        os.kill(parent.pid, signal.SIGKILL)
        with trio.fail_after(10):
            await parent.wait()
        for pid in pids:
            await until_gone(pid, 10)
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
    assert parent.returncode == -signal.SIGKILL
    assert all(gone(pid) for pid in pids)


def test_isolate_in_the_configuration_and_the_flag() -> None:
    config = from_dict({"strategies": [{"name": "a", "isolate": True}, {"name": "b"}]}, environ={})
    assert [e.isolate for e in config.strategies] == [True, False]
    assert to_run_args(config).strategy_isolate == [True, False]
    assert "isolate = true" in render(config)
    flagged = merge_flags(config, argparse.Namespace(isolate=True))
    assert [e.isolate for e in flagged.strategies] == [True, True]
    named = merge_flags(config, argparse.Namespace(isolate=True, strategies=["c"]))
    assert [(e.name, e.isolate) for e in named.strategies] == [("c", True)]


async def test_a_child_outlives_the_thread_that_started_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, and trio's worker
    # threads end after IDLE_TIMEOUT idle seconds (10): a child forked in one would be killed
    # ten seconds into the run. Made 1.5 s here (the child sets it up within that), so that
    # mistake shows in seconds.
    monkeypatch.setattr(trio._core._thread_cache, "IDLE_TIMEOUT", 1.5)
    watched = Watched()
    async with real_time_runner(watched) as runner:
        sr = await runner.add(isolate(Trader(buy=False)), name="t")
        await trio.sleep(2.0)  # real time: idle worker threads have ended by now
        with trio.fail_after(5):
            [ping] = await runner.send("ping t")
            await runner.send("wake t")
        assert ping.ok, ping
        await watched.until(lambda: sr.computes == 2 or sr.failures > 0)
        assert sr.failures == 0


async def test_without_pidfds_trios_open_process_starts_the_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(os, "pidfd_open")
    async with real_time_runner(Watched()) as runner:
        sr = await runner.add(isolate(Trader(buy=False)), name="t")
        child = sr.strategy.child  # type: ignore[attr-defined]
        assert isinstance(child.process, trio.Process)
        with trio.fail_after(5):
            [ping] = await runner.send("ping t")
        assert ping.ok, ping
    assert gone(child.pid)


BUYER = """
import trading


class Buyer(trading.Strategy):
    \"\"\"Buys 0.01 BTC at its first compute (at start), then holds.\"\"\"

    interval = "15m"
    symbols = ("BTCUSDT",)

    async def next(self, ctx):
        if ctx.position().quantity == 0:
            await ctx.buy("0.01")
"""


def test_run_isolate_trades_from_a_child_and_leaves_none(tmp_path: Path) -> None:
    """`trio-trade run buyer --isolate` as a user types it: the strategy computes in a child
    process, its order goes through the run's engine, and the child is gone when the run ends."""
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "buyer.py").write_text(BUYER)
    run = subprocess.Popen(
        [sys.executable, "-m", "trading", "run", "buyer", "--isolate", "--for", "3s",
         "--no-db", "--no-socket", "--strategies-dir", str(tmp_path / "strategies")],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path,
    )  # fmt: skip
    children: set[int] = set()
    try:
        parent = psutil.Process(run.pid)
        while run.poll() is None:
            try:
                for child in parent.children(recursive=True):
                    if "trading.isolation.child" in " ".join(child.cmdline()):
                        children.add(child.pid)
            except psutil.Error:
                pass
            time.sleep(0.05)
        out, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, err
    assert children, "no child process ran the strategy"
    assert "buyer: buy 0.01 BTCUSDT" in err and "filled" in err, err
    assert "buyer: ok: stopped" in out
    assert not any(psutil.pid_exists(pid) for pid in children)
