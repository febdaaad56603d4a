"""The bot under faults (429, 409, dropped connections, 5xx) and across restarts: it recovers,
and no update is executed twice. Real sockets and real time; every wait bounded."""

from __future__ import annotations

import logging
import time
from collections import Counter

import httpx2
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.control.telegram_rig import CHAT, Rig, rig
from trading.control.telegram import Backoff, TelegramBot
from trading.control.telegram_api import BotApi


def getupdates_times(r: Rig) -> list[float]:
    return [
        t
        for (m, _), t in zip(r.server.calls, r.server.call_times, strict=True)
        if m == "getupdates"
    ]


async def test_429_on_getupdates_waits_exactly_retry_after() -> None:
    async with rig() as r:
        await r.start_bot()
        await r.until(lambda: len(getupdates_times(r)) >= 1)
        r.server.fail_next(1, "429", retry_after=1, methods=("getUpdates",))
        before = len(getupdates_times(r))
        r.server.push_message(CHAT, "/status")  # ends the held poll; the next one gets 429
        reply = (await r.wait_sent(1))[0].text
        assert reply.startswith("strategy")
        times = getupdates_times(r)
        refused_at = times[before]  # the poll that got the 429
        assert times[before + 1] - refused_at >= 1.0


@pytest.mark.parametrize(
    ("kind", "cause"),
    [
        ("409", "another instance polls with this token"),
        ("409-webhook", "a webhook is set for this bot"),
        ("drop", "getUpdates failed"),
        ("502", "getUpdates failed"),
    ],
)
async def test_the_bot_recovers_from_polling_faults(
    kind: str, cause: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="trading.control.telegram")
    async with rig() as r:
        r.server.fail_next(3, kind, methods=("getUpdates",))
        await r.start_bot()
        reply = await r.ask("/pause sma_cross")
        assert reply.startswith("sma_cross: ok: paused")
        lines = [rec.getMessage() for rec in caplog.records]
        assert sum(cause in line for line in lines) == 3, lines
        assert all("RIG-secret" not in line for line in lines)


async def test_a_second_poller_gets_409_and_the_bot_recovers_after_it_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="trading.control.telegram")
    async with rig() as r:
        await r.start_bot()
        _, intruder = await r.start_bot()
        await r.until(lambda: any("another instance" in rec.getMessage() for rec in caplog.records))
        intruder.cancel()
        assert (await r.ask("/wake sma_cross")).startswith("sma_cross: ok")


async def test_failed_replies_are_retried_and_a_slow_send_delays_no_command() -> None:
    async with rig() as r:
        await r.start_bot()
        r.server.fail_next(1, "429", retry_after=1, methods=("sendMessage",))
        r.server.fail_next(1, "drop", methods=("sendMessage",))
        r.server.push_message(CHAT, "/status")
        await r.until(lambda: any(a.command == "status" for a in r.audit()))
        r.server.push_message(CHAT, "/pause sma_cross")
        await r.until(lambda: r.state() == "paused")
        assert r.server.sent == []  # the status reply is still waiting out its 429
        await r.until(lambda: "paused" in "".join(r.server.texts()))
        text = "\n".join(r.server.texts())
        assert text.count("strategy") == 1 and text.count("paused (was sleeping)") == 1


async def test_no_update_is_executed_twice_across_a_restart() -> None:
    async with rig() as r:
        for i in range(10):
            r.server.push_message(CHAT, f"/set sma_cross n={i}")
        _, first = await r.start_bot()
        await r.until(lambda: len(r.audit()) == 10)
        first.cancel()
        r.server.push_message(CHAT, "/set sma_cross n=10")
        await r.start_bot()
        await r.until(lambda: len(r.audit()) == 11)
        await r.ask("/status")
        counts = Counter(a.command for a in r.audit())
        assert all(counts[f"set sma_cross n={i}"] == 1 for i in range(11)), counts


@pytest.mark.parametrize("delay", [0.0, 0.002, 0.005, 0.01, 0.03])
async def test_a_bot_cancelled_anywhere_never_makes_its_successor_repeat(delay: float) -> None:
    """Cancelled at any point, a command it received may be lost (at most once), but is never
    executed again by the next bot; commands that arrive later are executed exactly once."""
    async with rig() as r:
        for i in range(30):
            r.server.push_message(CHAT, f"/set sma_cross n={i}")
        _, first = await r.start_bot()
        await trio.sleep(delay)
        first.cancel()
        await trio.sleep(0.01)
        for i in range(30, 35):
            r.server.push_message(CHAT, f"/set sma_cross n={i}")
        await r.start_bot()
        await r.until(
            lambda: all(
                f"set sma_cross n={i}" in {a.command for a in r.audit()} for i in range(30, 35)
            )
        )
        counts = Counter(a.command for a in r.audit())
        assert max(counts.values()) == 1, counts


