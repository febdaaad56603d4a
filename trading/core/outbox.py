"""One chat's outbox: notable lines waiting for Telegram, its pacing, and how a burst is folded.

Core module: no trio, no IO; the caller passes ``now`` (real monotonic seconds) and does the
sending. The rules this module keeps:

* **Pacing.** A send to a chat starts at least ``interval`` seconds after the previous one to
  that chat, and a group (negative chat id) gets at most ``group_limit`` starts in any
  ``group_window`` seconds (Telegram: about one message per second per chat, twenty per minute
  per group). Every attempt counts, failed ones included, since Telegram may have counted it.
* **Coalescing.** Whatever is pending when a send is due becomes one message of at most
  ``limit`` UTF-16 code units (Telegram counts text length in UTF-16). Lines that do not fit are
  *folded*: counted, and the message says "… N more events folded". Events the bus dropped
  before we saw them are said too ("… N events dropped by the bus"). A line longer than
  ``max_line`` is clipped, never split across a surrogate pair.
* **Urgent lines first.** A line added as *urgent* (a failure, a pause, a risk breach) is
  folded only when urgent lines alone fill the message: routine lines (fills) make room for it,
  in the message and in the bounded pending queue. Shown lines keep their order.
* **Nothing silently lost.** Every line :meth:`ChatOutbox.add` takes ends in exactly one of:
  a sent message's text, a folded figure in a sent message, or :meth:`ChatOutbox.unsent` (said
  at close by the caller). A message that was not delivered (retry_after, network error) is put
  back whole, in order, and coalesced with what came meanwhile; the pending lines are bounded
  by ``max_pending`` (the excess is folded and counted).
* **Failures.** ``retry_after`` blocks the chat for exactly that long; a network error blocks
  it with exponential backoff (reset by a success); a refusal (bad chat, blocked bot, bad
  token) ends the chat: from then on what it is given is counted as unsent.
"""

from __future__ import annotations

from collections import deque

import attrs

__all__ = ["TELEGRAM_LIMIT", "ChatOutbox", "Message", "Pacing", "clip", "utf16_len"]

