"""A Runner, the fake Bot API server and the bot, wired as a run wires them, for the bot's tests.

Real sockets on 127.0.0.1 and trio's real clock (an autojumping clock would jump while the bot
waits on a socket); strategy time is a :class:`SteppedClock` that moves only when a test steps
it, so "in the same strategy instant" can be asserted exactly. Every wait is bounded.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

import trading
from tests.conftest import T0, EventLog
from trading.config import TelegramConfig
from trading.control.telegram import TelegramBot
from trading.control.telegram_api import BotApi
from trading.core.events import CommandHandled
from trading.testing import SentMessage, TelegramServer

TOKEN = "123456:RIG-secret-token"
CHAT = 4242  # the operator's private chat
GROUP, MEMBER = -1001234567890123, 77  # an allowed group (ids beyond 32 bits) and its member
BOUND = 10  # seconds any one wait may take before the test fails


class SteppedClock:
    """Strategy time that stands still until :meth:`step_to`; sleeps wake when it passes them."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._moved = trio.Event()

    def now(self) -> float:
        return self._now

    async def sleep_until(self, when: float) -> None:
        while self._now < when:
            await self._moved.wait()

    def step_to(self, when: float) -> None:
        self._now = max(self._now, when)
        self._moved.set()
        self._moved = trio.Event()


@attrs.define
class Quiet(trading.Strategy):
    """Sleeps between 15-minute bars and counts its computes; ``n`` is a free parameter."""

    interval = "15m"
    n: int = 0
    computes: int = attrs.field(default=0, init=False)

    async def next(self, ctx: trading.Context) -> None:
        self.computes += 1


@attrs.define
class Rig:
    server: TelegramServer
    runner: trading.Runner
    clock: SteppedClock
    events: EventLog
    nursery: trio.Nursery
    config: TelegramConfig

    def bot(self, **kw: Any) -> TelegramBot:
        api = BotApi(TOKEN, self.server.url)
        options: dict[str, Any] = {"poll_timeout": 5, "backoff": (0.01, 0.05)}
        return TelegramBot(self.runner, api, self.config, **(options | kw))

    async def start_bot(self, **kw: Any) -> tuple[TelegramBot, trio.CancelScope]:
        """A bot in its own cancel scope (cancel it to stop that bot alone)."""
        bot = self.bot(**kw)
        scope = trio.CancelScope()

        async def run(task_status: trio.TaskStatus[None]) -> None:
            with scope:
                await bot.run(task_status=task_status)

        with trio.fail_after(BOUND):
            await self.nursery.start(run)
        return bot, scope

    async def wait_sent(self, count: int) -> list[SentMessage]:
        with trio.fail_after(BOUND):
            return await self.server.wait_sent(count)

    async def ask(self, text: str, chat: int = CHAT, **kw: Any) -> str:
        """Push a command and return the text of the reply it gets."""
        before = len(self.server.sent)
        self.server.push_message(chat, text, **kw)
        return (await self.wait_sent(before + 1))[before].text

    async def until(self, check: Callable[[], bool]) -> None:
        with trio.fail_after(BOUND):
            while not check():  # noqa: ASYNC110 (it spans runner, bot and server: no one event)
                await trio.sleep(0.005)

    async def until_unbounded(self, check: Callable[[], bool]) -> None:
        """As :meth:`until`, bounded by the caller's own deadline."""
        while not check():  # noqa: ASYNC110 (it spans runner, bot and server: no one event)
            await trio.sleep(0.01)

    def audit(self, source: str = "telegram") -> list[CommandHandled]:
        return [e for e in self.events if isinstance(e, CommandHandled) and e.source == source]

    def state(self, name: str = "sma_cross") -> str:
        return str(self.runner[name].status()["state"])


@asynccontextmanager
async def rig(
    *,
    strategies: tuple[str, ...] = ("sma_cross",),
    now: Callable[[], float] = time.time,
    observers: tuple[Any, ...] = (),
    **config: Any,
) -> AsyncIterator[Rig]:
    server = TelegramServer(TOKEN, now=now)
    clock = SteppedClock(T0)
    events = EventLog()
    settings = {"allowed_chats": (CHAT, GROUP), "allowed_users": (MEMBER,)} | config
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        async with trading.Runner(
            clock=clock, publish=events, observers=observers, stop_timeout=2
        ) as runner:
            for name in strategies:
                await runner.add(Quiet(), name=name)
            test_rig = Rig(server, runner, clock, events, nursery, TelegramConfig(**settings))
            await test_rig.until(lambda: all(s["state"] == "sleeping" for s in runner.status()))
            try:
                yield test_rig
            finally:
                nursery.cancel_scope.cancel()