async def test_backoff_doubles_to_its_cap_with_jitter(clock: trio.testing.MockClock) -> None:
    jitter = iter([0.0, 1.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    backoff = Backoff(1.0, 60.0, lambda: next(jitter))
    waits = []
    for _ in range(8):
        start = trio.current_time()
        await backoff.wait()
        waits.append(trio.current_time() - start)
    assert waits == [0.5, 2.0, 3.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    backoff.reset()
    start = trio.current_time()
    await backoff.wait()
    assert trio.current_time() - start == 0.5


async def test_a_full_reply_queue_drops_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="trading.control.telegram")
    async with rig() as r:
        bot, _ = await r.start_bot(reply_queue=5)
        r.server.hold_sends()
        for _ in range(20):
            r.server.push_message(CHAT, "/wake sma_cross")
        await r.until(lambda: len(r.audit()) == 20)  # every command ran all the same
        assert 0 < bot.dropped_replies <= 15
        assert any("reply queue full" in rec.getMessage() for rec in caplog.records)
        r.server.release_sends()
        await r.until(
            lambda: sum(len(t.splitlines()) for t in r.server.texts()) == 20 - bot.dropped_replies
        )


async def test_a_reply_failing_every_attempt_is_logged_as_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="trading.control.telegram")
    async with rig() as r:
        await r.start_bot(send_attempts=3)
        r.server.fail_next(3, "502", methods=("sendMessage",))
        r.server.push_message(CHAT, "/pause sma_cross")
        await r.until(lambda: any("lost after 3" in rec.getMessage() for rec in caplog.records))
        assert r.server.sent == [] and r.state() == "paused"
        assert (await r.ask("/resume sma_cross")).startswith("sma_cross: ok: resumed")


async def test_a_server_repeating_updates_never_gets_one_executed_twice() -> None:
    """A broken server that ignores the offset: the bot still runs each update id once."""
    message = {
        "message_id": 1,
        "date": int(time.time()),
        "text": "/wake sma_cross",
        "chat": {"id": CHAT, "type": "private"},
        "from": {"id": CHAT, "is_bot": False},
        "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
    }

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/getMe"):
            return httpx2.Response(200, json={"ok": True, "result": {"id": 1, "username": "b"}})
        if request.url.path.endswith("/getUpdates"):
            result = [{"update_id": 7, "message": message}]
            return httpx2.Response(200, json={"ok": True, "result": result})
        return httpx2.Response(200, json={"ok": True, "result": {}})

    async with rig() as r:
        api = BotApi("1:x", transport=httpx2.MockTransport(handler))
        bot = TelegramBot(r.runner, api, r.config, poll_timeout=0)
        with trio.move_on_after(0.5):
            await bot.run()
        assert [a.command for a in r.audit()] == ["wake sma_cross"]


steps = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(1, 30)),
        # 409 is getUpdates' answer only (another poller, or a webhook): Telegram never
        # answers a sendMessage with it, and a refused reply is lost by design.
        st.sampled_from(
            [
                ("drop", "getUpdates"),
                ("502", "getUpdates"),
                ("409", "getUpdates"),
                ("drop", "sendMessage"),
                ("502", "sendMessage"),
            ]
        ).flatmap(
            lambda fault: st.tuples(
                st.just("fault"), st.just(fault[0]), st.integers(1, 3), st.just(fault[1])
            )
        ),
        st.tuples(st.just("restart")),
        st.tuples(st.just("pause"), st.sampled_from([0.0, 0.001, 0.002, 0.004, 0.008, 0.02])),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=30)
@given(steps)
async def test_interleaved_faults_and_restarts_never_repeat_a_command(
    script: list[tuple[object, ...]],
) -> None:
    """Pushes, faults and restarts in any order: no update is executed twice, and every
    command pushed after the last restart is executed exactly once and answered."""
    async with rig() as r:
        _, scope = await r.start_bot()
        counter = 0
        since_restart: list[str] = []
        send_faults = 0  # a reply is retried 5 times: more faults than that may lose one
        for step in script:
            if step[0] == "push":
                for _ in range(int(str(step[1]))):
                    text = f"set sma_cross n={counter}"
                    counter += 1
                    r.server.push_message(CHAT, "/" + text)
                    since_restart.append(text)
            elif step[0] == "fault":
                r.server.fail_next(int(str(step[2])), str(step[1]), methods=(str(step[3]),))
                send_faults += int(str(step[2])) if step[3] == "sendMessage" else 0
            elif step[0] == "restart":
                scope.cancel()
                _, scope = await r.start_bot()
                since_restart = []
            else:
                await trio.sleep(float(str(step[1])))
        executed = lambda: Counter(a.command for a in r.audit())  # noqa: E731
        await r.until(lambda: all(executed()[c] >= 1 for c in since_restart))
        assert max(executed().values(), default=0) <= 1
        last = since_restart[-1] if since_restart else None
        if last is not None and send_faults < 5:
            value = last.rsplit("=", 1)[1]
            await r.until(lambda: any(value in t for t in r.server.texts()))


async def test_a_server_answering_long_polls_at_once_is_not_hammered() -> None:
    """A Bot API server that returns [] at once instead of holding the poll (Telegram holds it
    for `timeout` seconds): the bot polls at most about once a second, not in a busy loop."""
    polls: list[float] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/getMe"):
            return httpx2.Response(200, json={"ok": True, "result": {"id": 1, "username": "b"}})
        polls.append(time.monotonic())
        return httpx2.Response(200, json={"ok": True, "result": []})

    async with rig() as r:
        api = BotApi("1:x", transport=httpx2.MockTransport(handler))
        bot = TelegramBot(r.runner, api, r.config, poll_timeout=20)
        with trio.move_on_after(2.5):
            await bot.run()
    assert 2 <= len(polls) <= 5, len(polls)  # the backlog's short poll, then ~1 per second
