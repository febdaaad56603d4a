"""KeyboardInterrupt belongs to the kernel: SIGINT is never a runner control, and a SIGINT
that lands while trio's guest code runs waits for it to finish (trading.notebook.guest)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
import types

import trio

import trading
from tests.notebook.helpers import T0, Sleeper, options
from tests.notebook.test_guest import run
from trading.notebook import start

TRIO_RUN = os.path.join("trio", "_core", "_run.py")


class Busy(trading.Strategy):
    """Computes on every one-minute bar; a fast clock makes that hundreds of times a second."""

    interval = "1m"
    symbols = ("BTCUSDT",)

    async def next(self, ctx: trading.Context) -> None:
        sum(range(2000))
        await trio.lowlevel.checkpoint()


def in_trio(frame: types.FrameType | None) -> str | None:
    """The innermost function of trio's run module on the stack, if a guest tick (trio's run
    loop and every task step) is under way; None otherwise. Host code may call trio's plain
    functions (``trio.current_time()`` reading a clock): those are not a tick."""
    innermost = None
    while frame is not None:
        if frame.f_code.co_filename.endswith(TRIO_RUN):
            innermost = innermost or frame.f_code.co_qualname
            if frame.f_code.co_name == "guest_tick":
                return innermost
        frame = frame.f_back
    return None


def test_sigint_during_a_guest_tick_is_handed_over_after_it() -> None:
    """A barrage of SIGINTs while the runner computes hundreds of bars a second: the host's
    handler gets them, never with trio's run loop on the stack, and the run is unharmed."""
    seen: list[str | None] = []

    def handler(signum: int, frame: types.FrameType | None) -> None:
        seen.append(in_trio(sys._getframe(1)))

    async def main() -> None:
        previous = signal.signal(signal.SIGINT, handler)
        try:
            handle = await start(Busy(), clock=trading.VirtualClock(start=T0 + 30, speed=12_000))
            stop = threading.Event()

            def barrage() -> None:
                while not stop.is_set():
                    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
                    time.sleep(0.0005)

            sender = threading.Thread(target=barrage)
            sender.start()
            try:
                await asyncio.sleep(1.0)
            finally:
                stop.set()
                sender.join()
            [reply] = await handle.command("status busy")
            assert reply.ok, reply
            status = handle.status()
            assert status["last_error"].tolist() == [None]
            [stopped] = await handle.stop()
            assert stopped.ok
        finally:
            signal.signal(signal.SIGINT, previous)

    run(main)
    assert len(seen) > 20
    inside = [where for where in seen if where is not None]
    assert inside == [], f"{len(inside)} of {len(seen)} SIGINTs ran inside trio's run loop"


def test_ctrl_c_is_not_a_runner_control() -> None:
    """With Python's default SIGINT handler in place (a sync cell's), Ctrl-C raises
    KeyboardInterrupt in the host's code, and trio never sees it."""

    async def main() -> None:
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            handle = await start(Sleeper(), **options())
            interrupted = False
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                interrupted = True
            assert interrupted
            await asyncio.sleep(0.05)
            [reply] = await handle.command("status sleeper")
            assert reply.ok and handle.running
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
            await handle.stop()
        finally:
            signal.signal(signal.SIGINT, previous)

    run(main)
