"""TerminalView, the Trio side: a real Runner on the simulated market in real time (the view's
thread waits on a pipe and a loop of its own, so no autojumping clock), every wait bounded."""

from __future__ import annotations

import argparse
import io
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import attrs
import pytest
import trio
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output

import trading
from tests.conftest import T0, EventLog, sim
from tests.tui.test_app import COLS, ROWS, Terminal
from trading.core.events import CommandHandled
from trading.tui import view as view_module
from trading.tui.app import ViewApp
from trading.tui.bridge import ViewBridge
from trading.tui.view import TerminalView, add_view_arguments, wants_view

BOUND = 10.0


@attrs.define
class Idle(trading.Strategy):
    interval = "1d"
    symbols = ("BTCUSDT",)

    async def next(self, ctx: trading.Context) -> None:
        pass


class StalledTerminal(Terminal):
    """A terminal whose reader stopped reading: every write waits for ``resume`` (set it to
    read again, clear it to stall again)."""

    def __init__(self, *, stalled: bool = True) -> None:
        super().__init__()
        self.resume = threading.Event()
        if not stalled:
            self.resume.set()

    def write(self, text: str) -> int:
        self.resume.wait()
        return super().write(text)


def app_on(
    pipe: PipeInput, terminal: io.StringIO, interrupts: list[int]
) -> Callable[[ViewBridge, Callable[[str], object], Callable[[int], object]], ViewApp]:
    def make(
        bridge: ViewBridge, submit: Callable[[str], object], interrupt: Callable[[int], object]
    ) -> ViewApp:
        output = Vt100_Output(
            terminal, lambda: Size(rows=ROWS, columns=COLS), term="xterm", enable_cpr=False
        )
        return ViewApp(bridge, submit, interrupts.append, input=pipe, output=output)

    return make


async def until(
    what: Callable[[], bool],
    terminal: Terminal,
    message: str,
    debug: Callable[[], object] = lambda: "",
) -> None:
    with trio.move_on_after(BOUND):
        while not what():  # noqa: ASYNC110 (another thread draws the screen: no event)
            await trio.sleep(0.01)
        return
    pytest.fail(f"timed out: {message}\n{terminal.text()}\n{debug()}")


def view_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "terminal view"]


async def test_typed_commands_reach_the_runner_and_the_table_follows_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No timed refresh during the test: only the observer's poke can redraw the table.
    monkeypatch.setattr(view_module, "REFRESH", 3600.0)
    terminal, interrupts, events = Terminal(), [], EventLog()
    clock = trading.VirtualClock(start=T0)
    with create_pipe_input() as pipe:
        view = TerminalView(make_app=app_on(pipe, terminal, interrupts))
        async with trading.Runner(
            clock=clock, observers=[view.observer], publish=events, **sim(clock)
        ) as runner:
            await runner.add(Idle(), name="idle")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(view.run, runner)
                await until(lambda: "sleeping" in terminal.text(), terminal, "the first table")
                assert len(view_threads()) == 1
                pipe.send_text("pause idle\r")
                await until(
                    lambda: "idle: ok: paused (was sleeping)" in terminal.text(),
                    terminal,
                    "the reply",
                )
                await until(
                    lambda: any(" paused " in line for line in terminal.lines()[-3:]),
                    terminal,
                    "the table shows paused",
                )
                assert runner["idle"].state.value == "paused"
                print("a strategy's own print()")  # goes above the table, as a line
                await until(
                    lambda: "a strategy's own print()" in terminal.lines()[:-4],
                    terminal,
                    "printed above",
                )
                pipe.send_text("frobnicate idle\r")
                await until(lambda: "unknown command" in terminal.text(), terminal, "an error")
                nursery.cancel_scope.cancel()
            # The run owns the view's thread: it is gone once the task is.
            assert view_threads() == []
            assert not view.bridge.attached
            await runner.stop_all()
    assert "> pause idle" in terminal.text()
    assert interrupts == []
    audit = events.of(CommandHandled)  # audited as the terminal's, like every other source
    assert [(e.command, e.source, e.ok) for e in audit][:2] == [
        ("pause idle", "terminal", True),
        ("frobnicate idle", "terminal", False),
    ]


async def test_a_stalled_terminal_never_stalls_the_run_and_the_loss_is_said() -> None:
    terminal = StalledTerminal(stalled=False)
    clock = trading.VirtualClock(start=T0)

    def accounted() -> int:
        raw = "".join(terminal.raw)
        shown = raw.count("flood ") + raw.count("one more line")
        return shown + view.bridge.dropped + view.err.dropped

    with create_pipe_input() as pipe:
        view = TerminalView(make_app=app_on(pipe, terminal, []))
        async with trading.Runner(clock=clock, observers=[view.observer], **sim(clock)) as runner:
            await runner.add(Idle(), name="idle")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(view.run, runner)
                await until(lambda: "sleeping" in terminal.text(), terminal, "the first table")
                terminal.resume.clear()  # the reader stops reading
                view.err.write("one more line\n")  # the view's thread now waits on the write
                with trio.fail_after(BOUND):
                    # The view's thread is stuck writing; the run goes on: every write returns
                    # and the runner still answers commands.
                    for i in range(20_000):
                        view.err.write(f"flood {i}\n")
                        if i % 1000 == 0:
                            await trio.lowlevel.checkpoint()
                    assert (await runner.send("pause idle"))[0].ok
                terminal.resume.set()
                # Lost lines are said: by the view, or by the writer feeding it.
                await until(
                    lambda: "lines dropped: the" in "".join(terminal.raw), terminal, "loss said"
                )
                # Every line is shown or counted as dropped, none vanishes (a count may also
                # include the writer's own "lines dropped" notices, at most one per write).
                await until(
                    lambda: 20_001 <= accounted() <= 20_001 + view.err.written,
                    terminal,
                    "every line shown or counted",
                    lambda: (accounted(), view.bridge.dropped, view.err.dropped),
                )
                nursery.cancel_scope.cancel()
            await runner.stop_all()
    assert view.bridge.dropped + view.err.dropped > 0


