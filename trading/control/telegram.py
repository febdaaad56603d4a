"""The Telegram bot: operator commands from chats over Bot API long polling.

The rules this module keeps:

* Start it with ``await nursery.start(bot.run)``: ``started`` comes after ``getMe`` answered
  (a wrong token raises :class:`~trading.control.telegram_errors.Unauthorized` out of
  ``start``; an API that does not answer within :data:`START_WAIT` is logged and retried in
  the background, so a run never waits long for Telegram). After ``started`` nothing raises
  out of ``run``: every error is logged, and cancelling ``run`` ends it and every task it
  owns at once.
* At most once: an update is executed only after the next ``getUpdates`` (its ``offset``
  above it) returned, i.e. after Telegram confirmed it; a new batch is confirmed by an
  immediate short poll. Every update — used, refused, malformed — is confirmed the same way,
  so a restart (a second bot on the same token) never executes one twice; an update id at or
  below one already seen is never executed again.
* Only listed chats command (in groups the sender too, and the configured topic): anything
  else gets no reply, one WARNING line and a ``CommandHandled`` audit row ``refused: ...``.
  ``/whoami`` answers any chat with only its ids. At start the backlog (the updates waiting,
  read by short polls until one returns less than a full batch) is aged: a command older
  than ``config.max_command_age`` seconds (``message.date`` against wall time) is answered
  "expired: not executed" and not run. Later commands are not aged (a clock skew between
  the host and Telegram can then refuse nothing).
* Commands from one chat are executed in arrival order (one lane per allowed chat, a bounded
  queue each: a full lane holds back polling, nothing is dropped). Runner commands go through
  ``runner.send(text, source="telegram")``; the bot's own views are audited by the bot.
* Replies leave through one sender task and a bounded queue (:data:`REPLY_QUEUE`; past it a
  reply is dropped and counted), so a slow ``sendMessage`` never delays a command. A backlog
  of replies for one chat is joined into one message; every message is split at 4,096 UTF-16
  units. A failed send is retried (429: after exactly ``retry_after``; network: backoff) up
  to ``send_attempts`` times, then logged as lost.
* Polling errors: network -> backoff with jitter (``backoff`` seconds doubling to its cap,
  real time) and a WARNING; 429 -> wait exactly ``retry_after``; 409 -> WARNING naming the
  cause (another instance, or a webhook) and backoff; 401 -> ERROR and polling stops (the
  run goes on).
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from trading.config import TelegramConfig
from trading.control.status_table import render_text, status_rows
from trading.control.telegram_api import BotApi
from trading.control.telegram_errors import (
    BadRequest,
    Conflict,
    RetryAfter,
    TelegramError,
    TelegramNetworkError,
    Unauthorized,
)
from trading.control.telegram_updates import Incoming, parse_update, refusal, split_text
from trading.control.telegram_views import BOT_VERBS, view, whoami
from trading.core.commands import CommandResult
from trading.core.events import CommandHandled
from trading.runtime.delivery import clip
from trading.runtime.runner import Runner

__all__ = ["LANE_QUEUE", "REPLY_QUEUE", "BotApiLike", "TelegramBot", "serve_telegram"]

log = logging.getLogger(__name__)

#: Seconds at least between two long polls that came back empty (see ``_poll``).
EMPTY_POLL_GAP = 1.0

#: A queued reply: chat, forum topic, text, and whether it is a table (sent monospace).
Reply = tuple[int, int | None, str, bool]

REPLY_QUEUE = 1000  # replies waiting to be sent; past it a reply is dropped (and counted)
LANE_QUEUE = 100  # commands waiting in one chat's lane; past it polling waits
START_WAIT = 10.0  # seconds start-up waits for getMe before going on without it
COALESCE_AFTER = 3  # more replies than this waiting for one chat go as one message
POLL_LIMIT = 100  # getUpdates' default limit: a shorter batch means the queue was emptied
_LOCAL_VERBS = frozenset({"help", "start", *BOT_VERBS})


class BotApiLike(Protocol):
    """What the bot needs of :class:`trading.control.telegram_api.BotApi`."""

    async def get_me(self) -> dict[str, Any]: ...

    async def get_updates(self, offset: int | None, timeout: float) -> list[Any]: ...  # noqa: ASYNC109

    async def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        thread_id: int | None = None,
        monospace: bool = False,
    ) -> None: ...


class Backoff:
    """``initial`` seconds doubling to ``cap``, each wait jittered into [d/2, d]."""

    def __init__(self, initial: float, cap: float, rng: Callable[[], float]) -> None:
        self.initial, self.cap, self.rng = initial, cap, rng
        self.delay = initial

    def reset(self) -> None:
        self.delay = self.initial

    async def wait(self) -> None:
        """Sleep one step (real time) and double the next; cancelling it only cuts it short."""
        delay = self.delay * (0.5 + 0.5 * self.rng())
        self.delay = min(self.cap, self.delay * 2)
        await trio.sleep(delay)


class TelegramBot:
    """Commands a :class:`Runner` from Telegram chats; see the module docstring.

    ``poll_timeout`` is getUpdates' long-poll wait; ``backoff`` (initial, cap) the network-error
    backoff; ``now`` the wall clock that ages commands; ``send_attempts`` bounds the tries per
    reply; ``reply_queue`` how many replies may wait. ``dropped_replies`` counts replies the
    full queue dropped.
    """

    def __init__(
        self,
        runner: Runner,
        api: BotApiLike,
        config: TelegramConfig,
        *,
        poll_timeout: float = 25.0,
        backoff: tuple[float, float] = (1.0, 60.0),
        now: Callable[[], float] = time.time,
        send_attempts: int = 5,
        rng: Callable[[], float] = random.random,
        reply_queue: int = REPLY_QUEUE,
    ) -> None:
        self.runner = runner
        self.api = api
        self.config = config
        self.poll_timeout = poll_timeout
        self.now = now
        self.send_attempts = send_attempts
        self._backoff = (backoff[0], backoff[1], rng)
        self.username: str | None = None
        self.last_update_id: int | None = None
        self.dropped_replies = 0
        self._replies_in, self._replies_out = trio.open_memory_channel[Reply](reply_queue)
        self._lanes: dict[int, trio.MemorySendChannel[Incoming]] = {}
        self._nursery: trio.Nursery | None = None

    # -- lifetime -------------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[TelegramBot] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Poll and answer until cancelled (or the token is refused while running).

        Raises only before ``started``: Unauthorized or BadRequest from ``getMe``. Cancelling it
        ends polling, the command lanes and the reply sender at once; a command a lane was
        running gets no reply, and replies still queued are dropped."""
        with trio.move_on_after(START_WAIT) as waited:
            try:
                await self._who_am_i()
            except TelegramNetworkError as exc:
                log.warning("telegram: the Bot API did not answer getMe (%s); retrying", exc)
        if waited.cancelled_caught:
            log.warning("telegram: no answer to getMe within %g s; retrying", START_WAIT)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._send_replies)
                task_status.started(self)
                await self._poll()
                nursery.cancel_scope.cancel(reason="telegram: polling ended")
        except Exception:
            log.exception("trio-trade bug: the Telegram bot failed; the run goes on")

    async def _who_am_i(self) -> None:
        me = await self.api.get_me()
        username = me.get("username")
        self.username = username if isinstance(username, str) else None
        log.info("telegram: polling as @%s", self.username)

    # -- polling --------------------------------------------------------------------------------

    async def _poll(self) -> None:
        backoff = Backoff(*self._backoff)
        # Received, not confirmed yet: executed after the next poll. The flag says whether the
        # update was waiting when the bot started (the backlog, aged against max_command_age).
        pending: list[tuple[Any, bool]] = []
        backlog = True  # short polls until the backlog is read
        offset: int | None = None
        while True:
            # A transport or server that answers without waiting must not starve the run.
            await trio.lowlevel.checkpoint()
            try:
                if self.username is None:
                    await self._who_am_i()
                timeout = 0 if pending or backlog else self.poll_timeout
                asked = trio.current_time()
                batch = await self.api.get_updates(offset, timeout)
            except RetryAfter as exc:
                log.warning("telegram: getUpdates flood control; waiting %s s", exc.retry_after)
                await trio.sleep(exc.retry_after)
                continue
            except Conflict as exc:
                cause = (
                    "a webhook is set for this bot (deleteWebhook removes it)"
                    if "webhook" in str(exc).lower()
                    else "another instance polls with this token"
                )
                log.warning("telegram: getUpdates conflict: %s; backing off (%s)", cause, exc)
                await backoff.wait()
                continue
            except Unauthorized as exc:
                log.error("telegram: the token was refused (%s); Telegram control stops", exc)
                return
            except (TelegramNetworkError, BadRequest) as exc:
                log.warning("telegram: getUpdates failed (%s); backing off", exc)
                await backoff.wait()
                continue
            backoff.reset()
            if not batch and timeout > 0:
                # A server that answers a long poll at once (not Telegram, which holds it) must
                # not make this a busy loop: at most one empty long poll per EMPTY_POLL_GAP.
                await trio.sleep_until(asked + min(timeout, EMPTY_POLL_GAP))
            for update, old in pending:  # confirmed by the poll that just answered
                await self._dispatch(update, aged=old)
            fresh = self._fresh(batch)
            pending = [(update, backlog) for update in fresh]
            if fresh:
                offset = max(u["update_id"] for u in fresh) + 1
            if len(batch) < POLL_LIMIT:
                backlog = False

    def _fresh(self, batch: list[Any]) -> list[Any]:
        """The updates not seen before, in order; malformed ones without an id are skipped."""
        fresh = []
        for update in batch:
            uid = update.get("update_id") if isinstance(update, dict) else None
            if not isinstance(uid, int) or isinstance(uid, bool):
                log.debug("telegram: skipped an update without an integer update_id")
                continue
            if self.last_update_id is not None and uid <= self.last_update_id:
                continue  # seen before: never executed twice
            self.last_update_id = uid
            fresh.append(update)
        return fresh

    async def _dispatch(self, update: Any, *, aged: bool) -> None:
        item = parse_update(update, self.username)
        if not isinstance(item, Incoming):
            log.debug("telegram: skipped update %s: %s", item.update_id, item.reason)
            return
        if item.verb == "whoami":
            self._reply(item, whoami(item))
            self._audit(item, True, "whoami")
            return
        cfg = self.config
        reason = refusal(item, cfg.allowed_chats, cfg.allowed_users, cfg.topic)
        if reason is not None:
            log.warning(
                "telegram: refused /%s from chat %s user %s: %s",
                item.verb[:32],
                item.chat_id,
                item.user_id,
                reason,
            )
            self._audit(item, False, f"refused: {reason}")
            return
        age = self.now() - item.date
        if aged and age > cfg.max_command_age:
            text = f"expired: not executed ({age:.0f} s old, limit {cfg.max_command_age:g} s)"
            self._reply(item, f"/{item.command[:60]}: {text}")
            self._audit(item, False, text)
            return
        await self._lane(item.chat_id).send(item)

    def _lane(self, chat_id: int) -> trio.MemorySendChannel[Incoming]:
        lane = self._lanes.get(chat_id)
        if lane is None:
            assert self._nursery is not None
            lane, receive = trio.open_memory_channel[Incoming](LANE_QUEUE)
            self._lanes[chat_id] = lane
            self._nursery.start_soon(self._run_lane, receive, name=f"telegram-chat:{chat_id}")
        return lane

    async def _run_lane(self, commands: trio.MemoryReceiveChannel[Incoming]) -> None:
        async for item in commands:
            try:
                await self._execute(item)
            except Exception:
                log.exception("trio-trade bug: telegram command %r failed", clip(item.command))

    async def _execute(self, item: Incoming) -> None:
        """Run one allowed command and queue its reply."""
        if item.verb == "status" and not item.args:
            text = render_text(status_rows(self.runner))
            self._reply(item, text, monospace=True)
            self._audit(item, True, "status table")
        elif item.verb in ("help", "start") or (item.verb in _LOCAL_VERBS and not item.args):
            # Tables and reports keep their columns (monospace); help is prose.
            monospace = item.verb not in ("help", "start")
            self._reply(item, view(item.verb, self.runner), monospace=monospace)
            self._audit(item, True, item.verb)
        else:
            results = await self.runner.send(item.command, source="telegram")
            self._reply(item, format_results(results))

    # -- audit and replies ----------------------------------------------------------------------

    def _audit(self, item: Incoming, ok: bool, message: str) -> None:
        self.runner.publish(
            CommandHandled(
                time=self.runner.clock.now(),
                strategy="",
                command=clip(item.command),
                source="telegram",
                ok=ok,
                message=message,
            )
        )

    def _reply(self, item: Incoming, text: str, *, monospace: bool = False) -> None:
        thread = item.thread_id if item.topic_message or self.config.topic is not None else None
        try:
            self._replies_in.send_nowait((item.chat_id, thread, text or "(empty)", monospace))
        except trio.WouldBlock:
            self.dropped_replies += 1
            log.warning(
                "telegram: reply queue full; dropped a reply to chat %s (%d dropped so far)",
                item.chat_id,
                self.dropped_replies,
            )

    async def _send_replies(self) -> None:
        """Send queued replies in order, one message each; when more than
        :data:`COALESCE_AFTER` wait for the same chat they go as one message (split at
        Telegram's limit), which keeps a burst within Telegram's per-chat rate. Cancelling it
        drops what was not sent."""
        async for first in self._replies_out:
            batch = [first]
            while len(batch) < 100:
                try:
                    batch.append(self._replies_out.receive_nowait())
                except trio.WouldBlock:
                    break
            grouped: dict[tuple[int, int | None], list[tuple[str, bool]]] = {}
            for chat, thread, text, monospace in batch:
                grouped.setdefault((chat, thread), []).append((text, monospace))
            for (chat, thread), items in grouped.items():
                if len(items) > COALESCE_AFTER:  # one message: monospace only if all were
                    joined = "\n".join(text for text, _ in items)
                    items = [(joined, all(mono for _, mono in items))]
                for message, monospace in items:
                    for part in split_text(message):
                        await self._send_one(chat, thread, part, monospace)

    async def _send_one(
        self, chat: int, thread: int | None, text: str, monospace: bool = False
    ) -> None:
        """Send one message, retrying a 429 (after exactly ``retry_after``) or a network error
        (backoff), at most ``send_attempts`` tries in all. Cancelling it abandons the message."""
        wait: Callable[[], Awaitable[None]] = trio.lowlevel.checkpoint
        backoff = Backoff(*self._backoff)
        for attempt in range(1, self.send_attempts + 1):
            if attempt > 1:
                await wait()
            try:
                await self.api.send_message(chat, text, thread_id=thread, monospace=monospace)
                return
            except RetryAfter as exc:
                log.warning("telegram: sendMessage flood control; waiting %s s", exc.retry_after)
                wait = functools.partial(trio.sleep, exc.retry_after)
            except TelegramNetworkError as exc:
                log.warning("telegram: sendMessage failed (%s), attempt %d", exc, attempt)
                wait = backoff.wait
            except TelegramError as exc:  # BadRequest, Unauthorized, Conflict: will not succeed
                log.warning("telegram: reply to chat %s refused: %s", chat, exc)
                return
        log.warning("telegram: reply to chat %s lost after %d attempts", chat, self.send_attempts)


