"""The Telegram bot end to end: the fake Bot API server on 127.0.0.1, a real Runner, real
sockets and real trio time; strategy time stands still unless a test steps it."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import attrs
import httpx2
import pytest
import trio

from tests.conftest import T0
from tests.control.telegram_rig import BOUND, CHAT, GROUP, MEMBER, TOKEN, rig
from trading.control.status_table import render_text, status_rows
from trading.control.telegram import TelegramBot, serve_telegram
from trading.control.telegram_api import BotApi
from trading.control.telegram_errors import Unauthorized
from trading.core.events import StrategyStateChanged
from trading.observers.queries import read_commands
from trading.observers.recorder import Recorder


async def test_pause_lands_in_the_same_strategy_instant_and_is_answered() -> None:
    async with rig() as r:
        await r.start_bot()
        instant = r.clock.now()
        assert r.state() == "sleeping"
        reply = await r.ask("/pause sma_cross")
        assert reply == "sma_cross: ok: paused (was sleeping)"
        assert r.state() == "paused" and r.clock.now() == instant
        change = [e for e in r.events.of(StrategyStateChanged) if e.new == "paused"]
        assert [e.time for e in change] == [instant]
        assert [(a.command, a.source, a.ok) for a in r.audit()] == [
            ("pause sma_cross", "telegram", True)
        ]
        resumed = await r.ask("/resume@trio_trade_bot sma_cross")
        assert resumed.startswith("sma_cross: ok: resumed")
        assert r.state() == "sleeping"


async def test_status_help_and_the_bots_own_views() -> None:
    async with rig(strategies=("sma_cross", "other")) as r:
        await r.start_bot()
        assert await r.ask("/status") == render_text(status_rows(r.runner))
        detail = await r.ask("/status other")
        assert detail.startswith("other: ok:")
        help_text = await r.ask("/help")
        assert "/pause NAME" in help_text and "/whoami" in help_text
        assert await r.ask("/start") == help_text
        health = await r.ask("/health")
        assert health.splitlines()[0] == "alive"  # the same report as `ctl health`
        assert health.splitlines()[1].startswith("sma_cross: ok (sleeping), last bar")
        assert await r.ask("/positions") == "no exchange: no positions"
        assert await r.ask("/orders") == "no exchange: no orders"
        assert await r.ask("/pnl") == "no exchange: no PnL"
        verbs = [a.message for a in r.audit() if a.command in ("status", "help", "health")]
        assert verbs == ["status table", "help", "health"]
        # Tables keep their columns on a phone: one `pre` entity over the whole text (UTF-16
        # units); help is prose and command replies are plain.
        by_text = {m.text: m.entities for m in r.server.sent}
        table = render_text(status_rows(r.runner))
        assert by_text[table] == ({"type": "pre", "offset": 0, "length": len(table)},)
        assert by_text[health][0]["type"] == "pre" and by_text[help_text] == ()
        assert by_text[detail] == ()


async def test_strangers_are_refused_silently_and_audited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="trading.control.telegram")
    async with rig(topic=None) as r:
        await r.start_bot()
        r.server.push_message(999, "/stop sma_cross")  # a chat not listed
        r.server.push_message(GROUP, "/stop sma_cross", user_id=555)  # a member not listed
        r.server.push_message(GROUP, "/stop sma_cross", chat_type="group")  # no allowed user
        # Then an allowed command: its reply is the only message sent.
        paused = await r.ask("/pause sma_cross", GROUP, user_id=MEMBER)
        assert paused == "sma_cross: ok: paused (was sleeping)"
        assert [m.chat_id for m in r.server.sent] == [GROUP]
        assert r.state() == "paused"
        refused = [a for a in r.audit() if not a.ok]
        assert [a.message for a in refused] == [
            "refused: chat 999 not allowed",
            f"refused: user 555 not allowed in chat {GROUP}",
            f"refused: user 1000 not allowed in chat {GROUP}",
        ]
        assert all(a.command == "stop sma_cross" for a in refused)
        warnings = [rec for rec in caplog.records if "refused" in rec.getMessage()]
        assert len(warnings) == 3 and all(rec.levelno == logging.WARNING for rec in warnings)


async def test_a_configured_topic_confines_commands_and_replies() -> None:
    async with rig(topic=12) as r:
        await r.start_bot()
        r.server.push_message(GROUP, "/pause sma_cross", user_id=MEMBER)  # General, no topic
        r.server.push_message(GROUP, "/pause sma_cross", user_id=MEMBER, thread_id=13)
        woken = await r.ask("/wake sma_cross", GROUP, user_id=MEMBER, thread_id=12)
        assert woken.startswith("sma_cross: ok: ")
        assert [(m.chat_id, m.thread_id) for m in r.server.sent] == [(GROUP, 12)]
        assert r.state() != "paused"
        assert [a.message for a in r.audit() if not a.ok] == [
            "refused: topic None is not the configured topic",
            "refused: topic 13 is not the configured topic",
        ]


async def test_whoami_answers_any_chat_with_its_ids_only() -> None:
    async with rig() as r:
        await r.start_bot()
        reply = await r.ask("/whoami", -100999, user_id=31, thread_id=5)
        assert reply == "chat id: -100999\ntopic id: 5\nuser id: 31"
        assert await r.ask("/whoami", 8) == "chat id: 8\ntopic id: -\nuser id: 8"


async def test_malformed_updates_are_skipped_and_acknowledged() -> None:
    async with rig() as r:
        bot, _ = await r.start_bot()
        message = {"chat": {"id": CHAT, "type": "private"}, "date": int(time.time())}
        junk = [
            {"message": {**message, "text": "/stop sma_cross"}, "update_id": "x"},
            {"message": {**message, "photo": [{"file_id": "f"}]}},
            {"message": {**message, "text": "/stop sma_cross", "entities": "no"}},
            {"message": {"chat": {"id": CHAT}, "text": "/stop sma_cross"}},
            {"edited_message": {**message, "text": "/stop sma_cross"}},
            {"callback_query": {"id": "1", "data": "/stop"}},
            {"message": {**message, "text": "/stop " + "x" * 10_000}},
            {"message": None},
        ]
        for update in junk:
            r.server.push_update(update)
        r.server.push_message(CHAT, "/stop@another_bot sma_cross")
        r.server.push_message(CHAT, "stop sma_cross")  # not a command: no entity
        assert (await r.ask("/wake sma_cross")).startswith("sma_cross: ok: ")
        assert r.state() != "stopped" and len(r.server.sent) == 1
        await r.until(lambda: len(r.server.updates) == 0)  # every one acknowledged
        offsets = [p["offset"] for m, p in r.server.calls if m == "getupdates" and "offset" in p]
        assert bot.last_update_id == max(offsets) - 1


async def test_unknown_commands_and_bad_arguments_get_the_runners_error() -> None:
    async with rig() as r:
        await r.start_bot()
        assert (await r.ask("/frobnicate sma_cross")).startswith("error: unknown command")
        assert (await r.ask("/pause nosuch")).startswith("error: unknown strategy 'nosuch'")
        assert (await r.ask("/set sma_cross n=abc")).startswith("sma_cross: error:")
        assert (await r.ask("/set sma_cross")).startswith("error: set: nothing to set")
        assert r.state() == "sleeping" and r.runner["sma_cross"].strategy.n == 0
        assert [a.ok for a in r.audit()] == [False] * 4


async def test_expired_commands_are_answered_not_executed() -> None:
    async with rig(max_command_age=60) as r:
        wall = 1_800_000_000.0
        r.server.push_message(CHAT, "/pause sma_cross", date=wall - 3600)
        r.server.push_message(CHAT, "/wake sma_cross", date=wall - 59)
        await r.start_bot(now=lambda: wall)
        replies = "\n".join(m.text for m in await r.wait_sent(1))
        await r.until(lambda: len(r.audit()) == 2)
        assert replies.startswith("/pause sma_cross: expired: not executed (3600 s old")
        assert r.state() != "paused"
        expired, woken = r.audit()
        assert (expired.ok, expired.message.split(" (")[0]) == (False, "expired: not executed")
        assert (woken.command, woken.ok) == ("wake sma_cross", True)
        # Only the backlog found at start is aged: later commands run whatever their date.
        await r.wait_sent(2)
        later = await r.ask("/pause sma_cross", date=wall - 3600)
        assert later.startswith("sma_cross: ok: paused")


async def test_a_wrong_token_fails_the_start() -> None:
    async with rig() as r:
        r.server.token = "123456:other"
        with pytest.raises(Unauthorized), trio.fail_after(BOUND):
            await r.nursery.start(r.bot().run)


async def test_a_token_revoked_while_running_stops_polling_not_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="trading.control.telegram")
    async with rig() as r:
        done = trio.Event()

        async def run(task_status: trio.TaskStatus[None]) -> None:
            await r.bot().run(task_status=task_status)
            done.set()

        await r.nursery.start(run)
        r.server.token = "123456:revoked"
        r.server.push_message(CHAT, "/status")  # ends the held poll; the next one gets 401
        with trio.fail_after(BOUND):
            await done.wait()
        assert any("token was refused" in rec.getMessage() for rec in caplog.records)
        assert r.state() == "sleeping"
        assert await r.runner.send("pause sma_cross", source="test")


async def test_cancelling_run_ends_it_and_its_tasks_at_once() -> None:
    async with rig() as r:
        before = len(r.nursery.child_tasks)
        _, scope = await r.start_bot()
        await r.ask("/status")
        scope.cancel()
        await r.until(lambda: len(r.nursery.child_tasks) == before)
        assert r.clock.now() == T0


async def test_an_unreachable_api_at_start_does_not_hold_the_run_back() -> None:
    async with rig() as r:
        r.server.fail_next(2, "drop", methods=("getMe",))
        bot, _ = await r.start_bot()
        assert bot.username is None  # started without it; getMe is retried in the background
        reply = await r.ask("/pause@trio_trade_bot sma_cross")
        assert reply.startswith("sma_cross: ok: paused") and bot.username == "trio_trade_bot"


async def test_a_bug_in_the_bot_never_raises_into_the_runners_nursery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/getMe"):
            me = {"id": 1, "is_bot": True, "username": "b"}
            return httpx2.Response(200, json={"ok": True, "result": me})
        raise RuntimeError("a bug below the bot")

    async with rig() as r:
        api = BotApi("1:x", transport=httpx2.MockTransport(handler))
        bot = TelegramBot(r.runner, api, r.config)
        with trio.fail_after(BOUND):
            async with trio.open_nursery() as nursery:
                await nursery.start(bot.run)
        assert any("the Telegram bot failed" in rec.getMessage() for rec in caplog.records)
        assert r.state() == "sleeping"


async def test_serve_telegram_as_the_run_starts_it(caplog: pytest.LogCaptureFixture) -> None:
    async with rig() as r:
        config = attrs.evolve(r.config, token=TOKEN, api_base=r.server.url)
        with trio.fail_after(BOUND):
            assert await r.nursery.start(serve_telegram, r.runner, r.config) is None  # no token
            wrong = attrs.evolve(config, token="123456:wrong")
            assert await r.nursery.start(serve_telegram, r.runner, wrong) is None
        refused = [rec for rec in caplog.records if "running without Telegram" in rec.getMessage()]
        assert len(refused) == 1 and refused[0].levelno == logging.ERROR
        assert "wrong" not in refused[0].getMessage()
        bot = await r.nursery.start(serve_telegram, r.runner, config)
        assert isinstance(bot, TelegramBot)
        assert (await r.ask("/pause sma_cross")).startswith("sma_cross: ok: paused")


async def test_a_backlog_of_replies_goes_as_few_messages_split_at_line_ends() -> None:
    async with rig() as r:
        await r.start_bot()
        r.server.hold_sends()  # a slow API: no command waits for it
        for _ in range(300):
            r.server.push_message(CHAT, "/status sma_cross")
        await r.until(lambda: len(r.audit()) == 300)
        assert r.server.sent == []
        r.server.release_sends()
        await r.until(lambda: sum(len(m.splitlines()) for m in r.server.texts()) == 300)
        sent = r.server.texts()
        lines = [line for m in sent for line in m.splitlines()]
        assert len(lines) == 300 and all(line.startswith("sma_cross: ok: ") for line in lines)
        assert 4 <= len(sent) < 50  # joined, then split at Telegram's limit
        assert all(len(m) <= 4096 for m in sent)
        assert all(m.endswith("\n") for m in sent if len(m) > 4096 - 120)


async def test_a_few_replies_go_one_message_each() -> None:
    async with rig() as r:
        await r.start_bot()
        r.server.push_message(CHAT, "/pause sma_cross")
        r.server.push_message(CHAT, "/resume sma_cross")
        sent = await r.wait_sent(2)
        assert [m.text.split(":")[2].split()[0].strip(";") for m in sent] == ["paused", "resumed"]


async def test_refusals_reach_the_database_audit(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    async with rig(observers=(Recorder(path),)) as r:
        await r.start_bot()
        r.server.push_message(999, "/stop sma_cross")
        await r.ask("/pause sma_cross")
        await r.runner.flush()
    rows = [(c["source"], c["command"], c["ok"], c["message"]) for c in read_commands(path)]
    assert ("telegram", "stop sma_cross", 0, "refused: chat 999 not allowed") in rows
    assert ("telegram", "pause sma_cross", 1, "paused (was sleeping)") in rows
