"""The `trio-trade` command end to end, in subprocesses, as a user runs it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from trading.cli import main
from trading.core.events import OrderSubmitted
from trading.core.ids import CLIENT_ORDER_ID_RE, parse_client_order_id
from trading.observers.recorder import Recorder

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


def test_the_recorded_run_is_the_run_that_ends_every_client_order_id(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    result = run("run", "sma_cross", "--for", "3s", "--speed", "3600", "--db", str(db))
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as conn:
        (run_id,) = conn.execute("SELECT run FROM runs").fetchone()
        orders = conn.execute("SELECT run, client_order_id FROM orders").fetchall()
    assert orders, "the run placed no order: nothing to compare"
    for recorded, client_order_id in orders:
        parts = parse_client_order_id(client_order_id)
        assert parts is not None and CLIENT_ORDER_ID_RE.fullmatch(client_order_id)
        assert recorded == run_id == parts.run


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
    assert result.returncode == 2 and "greater than 0" in result.stderr


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


# -- bad bytes and long lines on standard input (point 14) -------------------------------------


@pytest.mark.parametrize(
    "locale", [{"LC_ALL": "C.UTF-8"}, {"LC_ALL": "C", "PYTHONUTF8": "0"}], ids=["C.UTF-8", "C"]
)
def test_undecodable_and_overlong_lines_are_bad_commands_and_the_run_goes_on(
    locale: dict[str, str],
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "PYTHONUTF8")}
    env.update(locale)
    stdin = (
        b"\xff\xfe pause x\n"
        + b"status " + b"x" * 100_000 + b"\n"  # over the 4 KiB bound: refused, not echoed
        + b"set sma_cross quantity=inf\n"
        + b"status sma_cross\n"
    )
    result = subprocess.run(
        [*CLI, "run", "sma_cross", "--for", "2s", "--no-db"],
        input=stdin, capture_output=True, cwd=REPO, env=env, timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "error: not UTF-8 text (byte 0xff at column 1); ignored"
    assert lines[1] == "error: command too long (the limit is 4096 bytes); ignored"
    assert lines[2] == (
        "sma_cross: error: set: quantity: 'inf' is not a valid Decimal "
        "(only finite numbers are accepted)"
    )
    assert lines[3].startswith("sma_cross: ok: sleeping;") and "quantity=0.01" in lines[3]
    assert lines[-1].startswith("sma_cross: ok: stopped")
    assert b"Traceback" not in result.stderr and b"xxxxxxxxxx" not in result.stdout


# -- exit status 1 when a strategy failed for good (point 17) ------------------------------------

FLAKY = '''
import trading

class Flaky(trading.Strategy):
    """Raises on every compute."""
    interval = "1m"

    async def next(self, ctx):
        raise RuntimeError("always broken")
'''


def test_exit_status_1_when_a_strategy_failed_for_good_even_if_the_others_ran_on(
    tmp_path: Path,
) -> None:
    (tmp_path / "flaky.py").write_text(FLAKY)
    shutil.copy(REPO / "strategies" / "sma_cross.py", tmp_path / "sma_cross.py")
    result = run(
        "run", "flaky", "sma_cross", "--strategies-dir", str(tmp_path),
        "--max-restarts", "1", "--for", "4s", timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "flaky" in result.stderr and "RuntimeError: always broken" in result.stderr
    assert "failed for good during the run: flaky" in result.stderr
    assert "sma_cross: ok: stopped" in result.stdout  # the healthy one ran to the end


def test_exit_status_1_when_the_failed_strategy_is_resumed_and_stopped(tmp_path: Path) -> None:
    (tmp_path / "flaky.py").write_text(FLAKY)
    result = run(
        "run", "flaky", "--strategies-dir", str(tmp_path), "--max-restarts", "0",
        "--for", "3s", stdin="resume flaky\nstop flaky\n", timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "failed for good during the run: flaky" in result.stderr


# -- load errors and unreadable databases (point 18) --------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "error"),
    [
        ("import trading\n\nclass X(trading.Strategy:\n    pass\n", 3,
         "SyntaxError: invalid syntax"),
        ("import trading\nimport no_such_module_here\n", 2,
         "ModuleNotFoundError: No module named 'no_such_module_here'"),
        ("import trading\n\ndef f():\n    return {}['k']\n\nf()\n", 4, "KeyError: 'k'"),
    ],
    ids=["syntax", "import", "raises"],
)
def test_a_strategy_file_that_does_not_import_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, line: int, error: str
) -> None:
    name = f"broken_{tmp_path.name[-8:].replace('-', '_')}_{line}"
    (tmp_path / f"{name}.py").write_text(source)
    code = main(["run", name, "--strategies-dir", str(tmp_path), "--no-db"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err == (
        f"trio-trade: {tmp_path / name}.py:{line}: cannot load the strategy: {error}\n"
    )


def test_a_strategy_file_that_does_not_import_in_a_subprocess(tmp_path: Path) -> None:
    (tmp_path / "typo.py").write_text("import trading\n\nx = (\n")
    result = run("run", "typo", "--strategies-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"trio-trade: {tmp_path / 'typo.py'}:3: cannot load the strategy: "
        "SyntaxError: '(' was never closed"
    ]


@pytest.mark.parametrize("verb", ["orders", "fills", "positions"])
def test_tables_on_a_file_that_is_not_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], verb: str
) -> None:
    notes = tmp_path / "notes.db"
    notes.write_bytes(b"not sqlite" * 1000)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE things (x)")
    folder = tmp_path / "a-folder.db"
    folder.mkdir()
    for db, says in [
        (notes, f"{notes} is not a trio-trade database: file is not a database"),
        (foreign, f"{foreign} is not a trio-trade database (no meta table)"),
        (tmp_path / "missing.db", f"no trading database at {tmp_path / 'missing.db'}"),
        (folder, f"no trading database at {folder}"),
    ]:
        assert main([verb, "--db", str(db)]) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith(f"trio-trade: {says}")
        assert len(captured.err.splitlines()) == 1 and captured.out == ""
    assert not (tmp_path / "missing.db").exists()


READ_AS_NOBODY = """
import sys, importlib.util, types
# The reader needs only the standard library: load it by path (the system python has no trio).
for name in ("trading", "trading.observers"):
    sys.modules[name] = types.ModuleType(name)
    sys.modules[name].__path__ = []
