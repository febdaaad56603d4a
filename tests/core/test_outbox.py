"""ChatOutbox: Telegram's pacing, coalescing within 4,096 UTF-16 units, and nothing lost silently.

Pure: no event loop; time is a number the test passes.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.core.outbox import TELEGRAM_LIMIT, ChatOutbox, Message, Pacing, clip, utf16_len

FOLDED = re.compile(r"^… (\d+) more events folded$")
DROPPED = re.compile(r"^… (\d+) events dropped by the bus under load$")


def figures(message: Message) -> tuple[int, int, int]:
    """(event lines, folded figure, dropped figure) read back from the text, as a reader would."""
    lines = folded = dropped = 0
    for line in message.text.split("\n"):
        if m := FOLDED.match(line):
            folded += int(m[1])
        elif m := DROPPED.match(line):
            dropped += int(m[1])
        else:
            lines += 1
    return lines, folded, dropped


def test_utf16_length_counts_astral_characters_twice() -> None:
    assert utf16_len("abc") == 3
    assert utf16_len("é") == 1
    assert utf16_len("📈") == 2
    assert utf16_len("a📈b") == len("a📈b".encode("utf-16-le")) // 2 == 4


def test_clip_never_splits_a_surrogate_pair_and_makes_one_line() -> None:
    assert clip("a\nb", 10) == clip("a\r\nb", 10) == clip("a\u2028b", 10) == "a b"
    assert clip("abcdef", 6) == "abcdef"
    assert clip("abcdef", 5) == "abcd…"
    # "a" + 📈 would need 3 units; with the ellipsis only 3 are allowed: 📈 does not fit whole.
    assert clip("a📈📈", 3) == "a…"
    assert clip("a📈📈", 4) == "a📈…"
    for limit in range(2, 12):
        text = clip("📈x" * 10, limit)
        assert utf16_len(text) <= limit


def test_everything_pending_goes_out_as_one_message() -> None:
    box = ChatOutbox(7)
    for i in range(5):
        box.add(f"line {i}")
    message = box.take(0.0)
    assert message.text == "\n".join(f"line {i}" for i in range(5))
    assert (message.lines, message.folded, message.dropped) == (
        tuple(f"line {i}" for i in range(5)),
        0,
        0,
    )
    assert not box.has_work and box.in_flight is message


def test_what_does_not_fit_is_folded_with_an_exact_count() -> None:
    box = ChatOutbox(7)
    line = "📈" + "x" * 98  # 100 UTF-16 units, 99 characters
    for _ in range(1_000):
        box.add(line)
    box.note_dropped(3)
    message = box.take(0.0)
    assert utf16_len(message.text) <= TELEGRAM_LIMIT
    shown, folded, dropped = figures(message)
    assert shown == len(message.lines) >= 35  # (4096 - 100) // 101 lines fit beside the summary
    assert folded == message.folded == 1_000 - shown
    assert dropped == message.dropped == 3
    assert message.text.endswith("… 3 events dropped by the bus under load")


def test_a_text_exactly_at_the_limit_is_sent_whole() -> None:
    box = ChatOutbox(7, max_line=TELEGRAM_LIMIT - 100)
    box.add("x" * 3_000)
    box.add("📈" * 547)  # 1,094 units: 3,000 + 1 + 1,094 = 4,095
    message = box.take(0.0)
    assert message.folded == 0 and utf16_len(message.text) == 4_095


def test_overlong_lines_are_clipped_and_too_many_pending_are_folded() -> None:
    box = ChatOutbox(7, max_pending=3)
    box.add("y" * 5_000)
    for i in range(5):
        box.add(f"l{i}")
    message = box.take(0.0)
    assert message.lines[0] == "y" * 999 + "…"
    assert message.lines[1:] == ("l0", "l1") and message.folded == 3


def test_a_private_chat_gets_one_start_per_interval() -> None:
    box = ChatOutbox(7, Pacing(interval=1.0))
    box.add("a")
    box.sent(box.take(10.0))
    box.add("b")
    assert box.due() == 11.0
    with pytest.raises(RuntimeError):
        box.take(10.5)
    box.sent(box.take(11.0))


def test_a_group_gets_at_most_its_limit_in_any_window() -> None:
    box = ChatOutbox(-100, Pacing(interval=1.0, group_limit=20, group_window=60.0))
    starts = []
    now = 0.0
    for _ in range(45):
        box.add("x")
        now = max(now, box.due())
        starts.append(now)
        box.sent(box.take(now))
    assert starts[:20] == [float(i) for i in range(20)]
    assert starts[20] == 60.0  # the first start left the window
    for i, start in enumerate(starts):
        assert sum(1 for s in starts if start <= s < start + 60.0) <= 20, i


def test_retry_after_puts_the_message_back_in_order_and_blocks_exactly() -> None:
    box = ChatOutbox(7)
    box.add("a")
    box.add("b")
    box.note_dropped(2)
    first = box.take(0.0)
    box.add("c")
    box.retry_after(first, 0.25, 7.5)
    assert box.due() == 7.75
    again = box.take(7.75)
    assert again.lines == ("a", "b", "c") and again.dropped == 2


def test_network_errors_back_off_doubling_to_the_cap_and_a_success_resets() -> None:
    box = ChatOutbox(7, Pacing(interval=0.0, backoff_initial=1.0, backoff_max=5.0))
    box.add("a")
    delays = []
    now = 0.0
    for _ in range(5):
        message = box.take(now)
        delays.append(box.failed(message, now))
        now = box.due()
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]
    box.sent(box.take(now))
    box.add("b")
    assert box.failed(box.take(now), now) == 1.0


def test_a_put_back_beyond_max_pending_folds_the_newest() -> None:
    box = ChatOutbox(7, max_pending=3)
    for line in "abc":
        box.add(line)
    first = box.take(0.0)
    for line in "de":
        box.add(line)
    box.failed(first, 0.0)
    assert [line for line, _ in box.pending] == ["a", "b", "c"] and box.folded == 2


def test_urgent_lines_are_shown_before_routine_ones_are_and_keep_their_order() -> None:
    box = ChatOutbox(7, limit=400, max_line=200)
    for i in range(100):
        box.add(f"fill {i:02d}" + "x" * 30)
    box.add("sma: failed in next: ValueError: bad", urgent=True)
    message = box.take(0.0)
    shown, folded, _ = figures(message)
    assert message.lines[-1] == "sma: failed in next: ValueError: bad"
    assert message.lines[:-1] == tuple(f"fill {i:02d}" + "x" * 30 for i in range(shown - 1))
    assert folded == 101 - shown and utf16_len(message.text) <= 400


def test_an_urgent_line_evicts_a_routine_one_from_a_full_queue() -> None:
    box = ChatOutbox(7, max_pending=3)
    for line in "abc":
        box.add(line)
    box.add("FAILED", urgent=True)
    box.add("d")  # a routine line into a full queue: folded itself
    assert [line for line, _ in box.pending] == ["a", "b", "FAILED"] and box.folded == 2
    for line in "XYZ":
        box.add(line, urgent=True)
    assert [line for line, _ in box.pending] == ["FAILED", "X", "Y"] and box.folded == 5


def test_a_refused_chat_counts_everything_as_lost() -> None:
    box = ChatOutbox(7)
    box.add("a")
    message = box.take(0.0)
    box.add("b")
    box.note_dropped(4)
    assert box.refused(message, "refused: chat not found") == 2
    box.add("c")
    box.note_dropped(1)
    assert not box.has_work
    assert box.unsent() == (3, 5)


def test_a_chat_refused_elsewhere_counts_its_folded_events_as_lost() -> None:
    box = ChatOutbox(7, max_pending=1)
    box.add("a")
    box.add("b")  # folded: over max_pending
    box.note_dropped(2)
    assert box.refused(None, "unauthorized") == 2
    assert box.unsent() == (2, 2) and box.dead == "unauthorized"


OPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["add", "urgent"]), st.sampled_from([1, 40, 999, 1_000, 1_500])),
        st.tuples(st.just("drop"), st.integers(1, 50)),
        st.tuples(st.sampled_from(["send", "retry", "fail", "refuse", "wait", "kill"]), st.just(0)),
    ),
    max_size=80,
)


@given(OPS, st.sampled_from([7, -100]))
def test_every_line_is_shown_stated_or_unsent(ops: list[tuple[str, int]], chat: int) -> None:
    """For any sequence of input and outcomes: added = shown + folded figures + unsent, and
    dropped = dropped figures + unsent drops; no message is over the limit or early."""
    box = ChatOutbox(chat, Pacing(group_limit=3, group_window=10.0), max_pending=6)
    now = 0.0
    added = dropped = shown = folded = stated_dropped = 0
    starts: list[float] = []
    for op, n in ops:
        if op in ("add", "urgent"):
            box.add("z" * n, urgent=op == "urgent")
            added += 1
        elif op == "drop":
            box.note_dropped(n)
            dropped += n
        elif op == "wait":
            now += 0.7
        elif op == "kill":  # the token was refused on another chat
            box.refused(None, "unauthorized")
        elif box.has_work:
            now = max(now, box.due())
            message = box.take(now)
            starts.append(now)
            assert utf16_len(message.text) <= TELEGRAM_LIMIT
            if op == "send":
                lines, f, d = figures(message)
                box.sent(message)
                shown, folded, stated_dropped = shown + lines, folded + f, stated_dropped + d
            elif op == "retry":
                box.retry_after(message, now, 2.0)
            elif op == "fail":
                box.failed(message, now)
            else:
                box.refused(message, "refused")
        unsent, unsent_dropped = box.unsent()
        assert shown + folded + unsent == added
        assert stated_dropped + unsent_dropped == dropped
    for i, start in enumerate(starts):
        if i:
            assert start >= starts[i - 1] + 1.0
        if chat < 0:
            assert sum(1 for s in starts if start <= s < start + 10.0) <= 3


@pytest.mark.parametrize(
    "pacing",
    [
        {"interval": -1.0},
        {"group_limit": 0},
        {"group_window": -1.0},
        {"backoff_initial": 0.0},
        {"backoff_initial": 5.0, "backoff_max": 1.0},
    ],
)
def test_bad_pacing_is_refused_naming_it(pacing: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="bad"):
        Pacing(**pacing)  # type: ignore[arg-type]


def test_an_outbox_that_could_not_hold_one_line_is_refused() -> None:
    with pytest.raises(ValueError, match="max_line"):
        ChatOutbox(7, limit=500, max_line=450)
