"""A fake Telegram Bot API server on 127.0.0.1, for our tests and users' own tests.

The rules this module keeps (from the Bot API's documented behaviour, reference section 4):

* ``/bot<token>/<method>``, method names case-insensitive, GET or POST, parameters from the
  query string, a urlencoded form or a JSON body (``allowed_updates`` may be a JSON string;
  numbers may come as text). A wrong token gets 401 ``Unauthorized``; an unknown method 404.
  Every answer is the envelope ``{"ok": true, "result": ...}`` / ``{"ok": false,
  "error_code", "description", "parameters"?}``.
* ``getUpdates`` confirms every update below ``offset`` (a negative offset keeps only the last
  ``-offset``), returns at most ``limit`` (1-100) of the rest, and when there are none holds
  the request until one arrives or ``timeout`` seconds pass (trio time: a test's clock drives
  it). A poll that arrives while another is held ends the held one with 409 ``Conflict:
  terminated by other getUpdates request``, as Telegram does.
* ``sendMessage`` records the message (:attr:`TelegramServer.sent`); its text must be 1-4096
  characters after stripping (else 400), ``message_thread_id`` is kept.
* Faults on demand: :meth:`TelegramServer.fail_next` makes the next calls answer 429 with
  ``parameters.retry_after``, 409, a 5xx, or drop the connection without an answer;
  :meth:`TelegramServer.hold_sends` keeps ``sendMessage`` calls waiting (a slow API).
* :meth:`TelegramServer.push_message` builds the Update a real client would get: ``chat``,
  ``from``, ``date``, ``message_thread_id``, and ``bot_command`` entities measured in UTF-16
  code units. :meth:`TelegramServer.push_update` queues any dict, malformed ones included.
* The wall clock stamping ``date`` is injectable (``now=``).
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import attrs
import trio

from trading.simulator.server import HttpRequest, HttpResponse, HttpServer

__all__ = ["SentMessage", "TelegramServer", "command_entities"]

_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{1,64})?")
_INT_PARAMS = ("offset", "limit", "timeout", "message_thread_id")
CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def command_entities(text: str) -> list[dict[str, Any]]:
    """The ``bot_command`` entities Telegram attaches to ``text`` (UTF-16 offsets/lengths)."""
    return [
        {"type": "bot_command", "offset": _utf16(text[: m.start()]), "length": _utf16(m.group())}
        for m in _COMMAND_RE.finditer(text)
    ]


@attrs.frozen(slots=True)
class SentMessage:
    message_id: int
    chat_id: int
    text: str
    thread_id: int | None
    date: int
    entities: tuple[dict[str, Any], ...] = ()


class _BadParam(Exception):
    pass


class TelegramServer:
    """The fake. Start it with ``url = await nursery.start(server.serve)``: ``url`` is the
    ``api_base`` to give the bot (``http://127.0.0.1:PORT``). Cancelling ``serve`` closes the
    listener and every connection."""

    def __init__(
        self,
        token: str = "123456:TEST-token",
        *,
        username: str = "trio_trade_bot",
        now: Callable[[], float] = time.time,
        first_update_id: int = 100_000,
    ) -> None:
        self.token = token
        self.username = username
        self.bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        self.now = now
        self.updates: list[dict[str, Any]] = []  # unconfirmed, oldest first
        self.sent: list[SentMessage] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (method lower-case, params)
        self.call_times: list[float] = []  # trio time each call arrived
        self._next_update = first_update_id
        self._next_message = 1
        self._chat_types: dict[int, str] = {}
        # (kind, retry_after, methods or None for any) for the next matching calls, oldest first
        self._faults: list[tuple[str, float, frozenset[str] | None]] = []
        self._arrived = trio.Event()
        self._sent_changed = trio.Event()
        self._held: trio.CancelScope | None = None
        self._terminated: set[trio.CancelScope] = set()
        self._send_gate: trio.Event | None = None
        self.url = ""
        self._http = HttpServer(self._handle, self._no_ws, lambda _path: False)

    @staticmethod
    async def _no_ws(*_args: Any) -> None:  # pragma: no cover - no WebSocket paths
        return None

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on 127.0.0.1 (a free port) until cancelled; ``started(url)``."""
        async with trio.open_nursery() as nursery:
            port = await nursery.start(self._http.serve, "127.0.0.1", 0)
            self.url = f"http://127.0.0.1:{port}"
            task_status.started(self.url)

    # -- driving it from a test -----------------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue ``update`` (an ``update_id`` is added unless it has one); returns its id."""
        if "update_id" not in update:
            update = {"update_id": self._next_update, **update}
            self._next_update += 1
        self.updates.append(update)
        self._arrived.set()
        self._arrived = trio.Event()
        return int(update["update_id"]) if isinstance(update["update_id"], int) else -1

    def push_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        chat_type: str | None = None,
        thread_id: int | None = None,
        date: float | None = None,
        edited: bool = False,
    ) -> int:
        """Queue a text message from a user as Telegram delivers it; returns its update_id.

        ``chat_type`` defaults to ``private`` for a positive chat id, else ``supergroup``;
        ``user_id`` to the chat id in a private chat (else 1000); ``date`` to now."""
        kind = chat_type or ("private" if chat_id > 0 else "supergroup")
        self._chat_types[chat_id] = kind
        sender = user_id if user_id is not None else (chat_id if kind == "private" else 1000)
        message: dict[str, Any] = {
            "message_id": self._new_message_id(),
            "from": {"id": sender, "is_bot": False, "first_name": f"user{sender}"},
            "chat": {"id": chat_id, "type": kind},
            "date": int(self.now() if date is None else date),
            "text": text,
        }
        if kind == "private":
            message["chat"]["first_name"] = f"user{sender}"
        else:
            message["chat"]["title"] = f"chat {chat_id}"
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        entities = command_entities(text)
        if entities:
            message["entities"] = entities
        return self.push_update({"edited_message" if edited else "message": message})

    def fail_next(
        self,
        count: int,
        kind: str,
        *,
        retry_after: float = 1,
        methods: tuple[str, ...] | None = None,
    ) -> None:
        """The next ``count`` calls (of ``methods``, case-insensitive; default all) fail:
        ``kind`` is ``"429"`` (with ``retry_after``), ``"409"`` (another poller), ``"409-webhook"``
        (a webhook is set), ``"500"``/``"502"``, or ``"drop"`` (the connection closes without an
        answer)."""
        if kind not in ("429", "409", "409-webhook", "500", "502", "drop"):
            raise ValueError(f"unknown fault {kind!r}")
        only = None if methods is None else frozenset(m.lower() for m in methods)
        self._faults += [(kind, retry_after, only)] * count

    def hold_sends(self) -> None:
        """``sendMessage`` calls wait (unanswered) until :meth:`release_sends`: a slow API."""
        if self._send_gate is None:
            self._send_gate = trio.Event()

    def release_sends(self) -> None:
        gate, self._send_gate = self._send_gate, None
        if gate is not None:
            gate.set()

    async def wait_sent(self, count: int) -> list[SentMessage]:
        """Wait until at least ``count`` messages were sent; the messages. Cancelling it
        changes nothing."""
        while len(self.sent) < count:
            await self._sent_changed.wait()
        return list(self.sent)

    def texts(self, chat_id: int | None = None) -> list[str]:
        return [m.text for m in self.sent if chat_id is None or m.chat_id == chat_id]

    # -- the HTTP side --------------------------------------------------------------------------

    def _new_message_id(self) -> int:
        self._next_message += 1
        return self._next_message

    @staticmethod
    def _answer(status: int, body: dict[str, Any]) -> HttpResponse:
        return HttpResponse(status, json.dumps(body).encode(), content_type="application/json")

    def _error(self, code: int, description: str, **parameters: Any) -> HttpResponse:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return self._answer(code, body)

    def _ok(self, result: Any) -> HttpResponse:
        return self._answer(200, {"ok": True, "result": result})

    async def _handle(self, request: HttpRequest) -> HttpResponse | None:
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", request.path)
        if match is None:
            return self._error(404, "Not Found")
        if urllib.parse.unquote(match.group(1)) != self.token:
            return self._error(401, "Unauthorized")
        method = match.group(2).lower()
        if request.method not in ("GET", "POST"):
            return self._error(400, f"Bad Request: method {request.method} not supported")
        try:
            params = self._params(request)
        except _BadParam as exc:
            return self._error(400, f"Bad Request: {exc}")
        self.calls.append((method, params))
        self.call_times.append(trio.current_time())
        # The oldest fault armed for this method (each keeps the methods it was armed for).
        armed = next(
            (i for i, (_, _, only) in enumerate(self._faults) if only is None or method in only),
            None,
        )
        if armed is not None:
            kind, retry_after, _ = self._faults.pop(armed)
            if kind == "drop":
                return None
            if kind == "429":
                wait = int(retry_after) if float(retry_after).is_integer() else retry_after
                return self._error(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
            if kind == "409":
                return self._error(409, CONFLICT)
            if kind == "409-webhook":
                return self._error(409, WEBHOOK_CONFLICT)
            return self._error(int(kind), "Internal Server Error")
        handler = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "sendmessage": self._send_message,
        }.get(method)
        if handler is None:
            return self._error(404, "Not Found")
        try:
            return await handler(params)
        except _BadParam as exc:
            return self._error(400, f"Bad Request: {exc}")

    @staticmethod
    def _params(request: HttpRequest) -> dict[str, Any]:
        params: dict[str, Any] = dict(urllib.parse.parse_qsl(request.raw_query))
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if request.body:
            if kind == "application/json":
                try:
                    body = json.loads(request.body)
                except (ValueError, RecursionError):
                    raise _BadParam("can't parse JSON body") from None
                if not isinstance(body, dict):
                    raise _BadParam("JSON body must be an object")
                params.update(body)
            elif kind == "application/x-www-form-urlencoded":
                params.update(urllib.parse.parse_qsl(request.body.decode("utf-8", "replace")))
            else:
                raise _BadParam(f"unsupported content type {kind or 'none'!r}")
        for name in _INT_PARAMS:
            value = params.get(name)
            if isinstance(value, str):
                try:
                    params[name] = float(value) if name == "timeout" else int(value)
                except ValueError:
                    raise _BadParam(f"parameter {name} must be a number") from None
            elif isinstance(value, float) and name == "timeout":
                pass  # a fraction of a second: handy in tests
            elif value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise _BadParam(f"parameter {name} must be a number")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):
            try:
                params["allowed_updates"] = json.loads(allowed)
            except ValueError:
                raise _BadParam("can't parse allowed updates") from None
        return params

    async def _get_me(self, params: dict[str, Any]) -> HttpResponse:
        return self._ok(
            {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": "trio-trade test bot",
                "username": self.username,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        )

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            self.updates = self.updates[offset:]
        elif offset > 0:
            self.updates = [u for u in self.updates if _update_id(u) >= offset]

    async def _get_updates(self, params: dict[str, Any]) -> HttpResponse:
        offset = params.get("offset", 0)
        limit = params.get("limit", 100)
        timeout = params.get("timeout", 0)
        limit = min(max(limit, 1), 100)
        self._confirm(offset)
        if self._held is not None:  # the earlier poll is terminated by this one
            self._terminated.add(self._held)
            self._held.cancel(reason="telegram fake: another getUpdates")
            self._held = None
        if not self.updates and timeout > 0:
            with trio.move_on_after(timeout) as scope:
                self._held = scope
                try:
                    while not self.updates:
                        await self._arrived.wait()
                finally:
                    if self._held is scope:
                        self._held = None
            if scope in self._terminated:
                self._terminated.discard(scope)
                return self._error(409, CONFLICT)
            self._confirm(offset)  # updates pushed meanwhile may sit below the offset
        return self._ok(self.updates[:limit])

    async def _send_message(self, params: dict[str, Any]) -> HttpResponse:
        if self._send_gate is not None:
            await self._send_gate.wait()
        chat = params.get("chat_id")
        if isinstance(chat, str):
            try:
                chat = int(chat)
            except ValueError:
                raise _BadParam("chat not found") from None
        if not isinstance(chat, int) or isinstance(chat, bool):
            raise _BadParam("chat_id is empty")
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _BadParam("message text is empty")
        if _utf16(text) > 4096:
            raise _BadParam("message is too long")
        thread = params.get("message_thread_id")
        entities = _entities(params.get("entities"), _utf16(text))
        message = SentMessage(
            self._new_message_id(), chat, text, thread, int(self.now()), tuple(entities)
        )
        self.sent.append(message)
        self._sent_changed.set()
        self._sent_changed = trio.Event()
        result: dict[str, Any] = {
            "message_id": message.message_id,
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "trio-trade test bot"},
            "chat": {"id": chat, "type": self._chat_types.get(chat, "private")},
            "date": message.date,
            "text": text,
        }
        if thread is not None:
            result["message_thread_id"] = thread
        if entities:
            result["entities"] = entities
        return self._ok(result)


