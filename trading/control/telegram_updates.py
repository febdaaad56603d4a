"""Telegram Updates in, decisions out: sans-IO, no trio, no network (h11 style).

The rules this module keeps:

* An Update is untrusted JSON. :func:`parse_update` turns it into an :class:`Incoming` command
  or an :class:`Ignored` with the reason; it never raises, whatever the dict holds (missing
  fields, wrong types, ``edited_message``, a photo, a megabyte of text), and it is linear in
  the text. ``update_id`` is read first so even a skipped update is acknowledged.
* The command is what Telegram marked: the ``bot_command`` entity at offset 0, its offset and
  length in **UTF-16 code units** (an emoji before it counts two). The rest of the text is the
  arguments. ``/cmd@OtherBot`` is addressed to another bot and is ignored; ``/cmd@OurBot``
  and ``/cmd`` are ours (bot usernames compare case-insensitively). A message with no
  ``entities`` field at all whose text starts with ``/`` is read by its first word (a
  hand-written Update); entities present but none at offset 0: not a command.
* Authorisation (:func:`refusal`) is decided here: the chat must be listed; in a group or
  supergroup the sender (``from.id``) must be listed too; a configured topic must equal the
  message's ``message_thread_id``. The reason names the first failed check.
* :func:`split_text` cuts a reply into parts of at most 4,096 UTF-16 code units whose join is
  the text, at the last line end inside the window when there is one, never inside a
  surrogate pair.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import attrs

__all__ = [
    "MAX_MESSAGE",
    "MAX_TEXT",
    "Ignored",
    "Incoming",
    "parse_update",
    "refusal",
    "split_text",
    "utf16_len",
]

MAX_MESSAGE = 4096  # UTF-16 code units in one sendMessage text
MAX_TEXT = 4096  # longer incoming texts are not commands a person typed; skipped
_GROUPS = frozenset({"group", "supergroup"})


@attrs.frozen(slots=True)
class Incoming:
    """A command from a chat. ``verb`` is lower-case without ``/`` or ``@bot``; ``args`` the
    text after the command entity, stripped. ``date`` is Telegram's epoch seconds."""

    update_id: int
    chat_id: int
    chat_type: str
    user_id: int | None
    thread_id: int | None
    date: int
    text: str
    verb: str
    args: str
    topic_message: bool = False  # sent in a forum topic: the reply goes to the same topic

    @property
    def command(self) -> str:
        """The command as the runner's parser reads it: ``pause sma_cross``."""
        return f"{self.verb} {self.args}".strip()


@attrs.frozen(slots=True)
class Ignored:
    """Not a command for us; ``update_id`` is None only when the Update had no usable one."""

    update_id: int | None
    reason: str


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: astral characters (emoji) count two."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _utf16_slice(text: str, start: int, end: int) -> str | None:
    """``text[start:end]`` in UTF-16 units; None when a bound falls inside a surrogate pair
    or outside the text."""
    data = text.encode("utf-16-le", "surrogatepass")
    if not 0 <= start <= end <= len(data) // 2:
        return None
    try:
        return data[2 * start : 2 * end].decode("utf-16-le")
    except UnicodeDecodeError:
        return None


