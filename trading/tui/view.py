"""TerminalView: the live terminal of ``trio-trade run``, from the Trio side.

The rules this module keeps (DESIGN.md rules 1, 6 and 7):

* The view's thread is started and joined by :meth:`TerminalView.run`, a task of the run's
  nursery: it never outlives the run. Cancelling ``run`` asks the view to print what is waiting,
  draw the table a last time and end, and waits (shielded, at most ``JOIN_TIMEOUT`` seconds)
  for the thread; a view that does not end in time is left behind with the terminal restored.
* The Trio side only pushes: lines through :attr:`out` and :attr:`err` (writers whose threads
  hand text to the bridge, or to the plain terminal while no view is attached), and table
  snapshots (:func:`~trading.control.status_table.status_rows`, read in the Trio thread) once a
  second and soon after every event. The view's thread reaches the runner only through
  ``runner.send_soon(..., source="terminal")`` and Ctrl-C through the process's own SIGINT, so
  a Ctrl-C in the view is exactly today's Ctrl-C (first: stop all; second: force — after the
  view has ended and handed the terminal back, since a forced exit skips every clean-up).
* While the view runs, ``sys.stdout`` and ``sys.stderr`` are :class:`Printed` stand-ins, so a
  strategy's ``print()`` scrolls above the table too; the view itself draws on the real one.
* If the view fails, the run goes on with plain line-by-line commands on standard input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import termios
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

import trio
from prompt_toolkit.output import create_output

from trading.console import read_commands
from trading.control.status_table import status_rows
from trading.core.commands import CommandResult
from trading.core.events import Event
from trading.observers.terminal import TerminalWriter
from trading.runtime.runner import Runner
from trading.tui.app import ViewApp
from trading.tui.bridge import ViewBridge
from trading.tui.history import history_path, open_history
from trading.tui.printed import Printed

__all__ = [
    "JOIN_TIMEOUT",
    "REFRESH",
    "TerminalView",
    "ViewObserver",
    "add_view_arguments",
    "wants_view",
]

log = logging.getLogger(__name__)

REFRESH = 1.0  # seconds between table snapshots when nothing happens
MIN_GAP = 0.05  # seconds at least between two snapshots: a burst of events is one redraw
JOIN_TIMEOUT = 2.0
# Leave bracketed paste on, show the cursor: what a forced exit must undo of the view.
_RESET = b"\x1b[?2004l\x1b[?25h\r\n"


def add_view_arguments(p_run: argparse.ArgumentParser) -> None:
    """``--plain`` on ``trio-trade run``."""
    p_run.add_argument(
        "--plain",
        action="store_true",
        help="plain lines even on a terminal: log lines and replies as they come, commands read "
        "line by line (also TRIO_TRADE_PLAIN=1); by default a terminal gets the live view, the "
        "status table above an input line with history",
    )


def wants_view(
    plain: bool, env: Mapping[str, str], stdin: TextIO | None, stdout: TextIO | None
) -> bool:
    """The live view when both standard input and output are terminals, unless ``--plain``,
    ``TRIO_TRADE_PLAIN`` (set, not ``0``) or a dumb terminal asks for plain lines."""
    if plain or env.get("TRIO_TRADE_PLAIN", "0") not in ("", "0"):
        return False
    if env.get("TERM") == "dumb":
        return False
    return all(stream is not None and _isatty(stream) for stream in (stdin, stdout))


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):  # closed
        return False


class ViewObserver:
    """Pokes the view after every batch of events, so the table follows state changes, fills
    and positions at once rather than at the next second. Lossy: a poke is all it needs."""

    name = "terminal view"
    lossless = False
    buffer = 16

    def __init__(self, poke: Callable[[], None]) -> None:
        self._poke = poke

    async def handle(self, batch: Sequence[tuple[int, Event]]) -> None:
        self._poke()

    async def aclose(self) -> None:
        pass


class TerminalView:
    """The view of one run. ``stdin_fd``/``stdout_fd`` are the terminal's; ``make_app`` builds
    the application (tests pass one driven by a pipe)."""

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        stdin_fd: int = 0,
        stdout_fd: int = 1,
        stderr_fd: int = 2,
        make_app: Callable[[ViewBridge, Callable[[str], object], Callable[[int], object]], ViewApp]
        | None = None,
    ) -> None:
        self.env = os.environ if env is None else env
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.bridge = ViewBridge()
        self.out = TerminalWriter(_to_view_or(self.bridge, stdout_fd), name="view (replies)")
        self.err = TerminalWriter(_to_view_or(self.bridge, stderr_fd), name="view (log)")
        self.observer = ViewObserver(self._poke)
        self.failed: BaseException | None = None
        self._make_app = make_app or self._default_app
        self._changed: trio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._app: ViewApp | None = None
        self._closing = False
        self._lock = threading.Lock()
        self._saved_tty: list[Any] | None = None
        self._forced = False
        self._stdout, self._stderr = sys.stdout, sys.stderr

    async def run(self, runner: Runner) -> None:
        """Show the view until cancelled (the run's end). Cancelling it ends the view: see the
        module's rules. If the view fails, reads plain commands from standard input instead."""
        token = trio.lowlevel.current_trio_token()
        ended = trio.Event()
        with contextlib.suppress(termios.error, OSError):
            self._saved_tty = termios.tcgetattr(self.stdin_fd)

        def body() -> None:
            try:
                asyncio.run(self._main(runner))
            except BaseException as exc:
                self.failed = exc
            finally:
                token.run_sync_soon(ended.set)

        thread = threading.Thread(target=body, name="terminal view", daemon=True)
        try:
            # print() from a strategy or a library goes above the table as lines, too.
            sys.stdout = Printed(self.out, self._stdout)
            sys.stderr = Printed(self.err, self._stdout)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._refresh, runner)
                thread.start()
                await ended.wait()
                nursery.cancel_scope.cancel(reason="the view ended")
        finally:
            self.bridge.show_rows(status_rows(runner))
            self._request_exit()
            with trio.CancelScope(shield=True), trio.move_on_after(JOIN_TIMEOUT):
                if thread.ident is not None:  # started
                    await ended.wait()
                    # It has returned from its loop: joining it is a matter of microseconds.
                    await trio.to_thread.run_sync(thread.join)
            sys.stdout, sys.stderr = self._stdout, self._stderr
            if not ended.is_set():
                log.warning("the terminal view did not end within %gs; left behind", JOIN_TIMEOUT)
                self.restore_terminal()
        if self.failed is not None:
            log.error("the terminal view failed (%r); commands are read line by line", self.failed)
        else:
            log.debug("the terminal view ended; commands are read line by line")
        await read_commands(runner, self.out)

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def _refresh(self, runner: Runner) -> None:
        while True:
            self._changed = trio.Event()
            self.bridge.show_rows(status_rows(runner))
            with trio.move_on_after(REFRESH):
                await self._changed.wait()
            await trio.sleep(MIN_GAP)

    async def _main(self, runner: Runner) -> None:
        """The view thread's coroutine."""

        def submit(text: str) -> None:
            runner.send_soon(text, source="terminal", on_reply=self._show_replies)

        app = self._make_app(self.bridge, submit, self.interrupt)
        with self._lock:
            self._loop, self._app = asyncio.get_running_loop(), app
            if self._closing:
                app.request_exit()
        try:
            await app.run()
        finally:
            with self._lock:
                self._loop = self._app = None
            if self._forced:
                self.restore_terminal()
                os.kill(os.getpid(), signal.SIGINT)

    def _show_replies(self, results: list[CommandResult]) -> None:
        for result in results:
            self.out.write(f"{result}\n")

    def _request_exit(self) -> None:
        with self._lock:
            self._closing = True
            if self._loop is not None and self._app is not None:
                self._loop.call_soon_threadsafe(self._app.request_exit)

    def interrupt(self, count: int) -> None:
        """Ctrl-C in the view: SIGINT to this process, as a Ctrl-C without the view sends. The
        second one forces an exit that skips every clean-up, so the view ends first (handing
        the terminal back, cooked) and the SIGINT follows. Called in the view's thread."""
        if count < 2:
            os.kill(os.getpid(), signal.SIGINT)
            return
        self._forced = True
        if self._app is not None:
            self._app.request_exit()

    def restore_terminal(self) -> None:
        """Put the terminal back as the view found it (cooked mode, cursor shown)."""
        if self._saved_tty is None:
            return
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(self.stdin_fd, termios.TCSANOW, self._saved_tty)
            os.write(self.stdout_fd, _RESET)

    def _default_app(
        self,
        bridge: ViewBridge,
        submit: Callable[[str], object],
        interrupt: Callable[[int], object],
    ) -> ViewApp:
        history, why_not = open_history(history_path(self.env))
        if why_not:
            log.warning("%s", why_not)
        output = create_output(stdout=self._stdout)  # the terminal, not the Printed stand-in
        return ViewApp(bridge, submit, interrupt, history=history, output=output)


def _to_view_or(bridge: ViewBridge, fd: int) -> Callable[[str], None]:
    """A writer's sink: the view while one is attached, else the plain terminal. Blocking:
    called in the writer's thread."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"

    def sink(text: str) -> None:
        if bridge.offer(text):
            return
        view = memoryview(text.encode(encoding, "backslashreplace"))
        while view:
            view = view[os.write(fd, view) :]

    return sink
