"""TelegramNotifier: notable events to Telegram chats, within Telegram's limits, never in the way.

The rules this module keeps (DESIGN.md rules 1, 6 and 11; the pacing and folding themselves are
the pure :mod:`trading.core.outbox`):

* It is a lossy observer: :meth:`TelegramNotifier.handle` only renders the notable events
  (those :func:`~trading.observers.notifier.is_notable` picks, as the console does) into each
  chat's outbox and returns at once. It never waits on Telegram, so the bus's task for it
  never falls behind because of the network; what the bus still drops is counted and said.
  Failures, pauses, stops, risk breaches, unknown orders and skipped bars are *urgent*: under
  a burst, fills and rejections are folded first.
* The sending happens in tasks the notifier owns: one per chat, in the nursery of
  :meth:`TelegramNotifier.run`. Open it with ``async with notifier:`` around the Runner it is
  attached to (or ``await nursery.start(notifier.run)``). A chat waiting out a ``retry_after``
  or a backoff delays no other chat.
* Sends go through :class:`MessageSender` (``BotApi`` satisfies it) and raise the kinds of
  :mod:`trading.control.telegram_errors`. ``RetryAfter``: that chat waits exactly
  ``retry_after``. A network error, a send past ``send_timeout``, or anything unexpected: the
  chat backs off and the message is sent again later (coalesced with what came meanwhile).
  ``BadRequest``: that chat is given up, logged once. ``Unauthorized``: the token is wrong, so
  every chat is given up, logged once.
* Closing is bounded in real time: :meth:`aclose` (the bus calls it) starts a flush of at most
  ``close_timeout`` seconds and returns before the caller's own deadline; whatever could not be
  sent by then is logged, per chat, with how many events and bus drops it held.
* Secrets are never logged: log lines name the chat and the error's kind, and the text of an
  error is logged only for Telegram's own kinds, whose messages never contain the token.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Protocol

import attrs
import trio

from trading.control.telegram_errors import (
    BadRequest,
    RetryAfter,
    TelegramError,
    Unauthorized,
)
from trading.core.events import (
    Event,
    OrderPartiallyFilled,
    OrderRejected,
    StrategyFailed,
    describe,
)
from trading.core.outbox import ChatOutbox, Message, Pacing
from trading.observers.notifier import is_notable

__all__ = ["ChatStats", "MessageSender", "TelegramNotifier", "is_urgent", "render"]

log = logging.getLogger(__name__)

# aclose returns this long before its caller's deadline, so the bus never has to abandon it; the
# flush goes on in run() until close_timeout.
CLOSE_MARGIN = 0.1


class MessageSender(Protocol):
    """The port the notifier sends through; ``BotApi`` satisfies it. Raises ``RetryAfter``,
    ``BadRequest``, ``Unauthorized`` or ``TelegramNetworkError``."""

    async def send_message(
        self, chat_id: int, text: str, *, thread_id: int | None = None
    ) -> None: ...


@attrs.frozen(slots=True)
class ChatStats:
    """One chat's figures: messages delivered and send attempts, event lines shown, folded and
    bus-dropped events stated in messages, and what is not delivered (yet)."""

    chat_id: int
    messages: int
    attempts: int
    shown: int
    folded: int
    dropped: int
    unsent_events: int
    unsent_dropped: int
    dead: str | None


def is_urgent(event: Event) -> bool:
    """What an operator must act on (failures, pauses and stops, risk, unknown orders, skipped
    bars) is folded only after every fill and rejection was."""
    return is_notable(event) and not isinstance(event, OrderPartiallyFilled | OrderRejected)


def render(event: Event) -> str:
    """The line an operator reads. A failure shows the exception's line (type and message;
    the first line of a multi-line message), the traceback stays in the database."""
    if isinstance(event, StrategyFailed):
        first, *more = event.error.strip().splitlines() or [""]
        error = f"{first} …" if more else first
        then = "gave up" if event.restart_in is None else f"restart in {event.restart_in:g}s"
        who = event.strategy or "runner"
        return f"{who}: failed in {event.phase}: {error} (failure {event.failures}, {then})"
    return describe(event)


class TelegramNotifier:
    """Lossy observer sending notable events to ``chats`` (``thread_id``: a forum topic, used
    for group chats, i.e. negative ids). ``pacing`` holds Telegram's limits; a send taking more
    than ``send_timeout`` seconds counts as a network error; closing flushes for at most
    ``close_timeout`` seconds; each chat holds at most ``max_pending`` lines (the rest are
    folded and counted). All times are real (trio) seconds.
    """

    lossless = False
    buffer = 1_024
    max_batch = 1_024

    def __init__(
        self,
        sender: MessageSender,
        chats: Sequence[int],
        *,
        thread_id: int | None = None,
        name: str = "telegram",
        pacing: Pacing | None = None,
        send_timeout: float = 30.0,
        close_timeout: float = 5.0,
        max_pending: int = 1_000,
    ) -> None:
        if len(set(chats)) != len(chats):
            raise ValueError(f"a chat is listed twice: {list(chats)!r}")
        if send_timeout <= 0 or close_timeout < 0:
            raise ValueError("send_timeout must be > 0 and close_timeout >= 0")
        self.name = name
        self.thread_id = thread_id
        self.send_timeout = send_timeout
        self.close_timeout = close_timeout
        self._sender = sender
        self._outboxes = [
            ChatOutbox(chat, pacing or Pacing(), max_pending=max_pending) for chat in chats
        ]
        self._wake = {chat: trio.Event() for chat in chats}
        self._progress = trio.lowlevel.ParkingLot()
        self._close_deadline = math.inf
        self._closing = trio.Event()
        self._done = trio.Event()
        self._running = False
        self._reported = False
        self._stack: AsyncExitStack | None = None

    # -- the observer ---------------------------------------------------------------------------

    def note_dropped(self, count: int) -> None:
        for outbox in self._outboxes:
            outbox.note_dropped(count)
        self._kick()

    async def handle(self, batch: Sequence[tuple[int, Event]]) -> None:
        """Queue the notable events for every chat; never waits for Telegram."""
        lines = [(render(event), is_urgent(event)) for _, event in batch if is_notable(event)]
        if not lines:
            return
        for outbox in self._outboxes:
            for line, urgent in lines:
                outbox.add(line, urgent=urgent)
        self._kick()

    async def aclose(self) -> None:
        """Start the final flush (at most ``close_timeout`` real seconds) and wait for it, but
        return :data:`CLOSE_MARGIN` before the caller's own deadline: the flush then goes on in
        :meth:`run`, which logs what could not be sent. Cancelling it cancels only the wait."""
        self._begin_close()
        if not self._running:
            self._report_unsent()
            return
        with trio.move_on_at(trio.current_effective_deadline() - CLOSE_MARGIN):
            await self._done.wait()

    # -- owning the senders ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """One sending task per chat, until :meth:`aclose` and the flush (bounded by
        ``close_timeout``) end it. Cancelling it stops sending at once; either way what was
        not sent is logged."""
        if self._running or self._done.is_set():
            raise RuntimeError(f"{self.name}: a notifier runs once")
        self._running = True
        try:
            async with trio.open_nursery() as nursery:
                for outbox in self._outboxes:
                    nursery.start_soon(
                        self._serve_chat, outbox, name=f"telegram chat {outbox.chat_id}"
                    )
                task_status.started()
                await self._closing.wait()
                with trio.move_on_at(self._close_deadline):
                    while not self._flushed():
                        await self._progress.park()
                nursery.cancel_scope.cancel()
        finally:
            self._report_unsent()
            self._done.set()

    async def __aenter__(self) -> TelegramNotifier:
        async with AsyncExitStack() as stack:
            nursery = await stack.enter_async_context(trio.open_nursery())
            await nursery.start(self.run)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Flush (shielded, bounded by ``close_timeout``) even when leaving on an exception or
        a cancellation: the failure that ends a run is the one message worth waiting for."""
        stack, self._stack = self._stack, None
        if stack is None:
            raise RuntimeError(f"{self.name}: __aexit__ without __aenter__")
        self._begin_close()
        with trio.CancelScope(shield=True):
            await self._done.wait()
        # run() has ended, so the nursery is empty: the block's own exception goes on as it
        # was, not wrapped in a group by the nursery.
        await stack.aclose()
        return None

    def statistics(self) -> list[ChatStats]:
        stats = []
        for box in self._outboxes:
            events, dropped = box.unsent()
            stats.append(
                ChatStats(
                    box.chat_id,
                    box.messages,
                    box.attempts,
                    box.shown,
                    box.stated_folded,
                    box.stated_dropped,
                    events,
                    dropped,
                    box.dead,
                )
            )
        return stats

    # -- one chat -------------------------------------------------------------------------------

    async def _serve_chat(self, outbox: ChatOutbox) -> None:
        chat = outbox.chat_id
        while outbox.dead is None:
            if not outbox.has_work:
                self._wake[chat] = wake = trio.Event()
                await wake.wait()
                continue
            due = outbox.due()
            if due > trio.current_time():
                await trio.sleep_until(due)
                continue  # the chat may have died meanwhile; what is pending has grown
            await self._send(outbox, outbox.take(trio.current_time()))
            self._progress.unpark_all()

    async def _send(self, outbox: ChatOutbox, message: Message) -> None:
        chat = outbox.chat_id
        thread = self.thread_id if outbox.is_group else None
        with trio.move_on_after(self.send_timeout) as scope:
            try:
                await self._sender.send_message(chat, message.text, thread_id=thread)
            except RetryAfter as exc:
                outbox.retry_after(message, trio.current_time(), exc.retry_after)
                log.warning(
                    "%s: chat %d: flood control, retry after %gs", self.name, chat, exc.retry_after
                )
                return
            except Unauthorized as exc:
                outbox.refused(message, f"unauthorized: {exc}")
                log.error(
                    "%s: the bot token is refused (%s): no chat gets notifications any more",
                    self.name,
                    exc,
                )
                for other in self._outboxes:
                    other.refused(None, f"unauthorized: {exc}")
                for wake in self._wake.values():
                    wake.set()
                return
            except BadRequest as exc:
                lost = outbox.refused(message, f"refused: {exc}")
                log.error(
                    "%s: chat %d refuses messages (%s): not sending to it any more (%d events "
                    "lost so far)",
                    self.name,
                    chat,
                    exc,
                    lost,
                )
                return
            except TelegramError as exc:  # network errors, and kinds sendMessage should not give
                self._failed(outbox, message, str(exc))
                return
            except Exception as exc:  # the sender's own bug: never let it end the notifications
                # Only the type: a foreign exception's text may hold the URL, and so the token.
                self._failed(outbox, message, f"unexpected {type(exc).__name__}")
                return
            outbox.sent(message)
        if scope.cancelled_caught:
            self._failed(outbox, message, f"no answer within {self.send_timeout:g}s")

    def _failed(self, outbox: ChatOutbox, message: Message, why: str) -> None:
        delay = outbox.failed(message, trio.current_time())
        log.warning(
            "%s: chat %d: send failed (%s); retry in %gs", self.name, outbox.chat_id, why, delay
        )

    # -- closing --------------------------------------------------------------------------------

    def _kick(self) -> None:
        for outbox in self._outboxes:
            if outbox.has_work:
                self._wake[outbox.chat_id].set()
        self._progress.unpark_all()

    def _begin_close(self) -> None:
        if not self._closing.is_set():
            self._close_deadline = trio.current_time() + self.close_timeout
            self._closing.set()
        self._progress.unpark_all()

    def _flushed(self) -> bool:
        """Nothing left that could still go out before the close deadline."""
        for box in self._outboxes:
            if box.in_flight is not None:
                return False
            if box.has_work and box.due() <= self._close_deadline:
                return False
        return True

    def _report_unsent(self) -> None:
        if self._reported:
            return
        self._reported = True
        for box in self._outboxes:
            events, dropped = box.unsent()
            if events or dropped:
                why = f" ({box.dead})" if box.dead else ""
                log.warning(
                    "%s: chat %d: %d notable events and %d bus-dropped events were not sent%s",
                    self.name,
                    box.chat_id,
                    events,
                    dropped,
                    why,
                )