def format_results(results: list[CommandResult]) -> str:
    """One line per strategy reached: ``sma_cross: ok: paused``."""
    return "\n".join(str(result) for result in results) or "no reply"


async def serve_telegram(
    runner: Runner,
    config: TelegramConfig,
    *,
    task_status: trio.TaskStatus[TelegramBot | None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The run's Telegram control, for the composition root:
    ``await nursery.start(serve_telegram, runner, config.telegram)``.

    No token: nothing runs (``started(None)``). A token the Bot API refuses: one ERROR line and
    ``started(None)``; the run goes on without Telegram. Otherwise ``started(bot)`` once
    ``getMe`` answered, and the bot runs until cancelled; the client is closed when it ends.
    With no ``allowed_chats`` only ``/whoami`` answers (how an operator finds the ids to list).
    """
    if not config.token:
        task_status.started(None)
        return
    async with BotApi(config.token, config.api_base) as api:
        bot = TelegramBot(runner, api, config)
        if not config.allowed_chats:
            log.warning("telegram: [telegram] allowed_chats is empty: only /whoami answers")
        try:
            await bot.run(task_status=task_status)
        except (Unauthorized, BadRequest) as exc:
            log.error("telegram: the Bot API refused the token (%s); running without Telegram", exc)
            task_status.started(None)
