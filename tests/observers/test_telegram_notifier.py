"""TelegramNotifier: Telegram's limits kept under a burst, bursts folded with exact counts, flood
control and network errors survived, refusals logged once, trading and shutdown never held up.

The sender is a port double written here (the ``MessageSender`` protocol, not one of our
classes): it records every attempt on trio's clock and raises or hangs when a test says so.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections import deque
from collections.abc import Iterable
from decimal import Decimal

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import trading
from tests.conftest import T0, all_tasks, sim
from trading.control.telegram_errors import (
    BadRequest,
    RetryAfter,
    TelegramNetworkError,
    Unauthorized,
)
from trading.core.events import (
    Event,
    OrderFilled,
    OrderSubmitted,
    StrategyFailed,
    StrategyStateChanged,
)
from trading.core.outbox import Pacing, utf16_len
from trading.observers.telegram_notifier import TelegramNotifier, render
from trading.runtime.bus import EventBus

D = Decimal
HANG = "hang"
Outcome = BaseException | str | None
FOLDED = re.compile(r"^… (\d+) more events folded$")
DROPPED = re.compile(r"^… (\d+) events dropped by the bus under load$")


@attrs.frozen
class Sent:
    at: float
    chat: int
    text: str
    thread: int | None


class RecordingSender:
    """Records attempts and delivered messages. ``script[chat]`` is consumed one outcome per
    attempt (None: deliver; an exception: raise it; HANG: never answer); ``then`` applies once a
    script is used up. A delivery takes ``latency`` seconds."""

    def __init__(
        self,
        script: dict[int, Iterable[Outcome]] | None = None,
        then: Outcome = None,
        latency: float = 0.0,
    ) -> None:
        self.script = {chat: deque(outcomes) for chat, outcomes in (script or {}).items()}
        self.then = then
        self.latency = latency
        self.attempts: list[tuple[float, int]] = []
        self.delivered: list[Sent] = []

    async def send_message(self, chat_id: int, text: str, *, thread_id: int | None = None) -> None:
        now = trio.current_time()
        self.attempts.append((now, chat_id))
        plan = self.script.get(chat_id)
        outcome = plan.popleft() if plan else self.then
        if outcome == HANG:
            await trio.sleep_forever()
        if isinstance(outcome, BaseException):
            raise outcome
        await trio.sleep(self.latency)
        self.delivered.append(Sent(now, chat_id, text, thread_id))

    def starts(self, chat: int) -> list[float]:
        return [at for at, c in self.attempts if c == chat]

    def texts(self, chat: int) -> list[str]:
        return [s.text for s in self.delivered if s.chat == chat]

    def account(self, chat: int) -> tuple[int, int, int]:
        """(event lines, folded figures, dropped figures) read from what the chat received."""
        lines = folded = dropped = 0
        for text in self.texts(chat):
            assert 0 < utf16_len(text) <= 4096
            for line in text.split("\n"):
                if m := FOLDED.match(line):
                    folded += int(m[1])
                elif m := DROPPED.match(line):
                    dropped += int(m[1])
                else:
                    lines += 1
        return lines, folded, dropped


def filled(i: int) -> Event:
    return OrderFilled(
        T0 + i, "sma", f"o{i}", "BTCUSDT", "buy", "market", D("0.1"), None,
        trade_id=f"t{i}", fill_quantity=D("0.1"), fill_price=D("100.5"), fee=D("0.01"),
        fee_asset="USDT", filled_quantity=D("0.1"),
    )  # fmt: skip


def line(i: int) -> str:
    return f"sma: buy 0.1 BTCUSDT @ 100.5 filled (o{i}, fee 0.01 USDT)"


def windows_ok(starts: list[float], limit: int, window: float) -> bool:
    """At most ``limit`` starts in any half-open window [s, s + window)."""
    return all(sum(1 for t in starts if s <= t < s + window) <= limit for s in starts)


async def test_a_burst_of_1000_keeps_the_limits_per_chat_and_per_group(
    clock: trio.testing.MockClock,
) -> None:
    sender = RecordingSender()
    async with TelegramNotifier(sender, [111, -222]) as notifier:
        for i in range(1_000):  # 1,000 fills over 180 s: faster than either chat may be sent
            await notifier.handle([(i + 1, filled(i))])
            await trio.sleep(0.18)
        await trio.sleep(60)
    private, group = sender.starts(111), sender.starts(-222)
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(private))
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(group))
    assert windows_ok(group, 20, 60.0)
    assert not windows_ok(private, 20, 60.0)  # the private chat is not held to the group's limit
    assert len(private) >= 170 and len(group) >= 60  # and both were kept busy, not quiet
    for chat in (111, -222):
        lines, folded, dropped = sender.account(chat)
        assert lines + folded == 1_000 and dropped == 0
    assert [s.unsent_events for s in notifier.statistics()] == [0, 0]


async def test_a_burst_is_coalesced_and_says_exactly_how_many_it_folded(
    clock: trio.testing.MockClock,
) -> None:
    sender = RecordingSender()
    async with TelegramNotifier(sender, [111]) as notifier:
        await notifier.handle([(i + 1, filled(i)) for i in range(1_000)])
        await trio.sleep(10)
    (text,) = sender.texts(111)  # one message, at once
    *lines, summary = text.split("\n")
    assert lines == [line(i) for i in range(len(lines))]
    assert summary == f"… {1_000 - len(lines)} more events folded"
    assert utf16_len(text) <= 4096 < utf16_len(text + "\n" + line(len(lines)))
    (stats,) = notifier.statistics()
    assert (stats.messages, stats.shown, stats.folded) == (1, len(lines), 1_000 - len(lines))


async def test_a_failure_in_a_burst_of_fills_is_never_the_one_folded(
    clock: trio.testing.MockClock,
) -> None:
    sender = RecordingSender()
    failed = StrategyFailed(T0, "sma", "next", "ValueError: bad", "tb", 1, None)
    async with TelegramNotifier(sender, [111]) as notifier:
        await notifier.handle([(i + 1, filled(i)) for i in range(2_000)] + [(2_001, failed)])
        await trio.sleep(10)
    (text,) = sender.texts(111)
    *lines, summary = text.split("\n")
    assert lines[-1] == render(failed)
    assert lines[:-1] == [line(i) for i in range(len(lines) - 1)]
    assert summary == f"… {2_001 - len(lines)} more events folded"


async def test_retry_after_is_waited_exactly_and_nothing_is_lost_meanwhile(
    clock: trio.testing.MockClock,
) -> None:
    sender = RecordingSender({111: [RetryAfter("Too Many Requests: retry after 7", 7)]})
    async with TelegramNotifier(sender, [111, 333]) as notifier:
        start = trio.current_time()
        await notifier.handle([(1, filled(1))])
        for i in range(2, 6):  # more events while the chat is blocked: coalesced, not lost
            await trio.sleep(1.3)
            await notifier.handle([(i, filled(i))])
        await trio.sleep(20)
    assert sender.starts(111) == [start, start + 7]
    assert sender.texts(111) == ["\n".join(line(i) for i in range(1, 6))]
    # The other chat was never held up by the first one's flood control.
    assert len(sender.texts(333)) == 5


async def test_network_errors_back_off_and_the_message_goes_out_later(
    clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    net = TelegramNetworkError("connection refused")
    sender = RecordingSender({111: [net, net, HANG, None]})
    async with TelegramNotifier(sender, [111], send_timeout=30) as notifier:
        start = trio.current_time()
        await notifier.handle([(1, filled(1))])
        await trio.sleep(60)
    # 1 s, then 2 s of backoff; the hang counts as a failure after 30 s, then 4 s more.
    assert sender.starts(111) == [start + t for t in (0, 1, 3, 37)]
    assert sender.texts(111) == [line(1)]
    assert "send failed (no answer within 30s); retry in 4s" in caplog.text


async def test_a_chat_that_refuses_is_logged_once_and_left_alone(
    clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    sender = RecordingSender({-222: [BadRequest("Bad Request: chat not found", code=400)]})
    async with TelegramNotifier(sender, [111, -222]) as notifier:
        for i in range(10):
            await notifier.handle([(i + 1, filled(i))])
            await trio.sleep(2)
    assert len(sender.starts(-222)) == 1
    assert len(sender.texts(111)) == 10
    refusals = [r for r in caplog.records if "refuses messages" in r.getMessage()]
    assert len(refusals) == 1 and "chat not found" in refusals[0].getMessage()
    assert "chat -222: 10 notable events and 0 bus-dropped events were not sent" in caplog.text
    assert [s.dead is not None for s in notifier.statistics()] == [False, True]


async def test_a_refused_token_stops_every_chat_with_one_line(
    clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    sender = RecordingSender({111: [Unauthorized("Unauthorized", code=401)]})
    async with TelegramNotifier(sender, [111, 333, -222]) as notifier:
        await notifier.handle([(1, filled(1))])
        await trio.sleep(5)
        await notifier.handle([(2, filled(2))])
        await trio.sleep(5)
    assert [r.getMessage() for r in caplog.records if "token is refused" in r.getMessage()]
    assert len([r for r in caplog.records if "token is refused" in r.getMessage()]) == 1
    attempts_after_refusal = [at for at, _ in sender.attempts if at > T0]
    assert len(sender.attempts) <= 3 and not attempts_after_refusal
    assert all(s.dead for s in notifier.statistics())


async def test_an_error_text_that_may_hold_the_token_is_never_logged(
    clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    leak = RuntimeError("POST https://api.telegram.org/bot123:SECRET-TOKEN/sendMessage: 502")
    sender = RecordingSender({111: [leak, leak]}, then=HANG)
    async with TelegramNotifier(sender, [111], close_timeout=1) as notifier:
        await notifier.handle([(1, filled(1))])
        await trio.sleep(10)
    assert "unexpected RuntimeError" in caplog.text
    assert "SECRET" not in caplog.text


async def test_what_the_bus_dropped_is_said(clock: trio.testing.MockClock) -> None:
    sender = RecordingSender()
    notifier = TelegramNotifier(sender, [111])
    bus = EventBus()
    bus.attach(notifier, buffer=8)
    async with notifier, trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        for i in range(500):  # in one go: the bus's channel for the notifier holds 8
            bus.publish(filled(i))
        await bus.flush()
        await trio.sleep(5)
        await bus.aclose()
    stats = bus.statistics()["telegram"]
    lines, folded, said = sender.account(111)
    assert lines + folded == stats.delivered and said == stats.dropped
    assert stats.delivered + stats.dropped == 500 and stats.dropped >= 490


async def test_a_group_gets_the_topic_and_a_private_chat_does_not(
    clock: trio.testing.MockClock,
) -> None:
    sender = RecordingSender()
    async with TelegramNotifier(sender, [111, -222], thread_id=42) as notifier:
        await notifier.handle([(1, filled(1))])
    assert {(s.chat, s.thread) for s in sender.delivered} == {(111, None), (-222, 42)}


def test_only_notable_events_are_rendered_and_a_failure_shows_its_exception_line() -> None:
    failed = StrategyFailed(T0, "sma", "next", "ValueError: bad\nmore", "Traceback…", 2, 4.0)
    assert render(failed) == "sma: failed in next: ValueError: bad … (failure 2, restart in 4s)"
    gave_up = StrategyFailed(T0, "sma", "next", "KeyError: 'x'", "Traceback…", 3, None)
    assert render(gave_up) == "sma: failed in next: KeyError: 'x' (failure 3, gave up)"


async def test_routine_events_send_nothing(clock: trio.testing.MockClock) -> None:
    sender = RecordingSender()
    async with TelegramNotifier(sender, [111]) as notifier:
        submitted = OrderSubmitted(T0, "sma", "o1", "BTCUSDT", "buy", "limit", D("1"), D("2"))
        flip = StrategyStateChanged(T0, "sma", "sleeping", "computing")
        await notifier.handle([(1, submitted), (2, flip)])
        await notifier.handle([(3, StrategyStateChanged(T0, "sma", "sleeping", "paused", "cmd"))])
    assert sender.texts(111) == ["sma: sleeping -> paused (cmd)"]


async def test_leaving_on_an_exception_still_sends_what_is_pending(
    clock: trio.testing.MockClock,
) -> None:
    sender = RecordingSender()
    notifier = TelegramNotifier(sender, [111])
    with pytest.raises(ValueError, match="boom"):
        async with notifier:
            await notifier.handle([(1, filled(1))])
            await trio.sleep(0.5)
            await notifier.handle([(2, filled(2))])  # due at 1 s: sent during the close
            raise ValueError("boom")
    assert sender.texts(111) == [line(1), line(2)]


async def test_close_is_bounded_and_says_what_it_could_not_send(
    clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    sender = RecordingSender(then=HANG)
    notifier = TelegramNotifier(sender, [111, -222], close_timeout=5)
    with trio.fail_after(60):  # a close that hangs fails here, on the mock clock
        async with notifier:
            await notifier.handle([(i, filled(i)) for i in range(3)])
            await trio.sleep(1)
            closing = trio.current_time()
    assert trio.current_time() - closing <= 5
    assert "chat 111: 3 notable events and 0 bus-dropped events were not sent" in caplog.text
    assert "chat -222: 3 notable events" in caplog.text


async def test_aclose_without_run_reports_at_once(
    clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = TelegramNotifier(RecordingSender(), [111])
    await notifier.handle([(1, filled(1))])
    notifier.note_dropped(4)
    await notifier.aclose()
    assert "chat 111: 1 notable events and 4 bus-dropped events were not sent" in caplog.text


async def test_the_notifier_owns_one_task_per_chat_and_leaves_none_behind(
    clock: trio.testing.MockClock,
) -> None:
    before = all_tasks()
    sender = RecordingSender(then=HANG)
    with trio.fail_after(60):
        async with TelegramNotifier(sender, [111, 333, -222], close_timeout=1) as notifier:
            await notifier.handle([(1, filled(1))])
            await trio.sleep(1)
            names = sorted(t.name for t in all_tasks() - before)
            assert names == [
                "telegram chat -222",
                "telegram chat 111",
                "telegram chat 333",
                "trading.observers.telegram_notifier.TelegramNotifier.run",
            ]
    assert all_tasks() == before


async def test_the_bus_never_has_to_abandon_it_and_the_flush_goes_on_after(
    clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    sender = RecordingSender(latency=1.5)  # each delivery takes longer than the bus's bound
    notifier = TelegramNotifier(sender, [111], close_timeout=5)
    bus = EventBus(lossy_close_timeout=1)
    bus.attach(notifier)
    with trio.fail_after(60):
        async with notifier, trio.open_nursery() as nursery:
            await nursery.start(bus.run)
            bus.publish(filled(1))
            await trio.sleep(0.5)
            bus.publish(filled(2))
            closing = trio.current_time()
            await bus.aclose()
            assert trio.current_time() - closing <= 1  # the Runner's wind-down is not held
    assert "abandoned" not in caplog.text
    assert sender.texts(111) == [line(1), line(2)]  # the second went out after the bus closed
    assert "were not sent" not in caplog.text


async def test_a_cancelled_run_stops_at_once_and_says_what_it_did_not_send(
    clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = TelegramNotifier(RecordingSender(then=HANG), [111])
    async with trio.open_nursery() as nursery:
        await nursery.start(notifier.run)
        await notifier.handle([(1, filled(1)), (2, filled(2))])
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert "chat 111: 2 notable events and 0 bus-dropped events were not sent" in caplog.text
    with pytest.raises(RuntimeError, match="runs once"):
        await notifier.run()


@attrs.define
class Trader(trading.Strategy):
    """Buys at every bar close; records the closes it computed."""

    interval = "1m"
    compute_on_start = False
    closes: list[float | None] = attrs.field(factory=list, init=False)

    async def next(self, ctx: trading.Context) -> None:
        self.closes.append(ctx.bar_close)
        await ctx.buy("0.001")


async def test_a_hanging_telegram_never_delays_trading_nor_shutdown(
    clock: trio.testing.MockClock, vclock: trading.VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    sender = RecordingSender(then=HANG)
    notifier = TelegramNotifier(sender, [111, -222], close_timeout=5, send_timeout=3_600)
    strategy = Trader()
    with trio.fail_after(2 * 3600):
        async with notifier:
            async with trading.Runner(clock=vclock, observers=[notifier], **sim(vclock)) as runner:
                await runner.add(strategy, name="t")
                await trio.sleep(30 * 60 + 1)
                closing = trio.current_time()
            runner_closed = trio.current_time()
    assert strategy.closes == [T0 + 60 * k for k in range(1, 31)]  # every close, on time
    assert runner_closed - closing <= 2  # the notifier did not hold the Runner's wind-down
    assert trio.current_time() - closing <= 5 + 2
    assert len(sender.attempts) == 2  # one hung send per chat, nothing more piled up
    stats = {s.chat_id: s for s in notifier.statistics()}
    assert stats[111].unsent_events >= 30 and stats[111].messages == 0
    assert "chat 111:" in caplog.text and "were not sent" in caplog.text


NOTABLE = {"fill", "paused", "failed"}
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["fill", "submitted", "paused", "computing", "failed"]),
        st.integers(1, 40),  # events in the batch
        st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.5, 30.0]),  # seconds until the next batch
        st.sampled_from([0, 0, 3]),  # events the bus dropped before this batch
    ),
    max_size=25,
)
FAULTS = st.lists(
    st.sampled_from(["ok", "ok", "retry", "net", "hang", "bad", "unauthorized", "bug"]),
    max_size=12,
)


def make(kind: str, i: int) -> Event:
    if kind == "fill":
        return filled(i)
    if kind == "submitted":
        return OrderSubmitted(T0, "sma", f"o{i}", "BTCUSDT", "buy", "limit", D("1"), D("2"))
    if kind == "failed":
        return StrategyFailed(T0, "sma", "next", f"ValueError: {i}\nx", "tb", i, 1.0)
    return StrategyStateChanged(T0, "sma", "sleeping", kind)


def fault(name: str, retry_after: float) -> Outcome:
    return {
        "ok": None,
        "retry": RetryAfter("Too Many Requests", retry_after),
        "net": TelegramNetworkError("connection reset"),
        "hang": HANG,
        "bad": BadRequest("Bad Request: chat not found", code=400),
        "unauthorized": Unauthorized("Unauthorized", code=401),
        "bug": KeyError("oops"),
    }[name]


@given(
    STEPS,
    st.dictionaries(st.sampled_from([111, -222]), FAULTS),
    st.sampled_from([0.5, 3.0, 40.0]),
    st.sampled_from([0.0, 2.0, 8.0]),
)
@settings(max_examples=150)
def test_every_notable_event_is_sent_or_counted_whatever_fails(
    steps: list[tuple[str, int, float, int]],
    faults: dict[int, list[str]],
    retry_after: float,
    close_timeout: float,
) -> None:
    """For any events and any failures: per chat, the lines received plus the folded figures
    plus what is reported unsent equal the notable events given; the same for bus drops; and
    the attempts keep Telegram's limits."""
    script = {chat: [fault(name, retry_after) for name in names] for chat, names in faults.items()}
    sender = RecordingSender(script)
    chats = [111, -222]
    notifier = TelegramNotifier(
        sender,
        chats,
        pacing=Pacing(group_limit=5, group_window=20.0),
        send_timeout=4,
        close_timeout=close_timeout,
        max_pending=30,
    )

    async def main() -> None:
        with trio.fail_after(3_600):  # a close that hangs fails here, on the mock clock
            await feed()

    async def feed() -> None:
        seq = 0
        async with notifier:
            for kind, count, gap, drops in steps:
                if drops:
                    notifier.note_dropped(drops)
                batch = [(seq + k, make(kind, seq + k)) for k in range(1, count + 1)]
                seq += count
                await notifier.handle(batch)
                await trio.sleep(gap)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    notable = sum(count for kind, count, _, _ in steps if kind in NOTABLE)
    dropped = sum(drops for *_, drops in steps)
    for chat, stats in zip(chats, notifier.statistics(), strict=True):
        lines, folded, said = sender.account(chat)
        assert lines + folded + stats.unsent_events == notable, chat
        assert said + stats.unsent_dropped == dropped, chat
        assert (lines, folded, said) == (stats.shown, stats.folded, stats.dropped)
        starts = sender.starts(chat)
        assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(starts))
        if chat < 0:
            assert windows_ok(starts, 5, 20.0)


def test_a_chat_listed_twice_or_bad_timeouts_are_refused() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        TelegramNotifier(RecordingSender(), [111, 111])
    with pytest.raises(ValueError, match="send_timeout"):
        TelegramNotifier(RecordingSender(), [111], send_timeout=0)
