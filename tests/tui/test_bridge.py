"""ViewBridge: bounded, never waiting for the view, nothing lost without a count."""

from __future__ import annotations

import threading
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from trading.control.status_table import StatusRow
from trading.tui.bridge import ViewBridge


class StalledLoop:
    """A view loop that never runs what is scheduled: what call_soon_threadsafe would queue."""

    def __init__(self) -> None:
        self.scheduled: list[Callable[[], object]] = []

    def call_soon_threadsafe(self, callback: Callable[[], object]) -> None:
        self.scheduled.append(callback)


def _row(state: str) -> StatusRow:
    return StatusRow("s", state, None, "flat", None, None)


def test_a_stalled_view_costs_a_bounded_buffer_and_one_callback_with_a_count() -> None:
    bridge = ViewBridge(max_lines=100)
    loop = StalledLoop()
    bridge.attach(loop.call_soon_threadsafe, lambda: None)
    for i in range(10_000):
        assert bridge.offer(f"line {i}\n")
        bridge.show_rows([_row(f"state {i}")])
    assert len(loop.scheduled) == 1  # the view's loop holds one callback, not 20,000
    taken = bridge.take()
    assert taken.lines == tuple(f"line {i}" for i in range(100))  # the oldest, in order
    assert taken.dropped == 9_900 and bridge.dropped == 9_900
    assert taken.rows == (_row("state 9999"),)  # only the newest table
    # Taking re-arms the wake-up; the count was shown once and is not shown again.
    bridge.offer("after\n")
    assert len(loop.scheduled) == 2
    again = bridge.take()
    assert again.lines == ("after",) and again.dropped == 0 and again.rows is None


def test_without_a_view_text_is_refused_for_the_plain_terminal() -> None:
    bridge = ViewBridge()
    assert not bridge.offer("before the view\n")
    loop = StalledLoop()
    bridge.attach(loop.call_soon_threadsafe, lambda: None)
    assert bridge.offer("a\nb\n")
    left = bridge.detach()
    assert left.lines == ("a", "b")
    assert not bridge.offer("after the view\n")
    assert len(loop.scheduled) == 1  # nothing scheduled on a loop that is gone


def test_rows_pushed_before_the_view_starts_are_shown_when_it_does() -> None:
    bridge = ViewBridge()
    bridge.show_rows([_row("sleeping")])
    loop = StalledLoop()
    bridge.attach(loop.call_soon_threadsafe, lambda: None)
    assert len(loop.scheduled) == 1
    assert bridge.take().rows == (_row("sleeping"),)


@given(
    per_thread=st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=4),
    max_lines=st.integers(min_value=1, max_value=200),
)
def test_threads_offering_while_the_view_takes_lose_nothing_uncounted(
    per_thread: list[int], max_lines: int
) -> None:
    bridge = ViewBridge(max_lines=max_lines)
    wakes = threading.Semaphore(0)
    bridge.attach(lambda callback: callback(), wakes.release)
    done = threading.Event()
    seen: list[str] = []
    dropped = 0

    def view() -> None:
        nonlocal dropped
        while True:
            finished = done.is_set()
            taken = bridge.take()
            seen.extend(taken.lines)
            dropped += taken.dropped
            if finished:
                return
            wakes.acquire(timeout=0.01)

    def producer(t: int, n: int) -> None:
        for i in range(n):
            bridge.offer(f"{t} {i}\n")

    consumer = threading.Thread(target=view)
    consumer.start()
    producers = [threading.Thread(target=producer, args=(t, n)) for t, n in enumerate(per_thread)]
    for p in producers:
        p.start()
    for p in producers:
        p.join()
    done.set()
    consumer.join(10)
    assert len(seen) + dropped == sum(per_thread)
    assert dropped == bridge.dropped
    for t in range(len(per_thread)):  # each producer's lines arrive in its order
        mine = [int(line.split()[1]) for line in seen if line.split()[0] == str(t)]
        assert mine == sorted(mine)