_ENTITY_TYPES = frozenset(
    {"bold", "italic", "underline", "strikethrough", "spoiler", "code", "pre", "text_link",
     "blockquote", "expandable_blockquote", "text_mention", "custom_emoji", "mention",
     "hashtag", "cashtag", "bot_command", "url", "email", "phone_number"}
)  # fmt: skip


def _entities(value: Any, length: int) -> list[dict[str, Any]]:
    """``entities`` as Telegram takes them (a JSON array, or its text in a form); 400 "can't
    parse entities" for one that is not an object with a known type inside the text."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _BadParam("can't parse entities: not JSON") from None
    if not isinstance(value, list):
        raise _BadParam("can't parse entities: not an array")
    for entity in value:
        if not isinstance(entity, dict) or entity.get("type") not in _ENTITY_TYPES:
            raise _BadParam(f"can't parse entities: unsupported entity {entity!r}")
        offset, size = entity.get("offset"), entity.get("length")
        if not (isinstance(offset, int) and isinstance(size, int)):
            raise _BadParam("can't parse entities: offset and length must be integers")
        if offset < 0 or size < 1 or offset + size > length:
            raise _BadParam("can't parse entities: an entity lies outside the text")
    return value


def _update_id(update: dict[str, Any]) -> int:
    value = update.get("update_id")
    return value if isinstance(value, int) else -1
