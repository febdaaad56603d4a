"""The control socket of ``trio-trade run``: ``trio-trade ctl`` talks to a run over a Unix socket.

The rules this module keeps:

* Only the owner can connect: the socket is bound under umask 0o177 and chmod-ed to 0600, so it
  is never, even for an instant, open to anyone else (a Unix socket's mode is its access check).
* One run per path: if a live server answers at the path, :func:`serve_control` refuses
  (:class:`ControlSocketInUse`); a stale socket file left by a killed run is removed; a path that
  is not a socket is never removed (it is someone's file) and is refused.
* JSON lines both ways. A request is ``{"id": ..., "command": "pause sma_cross"}``; ``id`` is
  optional and echoed. The reply is ``{"id", "ok", "replies": [{"strategy", "ok", "text",
  "state"}]}``, the :class:`CommandResult` list ``runner.send(text, source="ctl")`` returned.
  ``health`` answers ``{"id", "ok": alive, "alive", "health": [rows], "links": [rows],
  "text"}`` (see :mod:`trading.control.health`); ``status`` and ``status all`` add the status
  table to the replies (``"status": [rows]``, ``"table": text``). ``tail`` answers ``{"id",
  "ok", "tail": true}`` and then one ``{"kind", "strategy", "time", "text"}`` line per event
  until the client hangs up.
* Bad input is answered, never fatal: a line that is not JSON, not an object, has unknown
  fields, a non-text command, or is longer than :data:`MAX_LINE` bytes gets ``{"id", "ok":
  false, "error": ...}`` naming the problem; the connection and the run go on.
* Every connection runs in its own task in a nursery :func:`serve_control` owns. Cancelling
  :func:`serve_control` closes the listener and every connection and removes the socket file
  (only if it is still the one this server bound).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket as stdlib_socket
import stat
from collections.abc import Sequence
from typing import Any

import trio

from trading.control.health import health as full_health
from trading.control.health import link_rows, render_health, strategy_health
from trading.control.status_table import render_text, row_json, status_rows
from trading.core.commands import CommandResult
from trading.core.events import Event, describe
from trading.runtime.runner import Runner

__all__ = [
    "MAX_LINE",
    "ControlSocketInUse",
    "LineIterator",
    "LineTooLong",
    "default_socket_path",
    "health",
    "result_json",
    "serve_control",
]

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024  # bytes in one request or reply line, newline excluded
TAIL_BUFFER = 1024  # events a slow tail client may be behind before events are dropped for it
_FIELDS = frozenset({"id", "command"})


def default_socket_path() -> str:
    """``$XDG_RUNTIME_DIR/trio-trade.sock`` (a per-user 0700 directory), else
    ``/tmp/trio-trade-<uid>.sock``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "trio-trade.sock")
    return f"/tmp/trio-trade-{os.getuid()}.sock"


class ControlSocketInUse(Exception):
    """Another run answers at the path, or the path is a file that is not a socket."""


class LineTooLong(ValueError):
    """A line went past :data:`MAX_LINE` bytes; the rest of it was skipped."""


def result_json(result: CommandResult) -> dict[str, Any]:
    return {
        "strategy": result.target,
        "ok": result.ok,
        "text": result.message,
        "state": result.state,
    }


def health(runner: Runner) -> list[dict[str, Any]]:
    """The per-strategy rows of :func:`trading.control.health.health` (kept for callers that
    want only those)."""
    return strategy_health(runner, links_up=all(row["connected"] for row in link_rows(runner)))


class LineIterator:
    """The lines (bytes, newline stripped) of a stream; a line past ``limit`` bytes comes as a
    :class:`LineTooLong` instance instead, its rest skipped. Ends when the peer hangs up.
    Cancelling a read loses nothing already buffered."""

    def __init__(self, stream: trio.abc.ReceiveStream, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.buffer = bytearray()
        self.skipping = False
        self.eof = False

    def __aiter__(self) -> LineIterator:
        return self

    async def __anext__(self) -> bytes | LineTooLong:
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                if self.skipping:
                    self.skipping = False
                    continue
                if len(line) > self.limit:
                    return LineTooLong(f"line longer than {self.limit} bytes; ignored")
                return line
            if len(self.buffer) > self.limit and not self.skipping:
                self.buffer.clear()
                self.skipping = True
                return LineTooLong(f"line longer than {self.limit} bytes; ignored")
            if self.skipping:
                self.buffer.clear()
            if self.eof:
                raise StopAsyncIteration
            chunk = await self.stream.receive_some(65_536)
            self.buffer += chunk
            if not chunk:
                self.eof = True
                if self.buffer and not self.skipping:
                    self.buffer += b"\n"  # a last line without its newline still counts


def _is_table(command: str) -> bool:
    """``status`` and ``status all`` answer with the status table (one strategy: its line)."""
    return command.lower().split() in (["status"], ["status", "all"])


def _parse(line: bytes) -> tuple[Any, str]:
    """The request's id and command; raises ValueError(reply text, id)."""
    try:
        request = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}", None) from None
    if not isinstance(request, dict):
        raise ValueError(f"a request is a JSON object, not {type(request).__name__}", None)
    ident = request.get("id")
    unknown = sorted(set(request) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(map(repr, unknown))}", ident)
    command = request.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ValueError("'command' must be a non-empty string", ident)
    return ident, command.strip()


