"""The fake Bot API server speaks what api.telegram.org speaks: raw HTTP requests on 127.0.0.1,
real time (no autojumping clock on sockets), every wait bounded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
import trio

from trading.testing import TelegramServer
from trading.testing.telegram_server import CONFLICT

BOUND = 10
TOKEN = "123456:TEST-token"


@pytest.fixture
async def server() -> AsyncIterator[TelegramServer]:
    fake = TelegramServer(TOKEN)
    async with trio.open_nursery() as nursery:
        await nursery.start(fake.serve)
        yield fake
        nursery.cancel_scope.cancel()


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(timeout=BOUND) as client:
        yield client


async def call(
    http: httpx2.AsyncClient, server: TelegramServer, method: str, token: str = TOKEN, **kw: Any
) -> tuple[int, dict[str, Any]]:
    verb = kw.pop("verb", "POST")
    with trio.fail_after(BOUND):
        response = await http.request(verb, f"{server.url}/bot{token}/{method}", **kw)
    body: dict[str, Any] = json.loads(response.content)
    return response.status_code, body


async def test_parameters_in_query_form_or_json_and_case_insensitive_methods(
    server: TelegramServer, http: httpx2.AsyncClient
) -> None:
    server.push_message(42, "/status")
    ident = server.updates[0]["update_id"]
    status, body = await call(http, server, "GETUPDATES", verb="GET", params={"limit": "1"})
    assert status == 200 and body["ok"] is True and body["result"][0]["update_id"] == ident
    status, body = await call(
        http,
        server,
        "getupdates",
        data={"offset": str(ident), "allowed_updates": '["message"]', "timeout": "0"},
    )
    assert status == 200 and len(body["result"]) == 1
    assert server.calls[-1][1]["allowed_updates"] == ["message"]
    status, body = await call(
        http, server, "sendMessage", json={"chat_id": 42, "text": "hi", "message_thread_id": 3}
    )
    assert status == 200 and body["result"]["text"] == "hi"
    assert body["result"]["message_thread_id"] == 3 and body["result"]["chat"]["id"] == 42
    assert server.sent[-1].thread_id == 3
    status, body = await call(http, server, "getMe", verb="GET")
    assert body["result"]["username"] == server.username and body["result"]["is_bot"] is True


async def test_errors_are_the_envelope(server: TelegramServer, http: httpx2.AsyncClient) -> None:
    assert await call(http, server, "getMe", token="123456:wrong") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    status, body = await call(http, server, "noSuchMethod")
    assert (status, body["error_code"]) == (404, 404)
    status, body = await call(http, server, "getUpdates", json={"offset": "x"})
    assert status == 400 and body["description"].startswith("Bad Request:")
    status, body = await call(
        http, server, "getUpdates", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert status == 400
    for text, error in (
        ("", "message text is empty"),
        ("x" * 4097, "message is too long"),
        ("\U0001f680" * 2049, "message is too long"),
    ):
        status, body = await call(http, server, "sendMessage", json={"chat_id": 1, "text": text})
        assert (status, body["description"]) == (400, f"Bad Request: {error}")
    status, _ = await call(http, server, "sendMessage", json={"chat_id": 1, "text": "x" * 4096})
    assert status == 200
    for entities in ([{"type": "pre", "offset": 0, "length": 3}], [{"type": "nope"}], "[", {}):
        form = {"chat_id": 1, "text": "ab", "entities": entities}
        status, body = await call(http, server, "sendMessage", json=form)
        assert status == 400 and "can't parse entities" in body["description"], entities
    form = {
        "chat_id": 1,
        "text": "\U0001f680b",
        "entities": '[{"type":"pre","offset":0,"length":3}]',
    }
    status, body = await call(http, server, "sendMessage", json=form)  # UTF-16: 2 + 1 units
    assert status == 200 and body["result"]["entities"][0]["length"] == 3


async def test_offsets_confirm_and_negative_offsets_count_from_the_end(
    server: TelegramServer, http: httpx2.AsyncClient
) -> None:
    ids = [server.push_message(42, f"/wake n{i}") for i in range(5)]
    _, body = await call(http, server, "getUpdates", json={"limit": 2})
    assert [u["update_id"] for u in body["result"]] == ids[:2]
    _, body = await call(http, server, "getUpdates", json={"offset": ids[2]})
    assert [u["update_id"] for u in body["result"]] == ids[2:]
    _, body = await call(http, server, "getUpdates", json={"offset": -1})
    assert [u["update_id"] for u in body["result"]] == ids[4:]
    _, body = await call(http, server, "getUpdates", json={"offset": ids[4] + 1})
    assert body["result"] == [] and server.updates == []


async def test_a_poll_is_held_until_an_update_or_its_timeout(
    server: TelegramServer, http: httpx2.AsyncClient
) -> None:
    got: list[Any] = []

    async def poll() -> None:
        got.append(await call(http, server, "getUpdates", json={"timeout": 5}))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(poll)
        while not server.calls:  # noqa: ASYNC110 (the fake has no event for a call arriving)
            await trio.sleep(0.01)
        await trio.sleep(0.05)
        assert got == []  # still held
        ident = server.push_message(42, "/status")
    assert got[0][1]["result"][0]["update_id"] == ident
    start = trio.current_time()
    _, body = await call(http, server, "getUpdates", json={"offset": ident + 1, "timeout": 0.3})
    assert body["result"] == [] and trio.current_time() - start >= 0.3


async def test_a_second_poll_terminates_the_held_one_with_409(
    server: TelegramServer, http: httpx2.AsyncClient
) -> None:
    answers: list[tuple[int, dict[str, Any]]] = []

    async def poll() -> None:
        answers.append(await call(http, server, "getUpdates", json={"timeout": 30}))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(poll)
        while not server.calls:  # noqa: ASYNC110 (the fake has no event for a call arriving)
            await trio.sleep(0.01)
        await trio.sleep(0.05)
        nursery.start_soon(poll)
        while len(answers) < 1:  # noqa: ASYNC110 (the answer lands in a list)
            await trio.sleep(0.01)
        assert answers[0] == (409, {"ok": False, "error_code": 409, "description": CONFLICT})
        server.push_message(42, "/status")
    assert answers[1][0] == 200 and len(answers[1][1]["result"]) == 1


async def test_each_fault_keeps_the_methods_it_was_armed_for(
    server: TelegramServer, http: httpx2.AsyncClient
) -> None:
    # Found by the interleaving property: arming sendMessage faults once re-aimed the getUpdates
    # ones still waiting at sendMessage, which then lost more replies than any script asked.
    server.fail_next(2, "502", methods=("getUpdates",))
    server.fail_next(1, "500", methods=("sendMessage",))
    status, _ = await call(http, server, "sendMessage", json={"chat_id": 1, "text": "a"})
    assert status == 500
    status, _ = await call(http, server, "sendMessage", json={"chat_id": 1, "text": "b"})
    assert status == 200
    for _ in range(2):
        status, _ = await call(http, server, "getUpdates", json={"timeout": 0})
        assert status == 502
    status, _ = await call(http, server, "getUpdates", json={"timeout": 0})
    assert status == 200


async def test_faults_on_demand(server: TelegramServer, http: httpx2.AsyncClient) -> None:
    server.fail_next(1, "429", retry_after=3)
    server.fail_next(1, "502")
    server.fail_next(1, "drop")
    assert await call(http, server, "getMe") == (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 3",
            "parameters": {"retry_after": 3},
        },
    )
    status, body = await call(http, server, "getMe")
    assert (status, body["ok"]) == (502, False)
    with pytest.raises(httpx2.RemoteProtocolError):
        await call(http, server, "getMe")
    status, _ = await call(http, server, "getMe")
    assert status == 200
    with pytest.raises(ValueError):
        server.fail_next(1, "teapot")


async def test_pushed_messages_are_faithful_updates(server: TelegramServer) -> None:
    server.push_message(
        -1001, "\U0001f680 /pause@trio_trade_bot a", user_id=7, thread_id=9, date=1_700_000_000
    )
    server.push_message(5, "/x", edited=True)
    first, second = server.updates
    message = first["message"]
    assert message["chat"] == {"id": -1001, "type": "supergroup", "title": "chat -1001"}
    assert message["from"]["id"] == 7 and message["date"] == 1_700_000_000
    assert message["message_thread_id"] == 9 and message["is_topic_message"] is True
    assert message["entities"] == [{"type": "bot_command", "offset": 3, "length": 21}]
    assert "edited_message" in second and second["update_id"] == first["update_id"] + 1
