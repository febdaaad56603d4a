"""The parent's handle on one isolated strategy's process: start, call, cancel, kill, reap.

The rules this module keeps (DESIGN.md rules 1, 2, 4, 9, 11 and 12):

* One :class:`ChildProcess` per start of the strategy: a restart starts a new process. Whoever
  started it closes it (:meth:`ChildProcess.close`), and closing always reaps it — a child the
  parent killed is waited for, so none is left a zombie.
* :meth:`ChildProcess.call` runs one hook in the child and answers the child's ``ctx`` requests
  meanwhile with the parent's real Context (:mod:`~trading.isolation.serving`). Cancelled (a
  pause or stop cancelled the phase), it asks the child to cancel and waits, shielded, up to
  ``cancel_deadline`` real seconds for its answer; past that the child is killed (its CPU is
  free at once) and the call ends cancelled, so the command lands as it would in-process (a
  pause pauses). The kill is the strategy's failure, reported at its next call as
  :class:`ChildUnresponsive` and restarted with the usual backoff; a stop just ends it.
  Requests that arrive after the cancel are refused, not served: a cancelled compute places
  no order.
* A child that dies (a signal, an exit, a malformed or disallowed frame) makes the call raise
  :class:`ChildDied` naming how: "child killed by SIGKILL", "child exited with status 3",
  "child sent a malformed frame: ...". The parent goes on; orders it placed are the engine's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from typing import Any

import trio

from trading.isolation.framing import FrameError, FrameReader, loads_plain, send_frame
from trading.isolation.reference import ChildConfig
from trading.isolation.remote_context import remote_error
from trading.isolation.serving import serve_request, snapshot
from trading.isolation.spawn import Child, spawn
from trading.runtime.strategy import Context

__all__ = ["ChildDied", "ChildProcess", "ChildUnresponsive", "describe_exit"]

log = logging.getLogger(__name__)
REAP_TIMEOUT = 5.0


class ChildDied(Exception):
    """The strategy's process died or broke its channel; the message says how."""


class ChildUnresponsive(ChildDied):
    """The strategy's process did not yield to a cancel within its deadline and was killed."""


def describe_exit(returncode: int | None) -> str:
    """``child killed by SIGKILL`` / ``child exited with status 3`` / ``child still running``."""
    if returncode is None:
        return "child still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"child killed by {name}"
    return f"child exited with status {returncode}"


class ChildProcess:
    """One running child; create with :meth:`start`."""

    def __init__(self, process: Child, stream: trio.SocketStream, name: str) -> None:
        self.process = process
        self.name = name
        self._stream = stream
        self._reader = FrameReader(stream, loads_plain)
        self.broken: ChildDied | None = None
        self.cancel_deadline = 1.0

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    async def start(cls, config: ChildConfig, *, start_timeout: float = 30.0) -> ChildProcess:
        """Start the child and wait until it built the strategy. Raises ChildDied with the
        child's own error (an unknown class, a bad parameter) or how it died. Cancelling it
        kills and reaps the child."""
        ours, theirs = socket.socketpair()
        try:
            process = await spawn(
                [
                    sys.executable,
                    "-m",
                    "trading.isolation.child",
                    str(theirs.fileno()),
                    str(os.getpid()),
                ],
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        child = cls(process, trio.SocketStream(trio.socket.from_stdlib_socket(ours)), config.name)
        child.cancel_deadline = config.cancel_deadline
        try:
            with trio.fail_after(start_timeout):
                await send_frame(child._stream, ("config", config))
                message: Any = await child._receive()
            if message[0] == "error":
                raise ChildDied(str(message[1]))
            if message[0] != "ready":
                raise ChildDied(f"child sent {message[0]!r} before it was ready")
        except trio.TooSlowError:
            await child.close()
            raise ChildDied(f"child did not start within {start_timeout:g}s") from None
        except BaseException:
            await child.close()
            raise
        return child

    async def _receive(self) -> Any:
        try:
            return await self._reader.receive()
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            raise await self._died(None) from None
        except FrameError as exc:
            raise await self._died(f"child sent a malformed frame: {exc}") from None

    async def _send(self, message: object) -> None:
        try:
            await send_frame(self._stream, message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise await self._died(None) from None

    async def _died(self, why: str | None, kind: type[ChildDied] = ChildDied) -> ChildDied:
        """Make sure the child is gone (killed if need be) and reaped; the error saying how."""
        with trio.CancelScope(shield=True):
            if why is not None:
                self._kill()
            with trio.move_on_after(1.0):
                await self.process.wait()
            await self.close()
        self.broken = kind(why or describe_exit(self.process.returncode))
        return self.broken

    async def call(
        self, hook: str, ctx: Context, params: dict[str, Any], command: Any = None
    ) -> Any:
        """Run ``hook`` in the child; its return value, or its error rebuilt by type name."""
        if self.broken is not None:
            raise type(self.broken)(str(self.broken))
        state = {
            "now": ctx.now,
            "speed": float(getattr(ctx.clock, "speed", 1.0)),
            "bar_close": ctx.bar_close,
            "history_end": ctx.history_end,
            "computes": ctx.computes,
            "snapshot": snapshot(ctx),
        }
        await self._send(("call", hook, params, state, command))
        try:
            return await self._serve(ctx, refuse=False)
        except trio.Cancelled:
            await self._cancel(ctx)
            raise

    async def _serve(self, ctx: Context, *, refuse: bool) -> Any:
        while True:
            message: Any = await self._receive()
            kind = message[0]
            if kind == "request":
                _, rid, method, args, kwargs = message
                if refuse:
                    answer: tuple[bool, Any] = (False, (["Cancelled"], "the call was cancelled"))
                else:
                    answer = await serve_request(ctx, method, args, kwargs)
                await self._send(("reply", rid, *answer))
            elif kind == "log":
                ctx.log.log(int(message[1]), "%s", message[2])
            elif kind == "done":
                _, ok, value = message
                if ok:
                    return value
                error = remote_error(value[0], str(value[1]))
                error.add_note(f"in the strategy's process:\n{value[2]}")
                raise error
            elif kind == "cancelled":
                return None
            else:
                raise await self._died(f"child sent an unknown message {kind!r}")

    async def _cancel(self, ctx: Context) -> None:
        """The phase was cancelled: the child must cancel too, or be killed."""
        with trio.CancelScope(shield=True, deadline=trio.current_time() + self.cancel_deadline):
            try:
                await self._send(("cancel",))
                await self._serve(ctx, refuse=True)
                return
            except Exception as exc:  # died meanwhile, or its cancelled hook raised: it stopped
                log.info("%s: while cancelling: %s", self.name, exc)
                return
        why = f"child did not yield within {self.cancel_deadline:g}s of a cancel; killed"
        log.warning("%s: %s", self.name, why)
        await self._died(why, ChildUnresponsive)

    async def close(self, *, grace: float = 0.0) -> None:
        """End the child (asked to exit, given ``grace`` seconds, then SIGKILL) and reap it.
        Shielded and bounded: cancelling it does not leave a process behind."""
        with trio.CancelScope(shield=True):
            if self.process.returncode is None and grace > 0:
                with trio.move_on_after(grace):
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await send_frame(self._stream, ("exit",))
                    await self.process.wait()
            self._kill()
            with trio.move_on_after(REAP_TIMEOUT):
                await self.process.wait()
            if self.process.returncode is None:
                log.error("%s: child %d not reaped after SIGKILL", self.name, self.pid)
            await self._stream.aclose()

    def _kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
