"""No child outlives its parent (even one holding the CPU); the configuration turns isolation on."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import trio

from tests.isolation.helpers import eventually, gone, until_gone
from trading.config import from_dict, merge_flags, render
from trading.config_cli import to_run_args

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
