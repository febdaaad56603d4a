"""Telegram Updates to commands, authorisation and reply splitting: sans-IO, no event loop."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.control.telegram_updates import (
    MAX_MESSAGE,
    Ignored,
    Incoming,
    parse_update,
    refusal,
    split_text,
    utf16_len,
)
from trading.testing.telegram_server import command_entities

BOT = "trio_trade_bot"


def update(text: Any, *, entities: Any = "auto", **message: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": 5,
        "from": {"id": 42, "is_bot": False, "first_name": "op"},
        "chat": {"id": 42, "type": "private"},
        "date": 1_700_000_000,
        "text": text,
    }
    if entities == "auto":
        entities = command_entities(text) if isinstance(text, str) else None
    if entities is not None:
        body["entities"] = entities
    body.update(message)
    return {"update_id": 7, "message": body}


def test_a_command_and_its_arguments() -> None:
    got = parse_update(update("/pause  sma_cross "), BOT)
    assert isinstance(got, Incoming)
    assert (got.update_id, got.chat_id, got.user_id, got.verb, got.args) == (
        7,
        42,
        42,
        "pause",
        "sma_cross",
    )
    assert got.command == "pause sma_cross"


def test_addressed_to_us_or_to_another_bot() -> None:
    ours = parse_update(update("/Status@Trio_Trade_Bot now"), BOT)
    assert isinstance(ours, Incoming) and ours.verb == "status" and ours.args == "now"
    other = parse_update(update("/status@other_bot"), BOT)
    assert isinstance(other, Ignored) and "other_bot" in other.reason and other.update_id == 7
    # The entity's length decides where the command ends (13 units for "/status@mybot").
    assert command_entities("/status@mybot now") == [
        {"type": "bot_command", "offset": 0, "length": 13}
    ]


@given(
    prefix=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20
    ).filter(lambda s: s.strip() == s and s),
    verb=st.sampled_from(["pause", "status", "wake"]),
    args=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20),
)
def test_entities_are_utf16_units_even_after_astral_characters(
    prefix: str, verb: str, args: str
) -> None:
    """Text before the command (emoji are two UTF-16 units): the entity is not at offset 0,
    so it is not a command; at offset 0 the command and its arguments come out exactly."""
    astral = "\U0001f680" + prefix
    text = f"/{verb} {astral} {args}"
    got = parse_update(update(text), BOT)
    assert isinstance(got, Incoming)
    assert got.verb == verb and got.args == f"{astral} {args}".strip()
    later = f"{astral} /{verb}"
    entity = command_entities(later)[-1]
    assert entity["offset"] == utf16_len(astral) + 1 and entity["offset"] > len(astral)
    assert isinstance(parse_update(update(later), BOT), Ignored)
    # An entity measured in code points instead of UTF-16 units ends inside the text wrongly.
    moved = update(
        f"/{verb}\U0001f680x",
        entities=[{"type": "bot_command", "offset": 0, "length": len(verb) + 2}],
    )
    cut = parse_update(moved, BOT)
    assert isinstance(cut, Ignored) or cut.verb != f"{verb}\U0001f680"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ([], "object"),
        ({"message": {}}, "update_id"),
        ({"update_id": True, "message": {}}, "update_id"),
        ({"update_id": 1, "edited_message": {"text": "/stop all"}}, "not a message"),
        ({"update_id": 1, "message": "x"}, "not an object"),
        ({"update_id": 1, "message": {"chat": {"id": "1", "type": "private"}}}, "chat"),
        (update("/stop all", chat=None), "chat"),
        (update("/stop all", date="today"), "date"),
        (update("/stop all", **{"from": {"id": "42"}}), "from"),
        (update("/stop all", message_thread_id="3"), "message_thread_id"),
        (update(None), "not a text"),
        (update(["/stop"]), "not a text"),
        (update("/stop " + "x" * 5000), "longer"),
        (update("stop all"), "not a command"),
        (update("hello /stop all"), "not a command"),
        (update("/stop all", entities={"x": 1}), "entities"),
        (update("/stop all", entities=["x"]), "entity"),
        (update("/stop", entities=[{"type": "bot_command", "offset": 0, "length": 99}]), "fit"),
        (update("/stop", entities=[{"type": "bot_command", "offset": 0, "length": "5"}]), "length"),
        (
            update("/\U0001f680", entities=[{"type": "bot_command", "offset": 0, "length": 2}]),
            "fit",
        ),
    ],
)
def test_malformed_updates_are_ignored_with_a_reason(raw: Any, reason: str) -> None:
    got = parse_update(raw, BOT)
    assert isinstance(got, Ignored)
    assert reason in got.reason


@pytest.mark.parametrize("entities", [None, []])
def test_a_hand_written_update_without_entities_is_read_by_its_first_word(
    entities: list[object] | None,
) -> None:
    got = parse_update(update("/pause a", entities=entities), BOT)
    assert isinstance(got, Incoming) and got.command == "pause a"
    assert isinstance(parse_update(update("pause a", entities=entities), BOT), Ignored)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "update_id",
                        "message",
                        "chat",
                        "id",
                        "type",
                        "text",
                        "date",
                        "from",
                        "entities",
                        "offset",
                        "length",
                    ]
                ),
                inner,
                max_size=5,
            )
        ),
        max_leaves=20,
    )
)
def test_parse_update_never_raises(raw: Any) -> None:
    assert isinstance(parse_update(raw, BOT), Incoming | Ignored)


def incoming(chat: int, kind: str, user: int | None, thread: int | None = None) -> Incoming:
    return Incoming(1, chat, kind, user, thread, 0, "/status", "status", "")


def test_authorisation() -> None:
    chats, users = (42, -100), (7,)
    assert refusal(incoming(42, "private", 42), chats, users, None) is None
    assert refusal(incoming(43, "private", 43), chats, users, None) == "chat 43 not allowed"
    assert refusal(incoming(-100, "supergroup", 7), chats, users, None) is None
    refused = refusal(incoming(-100, "supergroup", 8), chats, users, None)
    assert refused == "user 8 not allowed in chat -100"
    assert refusal(incoming(-100, "group", None), chats, users, None) is not None
    assert refusal(incoming(-100, "channel", 7), chats, users, None) is not None
    assert refusal(incoming(-100, "supergroup", 7, 3), chats, users, 3) is None
    assert refusal(incoming(-100, "supergroup", 7, 4), chats, users, 3) is not None
    assert refusal(incoming(-100, "supergroup", 7), chats, users, 3) is not None


texts = st.text(
    alphabet=st.sampled_from(["a", "\n", "é", "\U0001f680", " ", "\u4e2d"]), max_size=3000
)


@given(text=texts, limit=st.integers(2, 300))
def test_split_parts_fit_and_join_to_the_text(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert "".join(parts) == text
    assert all(0 < utf16_len(p) <= limit for p in parts)
    for part in parts[:-1]:
        assert "\n" not in part or part.endswith("\n")  # cut after the window's last newline


@given(st.text(max_size=20_000))
def test_split_at_telegrams_limit(text: str) -> None:
    parts = split_text(text)
    assert "".join(parts) == text
    assert all(utf16_len(p) <= MAX_MESSAGE for p in parts)


def test_split_prefers_line_ends_and_never_cuts_a_surrogate_pair() -> None:
    lines = "\n".join(f"line {i:04d}" for i in range(1000))  # 10 units each
    parts = split_text(lines)
    assert all(p.endswith("\n") for p in parts[:-1])
    rockets = "\U0001f680" * 3000  # 6000 units: 2048 rockets fit in 4096
    assert [len(p) for p in split_text(rockets)] == [2048, 952]
    assert split_text("") == []
    with pytest.raises(ValueError):
        split_text("x", 1)
