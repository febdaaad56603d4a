"""``trio-trade run`` in a real pseudo-terminal (pexpect), its screen read by a VT100 emulator
(pyte): the view while log lines stream, and the plain console when asked for."""

from __future__ import annotations

import os
import stat
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pyte
import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS, COLS = 30, 120
BOUND = 15.0  # seconds any one wait may take before the test fails


class Screen:
    """A child process on a pty and what its terminal shows."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.received = b""
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "trading", "run", *args],
            cwd=str(ROOT),
            env=env,
            dimensions=(ROWS, COLS),
        )

    def pump(self, seconds: float) -> bool:
        """Read for ``seconds``; False once the child closed the terminal."""
        end = time.monotonic() + seconds
        while True:
            try:
                data = self.child.read_nonblocking(65_536, timeout=0.02)
            except pexpect.TIMEOUT:
                data = b""
            except pexpect.EOF:
                return False
            self.received += data
            self.stream.feed(data)
            if time.monotonic() >= end:
                return True

    def until(self, what: Callable[[], bool], message: str) -> None:
        deadline = time.monotonic() + BOUND
        while not what():
            if time.monotonic() > deadline or not self.pump(0.05):
                pytest.fail(f"{message}: not seen\n{self.text()}")

    def lines(self) -> list[str]:
        lines = [line.rstrip() for line in self.screen.display]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def text(self) -> str:
        return "\n".join(self.lines())

    def end(self) -> int:
        """Wait (bounded) for the child to exit; its exit status."""
        deadline = time.monotonic() + BOUND
        while self.pump(0.05):
            if time.monotonic() > deadline:
                self.child.terminate(force=True)
                pytest.fail(f"the run did not end\n{self.text()}")
        self.child.close()
        assert self.child.exitstatus is not None, self.child.signalstatus
        return self.child.exitstatus


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_TRADE")}
    env.update(
        TERM="xterm",
        XDG_STATE_HOME=str(tmp_path / "state"),
        PROMPT_TOOLKIT_NO_CPR="1",  # pyte does not answer cursor position requests
        **extra,
    )
    return env


RUN = [
    "sma_cross",
    "-v",
    "--no-db",
    "--no-socket",
    "--speed",
    "1800",
    "--strategies-dir",
    str(ROOT / "strategies"),
]


def table_state(screen: Screen, name: str = "sma_cross") -> str | None:
    """The state the live table shows for ``name`` (the table sits just above the input)."""
    for line in reversed(screen.lines()[-4:]):
        if line.startswith(f"{name} "):
            return line.split()[1]
    return None


def test_typing_while_logs_stream_keeps_the_line_and_the_command_is_answered(
    tmp_path: Path,
) -> None:
    screen = Screen(RUN, environment(tmp_path))
    try:
        screen.until(lambda: table_state(screen) == "sleeping", "the live table")
        assert screen.lines()[-1] == ">"
        header = [line for line in screen.lines()[-5:] if line.startswith("strategy")]
        assert header and header[0].split() == [
            "strategy",
            "state",
            "next",
            "wake",
            "position",
            "pnl",
            "last",
            "error",
        ]
        before = screen.received.count(b"sma_cross: sleeping -> computing")
        typed = "pause sma_cross"
        for end in range(1, len(typed) + 1):
            screen.child.send(typed[end - 1])
            screen.pump(0.04)
            # After each key, the input line shows exactly what was typed so far.
            screen.until(
                lambda end=end: screen.lines()[-1] == f"> {typed[:end]}".rstrip(), "the line"
            )
        # Log lines streamed above while the line was typed, and it is whole at the bottom.
        assert screen.received.count(b"sma_cross: sleeping -> computing") > before + 2
        screen.pump(0.3)
        assert screen.lines()[-1] == "> pause sma_cross"
        screen.child.send("\r")
        screen.until(lambda: "sma_cross: ok: paused (was sleeping)" in screen.text(), "the reply")
        screen.until(lambda: table_state(screen) == "paused", "the table shows paused")
        assert screen.lines()[-1] == ">"
        screen.child.sendcontrol("c")
        assert screen.end() == 0
    finally:
        screen.child.close(force=True)
    assert "sma_cross: ok: stopped" in screen.text()  # today's first Ctrl-C: stop all
    assert table_state(screen) == "stopped"  # the last table stays, the input line goes
    history = tmp_path / "state" / "trio-trade" / "history"
    assert "pause sma_cross" in history.read_text()
    assert stat.S_IMODE(history.stat().st_mode) == 0o600


def test_plain_when_asked_even_on_a_terminal(tmp_path: Path) -> None:
    screen = Screen(RUN, environment(tmp_path, TRIO_TRADE_PLAIN="1"))
    try:
        screen.until(lambda: "sma_cross: computing -> sleeping" in screen.text(), "log lines")
        screen.child.send("pause sma_cross\r")
        screen.until(lambda: "sma_cross: ok: paused (was sleeping)" in screen.text(), "reply")
        screen.child.sendcontrol("c")
        assert screen.end() == 0
    finally:
        screen.child.close(force=True)
    assert not any(line.startswith("strategy ") for line in screen.lines())  # no table
    assert not (tmp_path / "state").exists()  # and no history


SLOW_STOP = """
import trio
import trading


class SlowStop(trading.Strategy):
    interval = "15m"
    symbols = ("BTCUSDT",)

    async def next(self, ctx):
        pass

    async def on_stop(self, ctx):
        await trio.sleep(60)
"""


def test_a_second_ctrl_c_forces_the_exit_and_gives_the_terminal_back(tmp_path: Path) -> None:
    (tmp_path / "slow_stop.py").write_text(SLOW_STOP)
    args = ["slow_stop", "--no-db", "--no-socket", "--strategies-dir", str(tmp_path)]
    screen = Screen(args, environment(tmp_path))
    try:
        screen.until(lambda: table_state(screen, "slow_stop") == "sleeping", "the table")
        screen.child.sendcontrol("c")
        screen.until(lambda: "stopping every strategy (again to force)" in screen.text(), "stop")
        screen.until(lambda: table_state(screen, "slow_stop") == "stopping", "stopping")
        screen.child.sendcontrol("c")
        deadline = time.monotonic() + BOUND
        while screen.pump(0.05):
            assert time.monotonic() < deadline, screen.text()
        # The view had the terminal in raw mode; a forced exit skips its clean-up, so it
        # handed the terminal back first: line editing and echo are on again.
        lflag = termios.tcgetattr(screen.child.child_fd)[3]
        assert lflag & termios.ICANON and lflag & termios.ECHO
        # The view ended before the exit: the last word is printed below the last table.
        assert "forced exit" in screen.lines()[-1]
        screen.child.close()
    finally:
        screen.child.close(force=True)
    assert screen.child.exitstatus == 130
