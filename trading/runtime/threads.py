"""The Runner's doors for other threads and signal handlers.

The rules this module keeps (DESIGN.md rule 11):

* Nothing here blocks the event loop: commands cross into the trio thread with
  ``run_sync_soon`` / ``from_thread.run_sync`` and are delivered without waiting
  (:meth:`trading.runtime.delivery.CommandRouter.send_nowait`), so a full mailbox answers
  "busy" at once instead of queueing past its bound.
* :func:`send_from_thread` refuses to run in the Runner's own thread (a trio task, or the host
  loop of trio guest mode), where waiting for the reply would deadlock.
* A caller's reply callback never breaks the Runner: its exceptions are logged and dropped.
* Once the trio run is over (or before it starts), every call gets the reply "the Runner is
  not running", never an exception from trio.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import trio

from trading.core.commands import CommandResult
from trading.runtime.delivery import NOT_RUNNING, OnReply, clip
from trading.runtime.services import RunnerThreadError

__all__ = ["Deliver", "report", "send_from_thread", "send_soon"]

log = logging.getLogger(__name__)

# Delivers a line of text from ``source`` without waiting; replies go to the callback.
Deliver = Callable[[str, str, OnReply], None]


def send_from_thread(
    token: trio.lowlevel.TrioToken | None,
    loop_thread: int | None,
    deliver: Deliver,
    command: str,
    source: str,
) -> list[CommandResult]:
    """See :meth:`trading.runtime.runner.Runner.send_from_thread`."""
    if threading.get_ident() == loop_thread or in_trio_task():
        raise RunnerThreadError(
            "send_from_thread was called from the Runner's own thread (a trio task, or the "
            "host loop of trio guest mode), where it would deadlock: use "
            "`await runner.send(...)` instead"
        )
    refused = [CommandResult("", False, f"{NOT_RUNNING}: {clip(command)!r} not delivered")]
    if token is None:
        return refused
    done = threading.Event()
    box: list[list[CommandResult]] = []

    def on_reply(results: list[CommandResult]) -> None:
        box.append(results)
        done.set()

    def deliver_logged() -> None:
        deliver(command, source, lambda results: report(on_reply, results, command))

    try:
        trio.from_thread.run_sync(deliver_logged, trio_token=token)
    except trio.RunFinishedError:
        return refused
    done.wait()
    return box[0]


def send_soon(
    token: trio.lowlevel.TrioToken | None,
    deliver: Deliver,
    command: str,
    source: str,
    on_reply: OnReply | None,
) -> None:
    """See :meth:`trading.runtime.runner.Runner.send_soon`."""
    refused = [CommandResult("", False, f"{NOT_RUNNING}: {clip(command)!r}")]

    def reply(results: list[CommandResult]) -> None:
        report(on_reply, results, command)

    if token is None:
        log.warning("send_soon(%r): %s", clip(command), NOT_RUNNING)
        reply(refused)
        return
    try:
        token.run_sync_soon(deliver, command, source, reply)
    except trio.RunFinishedError:
        log.warning("send_soon(%r): %s", clip(command), NOT_RUNNING)
        reply(refused)


def report(on_reply: OnReply | None, results: list[CommandResult], text: str) -> None:
    """Hand replies to a caller's callback; its exceptions are logged, never propagated."""
    if on_reply is None:
        return
    try:
        on_reply(results)
    except Exception:
        log.exception("on_reply callback raised for %r; ignored", clip(text))


def in_trio_task() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True