def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
load("trading.observers.schema", sys.argv[1] + "/trading/observers/schema.py")
queries = load("trading.observers.queries", sys.argv[1] + "/trading/observers/queries.py")
try:
    print(len(queries.read_orders(sys.argv[2])))
except (OSError, ValueError) as exc:
    print("error:", exc)
"""


def _read_only_reader(db: Path) -> str:
    """Read ``db`` as a user who cannot write its folder (root ignores chmod: drop to nobody)."""
    if os.geteuid() != 0:
        return subprocess.run(
            [sys.executable, "-c", READ_AS_NOBODY, str(REPO), str(db)],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()
    setpriv, python = shutil.which("setpriv"), "/usr/bin/python3"
    if setpriv is None or not os.access(python, os.X_OK):
        pytest.skip("running as root without setpriv and a system python to drop privileges")
    return subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c",
         READ_AS_NOBODY, str(REPO), str(db)],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is private to its owner)."""
    folder = Path(tempfile.mkdtemp(prefix="trio-trade-ro-"))
    folder.chmod(0o755)
    yield folder
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(folder)


def test_tables_on_a_read_only_wal_database(open_folder: Path) -> None:
    # A clean run's database in a read-only folder: no -wal or -shm beside it, and SQLite
    # cannot create them: read as immutable, every row is in the file.
    clean = open_folder / "clean"
    clean.mkdir()
    recorder = Recorder(clean / "run.db")
    recorder.write([(1, OrderSubmitted(1.0, "s", "o1", "BTCUSDT", "buy", "market",
                                       Decimal("1"), None))])
    recorder.close()
    (clean / "run.db").chmod(0o444)
    clean.chmod(0o555)
    assert _read_only_reader(clean / "run.db") == "1"
    # A database left mid-run: its -wal holds commits not yet in the file, no -shm, read-only
    # folder. It cannot be read here: the message says why and what to do.
    live = open_folder / "live"
    live.mkdir()
    recorder = Recorder(live / "run.db")
    recorder.write([(1, OrderSubmitted(1.0, "s", "o1", "BTCUSDT", "buy", "market",
                                       Decimal("1"), None))])
    left = open_folder / "left"
    left.mkdir()
    shutil.copy(live / "run.db", left / "run.db")
    shutil.copy(live / "run.db-wal", left / "run.db-wal")
    recorder.close()
    for path in (left / "run.db", left / "run.db-wal"):
        path.chmod(0o444)
    left.chmod(0o555)
    said = _read_only_reader(left / "run.db")
    assert said.startswith(f"error: cannot read the trading database at {left / 'run.db'}: ")
    assert "write-ahead log run.db-wal holds records not yet in the file" in said


# -- a stalled terminal never stalls the run (point 22) -----------------------------------------


def test_pipes_nobody_reads_do_not_stall_the_run(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    # Replies to 3,000 commands (~600 KB) and verbose logs: far past the 64 KiB a pipe holds.
    commands = b"status\n" * 3_000
    proc = subprocess.Popen(
        [*CLI, "run", "sma_cross", "--for", "6s", "-v", "--db", str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(commands)  # fits the stdin pipe's buffer only because the run reads it
        proc.stdin.close()
        returncode = proc.wait(timeout=40)  # nobody reads stdout or stderr meanwhile
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert returncode == 0
    out = proc.stdout.read() if proc.stdout is not None else b""
    assert len(out) >= 60_000  # the pipe did fill: the run wrote past what it could hold
    # it traded while its terminal was stalled, and recorded it all
    orders = run("orders", "--db", str(db)).stdout
    assert " buy " in orders and " filled " in orders
