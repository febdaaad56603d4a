"""The isolated strategy's process: ``python -m trading.isolation.child FD PARENT_PID``.

The rules this module keeps (DESIGN.md rules 1, 2 and 9):

* It dies with its parent: on Linux ``PR_SET_PDEATHSIG(SIGKILL)`` is set first thing, then the
  parent's pid is checked (a parent that died before that leaves us with another one: exit at
  once). It also exits when its channel closes. It is started in its own session, so a Ctrl-C
  at the terminal reaches the parent, which stops it in order.
* It runs one hook at a time, as asked: ``on_start``, ``next``, ``on_stop`` or ``on_command``,
  each in its own cancel scope, which a ``cancel`` message cancels (the child answers
  ``cancelled``). A hook that never yields cannot be cancelled here; the parent kills it then.
* Its ``ctx`` is a :class:`~trading.isolation.remote_context.RemoteContext`: data and orders are
  requests to the parent. Replies for requests it no longer waits for are dropped.
* Errors of the strategy are sent by type name, message and traceback text; never a pickled
  object. A malformed frame from the parent ends the child.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pickle
import signal
import socket
import sys
import traceback
from typing import Any

import trio

from trading.core.bars import Interval
from trading.core.params import param_values
from trading.isolation.framing import FrameReader, send_frame
from trading.isolation.reference import ChildConfig, build_strategy
from trading.isolation.remote_context import RemoteContext, remote_error
from trading.runtime.strategy import Strategy

__all__ = ["die_with_parent", "main"]

PR_SET_PDEATHSIG = 1
LOG_BUFFER = 256


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGKILL when the parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


class _Forward(logging.Handler):
    """``ctx.log`` records to the parent, through a bounded channel (a flood drops, counted)."""

    def __init__(self, send: trio.MemorySendChannel[tuple[Any, ...]]) -> None:
        super().__init__()
        self._send = send
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._send.send_nowait(("log", record.levelno, record.getMessage()))
        except (trio.WouldBlock, trio.ClosedResourceError, RuntimeError):
            self.dropped += 1


def _error(exc: BaseException) -> tuple[list[str], str, str]:
    """An error as plain data: its class names (most derived first), message and traceback."""
    names = [cls.__name__ for cls in type(exc).__mro__]
    return names, str(exc), "".join(traceback.format_exception(exc))


class ChildServer:
    """Serves the parent's calls for one strategy instance."""

    def __init__(self, config: ChildConfig, stream: trio.SocketStream) -> None:
        self.config = config
        self.stream = stream
        self.strategy: Strategy | None = None
        self.ctx: RemoteContext | None = None
        # Log records come from a synchronous handler: through a bounded channel and a writer
        # task. Requests and replies are sent directly, under the lock (one hop less for each).
        self._out_send, self._out = trio.open_memory_channel[tuple[Any, ...]](LOG_BUFFER)
        self._lock = trio.Lock()
        self._pending: dict[int, trio.MemorySendChannel[tuple[bool, Any]]] = {}
        self._next_id = 0
        self._call: trio.CancelScope | None = None

    async def run(self, reader: FrameReader) -> None:
        try:
            self.strategy = build_strategy(self.config)
        except Exception as exc:
            await send_frame(self.stream, ("error", f"{type(exc).__name__}: {exc}"))
            return
        log = logging.getLogger(f"trading.strategy.{self.config.name}")
        log.propagate = False
        log.setLevel(logging.DEBUG)
        log.addHandler(_Forward(self._out_send))
        self.ctx = RemoteContext(
            name=self.config.name,
            interval=Interval.parse(self.config.interval),
            symbols=self.config.symbols,
            request=self.request,
            log=log,
        )
        await send_frame(self.stream, ("ready", os.getpid()))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._writer)
            await self._read(reader, nursery)
            nursery.cancel_scope.cancel()

    async def _writer(self) -> None:
        async for message in self._out:
            await self._send(message)

    async def _send(self, message: tuple[Any, ...]) -> None:
        async with self._lock:
            await send_frame(self.stream, message)

    async def _read(self, reader: FrameReader, nursery: trio.Nursery) -> None:
        while True:
            try:
                message: Any = await reader.receive()
            except EOFError:
                return  # the parent closed the channel (or died): end
            kind = message[0]
            if kind == "call":
                if self._call is not None:
                    return  # a protocol error of the parent's: end rather than guess
                self._call = trio.CancelScope()
                nursery.start_soon(self._run_call, self._call, *message[1:])
            elif kind == "cancel":
                if self._call is not None:
                    self._call.cancel()
            elif kind == "reply":
                _, rid, ok, value = message
                waiter = self._pending.pop(rid, None)
                if waiter is not None:
                    waiter.send_nowait((ok, value))
            elif kind == "exit":
                return

    async def request(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Ask the parent; wait for its answer (cancelling stops waiting; the answer is
        dropped when it comes)."""
        self._next_id += 1
        rid = self._next_id
        send, receive = trio.open_memory_channel[tuple[bool, Any]](1)
        self._pending[rid] = send
        try:
            await self._send(("request", rid, method, args, kwargs))
            ok, value = await receive.receive()
        finally:
            self._pending.pop(rid, None)
        if not ok:
            raise remote_error(value[0], value[1])
        result, snapshot = value
        assert self.ctx is not None
        self.ctx.take_snapshot(snapshot)
        return result

    async def _run_call(
        self,
        scope: trio.CancelScope,
        hook: str,
        params: dict[str, Any],
        state: dict[str, Any],
        command: Any,
    ) -> None:
        strategy, ctx = self.strategy, self.ctx
        assert strategy is not None and ctx is not None
        reply: tuple[Any, ...]
        try:
            current = param_values(strategy)
            for key, value in params.items():
                if current.get(key, value) != value or key not in current:
                    object.__setattr__(strategy, key, value)
            ctx.update(state)
            with scope:
                if hook == "on_command":
                    result: Any = await strategy.on_command(ctx, command)  # type: ignore[arg-type]
                else:
                    result = await getattr(strategy, hook)(ctx)
            reply = ("cancelled",) if scope.cancelled_caught else ("done", True, _result(result))
        except Exception as exc:
            reply = ("done", False, _error(exc))
        finally:
            self._call = None
        await self._send(reply)


def _result(value: object) -> object:
    """A hook's return value if it is plain (on_command's reply text); else its repr."""
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


async def _serve(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
    reader = FrameReader(stream, pickle.loads)  # our parent is trusted
    try:
        first: Any = await reader.receive()
    except EOFError:
        return
    config: ChildConfig = first[1]
    await ChildServer(config, stream).run(reader)


def main(argv: list[str]) -> int:
    fd, parent_pid = int(argv[1]), int(argv[2])
    die_with_parent(parent_pid)
    try:
        trio.run(_serve, fd)
    except (BrokenPipeError, trio.BrokenResourceError, trio.ClosedResourceError, EOFError):
        return 0  # the parent went away mid-frame: nothing to tell anybody
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
