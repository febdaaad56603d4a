"""The Bot API client: envelope and error kinds through httpx2's MockTransport (the transport
seam), and against the fake server on 127.0.0.1 (real time, bounded waits). The token never
shows in a repr, an exception or a log line."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
import trio

from trading.control.telegram_api import POLL_MARGIN, REQUEST_TIMEOUT, BotApi
from trading.control.telegram_errors import (
    BadRequest,
    Conflict,
    RetryAfter,
    TelegramError,
    TelegramNetworkError,
    Unauthorized,
)
from trading.testing import TelegramServer

TOKEN = "987654:SECRET-aaaabbbbcccc"
BOUND = 10


def mock(status: int, body: Any, seen: list[httpx2.Request] | None = None) -> BotApi:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if seen is not None:
            seen.append(request)
        if isinstance(body, Exception):
            raise body
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx2.Response(status, content=content)

    return BotApi(TOKEN, "https://api.example/", transport=httpx2.MockTransport(handler))


def envelope(code: int, description: str, **parameters: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


async def test_requests_are_json_posts_to_the_bot_path() -> None:
    seen: list[httpx2.Request] = []
    api = mock(200, {"ok": True, "result": []}, seen)
    assert await api.get_updates(5, 20) == []
    await mock(200, {"ok": True, "result": {}}, seen).send_message(-100, "hi", thread_id=3)
    first, second = seen
    assert first.method == "POST" and str(first.url) == f"https://api.example/bot{TOKEN}/getUpdates"
    assert first.headers["content-type"] == "application/json"
    assert json.loads(first.content) == {
        "timeout": 20,
        "limit": 100,
        "offset": 5,
        "allowed_updates": ["message"],
    }
    assert json.loads(second.content) == {"chat_id": -100, "text": "hi", "message_thread_id": 3}
    # A long poll may take its timeout and a margin to answer; other calls get the default.
    assert first.extensions["timeout"]["read"] == 20 + POLL_MARGIN
    assert second.extensions["timeout"]["read"] == REQUEST_TIMEOUT


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081/bot{}/getMe"),
        ("http://127.0.0.1:8081/", "http://127.0.0.1:8081/bot{}/getMe"),
        ("https://api.telegram.org/bot", "https://api.telegram.org/bot{}/getMe"),  # PTB's style
        ("https://proxy.example/telegram/", "https://proxy.example/telegram/bot{}/getMe"),
    ],
)
async def test_api_base_as_operators_write_it(base: str, url: str) -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"ok": True, "result": {"id": 1, "username": "b"}})

    async with BotApi(TOKEN, base, transport=httpx2.MockTransport(handler)) as api:
        await api.get_me()
    assert str(seen[0].url) == url.format(TOKEN)
    assert TOKEN not in repr(api)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (429, envelope(429, "Too Many Requests: retry after 7", retry_after=7), RetryAfter),
        (409, envelope(409, "Conflict: terminated by other getUpdates request"), Conflict),
        (401, envelope(401, "Unauthorized"), Unauthorized),
        (404, envelope(404, "Not Found"), Unauthorized),
        (400, envelope(400, "Bad Request: chat not found"), BadRequest),
        (403, envelope(403, "Forbidden: bot was blocked by the user"), BadRequest),
        (500, envelope(500, "Internal Server Error"), TelegramNetworkError),
        (502, b"<html>Bad Gateway</html>", TelegramNetworkError),
        (200, b"not json", TelegramNetworkError),
        (200, [1, 2], TelegramNetworkError),
        (200, envelope(400, "Bad Request: odd"), BadRequest),
        (200, httpx2.ConnectError("connection refused"), TelegramNetworkError),
        (200, httpx2.ReadTimeout("timed out"), TelegramNetworkError),
        (200, httpx2.RemoteProtocolError(f"dropped at /bot{TOKEN}/getMe"), TelegramNetworkError),
    ],
)
async def test_errors_map_to_kinds_and_never_show_the_token(
    status: int, body: Any, kind: type[TelegramError]
) -> None:
    api = mock(status, body)
    with pytest.raises(kind) as caught:
        await api.get_me()
    assert TOKEN not in str(caught.value) and "SECRET" not in repr(caught.value)
    if kind is RetryAfter:
        assert isinstance(caught.value, RetryAfter) and caught.value.retry_after == 7
    assert "SECRET" not in repr(api)


async def test_a_description_quoting_the_path_is_redacted() -> None:
    with pytest.raises(BadRequest) as caught:
        await mock(400, envelope(400, f"Bad Request: /bot{TOKEN}/x")).get_me()
    assert "SECRET" not in str(caught.value) and "/bot***" in str(caught.value)


def test_a_token_that_cannot_be_a_path_is_refused() -> None:
    for token in ("", "12/34", "a b"):
        with pytest.raises(ValueError) as caught:
            BotApi(token)
        assert token not in str(caught.value) or not token


@pytest.fixture
async def server() -> AsyncIterator[TelegramServer]:
    fake = TelegramServer(TOKEN)
    async with trio.open_nursery() as nursery:
        await nursery.start(fake.serve)
        yield fake
        nursery.cancel_scope.cancel()


async def test_against_the_fake_server_and_no_token_in_httpx_logs(
    server: TelegramServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with BotApi(TOKEN, server.url) as api:
        with trio.fail_after(BOUND):
            me = await api.get_me()
            assert me["username"] == server.username
            ident = server.push_message(42, "/status")
            updates = await api.get_updates(None, 5)
            assert [u["update_id"] for u in updates] == [ident]
            assert await api.get_updates(ident + 1, 0) == []
            await api.send_message(42, "pong")
    assert server.texts(42) == ["pong"]
    http_lines = [r.getMessage() for r in caplog.records if r.name == "httpx2"]
    assert http_lines and all("/bot***/" in line for line in http_lines)
    assert not any("SECRET" in r.getMessage() for r in caplog.records)
    async with BotApi("987654:wrong", server.url) as api:
        with pytest.raises(Unauthorized), trio.fail_after(BOUND):
            await api.get_me()


async def test_a_refused_connection_is_a_network_error() -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    await listener.aclose()
    async with BotApi(TOKEN, f"http://127.0.0.1:{port}") as api:
        with pytest.raises(TelegramNetworkError) as caught, trio.fail_after(BOUND):
            await api.get_me()
    assert "SECRET" not in str(caught.value)