async def test_a_view_that_will_not_end_is_left_behind_within_a_bound(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(view_module, "JOIN_TIMEOUT", 0.2)
    terminal = StalledTerminal()
    clock = trading.VirtualClock(start=T0)
    try:
        with create_pipe_input() as pipe:
            view = TerminalView(make_app=app_on(pipe, terminal, []))
            async with trading.Runner(clock=clock, **sim(clock)) as runner:
                await runner.add(Idle(), name="idle")
                with trio.fail_after(BOUND):
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(view.run, runner)
                        await trio.sleep(0.2)
                        nursery.cancel_scope.cancel()
                await runner.stop_all()
            assert "did not end within 0.2s" in caplog.text
    finally:
        terminal.resume.set()
    with trio.fail_after(BOUND):
        while view_threads():  # noqa: ASYNC110 (a thread's end: no trio event)
            await trio.sleep(0.01)


async def test_ctrl_c_in_the_view_is_the_process_sigint() -> None:
    view = TerminalView()
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        view.interrupt(1)
        with trio.fail_after(BOUND):
            assert await anext(aiter(signals)) == signal.SIGINT


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("plain", "env", "stdin", "stdout", "expected"),
    [
        (False, {}, True, True, True),
        (False, {"TERM": "xterm"}, True, True, True),
        (True, {}, True, True, False),  # --plain
        (False, {"TRIO_TRADE_PLAIN": "1"}, True, True, False),
        (False, {"TRIO_TRADE_PLAIN": "0"}, True, True, True),
        (False, {"TERM": "dumb"}, True, True, False),
        (False, {}, False, True, False),  # commands from a pipe or a file
        (False, {}, True, False, False),  # output to a pipe, nohup, CI
    ],
)
def test_the_view_only_with_a_terminal_on_both_sides(
    plain: bool, env: dict[str, str], stdin: bool, stdout: bool, expected: bool
) -> None:
    assert wants_view(plain, env, FakeStream(stdin), FakeStream(stdout)) is expected
    assert wants_view(False, {}, None, FakeStream(True)) is False
    closed: Any = FakeStream(True)
    closed.close()
    closed.isatty = io.StringIO.isatty.__get__(closed)  # a closed stream raises ValueError
    assert wants_view(False, {}, closed, FakeStream(True)) is False


def test_log_records_reach_the_view_through_its_writer() -> None:
    view = TerminalView()
    scheduled: list[Callable[[], object]] = []
    view.bridge.attach(scheduled.append, lambda: None)
    handler = logging.StreamHandler(view.err)
    logging.getLogger("test.tui").addHandler(handler)
    try:
        logging.getLogger("test.tui").warning("to the view")
        assert view.err.drain(BOUND)
    finally:
        logging.getLogger("test.tui").removeHandler(handler)
    assert view.bridge.take().lines == ("to the view",)


def test_plain_is_a_flag_of_run() -> None:
    parser = argparse.ArgumentParser()
    add_view_arguments(parser)
    assert parser.parse_args(["--plain"]).plain is True
    assert parser.parse_args([]).plain is False
    tty = FakeStream(True)
    assert wants_view(parser.parse_args(["--plain"]).plain, {}, tty, tty) is False


async def test_if_the_view_fails_commands_are_read_line_by_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> ViewApp:
        raise RuntimeError("no terminal after all")

    stdin_read, stdin_write = os.pipe()
    out_read, out_write = os.pipe()
    monkeypatch.setattr(sys, "stdin", os.fdopen(stdin_read, "r"))
    view = TerminalView(make_app=broken, stdout_fd=out_write)
    clock = trading.VirtualClock(start=T0)
    async with trading.Runner(clock=clock, **sim(clock)) as runner:
        await runner.add(Idle(), name="idle")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(view.run, runner)
            os.write(stdin_write, b"pause idle\n")
            with trio.fail_after(BOUND):
                while runner["idle"].state.value != "paused":  # noqa: ASYNC110 (no event)
                    await trio.sleep(0.01)
                assert view.out.drain(BOUND)
            nursery.cancel_scope.cancel()
        await runner.stop_all()
    os.close(stdin_write)
    os.close(out_write)
    with os.fdopen(out_read) as replies:
        assert "idle: ok: paused (was sleeping)" in replies.read()
    assert "the terminal view failed" in caplog.text and "no terminal after all" in caplog.text
    assert view_threads() == []
