"""ViewApp driven in-process: keys through a pipe, the screen read back by a VT100 emulator.

Each test runs the application on its own asyncio loop, as the view's thread does; lines arrive
through the bridge as the run's writers hand them over."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Awaitable, Callable, Iterator

import pyte
import pytest
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output

from trading.control.status_table import StatusRow
from trading.core.commands import MAX_COMMAND_LENGTH
from trading.tui.app import INPUT_CLOSED, ViewApp
from trading.tui.bridge import ViewBridge

ROWS, COLS = 24, 100
BOUND = 10.0  # seconds any one wait may take


class Terminal(io.StringIO):
    """What the application writes, fed to a VT100 screen."""

    def __init__(self) -> None:
        super().__init__()
        self.screen = pyte.Screen(COLS, ROWS)
        self.stream = pyte.Stream(self.screen)
        self.raw: list[str] = []
        self.lock = threading.Lock()  # the view's thread writes, a test's thread reads

    def write(self, text: str) -> int:
        with self.lock:
            self.raw.append(text)
            self.stream.feed(text.replace("\n", "\r\n"))  # a tty's output processing (ONLCR)
        return len(text)

    def lines(self) -> list[str]:
        """The screen's lines down to the last one written."""
        with self.lock:
            lines = [line.rstrip() for line in self.screen.display]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def text(self) -> str:
        return "\n".join(self.lines())


class Harness:
    def __init__(self, pipe: PipeInput) -> None:
        self.pipe = pipe
        self.bridge = ViewBridge()
        self.terminal = Terminal()
        self.submitted: list[str] = []
        self.interrupts: list[int] = []
        output = Vt100_Output(
            self.terminal, lambda: Size(rows=ROWS, columns=COLS), term="xterm", enable_cpr=False
        )
        self.view = ViewApp(
            self.bridge,
            self.submitted.append,
            self.interrupts.append,
            input=pipe,
            output=output,
        )

    async def until(self, what: Callable[[], bool], message: str = "") -> None:
        deadline = time.monotonic() + BOUND
        while not what():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out: {message}\n{self.terminal.text()}")
            await asyncio.sleep(0.01)

    async def type(self, text: str, pause: float = 0.0) -> None:
        for char in text:
            self.pipe.send_text(char)
            await asyncio.sleep(pause)


def drive(scenario: Callable[[Harness], Awaitable[None]]) -> Harness:
    """Run ``scenario`` against a running ViewApp, then end it as the run does."""

    async def main() -> Harness:
        with create_pipe_input() as pipe:
            harness = Harness(pipe)
            running = asyncio.create_task(harness.view.run())
            await harness.until(lambda: harness.view.app.is_running, "the app starts")
            await scenario(harness)
            harness.view.request_exit()
            await asyncio.wait_for(running, BOUND)
            return harness

    return asyncio.run(main())


@pytest.fixture
def rows() -> Iterator[tuple[StatusRow, ...]]:
    yield (StatusRow("sma_cross", "sleeping", None, "flat", None, None),)


def test_typing_while_lines_stream_keeps_the_typed_line_intact(
    rows: tuple[StatusRow, ...],
) -> None:
    async def scenario(h: Harness) -> None:
        h.bridge.show_rows(rows)
        streaming = threading.Event()
        count = 0

        def stream() -> None:  # a writer thread, as the run's are
            nonlocal count
            while not streaming.is_set():
                count += 1
                h.bridge.offer(f"log line {count}\n")
                time.sleep(0.002)

        producer = threading.Thread(target=stream)
        producer.start()
        try:
            await h.type("pause sma_cross", pause=0.02)
        finally:
            streaming.set()
            producer.join()
        await h.until(lambda: f"log line {count}" in h.terminal.text(), "the last line shown")
        lines = h.terminal.lines()
        assert lines[-1] == "> pause sma_cross"  # below the table, whole
        # Log lines are whole: none carries a typed character, none is split.
        logs = [line for line in lines if line.startswith("log line")]
        assert logs and all(line.split()[2].isdigit() and len(line.split()) == 3 for line in logs)
        assert "sleeping" in h.terminal.text()
        assert h.view.buffer.text == "pause sma_cross"
        assert h.submitted == []

    drive(scenario)


