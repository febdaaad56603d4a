"""The `trio-trade` command end to end, in subprocesses, as a user runs it."""

from __future__ import annotations

import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "trading"]


def run(
    *args: str, stdin: str = "", cwd: Path = REPO, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    if args[:1] == ("run",) and "--db" not in args:
        args = (*args, "--no-db")  # never leave a trio-trade.db in the repository
    return subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


def test_console_script_is_installed() -> None:
    script = shutil.which("trio-trade") or shutil.which(
        "trio-trade", path=str(Path(sys.executable).parent)
    )
    assert script is not None, (
        "the trio-trade console script is not on PATH: is the package installed?"
    )


def test_run_sma_cross_with_commands_on_stdin() -> None:
    result = run(
        "run",
        "sma_cross",
        "--for",
        "5s",
        stdin="status\npause sma_cross\nstatus sma_cross\nresume sma_cross\nset sma_cross fast=8\n"
        "set sma_cross fast=99\nfrobnicate\n",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("sma_cross: ok: sleeping; next compute at 08:15:00 UTC")
    assert lines[1] == "sma_cross: ok: paused (was sleeping)"
    assert lines[2].startswith("sma_cross: ok: paused;")
    assert lines[3].startswith("sma_cross: ok: resumed; next compute at")
    assert lines[4] == "sma_cross: ok: fast: 5 -> 8"
    assert lines[5] == "sma_cross: error: set: rejected: fast (99) must be shorter than slow (20)"
    assert lines[6].startswith("error: unknown command 'frobnicate'")
    assert lines[-1].startswith("sma_cross: ok: stopped")
    assert "--for 5s elapsed: stopping" in result.stderr


def test_newcomer_sees_a_trade_within_10_seconds_and_eof_does_not_stop_it(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "run.db")
    started = time.monotonic()
    result = run("run", "sma_cross", "--for", "7s", "--db", db, stdin="")
    assert result.returncode == 0
    assert time.monotonic() - started >= 7  # the end of stdin did not end the run
    # it bought on the simulated market through the paper broker, and stop reported the position
    assert "BUY  signal: BTCUSDT" in result.stderr
    assert "bought 0.01 BTCUSDT @ " in result.stderr
    assert result.stdout.strip() == "sma_cross: ok: stopped; position BTCUSDT 0.01 kept"
    # the console notifier told the operator, and the recorder kept it all
    assert "sma_cross: buy 0.01 BTCUSDT @ " in result.stderr
    orders = run("orders", "--db", db).stdout.splitlines()
    assert len(orders) == 3 and " buy " in orders[2] and " filled " in orders[2]
    fills = run("fills", "--db", db, "--strategy", "sma_cross").stdout.splitlines()
    assert len(fills) == 3 and fills[2].startswith("2025-01-04 08:30")
    positions = run("positions", "--db", db).stdout.splitlines()
    assert positions[2].split()[2:5] == ["sma_cross", "BTCUSDT", "0.01"]  # after the time


def test_stopping_every_strategy_ends_the_run() -> None:
    result = run("run", "sma_cross", "--for", "60s", stdin="stop sma_cross\n", timeout=30)
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["sma_cross: ok: stopped"]


def test_unknown_strategy_exits_non_zero_and_lists_the_ones_that_exist() -> None:
    result = run("run", "nope")
    assert result.returncode == 2
    assert "no strategy 'nope' in strategies/; available: mystrategy, sma_cross" in result.stderr


def test_list() -> None:
    result = run("list")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["mystrategy", "sma_cross"]
    assert "15m" in result.stdout and "Moving-average cross" in result.stdout


BAD = """
import trading

class Bad(trading.Strategy):
    interval = "15x"

    async def next(self, ctx):
        pass
"""

CLEANUP = '''
import sys
import trio
import trading

class Cleanup(trading.Strategy):
    """Prints when on_stop runs."""
    interval = "1m"

    async def next(self, ctx):
        pass

    async def on_stop(self, ctx):
        await trio.sleep(0.2)
        print("on_stop ran", flush=True)
'''


def test_bad_interval_is_a_clear_error_at_load(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(BAD)
    result = run("run", "bad", "--strategies-dir", str(tmp_path))
    assert result.returncode == 2
    assert "bad.Bad: bad interval '15x'" in result.stderr
    listing = run("list", "--strategies-dir", str(tmp_path))
    assert "cannot load" in listing.stdout and "bad interval '15x'" in listing.stdout


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    result = run("run", "sma_cross", "--for", "soon")
    assert result.returncode == 2 and "bad duration 'soon'" in result.stderr
    result = run("run", "sma_cross", "--speed", "0")
    assert result.returncode == 2 and "must be greater than 0" in result.stderr


def _start(tmp_path: Path) -> subprocess.Popen[str]:
    if not (tmp_path / "cleanup.py").exists():
        (tmp_path / "cleanup.py").write_text(CLEANUP)
    proc = subprocess.Popen(
        [*CLI, "run", "cleanup", "--strategies-dir", str(tmp_path), "--no-db"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # wait until it runs before signalling it
        if "simulated market" in proc.stderr.readline():
            return proc
    proc.kill()
    raise AssertionError("trio-trade run did not start")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_and_runs_on_stop(tmp_path: Path, signum: int) -> None:
    proc = _start(tmp_path)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.splitlines() == ["on_stop ran", "cleanup: ok: stopped"]


def test_second_ctrl_c_forces(tmp_path: Path) -> None:
    script = CLEANUP.replace("await trio.sleep(0.2)", "await trio.sleep(30)")
    (tmp_path / "cleanup.py").write_text(script)
    proc = _start(tmp_path)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "on_stop ran" not in out and "forced exit" in err


def test_tables_without_a_database_say_so(tmp_path: Path) -> None:
    result = run("orders", "--db", str(tmp_path / "none.db"))
    assert result.returncode == 2 and "no trading database at" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_sigkill_mid_run_loses_nothing_the_recorder_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    proc = subprocess.Popen(
        [*CLI, "run", "sma_cross", "mystrategy", "--db", str(db), "-v", "--speed", "3600"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stderr is not None
    acked = 0
    deadline = time.monotonic() + 30
    try:
        while acked < 40 and time.monotonic() < deadline:
            line = proc.stderr.readline()
            match = re.search(r"recorded events up to #(\d+)", line)
            if match:
                acked = int(match.group(1))
    finally:
        proc.kill()  # SIGKILL: no clean-up of any kind runs
        proc.wait(timeout=10)
    assert acked >= 40, "the run never acknowledged enough events"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        seqs = {row[0] for row in conn.execute("SELECT seq FROM events")}
    assert set(range(1, acked + 1)) <= seqs