def _int(value: Any) -> int | None:
    # bool is an int in Python, never an id in JSON.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_update(update: Any, bot_username: str | None = None) -> Incoming | Ignored:
    """The command in ``update``, or why it is ignored. Never raises."""
    if not isinstance(update, dict):
        return Ignored(None, f"an Update is an object, not {type(update).__name__}")
    update_id = _int(update.get("update_id"))
    if update_id is None:
        return Ignored(None, "no integer update_id")
    message = update.get("message")
    if message is None:
        kinds = sorted(k for k in update if k != "update_id")
        return Ignored(update_id, f"not a message ({', '.join(kinds[:3]) or 'empty'})")
    if not isinstance(message, dict):
        return Ignored(update_id, "message is not an object")
    chat = message.get("chat")
    if not isinstance(chat, dict):
        return Ignored(update_id, "message without a chat")
    chat_id, chat_type = _int(chat.get("id")), chat.get("type")
    if chat_id is None or not isinstance(chat_type, str):
        return Ignored(update_id, "chat without an integer id and a type")
    date = _int(message.get("date"))
    if date is None:
        return Ignored(update_id, "message without an integer date")
    sender = message.get("from")
    user_id = _int(sender.get("id")) if isinstance(sender, dict) else None
    if sender is not None and user_id is None:
        return Ignored(update_id, "from without an integer id")
    thread = message.get("message_thread_id")
    thread_id = _int(thread)
    if thread is not None and thread_id is None:
        return Ignored(update_id, "message_thread_id is not an integer")
    text = message.get("text")
    if not isinstance(text, str):
        return Ignored(update_id, "not a text message")
    if len(text) > MAX_TEXT:
        return Ignored(update_id, f"text longer than {MAX_TEXT} characters")
    found = _command(text, message.get("entities"), bot_username)
    if isinstance(found, str):
        return Ignored(update_id, found)
    verb, args = found
    topic = message.get("is_topic_message") is True
    return Incoming(
        update_id, chat_id, chat_type, user_id, thread_id, date, text, verb, args, topic
    )


def _command(text: str, entities: Any, bot_username: str | None) -> tuple[str, str] | str:
    """(verb, args) of the leading command, or the reason there is none."""
    if entities is None or entities == []:  # Telegram leaves it out; some servers send []
        if not text.startswith("/"):
            return "not a command"
        end = utf16_len(text.split(maxsplit=1)[0])
    else:
        if not isinstance(entities, list):
            return "entities is not a list"
        end = -1
        for entity in entities:
            if not isinstance(entity, dict):
                return "an entity is not an object"
            if entity.get("type") == "bot_command" and entity.get("offset") == 0:
                length = _int(entity.get("length"))
                if length is None or length < 2:
                    return "bot_command entity with a bad length"
                end = length
                break
        if end < 0:
            return "not a command"
    command = _utf16_slice(text, 0, end)
    rest = _utf16_slice(text, end, utf16_len(text))
    if command is None or rest is None or not command.startswith("/"):
        return "bot_command entity does not fit the text"
    verb, _, addressed = command[1:].partition("@")
    if addressed and (bot_username is None or addressed.lower() != bot_username.lower()):
        return f"addressed to @{addressed[:32]}, not to us"
    if not verb:
        return "empty command"
    return verb.lower(), rest.strip()


def refusal(
    message: Incoming,
    allowed_chats: Collection[int],
    allowed_users: Collection[int],
    topic: int | None,
) -> str | None:
    """Why ``message`` may not command the runner, or None when it may."""
    if message.chat_id not in allowed_chats:
        return f"chat {message.chat_id} not allowed"
    if message.chat_type in _GROUPS and (
        message.user_id is None or message.user_id not in allowed_users
    ):
        return f"user {message.user_id} not allowed in chat {message.chat_id}"
    if message.chat_type not in _GROUPS and message.chat_type != "private":
        return f"chat type {message.chat_type[:20]!r} not allowed"
    if topic is not None and message.thread_id != topic:
        return f"topic {message.thread_id} is not the configured topic"
    return None


def split_text(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Parts of at most ``limit`` UTF-16 units (``limit`` >= 2), joined they are ``text``; cut
    after the last newline inside the window when there is one; never in a surrogate pair.
    The empty text has no parts."""
    if limit < 2:
        raise ValueError("limit must be at least 2 (an astral character is two units)")
    parts: list[str] = []
    start = 0
    while start < len(text):
        units = 0
        end = start
        # Advance while the next character still fits: linear in the text overall.
        while end < len(text):
            width = 2 if ord(text[end]) > 0xFFFF else 1
            if units + width > limit:
                break
            units += width
            end += 1
        if end < len(text):
            newline = text.rfind("\n", start, end)
            if newline >= start:
                end = newline + 1
        parts.append(text[start:end])
        start = end
    return parts