def test_enter_sends_the_command_and_echoes_it_above(rows: tuple[StatusRow, ...]) -> None:
    async def scenario(h: Harness) -> None:
        h.bridge.show_rows(rows)
        await h.type("  pause sma_cross  \r")
        await h.until(lambda: h.submitted == ["pause sma_cross"], "sent")
        await h.until(lambda: "> pause sma_cross" in h.terminal.lines()[:-4], "echoed above")
        assert h.view.buffer.text == ""
        h.bridge.offer("sma_cross: ok: paused (was sleeping)\n")
        h.bridge.show_rows([StatusRow("sma_cross", "paused", None, "flat", None, None)])
        await h.until(lambda: "paused (was sleeping)" in h.terminal.text(), "the reply")
        await h.until(lambda: any(" paused " in line for line in h.terminal.lines()[-4:]))
        await h.type("\r   \r")  # empty lines are not commands
        await asyncio.sleep(0.1)
        assert h.submitted == ["pause sma_cross"]

    drive(scenario)


def test_up_and_down_walk_the_history() -> None:
    async def scenario(h: Harness) -> None:
        await h.type("pause a\rresume a\r")
        await h.until(lambda: len(h.submitted) == 2)
        h.pipe.send_text("\x1b[A")
        await h.until(lambda: h.view.buffer.text == "resume a")
        h.pipe.send_text("\x1b[A")
        await h.until(lambda: h.view.buffer.text == "pause a")
        h.pipe.send_text("\x1b[B")
        await h.until(lambda: h.view.buffer.text == "resume a")
        h.pipe.send_text("\x01\x1b[3~\x05 now\r")  # home, delete, end: the line edits
        await h.until(lambda: h.submitted[-1:] == ["esume a now"])

    drive(scenario)


def test_a_paste_of_several_lines_sends_each() -> None:
    async def scenario(h: Harness) -> None:
        h.pipe.send_text("\x1b[200~pause a\nresume a\n\nwake a\x1b[201~")
        await h.type("\r")
        await h.until(lambda: h.submitted == ["pause a", "resume a", "wake a"])

    drive(scenario)


def test_a_command_too_long_is_answered_not_sent() -> None:
    async def scenario(h: Harness) -> None:
        h.pipe.send_text("x" * (MAX_COMMAND_LENGTH + 1) + "\r")
        await h.until(lambda: "command too long" in h.terminal.text())
        h.pipe.send_text("é" * (MAX_COMMAND_LENGTH // 2 + 1) + "\r")  # bytes, not characters
        await h.until(lambda: h.terminal.text().count("command too long") == 2)
        assert h.submitted == []

    drive(scenario)


def test_bytes_that_are_not_utf8_are_answered_not_sent() -> None:
    async def scenario(h: Harness) -> None:
        h.pipe.send_bytes(b"pause \xff\xfe\r")
        await h.until(lambda: "not UTF-8 text (at column 7); ignored" in h.terminal.text())
        await h.type("pause a\r")  # and the line goes on working
        await h.until(lambda: h.submitted == ["pause a"])

    drive(scenario)


def test_ctrl_c_is_handed_to_the_run_with_its_count() -> None:
    async def scenario(h: Harness) -> None:
        await h.type("half typed\x03")
        await h.until(lambda: h.interrupts == [1])
        await h.type("\x03")
        await h.until(lambda: h.interrupts == [1, 2])
        assert h.submitted == []

    drive(scenario)


def test_ctrl_d_on_an_empty_line_closes_the_input_and_the_view_goes_on() -> None:
    async def scenario(h: Harness) -> None:
        await h.type("abc\x01\x04")  # on text, Ctrl-D deletes a character as in a shell
        await h.until(lambda: h.view.buffer.text == "bc")
        assert not h.view.input_closed
        await h.type("\x05\x15\x04")  # end, erase the line, Ctrl-D
        await h.until(lambda: h.view.input_closed)
        await h.until(lambda: INPUT_CLOSED in h.terminal.text())
        await h.type("stop all\r")
        h.bridge.offer("still streaming\n")
        await h.until(lambda: "still streaming" in h.terminal.text())
        assert h.submitted == []
        await h.type("\x03")  # Ctrl-C still stops the run
        await h.until(lambda: h.interrupts == [1])

    drive(scenario)


def test_lines_that_arrive_as_the_view_ends_are_printed_not_lost(
    rows: tuple[StatusRow, ...],
) -> None:
    async def scenario(h: Harness) -> None:
        h.bridge.show_rows(rows)
        for i in range(500):
            h.bridge.offer(f"late {i}\n")

    h = drive(scenario)
    raw = "".join(h.terminal.raw)
    assert all(f"late {i}\n" in raw for i in range(500))
    assert raw.rindex("late 499") < raw.rindex("sma_cross")  # the last table stays below
    assert not h.bridge.attached and not h.bridge.offer("after\n")