TELEGRAM_LIMIT = 4096  # sendMessage text, in UTF-16 code units
ELLIPSIS = "…"


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (a character past U+FFFF counts 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def clip(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` UTF-16 units; a cut ends with "…". Cuts fall
    between characters, so a surrogate pair is never split."""
    text = " ".join(text.splitlines())
    if utf16_len(text) <= limit:
        return text
    room = limit - 1  # for the ellipsis
    used = 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > room:
            return text[:index] + ELLIPSIS
    return text  # pragma: no cover - utf16_len said it was too long


def folded_line(count: int) -> str:
    return f"{ELLIPSIS} {count} more events folded"


def dropped_line(count: int) -> str:
    return f"{ELLIPSIS} {count} events dropped by the bus under load"


@attrs.frozen(slots=True)
class Pacing:
    """Telegram's limits as we keep them, and the backoff after network errors (seconds)."""

    interval: float = 1.0
    group_limit: int = 20
    group_window: float = 60.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0

    def __attrs_post_init__(self) -> None:
        if self.interval < 0 or self.group_limit < 1 or self.group_window < 0:
            raise ValueError(f"bad pacing: {self!r}")
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ValueError(f"bad backoff: {self!r}")


@attrs.frozen(slots=True)
class Message:
    """One sendMessage: its text, and what it accounts for (lines shown, figures stated)."""

    chat_id: int
    text: str
    entries: tuple[tuple[str, bool], ...]  # (line, urgent), in order
    folded: int
    dropped: int

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(line for line, _ in self.entries)


class ChatOutbox:
    """Pending lines and pacing state of one chat. At most one message is in flight: between
    :meth:`take` and one of :meth:`sent`, :meth:`retry_after`, :meth:`failed`, :meth:`refused`.
    """

    def __init__(
        self,
        chat_id: int,
        pacing: Pacing = Pacing(),
        *,
        max_pending: int = 1_000,
        limit: int = TELEGRAM_LIMIT,
        max_line: int = 1_000,
    ) -> None:
        # The summary lines need < 100 units; max_line must leave room for one line beside them.
        if max_pending < 1 or max_line < 16 or limit < max_line + 100:
            raise ValueError("need max_pending >= 1, max_line >= 16, limit >= max_line + 100")
        self.chat_id = chat_id
        self.pacing = pacing
        self.is_group = chat_id < 0
        self.max_pending = max_pending
        self.limit = limit
        self.max_line = max_line
        self.pending: deque[tuple[str, bool]] = deque()  # (line, urgent)
        self.folded = 0  # events not shown as a line, not yet stated in a sent message
        self.dropped = 0  # bus drops not yet stated in a sent message
        self.in_flight: Message | None = None
        self.dead: str | None = None  # why this chat gets nothing more
        self.lost = 0  # events given after the chat died
        self.lost_dropped = 0
        # Totals, for statistics.
        self.messages = self.attempts = self.shown = self.stated_folded = self.stated_dropped = 0
        self._starts: deque[float] = deque(maxlen=pacing.group_limit)
        self._blocked_until = float("-inf")
        self._failures = 0

    # -- input ----------------------------------------------------------------------------------

    def add(self, line: str, *, urgent: bool = False) -> None:
        """One notable event, as a line (clipped to ``max_line``, made one line)."""
        if self.dead is not None:
            self.lost += 1
            return
        self.pending.append((clip(line, self.max_line), urgent))
        self._trim()

    def note_dropped(self, count: int) -> None:
        if self.dead is not None:
            self.lost_dropped += count
        else:
            self.dropped += count

    # -- pacing ---------------------------------------------------------------------------------

    @property
    def has_work(self) -> bool:
        """Something to say and nothing in flight (a dead chat has no work)."""
        return (
            self.dead is None
            and self.in_flight is None
            and bool(self.pending or self.folded or self.dropped)
        )

    def due(self) -> float:
        """The earliest time a send may start (``-inf``: at once), whether or not there is work."""
        at = self._blocked_until
        if self._starts:
            at = max(at, self._starts[-1] + self.pacing.interval)
            if self.is_group and len(self._starts) >= self.pacing.group_limit:
                at = max(at, self._starts[0] + self.pacing.group_window)
        return at

    # -- a message's life -----------------------------------------------------------------------

    def take(self, now: float) -> Message:
        """Everything pending as one message; records the start. Needs :attr:`has_work` and
        ``now >= due()``."""
        if not self.has_work or now < self.due():
            raise RuntimeError(f"chat {self.chat_id}: nothing to send now")
        entries = list(self.pending)
        self.pending.clear()
        folded, dropped = self.folded, self.dropped
        chosen = [False] * len(entries)
        count = used = 0  # lines chosen, and their UTF-16 units joined
        full = False
        for urgency in (True, False):  # urgent lines first, each kind in order
            for index, (line, urgent) in enumerate(entries):
                if urgent is not urgency or full:
                    continue
                cost = utf16_len(line) + (1 if count else 0)
                tail = _tail(folded + len(entries) - count - 1, dropped)
                if used + cost + _size(tail, lead=True) > self.limit:
                    full = True  # nothing after it in order, nor any routine line, is shown
                    continue
                chosen[index] = True
                count, used = count + 1, used + cost
        shown = tuple(entry for entry, keep in zip(entries, chosen, strict=True) if keep)
        folded += len(entries) - count
        text = "\n".join([line for line, _ in shown] + _tail(folded, dropped))
        message = Message(self.chat_id, text, shown, folded, dropped)
        self.folded = self.dropped = 0
        self.in_flight = message
        self._starts.append(now)
        self.attempts += 1
        return message

    def sent(self, message: Message) -> None:
        self._settle(message)
        self._failures = 0
        self.messages += 1
        self.shown += len(message.lines)
        self.stated_folded += message.folded
        self.stated_dropped += message.dropped

    def retry_after(self, message: Message, now: float, seconds: float) -> None:
        """Telegram's flood control: put the message back; nothing more starts before
        ``now + seconds``."""
        self._put_back(message)
        self._blocked_until = now + max(0.0, seconds)

    def failed(self, message: Message, now: float) -> float:
        """No usable answer (or our send timeout): put the message back and back off; returns
        the delay. The message may have arrived anyway: it is sent again (at least once)."""
        self._put_back(message)
        self._failures += 1
        step = self.pacing.backoff_initial * 2.0 ** min(self._failures - 1, 30)
        delay = min(self.pacing.backoff_max, step)
        self._blocked_until = now + delay
        return delay

    def refused(self, message: Message | None, reason: str) -> int:
        """Telegram refuses this chat (or the token): end it; returns the events lost with it
        (the message's and all pending ones)."""
        if message is not None:
            self._settle(message)
            self.lost += len(message.lines) + message.folded
            self.lost_dropped += message.dropped
        if self.dead is None:
            self.dead = reason
            self.lost += len(self.pending) + self.folded
            self.lost_dropped += self.dropped
            self.pending.clear()
            self.folded = self.dropped = 0
        return self.lost

    def unsent(self) -> tuple[int, int]:
        """(notable events, bus-dropped events) not delivered to this chat so far: pending,
        folded but not yet stated, in flight, or lost to a refusal."""
        events = self.lost + len(self.pending) + self.folded
        dropped = self.lost_dropped + self.dropped
        if self.in_flight is not None:
            events += len(self.in_flight.lines) + self.in_flight.folded
            dropped += self.in_flight.dropped
        return events, dropped

    def _settle(self, message: Message) -> None:
        if self.in_flight is not message:
            raise RuntimeError(f"chat {self.chat_id}: that message is not in flight")
        self.in_flight = None

    def _put_back(self, message: Message) -> None:
        self._settle(message)
        if self.dead is not None:  # refused meanwhile (a bad token on another chat)
            self.lost += len(message.lines) + message.folded
            self.lost_dropped += message.dropped
            return
        self.pending.extendleft(reversed(message.entries))
        self.folded += message.folded
        self.dropped += message.dropped
        self._trim()

    def _trim(self) -> None:
        """Fold the newest routine lines past ``max_pending`` (urgent ones only if all are)."""
        pending = self.pending
        while len(pending) > self.max_pending:
            for index in range(len(pending) - 1, -1, -1):
                if not pending[index][1]:
                    del pending[index]
                    break
            else:
                pending.pop()
            self.folded += 1


def _tail(folded: int, dropped: int) -> list[str]:
    return ([folded_line(folded)] if folded else []) + ([dropped_line(dropped)] if dropped else [])


def _size(lines: list[str], *, lead: bool = False) -> int:
    """UTF-16 units of ``lines`` joined by newlines (``lead``: after a newline, if any)."""
    if not lines:
        return 0
    return sum(utf16_len(line) for line in lines) + len(lines) - (0 if lead else 1)
