"""``run``'s log options as a user runs them: a log file, JSON lines, -v and -vv."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trading", "run", "sma_cross", "--no-db", "--no-socket",
         "--strategies-dir", str(REPO / "strategies"), *args],
        capture_output=True, text=True, timeout=50, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_a_json_log_file_gets_every_line_stderr_gets_too(tmp_path: Path) -> None:
    logfile = tmp_path / "run.log"
    done = run("--for", "3s", "--logfile", str(logfile), "--log-format", "json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in logfile.read_text().splitlines()]
    assert lines and {"time", "level", "logger", "message"} <= set(lines[0])
    assert any("simulated market" in line["message"] for line in lines)
    assert "simulated market" in done.stderr  # the terminal keeps its log
    again = run("--for", "1s", "--logfile", str(logfile))  # appended, not replaced
    assert again.returncode == 0
    assert logfile.read_text().count("simulated market") == 2


def test_an_unwritable_log_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = run("--for", "1s", "--logfile", str(tmp_path / "no" / "such" / "dir.log"))
    assert done.returncode == 2
    assert "cannot write the log file" in done.stderr and "Traceback" not in done.stderr


def test_v_shows_events_and_vv_more(tmp_path: Path) -> None:
    quiet, v = run("--for", "2s"), run("--for", "2s", "-v")
    assert quiet.returncode == v.returncode == 0
    assert "DEBUG" not in quiet.stderr and "DEBUG" in v.stderr
    assert run("--for", "1s", "-vv").returncode == 0
    assert run("--log-format", "xml").returncode == 2
