"""ViewApp: the prompt_toolkit application of the terminal view — the status table above an
input line, and everything else printed above both.

The rules this module keeps:

* It runs on its own asyncio loop in the view's thread and touches nothing of the run: commands
  leave through ``submit`` (the runner's ``send_soon``), Ctrl-C through ``interrupt``; lines and
  tables arrive through the :class:`~trading.tui.bridge.ViewBridge`.
* Lines are printed above the table and the input line (``run_in_terminal``: erase, print,
  redraw), one batch at a time, so what is being typed is never broken up by a log line.
* The input line edits as a shell's does (Emacs keys, up/down through the history).
  Enter sends each non-empty line as a command, echoed above as ``> line``; a line longer than
  ``MAX_COMMAND_LENGTH`` bytes, or holding bytes that are not UTF-8, gets an error and is not
  sent (as on standard input without the view).
* Ctrl-C calls ``interrupt`` with how many times it was pressed (the run decides: today's
  first "stop all", second "force"). Ctrl-D on an empty line closes the input, as the end of
  standard input does without the view: commands are no longer read, the run goes on, the table
  stays live, and Ctrl-C still stops it.
* :meth:`ViewApp.request_exit` (in the view's thread) prints what is still waiting, draws the
  table a last time and ends the application; the last table stays on the screen.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence

from prompt_toolkit.application import Application, run_in_terminal
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.filters import Condition, is_done
from prompt_toolkit.formatted_text import ANSI, StyleAndTextTuples
from prompt_toolkit.history import History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import ConditionalContainer, HSplit, Layout, Window
from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl
from prompt_toolkit.layout.processors import BeforeInput
from prompt_toolkit.output import Output

from trading.control.status_table import StatusRow
from trading.core.commands import MAX_COMMAND_LENGTH
from trading.tui.bridge import ViewBridge
from trading.tui.table import printable, render_rows

__all__ = ["INPUT_CLOSED", "PRINT_GAP", "PROMPT", "ViewApp"]

log = logging.getLogger(__name__)

PROMPT = "> "
PRINT_GAP = 0.05  # seconds between two batches of lines: each batch erases and redraws the view
INPUT_CLOSED = "input closed: commands are no longer read; still running (Ctrl-C to stop)"


class ViewApp:
    """The view's application. Build it and call :meth:`run` in the view's thread."""

    def __init__(
        self,
        bridge: ViewBridge,
        submit: Callable[[str], object],
        interrupt: Callable[[int], object],
        *,
        history: History | None = None,
        input: Input | None = None,
        output: Output | None = None,
    ) -> None:
        self.bridge = bridge
        self.submit = submit
        self.interrupt = interrupt
        self.interrupts = 0
        self.input_closed = False
        self.rows: tuple[StatusRow, ...] | None = None
        self._closing = False
        self._pending = asyncio.Event()
        self._table_cache: tuple[object, str] | None = None
        self.buffer = Buffer(
            multiline=False,
            history=history if history is not None else InMemoryHistory(),
            accept_handler=self._accept,
            read_only=Condition(lambda: self.input_closed),
            name="command",
        )
        # The input line goes when the view ends: the last table is the last thing on screen.
        is_open = Condition(lambda: not self.input_closed) & ~is_done
        body = HSplit(
            [
                Window(FormattedTextControl(self._table_text), dont_extend_height=True),
                ConditionalContainer(
                    Window(
                        BufferControl(self.buffer, input_processors=[BeforeInput(PROMPT)]),
                        height=1,
                    ),
                    filter=is_open,
                ),
                ConditionalContainer(
                    Window(FormattedTextControl(INPUT_CLOSED), height=1, style="fg:ansiyellow"),
                    filter=Condition(lambda: self.input_closed) & ~is_done,
                ),
            ]
        )
        self.app: Application[None] = Application(
            layout=Layout(body, focused_element=self.buffer),
            key_bindings=self._key_bindings(),
            input=input,
            output=output,
            min_redraw_interval=0.05,
            erase_when_done=False,
        )

    async def run(self) -> None:
        """Run until :meth:`request_exit`; on the view's asyncio loop. The bridge is attached
        only while it runs. Cancelling it ends the application without the last print."""
        loop = asyncio.get_running_loop()
        self.bridge.attach(loop.call_soon_threadsafe, self._pending.set)
        try:
            await self.app.run_async(pre_run=self._start_pump, handle_sigint=False)
        except EOFError:  # the terminal went away (a hang-up): the view ends, the run goes on
            log.warning("the terminal closed: the view ends")
        finally:
            left = self.bridge.detach()
            if left.lines or left.dropped:  # arrived during the last draw: below the table
                self.app.output.write(self._text(left.lines, left.dropped))
                self.app.output.flush()

    def _start_pump(self) -> None:
        self.app.create_background_task(self._pump())

    def request_exit(self) -> None:
        """End the application once what is waiting is printed. In the view's thread."""
        self._closing = True
        self._pending.set()

    async def _pump(self) -> None:
        while True:
            await self._pending.wait()
            self._pending.clear()
            taken = self.bridge.take()
            if taken.rows is not None:
                self.rows = taken.rows
                self.app.invalidate()
            if taken.lines or taken.dropped:
                text = self._text(taken.lines, taken.dropped)
                await run_in_terminal(functools.partial(self._write, text))
                if not self._closing:  # a flood is printed in a few batches a second
                    await asyncio.sleep(PRINT_GAP)
            if self._closing and not self._pending.is_set():
                if not self.app.is_done:
                    self.app.exit()
                return

    def _write(self, text: str) -> None:
        self.app.output.write(text)
        self.app.output.flush()

    @staticmethod
    def _text(lines: Sequence[str], dropped: int) -> str:
        shown = [printable(line) for line in lines]
        if dropped:
            shown.insert(0, f"... {dropped} lines dropped: the view was not keeping up")
        return "".join(f"{line}\n" for line in shown)

    def _table_text(self) -> StyleAndTextTuples:
        width = self.app.output.get_size().columns
        key = (self.rows, width, self.bridge.dropped)
        if self._table_cache is None or self._table_cache[0] != key:
            if self.rows is None:
                text = "\x1b[2mwaiting for the first status…\x1b[0m"
            else:
                text = render_rows(self.rows, width, dropped=self.bridge.dropped)
            self._table_cache = (key, text)
        return ANSI(self._table_cache[1]).__pt_formatted_text__()

    def _accept(self, buffer: Buffer) -> bool:
        """Send each non-empty line typed (a paste may hold several); False: clear the line."""
        lines = [line.strip() for line in buffer.text.splitlines()]
        for line in filter(None, lines):
            if len(line.encode("utf-8", "surrogatepass")) > MAX_COMMAND_LENGTH:
                self.bridge.offer(
                    f"error: command too long (the limit is {MAX_COMMAND_LENGTH} bytes); ignored"
                )
                continue
            try:
                line.encode("utf-8")
            except UnicodeEncodeError as exc:  # bytes the terminal sent that are not UTF-8
                column = exc.start + 1
                self.bridge.offer(f"error: not UTF-8 text (at column {column}); ignored")
                continue
            self.bridge.offer(f"{PROMPT}{line}")
            self.submit(line)
        # The buffer is reset after this returns, which drops its history until the next draw
        # reloads it: reload it now, so an up arrow pressed before that draw finds it.
        asyncio.get_running_loop().call_soon(self.buffer.load_history_if_not_yet_loaded)
        return False

    def _key_bindings(self) -> KeyBindings:
        bindings = KeyBindings()

        @bindings.add("c-c", eager=True)
        def _interrupt(event: KeyPressEvent) -> None:
            self.interrupts += 1
            self.interrupt(self.interrupts)

        @bindings.add("c-d", filter=Condition(lambda: not self.buffer.text))
        def _end_of_input(event: KeyPressEvent) -> None:
            if self.input_closed:
                return
            self.input_closed = True
            self.bridge.offer("end of input; still running (Ctrl-C to stop)")

        return bindings
