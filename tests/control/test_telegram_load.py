"""10,000 commands from Telegram and ``ctl`` at once across 100 strategies: every one answered,
no task left behind, and the bar schedule kept. Real sockets, real time, bounded waits."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import trio

from tests.control.telegram_rig import Rig, rig
from trading.control.local import serve_control
from trading.control.telegram_api import BotApi

STRATEGIES = tuple(f"s{i:03d}" for i in range(100))
CHATS = (5001, 5002, 5003, 5004, 5005)
PER_SOURCE = 5000
CONNECTIONS = 10
LOAD_BOUND = 60  # seconds for the whole load; it takes a few on a quiet machine
REPLY_LINE = re.compile(r"^s\d{3}: (ok|error): ", re.MULTILINE)


def command(i: int) -> str:
    name = STRATEGIES[i % len(STRATEGIES)]
    verb = ("wake", "pause", "set", "resume", "status")[i // len(STRATEGIES) % 5]
    return f"set {name} n={i}" if verb == "set" else f"{verb} {name}"


def tasks_under(task: trio.lowlevel.Task) -> list[str]:
    """The names of ``task`` and every task below it."""
    names = [task.name]
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            names += tasks_under(child)
    return names


async def ctl_client(path: str, lines: list[str], answers: list[dict[str, object]]) -> None:
    stream = await trio.open_unix_socket(path)
    async with stream:
        payload = "".join(json.dumps({"id": c, "command": c}) + "\n" for c in lines)
        await stream.send_all(payload.encode())
        buffer = b""
        while buffer.count(b"\n") < len(lines):
            chunk = await stream.receive_some(65536)
            assert chunk, "the control socket hung up"
            buffer += chunk
    answers += [json.loads(line) for line in buffer.splitlines()]


async def test_ten_thousand_commands_from_telegram_and_ctl(tmp_path: Path) -> None:
    async with rig(strategies=STRATEGIES, allowed_chats=CHATS) as r:
        root = trio.lowlevel.current_root_task()
        before = tasks_under(root)
        bot, bot_scope = await r.start_bot()
        path = str(tmp_path / "ctl.sock")
        ctl_scope = trio.CancelScope()

        async def serve(task_status: trio.TaskStatus[None]) -> None:
            with ctl_scope:
                await serve_control(r.runner, path, task_status=task_status)

        await r.nursery.start(serve)
        commands = [command(i) for i in range(PER_SOURCE)]
        for i, text in enumerate(commands):
            r.server.push_message(CHATS[i % len(CHATS)], "/" + text)
        answers: list[dict[str, object]] = []
        with trio.fail_after(LOAD_BOUND):
            async with trio.open_nursery() as clients:
                share = PER_SOURCE // CONNECTIONS
                for k in range(CONNECTIONS):
                    lines = commands[k * share : (k + 1) * share]
                    clients.start_soon(ctl_client, path, lines, answers)
            await r.until_unbounded(lambda: len(r.audit()) == PER_SOURCE)
            await r.until_unbounded(
                lambda: len(REPLY_LINE.findall("\n".join(r.server.texts()))) == PER_SOURCE
            )
        # Every command answered, once, in each source.
        assert sorted(a["id"] for a in answers) == sorted(commands)  # type: ignore[type-var]
        assert all(len(a["replies"]) == 1 for a in answers)  # type: ignore[arg-type]
        assert Counter(a.command for a in r.audit()) == Counter(commands)
        assert len(r.audit("ctl")) == PER_SOURCE
        for chat in CHATS:
            replies = REPLY_LINE.findall("\n".join(r.server.texts(chat)))
            assert len(replies) == PER_SOURCE // len(CHATS)
        assert all(len(m.text) <= 4096 for m in r.server.sent)
        assert bot.dropped_replies == 0
        # The schedule kept: resumed, every strategy computes at the next bar close.
        await r.runner.send("resume all", source="test")
        computes = {name: r.runner[name].computes for name in STRATEGIES}
        r.clock.step_to(r.clock.now() + 900)
        await r.until(lambda: all(r.runner[n].computes == computes[n] + 1 for n in STRATEGIES))
        # No task left behind once the bot and the control socket are cancelled.
        bot_scope.cancel()
        ctl_scope.cancel()
        assert isinstance(bot.api, BotApi)
        await bot.api.aclose()  # the caller owns the client (and the fake's side of its socket)
        try:
            await r.until(lambda: Counter(tasks_under(root)) == Counter(before))
        except trio.TooSlowError:
            raise AssertionError(Counter(tasks_under(root)) - Counter(before)) from None
        assert isinstance(r, Rig)