class _Tap:
    """A lossy bus observer feeding one tail client; drops what a slow client cannot take."""

    lossless = False
    _count = 0

    def __init__(self) -> None:
        _Tap._count += 1
        self.name = f"ctl-tail-{_Tap._count}"
        self.send, self.receive = trio.open_memory_channel[Event](TAIL_BUFFER)
        self.dropped = 0

    def note_dropped(self, count: int) -> None:
        self.dropped += count

    async def handle(self, batch: Sequence[tuple[int, Event]]) -> None:
        for _, event in batch:
            try:
                self.send.send_nowait(event)
            except trio.WouldBlock:
                self.dropped += 1
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return

    async def aclose(self) -> None:
        self.send.close()


def _event_json(event: Event) -> dict[str, Any]:
    return {
        "kind": type(event).__name__,
        "strategy": event.strategy,
        "time": event.time,
        "text": describe(event),
    }


async def _send(stream: trio.SocketStream, reply: dict[str, Any]) -> None:
    await stream.send_all(json.dumps(reply, default=str).encode() + b"\n")


async def _tail(runner: Runner, stream: trio.SocketStream, lines: LineIterator, ident: Any) -> None:
    """Stream events until the client hangs up (anything it sends meanwhile is ignored)."""
    tap = _Tap()
    runner.bus.attach(tap)
    try:
        await _send(stream, {"id": ident, "ok": True, "tail": True})
        async with trio.open_nursery() as nursery:

            async def watch_hangup() -> None:
                async for _ in lines:
                    pass
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_hangup)
            async for event in tap.receive:
                await _send(stream, _event_json(event))
            nursery.cancel_scope.cancel()  # the bus closed: the run is ending
    finally:
        # Suppressed: the bus may have closed (and dropped the tap) with the run.
        with (
            trio.CancelScope(shield=True),
            trio.move_on_after(1),
            contextlib.suppress(ValueError, RuntimeError),
        ):
            await runner.bus.detach(tap)


async def _handle(runner: Runner, stream: trio.SocketStream) -> None:
    """One connection: requests in order, one reply each. Cancelled: the connection closes."""
    async with stream:
        log.debug("control client connected")
        try:
            lines = LineIterator(stream, MAX_LINE)
            async for line in lines:
                if isinstance(line, LineTooLong):
                    await _send(stream, {"id": None, "ok": False, "error": str(line)})
                    continue
                if not line.strip():
                    continue
                try:
                    ident, command = _parse(line)
                except ValueError as exc:
                    text, ident = exc.args
                    await _send(stream, {"id": ident, "ok": False, "error": text})
                    continue
                verb = command.split()[0].lower()
                if verb == "tail" and command.lower() == "tail":
                    await _tail(runner, stream, lines, ident)
                    return
                if verb == "health" and command.lower() == "health":
                    report = full_health(runner)
                    await _send(
                        stream,
                        {
                            "id": ident,
                            "ok": report["alive"],
                            "alive": report["alive"],
                            "health": report["strategies"],
                            "links": report["links"],
                            "text": render_health(report),
                        },
                    )
                    continue
                results = await runner.send(command, source="ctl")
                reply: dict[str, Any] = {
                    "id": ident,
                    "ok": all(r.ok for r in results),
                    "replies": [result_json(r) for r in results],
                }
                if _is_table(command) and reply["ok"]:
                    rows = status_rows(runner)
                    reply["status"] = [row_json(row) for row in rows]
                    reply["table"] = render_text(rows)
                await _send(stream, reply)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            log.debug("control client went away: %s", exc)


async def _check_path(path: str) -> None:
    """Refuse a path a live server answers at or that is not a socket; remove a stale socket."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlSocketInUse(f"{path} exists and is not a socket; not touching it")
    try:
        with trio.fail_after(2):
            probe = await trio.open_unix_socket(path)
    except (ConnectionRefusedError, FileNotFoundError):
        log.info("removing the stale control socket %s", path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except (OSError, trio.TooSlowError) as exc:
        raise ControlSocketInUse(f"{path}: cannot tell if a run listens there: {exc}") from None
    await probe.aclose()
    raise ControlSocketInUse(f"a trio-trade run is already listening on {path}")


async def serve_control(
    runner: Runner,
    path: str,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``trio-trade ctl`` on the Unix socket ``path`` until cancelled; start it with
    ``await nursery.start(serve_control, runner, path)`` (raises :class:`ControlSocketInUse` or
    OSError from there). Cancelling it closes the listener and every connection and removes
    the socket file."""
    await _check_path(path)
    sock = trio.socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
    try:
        old = os.umask(0o177)  # bound with mode 0600: nobody else can connect, not even at once
        try:
            await sock.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        identity = os.stat(path).st_ino
        sock.listen(64)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ControlSocketInUse(f"{path} is in use") from None
        raise
    listener = trio.SocketListener(sock)
    try:
        log.info("control socket: %s", path)
        async with trio.open_nursery() as nursery:

            async def handler(stream: trio.SocketStream) -> None:
                await _handle(runner, stream)

            await nursery.start(trio.serve_listeners, handler, [listener])
            task_status.started(path)
    finally:
        with trio.CancelScope(shield=True):
            await listener.aclose()
        try:
            if os.stat(path).st_ino == identity:
                os.unlink(path)
        except OSError:
            pass
