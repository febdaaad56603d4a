"""Link: what an operator needs to know about one connection to the outside world.

``ctl health`` and ``/health`` must say whether the run can still see the market and its orders,
not only that the process is up. A stream's reconnect loop records each connection coming up
and going down, and its reader notes each message heard, here; health reads a snapshot. Times are
real monotonic seconds (trio's clock: connections live in real time, DESIGN.md rule 3).

Writing is a few attribute stores, cheap enough for every frame of a market stream.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import trio

__all__ = ["HasLinks", "Link", "links_of"]


class Link:
    """One connection's state: up or down since when, how often it connected, what it last
    heard, and why it last went down."""

    __slots__ = ("connected", "connects", "last_error", "last_message", "name", "since")

    def __init__(self, name: str) -> None:
        self.name = name
        self.connected = False
        self.connects = 0
        self.since: float | None = None  # when ``connected`` last changed
        self.last_message: float | None = None
        self.last_error: str | None = None

    def up(self) -> None:
        self.connected = True
        self.connects += 1
        self.since = self.last_message = trio.current_time()

    def down(self, error: str | None = None) -> None:
        if self.connected:
            self.since = trio.current_time()
        self.connected = False
        if error is not None:
            self.last_error = error

    def heard(self) -> None:
        self.last_message = trio.current_time()

    def answered(self) -> None:
        """A request-response link (REST) got an answer: up, if it was not."""
        if self.connected:
            self.heard()
        else:
            self.up()

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready: ``for`` is the seconds since the state changed, ``silent`` the seconds
        since the last message (None before any)."""
        now = trio.current_time()
        return {
            "link": self.name,
            "connected": self.connected,
            "for": None if self.since is None else round(now - self.since, 3),
            "connects": self.connects,
            "silent": None if self.last_message is None else round(now - self.last_message, 3),
            "last_error": self.last_error,
        }


@runtime_checkable
class HasLinks(Protocol):
    """A market or exchange with connections of its own (simulated ones have none)."""

    def links(self) -> list[Link]: ...


def links_of(*parts: object) -> list[Link]:
    """Every link of the parts that have some, once each."""
    seen: dict[int, Link] = {}
    for part in parts:
        if isinstance(part, HasLinks):
            for link in part.links():
                seen.setdefault(id(link), link)
    return list(seen.values())
