"""Fault switches: what the network and the exchange do to a bot on a bad day, on demand.

The rules this module keeps:

* A switch is *armed* for the next ``count`` matching requests (or frames) and consumed one per
  match, oldest armed first; a request that matches nothing passes untouched. Matching is by
  kind, and optionally by HTTP ``method`` and ``path`` (exact, e.g. ``/api/v3/order``) or by
  stream (``market`` / ``user``).
* Faults that fire *before* the request is processed (``delay`` then process; ``drop``,
  ``server_error``, ``rate_limit``, ``ban`` without processing) never change the exchange.
  ``accept_then_drop`` processes the request (the order IS placed) and then drops the
  connection without answering; ``push_before_answer`` holds the REST answer until the
  user-stream event it caused has been written to the socket.
* ``malformed`` *inserts* an unparseable text frame before the next frame of that stream kind,
  so a client that skips it loses nothing. ``drop`` with a ``stream`` cuts the connection that
  was about to send a frame, without a close frame (that frame is lost with the connection).
* ``POST /_sim/drop_streams`` drops every WebSocket at once (``sim.drop_stream_connections()``);
  ``POST /_sim/rotate_streams`` says ``serverShutdown`` and closes them politely, as Binance does
  at the 24-hour mark (``sim.rotate_stream_connections()``); the server stays up for both.
* Everything can be armed in-process (``sim.faults.arm(...)``) or over HTTP with the same names:
  ``POST /_sim/faults`` with a JSON object of :class:`Fault`'s fields, ``GET`` lists the armed
  switches, ``DELETE`` disarms them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

__all__ = ["KINDS", "PRE_KINDS", "Fault", "FaultError", "Faults"]

#: Every kind of switch, and what it does (also the HTTP API's vocabulary).
KINDS: Final[Mapping[str, str]] = {
    "delay": "wait `seconds` (real time) before processing the request",
    "drop": "close the connection without processing or answering; with `stream` (market|user):"
    " drop the connection abruptly instead of sending its next frame",
    "server_error": "answer `status` (5xx) without processing the request",
    "rate_limit": "answer 429 with Retry-After `retry_after` without processing",
    "ban": "answer 418 with Retry-After `retry_after` without processing",
    "accept_then_drop": "process the request, then close the connection without answering",
    "push_before_answer": "send the user-stream event before the REST answer",
    "malformed": "send an unparseable frame before the next frame on `stream` (market|user)",
}
#: The kinds decided before a request is processed, in the order they are looked up.
PRE_KINDS: Final = ("delay", "drop", "server_error", "rate_limit", "ban")


class FaultError(ValueError):
    """A switch that cannot be armed; the message names the bad field."""


@attrs.frozen(slots=True)
class Fault:
    kind: str
    count: int = 1
    method: str | None = None
    path: str | None = None
    stream: str | None = None
    seconds: float = 0.0
    status: int = 503
    retry_after: int = 1

    def __attrs_post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FaultError(f"unknown fault kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.count < 1:
            raise FaultError(f"count must be at least 1, not {self.count}")
        if self.kind == "server_error" and not 500 <= self.status <= 599:
            raise FaultError(f"server_error status must be 5xx, not {self.status}")
        if self.kind == "malformed" and self.stream not in ("market", "user"):
            raise FaultError("malformed needs stream='market' or stream='user'")
        if self.stream is not None and (
            self.kind not in ("malformed", "drop") or self.stream not in ("market", "user")
        ):
            raise FaultError("only malformed and drop take a stream, 'market' or 'user'")
        if self.seconds < 0 or self.retry_after < 0:
            raise FaultError("seconds and retry_after must not be negative")

    def matches(self, kind: str, method: str | None, path: str | None, stream: str | None) -> bool:
        return (
            self.kind == kind
            and (self.method is None or method is None or self.method.upper() == method)
            and (self.path is None or self.path == path)
            and self.stream == stream  # a stream switch never matches a request, nor vice versa
        )

    @classmethod
    def from_json(cls, data: object) -> Fault:
        """Build from a JSON object (the HTTP API); unknown or mistyped fields are named."""
        if not isinstance(data, dict):
            raise FaultError("the fault must be a JSON object")
        fields = {f.name: f for f in attrs.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise FaultError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(fields)}")
        kinds: dict[str, tuple[type, ...]] = {
            "kind": (str,), "count": (int,), "method": (str,), "path": (str,),
            "stream": (str,), "seconds": (int, float), "status": (int,), "retry_after": (int,),
        }  # fmt: skip
        for name, value in data.items():
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, kinds[name])
            ):
                raise FaultError(f"field {name!r} has the wrong type: {value!r}")
        if "kind" not in data:
            raise FaultError("field 'kind' is required")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


class Faults:
    """The armed switches. Not thread-safe: touch it from the simulator's Trio thread."""

    def __init__(self) -> None:
        self._armed: list[list[Any]] = []  # [fault, remaining]

    def arm(self, kind: str, *, count: int = 1, **options: Any) -> Fault:
        """Arm a switch for the next ``count`` matching requests; see :data:`KINDS`."""
        return self.add(Fault(kind, count, **options))

    def add(self, fault: Fault) -> Fault:
        self._armed.append([fault, fault.count])
        return fault

    def clear(self) -> None:
        self._armed.clear()

    @property
    def armed(self) -> list[tuple[Fault, int]]:
        """Armed switches and how many matches each has left."""
        return [(f, n) for f, n in self._armed]

    def take(
        self,
        kind: str,
        *,
        method: str | None = None,
        path: str | None = None,
        stream: str | None = None,
    ) -> Fault | None:
        """Consume one match of ``kind`` for this request or frame, if one is armed."""
        for entry in self._armed:
            fault, remaining = entry
            if fault.matches(kind, method, path, stream):
                if remaining <= 1:
                    self._armed.remove(entry)
                else:
                    entry[1] = remaining - 1
                return fault  # type: ignore[no-any-return]
        return None

    # Shorthands, so tests read as sentences.
    def delay(self, seconds: float, **match: Any) -> Fault:
        return self.arm("delay", seconds=seconds, **match)

    def drop(self, **match: Any) -> Fault:
        """Drop the next matching request's connection (or, with ``stream=``, a stream's)."""
        return self.arm("drop", **match)

    def server_error(self, status: int = 503, **match: Any) -> Fault:
        return self.arm("server_error", status=status, **match)

    def rate_limit(self, retry_after: int = 1, **match: Any) -> Fault:
        return self.arm("rate_limit", retry_after=retry_after, **match)

    def ban(self, retry_after: int = 120, **match: Any) -> Fault:
        return self.arm("ban", retry_after=retry_after, **match)

    def accept_then_drop(self, **match: Any) -> Fault:
        return self.arm("accept_then_drop", **match)

    def push_before_answer(self, **match: Any) -> Fault:
        return self.arm("push_before_answer", **match)

    def malformed(self, stream: str, **match: Any) -> Fault:
        return self.arm("malformed", stream=stream, **match)
